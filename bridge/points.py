"""The data point (SPEC section 2) and the one validation path shared by HTTP and MQTT.

Each field has one checker (``check_*``) that returns the stored form or raises
ValueError with a short message; POST and PUT both go through them, so a rule lives in
exactly one place. Checkers compare ``type(x) is ...`` rather than ``isinstance`` because
``bool`` is a subclass of ``int`` and must stay a distinct JSON type.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from bridge import timeparse
from bridge.errors import FieldError, PayloadTooLarge, ValidationError

Value = float | int | str | bool

MAX_VARIABLE_CHARS = 100
MAX_VALUE_CHARS = 6000
MAX_UNIT_CHARS = 25
MAX_GROUP_CHARS = 100
MAX_METADATA_BYTES = 10_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NS_PER_MS = 1_000_000
_MISSING: Any = object()  # tells an absent key from an explicit JSON null
_IMMUTABLE = "cannot be changed; delete the point and send it again"
_TYPE_NAMES = {
    type(None): "null", bool: "a boolean", int: "a number", float: "a number",
    str: "a string", list: "an array", dict: "an object",
}


@dataclass(slots=True)
class Point:
    """A validated data point, ready for the store.

    ``slot`` tells apart points of one message that share variable and time: the first
    such point has slot 0, the next 1, and so on. Together with device, variable and
    ``time_ns`` it forms the storage key, so a redelivered message overwrites itself.
    """

    device: str
    variable: str
    time_ns: int
    created_ns: int
    group: str
    value: Value | None = None
    unit: str | None = None
    lat: float | None = None
    lng: float | None = None
    metadata: str | None = None  # compact JSON text of the metadata object
    slot: int = 0


@dataclass(slots=True)
class PointUpdate:
    """One PUT /data item: the point's id and its validated new field values.

    ``changes`` keys are among value, unit, group, lat, lng and metadata (compact JSON
    text); a location always sets both lat and lng.
    """

    id: str
    changes: dict[str, Any]


def new_group_id() -> str:
    return os.urandom(12).hex()


def decode_json(body: bytes | str) -> Any:
    """Parse a request body or MQTT payload; orjson already refuses NaN and Infinity."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            raise ValidationError("Invalid JSON: empty body") from None
        raise ValidationError(f"Invalid JSON: {exc}") from None


def _wrong_type(expected: str, v: Any) -> ValueError:
    if v is None:
        return ValueError("must not be null")
    return ValueError(f"{expected}, not {_TYPE_NAMES.get(type(v), type(v).__name__)}")


def _string(v: Any, limit: int) -> str:
    if type(v) is not str:
        raise _wrong_type("must be a string", v)
    if len(v) > limit:
        raise ValueError(f"must be at most {limit} characters")
    return v


def check_variable(v: Any) -> str:
    text = _string(v, MAX_VARIABLE_CHARS)
    if not text:
        raise ValueError("must not be empty")
    # isprintable() is a fast C scan that is False for every control character but also
    # for harmless ones (no-break space, emoji joiners), hence the exact check behind it.
    if not text.isprintable() and any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain control characters")
    return text


def check_value(v: Any) -> Value:
    kind = type(v)
    if kind is str:
        if len(v) > MAX_VALUE_CHARS:
            raise ValueError(f"must be at most {MAX_VALUE_CHARS} characters")
    elif kind is float:
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, not {'NaN' if v != v else 'infinity'}")
    elif kind is int:
        if not _INT64_MIN <= v <= _INT64_MAX:  # JSON allows any integer, InfluxDB int64
            raise ValueError("must fit in a 64-bit signed integer")
    elif kind is not bool:
        raise _wrong_type("must be a finite number, string or boolean", v)
    return v  # type: ignore[no-any-return]


def check_unit(v: Any) -> str:
    return _string(v, MAX_UNIT_CHARS)


def check_group(v: Any) -> str | None:
    """None for an empty group: like TagoCore's ``group || serie``, "" means "not given"."""
    return _string(v, MAX_GROUP_CHARS) or None


def check_serie(v: Any) -> str | None:
    kind = type(v)
    if kind is int or (kind is float and math.isfinite(v)):
        v = str(v)
    elif kind is not str:
        raise _wrong_type("must be a string or a finite number", v)
    return check_group(v)


def check_time(v: Any) -> int:
    kind = type(v)
    if kind is str:
        return timeparse.parse_iso(v)
    if kind is int:
        ns = v * _NS_PER_MS
    elif kind is float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        # repr() gives back the shortest decimal that round-trips, i.e. the digits the
        # sender wrote; the binary float itself is off by up to ~120 ns at today's epoch.
        ns = round(Decimal(repr(v)) * _NS_PER_MS)
    else:
        raise _wrong_type("must be an ISO 8601 string or epoch milliseconds", v)
    if ns < timeparse.MIN_NS or ns > timeparse.MAX_NS:
        raise ValueError("outside 1970..2262")
    return ns  # type: ignore[no-any-return]


def _coordinate(v: Any, name: str, limit: float) -> float:
    kind = type(v)
    if kind is not float and kind is not int:
        raise ValueError(f"{name} must be a number")
    if not -limit <= v <= limit:  # also false for NaN
        raise ValueError(f"{name} must be between -{limit:g} and {limit:g}")
    return float(v)


def check_location(v: Any) -> tuple[float, float]:
    """(lat, lng) from ``{"lat","lng"}`` or a GeoJSON Point ``[lng, lat]``."""
    if type(v) is not dict:
        raise _wrong_type("must be an object", v)
    if "coordinates" in v:
        # TagoIO's own docs show "point" in lower case in one example.
        if v.get("type", "Point") not in ("Point", "point"):
            raise ValueError('type must be "Point"')
        coords = v["coordinates"]
        if type(coords) is not list or len(coords) != 2:
            raise ValueError("coordinates must be [lng, lat]")
        lng, lat = coords
    else:
        lat, lng = v.get("lat", _MISSING), v.get("lng", _MISSING)
        if lat is _MISSING or lng is _MISSING:
            raise ValueError("must have lat and lng, or GeoJSON coordinates")
    return _coordinate(lat, "latitude", 90.0), _coordinate(lng, "longitude", 180.0)


def _all_finite(v: Any) -> bool:
    if type(v) is float:
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(_all_finite(x) for x in v.values())
    if isinstance(v, list | tuple):
        return all(_all_finite(x) for x in v)
    return True


def check_metadata(v: Any) -> str:
    if type(v) is not dict:
        raise _wrong_type("must be an object", v)
    try:
        raw = orjson.dumps(v)
    except orjson.JSONEncodeError:
        raise ValueError("must contain only JSON values") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    # orjson writes NaN and infinities as null, so only a payload containing null can
    # hide one; the walk is skipped for everything else.
    if b"null" in raw and not _all_finite(v):
        raise ValueError("must not contain NaN or infinity")
    return raw.decode()


Checks = dict[str, Callable[[Any], Any]]
_UPDATE_CHECKS: Checks = {
    "value": check_value, "unit": check_unit, "group": check_group, "serie": check_serie,
    "location": check_location, "metadata": check_metadata,
}
_POINT_CHECKS: Checks = {"variable": check_variable, "time": check_time, **_UPDATE_CHECKS}


def _check(
    item: dict[str, Any], index: int, checks: Checks, errors: list[FieldError]
) -> dict[str, Any]:
    """Run the checkers of the fields present in ``item``; collect every failure."""
    out: dict[str, Any] = {}
    # Walking the item's keys rather than the checkers: points usually carry 2-3 keys.
    for name, raw in item.items():
        check = checks.get(name)
        if check is not None:
            try:
                out[name] = check(raw)
            except ValueError as exc:
                errors.append(FieldError(name, str(exc), index))
    # group wins over its legacy alias; both may be None ("" means not given).
    serie = out.pop("serie", None)
    if out.get("group") is None:
        out.pop("group", None)
        if serie is not None:
            out["group"] = serie
    return out


def _objects(
    payload: Any, max_points: int, errors: list[FieldError]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The payload's point objects with their index; non-objects become errors."""
    if isinstance(payload, dict):
        yield 0, payload
        return
    if not isinstance(payload, list):
        kind = _TYPE_NAMES.get(type(payload), type(payload).__name__)
        raise ValidationError(f"Expected a JSON object or an array of objects, not {kind}")
    if len(payload) > max_points:
        raise PayloadTooLarge(
            f"Too many data points: {len(payload)} points, at most {max_points} per request"
        )
    for index, item in enumerate(payload):
        if type(item) is dict:
            yield index, item
        else:
            errors.append(FieldError("point", "must be a JSON object", index))


def validate_points(
    payload: Any,
    *,
    device_id: str,
    received_ns: int,
    max_points: int,
    new_group: Callable[[], str] = new_group_id,
) -> list[Point]:
    """Validate a POST body / MQTT message into points; all or nothing.

    Raises ValidationError listing every bad field of every point by index, or
    PayloadTooLarge. Points without a group share one generated id per payload.
    """
    errors: list[FieldError] = []
    points: list[Point] = []
    shared_group: str | None = None
    slots: dict[tuple[str, int], int] = {}
    for index, item in _objects(payload, max_points, errors):
        f = _check(item, index, _POINT_CHECKS, errors)
        variable = f.get("variable")
        if variable is None:
            if "variable" not in item:
                errors.append(FieldError("variable", "is required", index))
            continue
        if errors:
            continue  # the batch is lost anyway; skip building points
        group = f.get("group")
        if group is None:
            if shared_group is None:
                shared_group = new_group()
            group = shared_group
        # Untimed points are spread a nanosecond apart (invisible at the millisecond
        # precision clients see) so they never need a slot tag: a slot per point of a big
        # untimed array would multiply the series count.
        time_ns = f["time"] if "time" in f else received_ns + index
        key = (variable, time_ns)
        slot = slots.get(key, 0)
        slots[key] = slot + 1
        lat, lng = f.get("location", (None, None))
        points.append(Point(
            device_id, variable, time_ns, received_ns, group, f.get("value"), f.get("unit"),
            lat, lng, f.get("metadata"), slot,
        ))
    if errors:
        raise ValidationError("Error on object parse", errors)
    return points


def validate_update(payload: Any, *, max_points: int) -> list[PointUpdate]:
    """Validate a PUT /data body: ``{id, ...fields to change}`` items; all or nothing."""
    errors: list[FieldError] = []
    updates: list[PointUpdate] = []
    for index, item in _objects(payload, max_points, errors):
        before = len(errors)
        point_id = item.get("id", _MISSING)
        if point_id is _MISSING:
            errors.append(FieldError("id", "is required", index))
        elif type(point_id) is not str:
            errors.append(FieldError("id", str(_wrong_type("must be a string", point_id)), index))
        elif not point_id:
            errors.append(FieldError("id", "must not be empty", index))
        for name in ("variable", "time"):
            if name in item:
                errors.append(FieldError(name, _IMMUTABLE, index))
        changes = _check(item, index, _UPDATE_CHECKS, errors)
        if "location" in changes:
            changes["lat"], changes["lng"] = changes.pop("location")
        if not changes and len(errors) == before:
            errors.append(FieldError("point", "has no field to change", index))
        if not errors:
            updates.append(PointUpdate(point_id, changes))
    if errors:
        raise ValidationError("Error on object parse", errors)
    return updates
