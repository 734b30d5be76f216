"""The data point (SPEC section 2) and the one validation path shared by HTTP and MQTT:
``validate_points`` (POST, MQTT) and ``validate_update`` (PUT), both all-or-nothing and
both built on the per-field checkers of ``bridge.model.fields``."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.model.fields import (
    IMMUTABLE,
    MISSING,
    TYPE_NAMES,
    Value,
    check_group,
    check_location,
    check_metadata,
    check_serie,
    check_time,
    check_unit,
    check_value,
    check_variable,
    wrong_type,
)


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
    # A label that only has to be unlikely to repeat, not secret: the process's PRNG is
    # several times cheaper than a system call per message.
    return f"{random.getrandbits(96):024x}"


def generated_group(created_ns: int) -> str:
    """The group of the points of one message that carry none: the microsecond the message
    was received, in 24 hex digits. Derived, never stored (docs/schema.md, version 2): all
    points of a message share their receive time, and no two messages of one device are
    received in the same microsecond by one process."""
    return f"{created_ns // 1000:024x}"


def decode_json(body: bytes | str) -> Any:
    """Parse a request body or MQTT payload; orjson already refuses NaN and Infinity."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not body.strip():
            raise ValidationError("Invalid JSON: empty body") from None
        raise ValidationError(f"Invalid JSON: {exc}") from None


Checks = dict[str, Callable[[Any], Any]]
_UPDATE_CHECKS: Checks = {
    "value": check_value, "unit": check_unit, "group": check_group, "serie": check_serie,
    "location": check_location, "metadata": check_metadata,
}
_POINT_CHECKS: Checks = {"variable": check_variable, "time": check_time, **_UPDATE_CHECKS}

# Items with only these keys are checked in a straight line by validate_points: each is
# one field with no interplay (no group/serie alias, no location split, no unknown key to
# skip). Any other item takes the generic path; the equivalence test empties this set to
# send every item there.
_PLAIN_KEYS = frozenset(("variable", "value", "unit", "time"))

# variable, value, unit, time_ns, group, lat, lng, metadata
_Fields = tuple[
    str, Value | None, str | None, int | None, str | None, float | None, float | None,
    str | None,
]


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


def _point_fields(item: dict[str, Any], index: int, errors: list[FieldError]) -> _Fields | None:
    """The generic path: every failure of ``item`` reported in key order; None when it
    cannot become a point."""
    f = _check(item, index, _POINT_CHECKS, errors)
    variable = f.get("variable")
    if variable is None:
        if "variable" not in item:
            errors.append(FieldError("variable", "is required", index))
        return None
    lat, lng = f.get("location", (None, None))
    return (variable, f.get("value"), f.get("unit"), f.get("time"), f.get("group"), lat, lng,
            f.get("metadata"))


def _array(payload: Any, max_points: int) -> list[Any]:
    """A payload that is not a single object must be an array of at most max_points."""
    if not isinstance(payload, list):
        kind = TYPE_NAMES.get(type(payload), type(payload).__name__)
        raise ValidationError(f"Expected a JSON object or an array of objects, not {kind}")
    if len(payload) > max_points:
        raise PayloadTooLarge(
            f"Too many data points: {len(payload)} points, at most {max_points} per request"
        )
    return payload


def _objects(
    payload: Any, max_points: int, errors: list[FieldError]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The payload's point objects with their index; non-objects become errors."""
    if isinstance(payload, dict):
        yield 0, payload
        return
    for index, item in enumerate(_array(payload, max_points)):
        if type(item) is dict:
            yield index, item
        else:
            errors.append(FieldError("point", "must be a JSON object", index))


def _number_slots(points: list[Point]) -> None:
    """Give the points sharing variable and time slots 0, 1, 2... in payload order."""
    counts: dict[tuple[str, int], int] = {}
    for point in points:
        key = (point.variable, point.time_ns)
        point.slot = counts.get(key, 0)
        counts[key] = point.slot + 1


def validate_points(
    payload: Any,
    *,
    device_id: str,
    received_ns: int,
    max_points: int,
    new_group: Callable[[], str] | None = None,
) -> list[Point]:
    """Validate a POST body / MQTT message into points; all or nothing.

    Raises ValidationError listing every bad field of every point by index, or
    PayloadTooLarge. Points without a group share one generated id per payload: by
    default ``generated_group(received_ns)``, which the schema derives instead of storing.
    """
    single = isinstance(payload, dict)
    items = (payload,) if single else _array(payload, max_points)
    errors: list[FieldError] = []
    points: list[Point] = []
    shared_group: str | None = None
    keys: set[tuple[str, int]] = set()  # (variable, time_ns) of the points
    plain = _PLAIN_KEYS.issuperset
    for index, item in enumerate(items):
        variable: str | None = None
        if type(item) is not dict:
            # A top-level object passed isinstance: a dict subclass (never decoded JSON)
            # takes the generic path, where its own __getitem__ cannot come into play.
            if not single:
                errors.append(FieldError("point", "must be a JSON object", index))
                continue
        elif plain(item):
            # The same checkers, minus the generic path's dispatch. A failure, a missing
            # variable included, is not reported here: the generic path below runs again
            # and reports it exactly as it does for any item.
            try:
                variable = check_variable(item["variable"])
                value = check_value(item["value"]) if "value" in item else None
                unit = check_unit(item["unit"]) if "unit" in item else None
                time_ns = check_time(item["time"]) if "time" in item else None
            except (KeyError, ValueError):
                variable = None  # check_variable may have passed before another failed
            group = lat = lng = metadata = None
        if variable is None:
            fields = _point_fields(item, index, errors)
            if fields is None:
                continue
            variable, value, unit, time_ns, group, lat, lng, metadata = fields
        if errors:
            continue  # the batch is lost anyway; skip building points
        if group is None:
            if shared_group is None:
                shared_group = (new_group() if new_group is not None
                                else generated_group(received_ns))
            group = shared_group
        if time_ns is None:
            # Untimed points are spread a nanosecond apart (invisible at the millisecond
            # precision clients see) so they never need a slot tag: a slot per point of a
            # big untimed array would multiply the series count.
            time_ns = received_ns + index
        keys.add((variable, time_ns))
        points.append(Point(
            device_id, variable, time_ns, received_ns, group, value, unit, lat, lng, metadata
        ))
    if errors:
        raise ValidationError("Error on object parse", errors)
    # Slots are 0 unless two points share variable and time, which is rare: collecting
    # the keys in a set costs each point less than counting them in a dict.
    if len(keys) < len(points):
        _number_slots(points)
    return points


def validate_update(payload: Any, *, max_points: int) -> list[PointUpdate]:
    """Validate a PUT /data body: ``{id, ...fields to change}`` items; all or nothing."""
    errors: list[FieldError] = []
    updates: list[PointUpdate] = []
    for index, item in _objects(payload, max_points, errors):
        before = len(errors)
        point_id = item.get("id", MISSING)
        if point_id is MISSING:
            errors.append(FieldError("id", "is required", index))
        elif type(point_id) is not str:
            errors.append(FieldError("id", str(wrong_type("must be a string", point_id)), index))
        elif not point_id:
            errors.append(FieldError("id", "must not be empty", index))
        for name in ("variable", "time"):
            if name in item:
                errors.append(FieldError(name, IMMUTABLE, index))
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
