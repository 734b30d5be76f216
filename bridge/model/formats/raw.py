"""One raw value on ``devices/{id}/data/{variable}``: the simplest firmware's format.

The payload is the value itself: a JSON number (``21.5``, ``-3``, ``1e3``), ``true`` or
``false`` becomes that number or boolean; any other UTF-8 text is a string value, stored
exactly as sent. The variable is the rest of the topic, and the time is the time received.
"""

from __future__ import annotations

import re

from bridge.errors import FieldError, ValidationError
from bridge.model.formats.converted import Converted, Origin

TITLE = "Invalid raw value"

# JSON's number grammar, so "21.5" is a number for exactly the devices that would also
# write it in JSON; "NaN", "0x1F", "+5" or ".5" stay text rather than being guessed at.
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WHITESPACE = b" \t\r\n"  # JSON's; firmware that prints a reading often ends it with \r\n
# More digits than any int64 has; also keeps int() clear of Python's 4,300-digit limit.
_MAX_INT_DIGITS = 20
_ORIGIN = Origin(None, {"variable": "topic", "value": "payload"})


def convert_raw(payload: bytes, variable: str) -> Converted:
    """The one point of a raw ``payload`` published under ``data/{variable}``.

    An empty payload gives no point: it is how MQTT clears a retained message, which
    is housekeeping, not a reading (and not an error to report back to the device).
    """
    if not payload:
        return Converted([], [], TITLE)
    point = {"variable": variable, "value": _value(payload)}
    return Converted([point], [_ORIGIN], TITLE)


def _value(payload: bytes) -> float | int | bool | str:
    text = payload.strip(_WHITESPACE)
    if _NUMBER.fullmatch(text):
        if text.lstrip(b"-").isdigit():
            if len(text.lstrip(b"-")) > _MAX_INT_DIGITS:
                raise ValidationError(TITLE, [
                    FieldError("payload", "must fit in a 64-bit signed integer")])
            return int(text)
        return float(text)  # an overflow gives infinity, which validate_points refuses
    if text == b"true":
        return True
    if text == b"false":
        return False
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(TITLE, [FieldError(
            "payload", f"is neither a number, true/false nor UTF-8 text (invalid byte at "
                       f"offset {exc.start})")]) from None
