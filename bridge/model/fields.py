"""One checker per data-point field (SPEC section 2): each returns the stored form of
its field or raises ValueError with a short message naming the rule. POST, PUT and MQTT
all go through these, so a rule lives in exactly one place. Checkers compare
``type(x) is ...`` rather than ``isinstance`` because ``bool`` is a subclass of ``int``
and must stay a distinct JSON type.
"""

from __future__ import annotations

import math
import unicodedata
from decimal import Decimal
from typing import Any

import orjson

from bridge.model import timeparse

Value = float | int | str | bool

MAX_VARIABLE_CHARS = 100
MAX_VALUE_CHARS = 6000
MAX_UNIT_CHARS = 25
MAX_GROUP_CHARS = 100
MAX_METADATA_BYTES = 10_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NS_PER_MS = 1_000_000
MISSING: Any = object()  # tells an absent key from an explicit JSON null
IMMUTABLE = "cannot be changed; delete the point and send it again"
TYPE_NAMES = {
    type(None): "null", bool: "a boolean", int: "a number", float: "a number",
    str: "a string", list: "an array", dict: "an object",
}


def wrong_type(expected: str, v: Any) -> ValueError:
    if v is None:
        return ValueError("must not be null")
    return ValueError(f"{expected}, not {TYPE_NAMES.get(type(v), type(v).__name__)}")


def _string(v: Any, limit: int) -> str:
    if type(v) is not str:
        raise wrong_type("must be a string", v)
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
        raise wrong_type("must be a finite number, string or boolean", v)
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
        raise wrong_type("must be a string or a finite number", v)
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
        raise wrong_type("must be an ISO 8601 string or epoch milliseconds", v)
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
        raise wrong_type("must be an object", v)
    if "coordinates" in v:
        # TagoIO's own docs show "point" in lower case in one example.
        if v.get("type", "Point") not in ("Point", "point"):
            raise ValueError('type must be "Point"')
        coords = v["coordinates"]
        if type(coords) is not list or len(coords) != 2:
            raise ValueError("coordinates must be [lng, lat]")
        lng, lat = coords
    else:
        lat, lng = v.get("lat", MISSING), v.get("lng", MISSING)
        if lat is MISSING or lng is MISSING:
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
        raise wrong_type("must be an object", v)
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
