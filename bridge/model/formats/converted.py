"""What every payload format converts into: TagoIO point dicts, plus where each came from.

The converters never judge a point's fields themselves where ``validate_points`` already
has a rule (variable length, finite numbers, time range...): they hand it the same dicts
a client would POST, so SPEC section 2 is enforced in one place. What they add is the way
back: ``validate_points`` names errors by point index and TagoIO field, which mean nothing
to a device that sent a SenML pack or a flat object, so ``Converted.relabel`` rewrites
each error to the place in the original payload (``[3] v``, ``env.t``, ``topic``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from bridge.errors import FieldError, ValidationError

# Tagged onto a variable error relabelled to what supplied the name (a topic, a key path,
# ``n``): "[2] n must be at most 100 characters" alone would not say that bn + n is meant.
AS_VARIABLE = " (as the variable name)"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one converted point came from in the original payload.

    ``index`` is the position of its item in the payload's top-level array (None when
    the payload is not an array); ``labels`` maps a TagoIO field of the point to the
    label that supplied it (``{"value": "vs"}``); other fields map to ``default``.
    """

    index: int | None
    labels: Mapping[str, str]
    default: str = "payload"

    def relabel(self, error: FieldError) -> FieldError:
        label = self.labels.get(error.field, self.default)
        message = error.message
        if error.field == "variable" and label != "variable":
            message += AS_VARIABLE
        return FieldError(label, message, self.index)


@dataclass(slots=True)
class Converted:
    """A payload in TagoIO shape, ready for ``validate_points``.

    ``body`` is what ``validate_points`` takes (a list of point dicts, or for TagoIO JSON
    the decoded body itself); ``origins[i]`` says where ``body[i]`` came from, and is
    None when errors already name the original places (TagoIO JSON). ``errors`` are the
    items the converter could not turn into points at all (a record that is no map, two
    keys flattening to one name): ``validate`` reports them together with validation's
    own, so the sender learns everything wrong with a payload in one answer.
    """

    body: Any
    origins: list[Origin] | None = None
    title: str = "Error on object parse"  # the ValidationError message for this format
    errors: list[FieldError] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        """``body``, for a caller validating it by other means than ``validate``; raises
        the converter's errors, if any, so such a caller cannot store a part of a payload."""
        if self.errors:
            raise ValidationError(self.title, self.errors)
        return self.body

    def relabel(self, error: ValidationError) -> ValidationError:
        """``error`` from validating ``body``, naming places in the original payload, with
        the converter's own errors merged in item order."""
        origins = self.origins
        if origins is None and not self.errors:
            return error
        errors = list(self.errors)
        for err in error.errors:
            if origins is not None and err.index is not None and 0 <= err.index < len(origins):
                errors.append(origins[err.index].relabel(err))
            else:  # not about one point (cannot happen for a list of dicts): kept as is
                errors.append(err)
        errors.sort(key=lambda e: -1 if e.index is None else e.index)  # stable
        relabelled = ValidationError(self.title, errors)
        relabelled.__cause__ = error
        return relabelled

    def validate(self, check: Callable[[Any], T]) -> T:
        """``check(body)`` (``validate_points`` or what wraps it), all or nothing: raises
        one ValidationError with the converter's errors and ``check``'s, the latter
        relabelled to the original payload's places."""
        try:
            result = check(self.body)
        except ValidationError as exc:
            raise self.relabel(exc) from exc
        if self.errors:
            raise ValidationError(self.title, self.errors)
        return result


_KINDS = {
    type(None): "null", bool: "a boolean", int: "a number", float: "a number",
    str: "a string", list: "an array", dict: "an object", bytes: "a byte string",
}


def kind_of(value: Any) -> str:
    """The sender's name for a value's type ("a boolean", "a byte string"), for messages."""
    return _KINDS.get(type(value), type(value).__name__)


def load_json(payload: bytes, title: str | None = None) -> Any:
    """Parse a JSON payload; orjson refuses NaN and Infinity, as SPEC section 2 wants.

    Without a title the messages are ``bridge.model.points.decode_json``'s, word for word, so
    TagoIO JSON answers as it always has."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        reason = "empty body" if not payload.strip() else str(exc)
        prefix = "Invalid JSON" if title is None else f"{title}: invalid JSON"
        raise ValidationError(f"{prefix}: {reason}") from None


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters: error reports go back to the device and to
    the logs, where a hostile name is not worth echoing whole."""
    return text if len(text) <= limit else text[:limit] + "..."


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def key_path(keys: tuple[str, ...]) -> str:
    """A JSON key path for messages: ``env.t``; keys that are not plain words are quoted
    (``env["a.b"]``) so the path cannot be misread, and long keys are cut short."""
    parts: list[str] = []
    for key in keys:
        key = shorten(key)
        if _PLAIN_KEY.fullmatch(key):
            parts.append(f".{key}" if parts else key)
        else:
            quoted = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(f"[{quoted}]")
    return "".join(parts)
