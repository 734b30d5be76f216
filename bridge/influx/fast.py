"""The common message in one pass: plain points (only ``variable``, ``value``, ``unit``,
``time`` keys, no two with the same variable and time) validated and encoded straight
into line protocol, with their candidates for current values, without a ``Point`` per
point. The bridge spends most of its CPU per point here (docs/benchmarks.md, profile).

Anything else, and any point that breaks a rule, returns None: the caller then takes the
generic path (``validate_points`` + ``encode_points``), which also reports the errors.
Both paths give the same bytes (``tests/unit/influx/test_fast.py`` compares them).
"""

from __future__ import annotations

import functools
from typing import Any

from bridge.influx.schema import (
    _field_str,
    _series,
    encode_point,
    encode_points,
    series_name,
)
from bridge.model.current import Candidates, candidates
from bridge.model.fields import MAX_UNIT_CHARS, MAX_VARIABLE_CHARS, check_value, check_variable
from bridge.model.formats.converted import Converted
from bridge.model.points import Point, validate_points
from bridge.model.timeparse import MAX_NS, MIN_NS, _epoch_seconds

_PLAIN = frozenset(("variable", "value", "unit", "time"))
_MAX_VARIABLE = MAX_VARIABLE_CHARS
_MAX_UNIT = MAX_UNIT_CHARS
_MISSING: Any = object()
_NS_PER_S = 1_000_000_000
_units: dict[str, str] = {}  # unit -> its field text (escaped once); bounded below


def _unit_field(unit: str) -> str:
    text = _units.get(unit)
    if text is None:
        text = f",unit={_field_str(unit)}"
        if len(_units) < 4096:
            _units[unit] = text
    return text


_MILLIS = {f"{ms:03d}": ms * 1_000_000 for ms in range(1000)}  # "123" -> its nanoseconds


@functools.lru_cache(maxsize=4096)
def _second_ns(prefix: str) -> int:
    """Nanoseconds of the whole second ``YYYY-MM-DDTHH:MM:SS.`` names, or -1 when it is
    not that shape or its second could leave the range (the generic path then decides).
    Cached: a stream of readings shares few distinct seconds."""
    if not (prefix[10] == "T" and prefix[16] == ":" and prefix[19] == "." and prefix.isascii()
            and prefix[17:19].isdigit() and prefix[17:19] <= "59"):
        return -1
    try:
        second = (_epoch_seconds(prefix[:16]) + int(prefix[17:19])) * _NS_PER_S
    except ValueError:
        return -1
    return second if second >= MIN_NS and second + 999_000_000 <= MAX_NS else -1


Encoded = tuple[bytes, int, Candidates, list[str]]


def encode_plain(payload: Any, device_id: str, received_ns: int, max_points: int
                 ) -> Encoded | None:
    """(body, points, candidates, series names) for a plain message; None: take the
    generic path. The
    checks are the checkers' own, inlined for the common case (a value that passes them
    here passes them there); anything unusual goes to the checkers themselves."""
    items = (payload,) if payload.__class__ is dict else payload
    if items.__class__ is not list and items.__class__ is not tuple:
        return None
    if not items or len(items) > max_points:
        return None
    created_us = received_ns // 1000
    created = f",created_us={created_us}i"
    lines = []
    names: list[str] = []  # each point's series (schema.series_name), for the variable limit
    newest: Candidates = {}  # (device, variable, kind) -> time, slot, line
    valued: Candidates = {}  # the same, among points with a value
    seen: set[tuple[str, int]] = set()
    issuperset = _PLAIN.issuperset
    second_ns = _second_ns
    try:
        for index, item in enumerate(items):
            if item.__class__ is not dict or not issuperset(item):
                return None
            variable = item["variable"]
            if not (variable.__class__ is str and 0 < len(variable) <= _MAX_VARIABLE
                    and variable.isprintable()):
                variable = check_variable(variable)
            value = item.get("value", _MISSING)
            kind = value.__class__
            if kind is float:
                if value - value != 0.0:  # NaN or infinity
                    return None
                field = f"value={value!r}"
            elif kind is int:
                field = f"value={float(check_value(value))!r}"
            elif kind is str:
                check_value(value)
                field = f"value_str={_field_str(value)}"
            elif kind is bool:
                field = f'value_bool={"true" if value else "false"}'
            elif value is _MISSING:
                field = "novalue=true"
                value = None
            else:
                return None
            unit = item.get("unit")
            if unit is not None:
                if unit.__class__ is not str or len(unit) > _MAX_UNIT:
                    return None
                text = _units.get(unit)
                field += text if text is not None else _unit_field(unit)
            elif "unit" in item:
                return None
            stamp = item.get("time")
            if stamp is None:
                if "time" in item:
                    return None
                time_ns = received_ns + index
            elif stamp.__class__ is str and len(stamp) == 24 and stamp[23] == "Z":
                # the shape most devices send (2024-01-02T03:04:05.123Z), as parse_iso
                second = second_ns(stamp[:20])
                millis = _MILLIS.get(stamp[20:23])
                if second < 0 or millis is None:
                    return None
                time_ns = second + millis
            else:
                return None
            key = (variable, time_ns)
            if key in seen:
                return None  # a slot is needed: the generic path numbers them
            seen.add(key)
            if time_ns // 1000 != created_us:
                field += created
            line = f"{_series(device_id, variable, 0)} {field} {time_ns}"
            lines.append(line)
            names.append(variable)  # slot 0: the series name is the variable
            ikey = (device_id, variable, "item")
            held = newest.get(ikey)
            if held is None or time_ns > held[0]:
                newest[ikey] = (time_ns, 0, line)
            if value is not None:
                vkey = (device_id, variable, "value")
                held = valued.get(vkey)
                if held is None or time_ns > held[0]:
                    valued[vkey] = (time_ns, 0, line)
    except (KeyError, ValueError, AttributeError):
        return None
    newest.update(valued)
    return "\n".join(lines).encode(), len(lines), newest, names


def encode_message(payload: Any, device_id: str, received_ns: int, max_points: int
                   ) -> Encoded:
    """(body, points, candidates, each point's series name) of a message or request:
    ``encode_plain`` where it can,
    else ``validate_points`` (all or nothing: ValidationError, PayloadTooLarge) and
    ``encode_points``. ``payload`` is decoded TagoIO JSON, or a ``Converted`` payload of
    another format (a LoRaWAN uplink), whose errors are named at their places in it."""
    if not isinstance(payload, Converted):
        encoded = encode_plain(payload, device_id, received_ns, max_points)
        if encoded is not None:
            return encoded

    def check(body: Any) -> list[Point]:
        return validate_points(body, device_id=device_id, received_ns=received_ns,
                               max_points=max_points)

    points = payload.validate(check) if isinstance(payload, Converted) else check(payload)
    return (encode_points(points) if points else b"", len(points),
            candidates(points, encode_point), [series_name(p.variable, p.slot) for p in points])
