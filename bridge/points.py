"""The data point (SPEC section 2) and the one validation path shared by HTTP and MQTT:
``validate_points`` (POST, MQTT) and ``validate_update`` (PUT), both all-or-nothing and
both built on the per-field checkers of ``bridge.fields``."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.fields import (
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
        kind = TYPE_NAMES.get(type(payload), type(payload).__name__)
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
