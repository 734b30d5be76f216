"""Key-value objects on ``devices/{id}/kv``: the ThingsBoard and Tasmota habit.

Three shapes, as ThingsBoard's device API takes them:

- a flat object, key -> value: ``{"temperature": 21.5, "door": "open"}``; nested objects
  are flattened with ``_`` (``{"env": {"t": 21}}`` gives variable ``env_t``);
- ``{"ts": <epoch ms>, "values": {...}}``: the same object, measured at ``ts``;
- an array of either, e.g. several timestamped readings in one message.

Each key becomes one point (received time unless ``ts`` is given). Values are handed to
``validate_points`` as they are, so null, arrays and non-finite numbers are refused by
the same rules as TagoIO JSON, and the error names the key path.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.model.formats.converted import Converted, Origin, key_path, kind_of, load_json, shorten

TITLE = "Invalid key-value payload"
SEPARATOR = "_"
# Deeper than any device's reading (Tasmota's are two levels); the limit keeps a hostile
# nesting from costing more than it says, and a 100-character variable fits far fewer.
MAX_DEPTH = 16

Keys = tuple[str, ...]


def convert_kv(payload: bytes, *, max_points: int) -> Converted:
    """Points of a key-value payload, each labelled with its key path (and array index).

    Raises ValidationError when the payload is no object or array of objects at all,
    PayloadTooLarge past ``max_points`` keys; smaller faults are ``Converted.errors``."""
    data = load_json(payload, TITLE)
    if isinstance(data, dict):
        items: list[Any] = [data]
        indexed = False
    elif isinstance(data, list):
        items, indexed = data, True
    else:
        raise ValidationError(
            f"{TITLE}: expected a JSON object or an array of objects, not {kind_of(data)}")
    points: list[dict[str, Any]] = []
    origins: list[Origin] = []
    errors: list[FieldError] = []
    for position, item in enumerate(items):
        index = position if indexed else None
        if type(item) is not dict:
            errors.append(FieldError("item", f"must be a JSON object, not {kind_of(item)}",
                                     index))
            continue
        _reading(item, index, points, origins, errors)
        if len(points) > max_points:
            # Counted as they come: a few short objects can carry any number of keys.
            raise PayloadTooLarge(f"Too many data points: more than {max_points} keys in "
                                  f"one message, at most {max_points}")
    return Converted(points, origins, TITLE, errors)


def _reading(
    item: dict[str, Any],
    index: int | None,
    points: list[dict[str, Any]],
    origins: list[Origin],
    errors: list[FieldError],
) -> None:
    """Append the points of one object, flat or ThingsBoard's ``{"ts", "values"}``."""
    prefix: Keys = ()
    time: Any = None
    if item.keys() == {"ts", "values"}:
        values = item["values"]
        if type(values) is not dict:
            errors.append(FieldError("values", f"must be an object, not {kind_of(values)}",
                                     index))
            return
        time, item, prefix = item["ts"], values, ("values",)
    flatten(item, prefix, index, points, origins, errors, time=time)


def flatten(
    item: dict[str, Any],
    prefix: Keys,
    index: int | None,
    points: list[dict[str, Any]],
    origins: list[Origin],
    errors: list[FieldError],
    *,
    time: Any = None,
) -> None:
    """Append one point per leaf of ``item`` (nested keys joined with ``_``), labelled with
    its key path under ``prefix`` (``values.env.t``); the prefix is not part of the name.
    Shared with the LoRaWAN uplinks, whose decoded payloads follow the same rules."""
    seen: dict[str, Keys] = {}  # flattened name -> the key path that gave it
    for keys, value in _leaves(item, prefix, index, errors):
        name = SEPARATOR.join(keys[len(prefix):])
        first = seen.get(name)
        if first is None:
            seen[name] = keys
        else:
            errors.append(FieldError(key_path(keys), (
                f'and {key_path(first)} both become variable "{shorten(name)}" once nested '
                f"keys are joined with {SEPARATOR!r}; rename one"), index))
            continue
        where = key_path(keys)
        point: dict[str, Any] = {"variable": name, "value": value}
        labels = {"variable": where, "value": where}
        if time is not None:
            point["time"] = time
            labels["time"] = "ts"
        points.append(point)
        origins.append(Origin(index, labels, where))


def _leaves(
    obj: dict[str, Any], prefix: Keys, index: int | None, errors: list[FieldError]
) -> list[tuple[Keys, Any]]:
    """(key path, value) of every non-object value, depth first in key order.

    Iterative, so depth costs no Python stack; a too-deep object is one error, not a
    RecursionError."""
    out: list[tuple[Keys, Any]] = []
    stack: list[tuple[Keys, Any]] = [((*prefix, k), v) for k, v in reversed(obj.items())]
    while stack:
        keys, value = stack.pop()
        if type(value) is not dict:
            out.append((keys, value))
        elif len(keys) - len(prefix) >= MAX_DEPTH:
            errors.append(FieldError(key_path(keys),
                                     f"nests objects deeper than {MAX_DEPTH} levels", index))
        else:
            stack.extend(((*keys, k), v) for k, v in reversed(value.items()))
    return out
