"""The InfluxDB schema contract (docs/schema.md): how a Point becomes a line of line
protocol, how a stored row becomes a TagoIO point again, and how ids map to storage keys.

One measurement, ``data``. Tags: ``device``, ``variable`` and, only for the second and
later points of one message sharing variable and time, ``slot``. Each value type has its
own field (``value`` float, ``value_str`` string, ``value_bool`` boolean), so a variable
can receive a number, then a string, then a boolean without a field type conflict.

Schema version 2 stores only what cannot be derived: no ``value_type`` (the field that
holds the value tells), the group only when it is not the generated one (derived from the
receive time), the receive time (``created_us``) only when it is not the point's own time.
Rows written by version 1 (``created``, ``value_type``, ``group`` on every point) are read
the same way.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.model.ids import point_id
from bridge.model.points import Point, generated_group
from bridge.model.timeparse import format_iso_ms

MEASUREMENT = "data"
SCHEMA_VERSION = 2
# Why a marker: InfluxDB 1.x cannot escape a backslash in a tag value (``a\ b`` breaks the
# line), so such variables are stored base64-encoded behind a prefix no plain name uses.
_ENCODED_PREFIX = "~b64~"
_TAG_ESCAPE = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_MAX_EXACT_INT = 2**53
_LINE_START = f"{MEASUREMENT},device=".encode()


@dataclass(slots=True)
class Series:
    """One series of a query result; ``rows`` are dicts of column -> value, with tags merged in."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def variable_tag(variable: str) -> str:
    """The ``variable`` tag value for a variable name (usually the name itself)."""
    if "\\" in variable or variable.startswith(_ENCODED_PREFIX):
        raw = base64.urlsafe_b64encode(variable.encode("utf-8")).decode("ascii")
        return _ENCODED_PREFIX + raw.rstrip("=")
    return variable


def variable_from_tag(tag: str) -> str:
    if tag.startswith(_ENCODED_PREFIX):
        raw = tag[len(_ENCODED_PREFIX):]
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
    return tag


def series_name(variable: str, slot: int) -> str:
    """A device's series in one string: the variable, and the slot when it has one."""
    return f"{variable}\x00{slot}" if slot else variable


def unescape_tag(raw: str) -> str:
    """A tag value as written (``_TAG_ESCAPE``: space, comma and ``=``) back to its text."""
    return raw.replace("\\ ", " ").replace("\\,", ",").replace("\\=", "=")


def series_name_from_key(key: str) -> str:
    """``series_name`` from a ``SHOW SERIES`` key such as ``data,device=D,slot=1,variable=V``
    (tags in key order; in our tag values only space, comma and ``=`` are escaped)."""
    head, _, tag = key.partition(",variable=")
    variable = variable_from_tag(unescape_tag(tag))
    _, found, slot = head.partition(",slot=")
    return series_name(variable, int(slot) if found and slot.isdigit() else 0)


def _field_str(text: str) -> str:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@functools.lru_cache(maxsize=8192)
def _series(device: str, variable: str, slot: int) -> str:
    """Measurement and tags of a line; cached, as a device repeats its few variables."""
    tags = f"{MEASUREMENT},device={device.translate(_TAG_ESCAPE)}"
    if slot:
        tags += f",slot={slot}"
    return tags + f",variable={variable_tag(variable).translate(_TAG_ESCAPE)}"


def encode_point(p: Point) -> str:
    """One line of line protocol (without the newline). One f-string per line, since this
    runs for every point the service stores. A plain number is ``value`` alone (plus
    ``created_us`` when the point carried its own time)."""
    value = p.value
    if value is None:
        fields = "novalue=true"
    elif value.__class__ is bool:
        fields = f'value_bool={"true" if value else "false"}'
    elif value.__class__ is str:
        fields = f"value_str={_field_str(value)}"
    else:
        fields = f"value={float(value)!r}"
    if p.unit is not None:
        fields += f",unit={_field_str(p.unit)}"
    created_us = p.created_ns // 1000
    if p.group != f"{created_us:024x}":  # generated_group(created_ns), inlined
        fields += f",group={_field_str(p.group)}"
    if p.lat is not None and p.lng is not None:
        fields += f",lat={float(p.lat)!r},lng={float(p.lng)!r}"
    if p.metadata is not None:
        fields += f",metadata={_field_str(p.metadata)}"
    if created_us != p.time_ns // 1000:
        fields += f",created_us={created_us}i"
    return f"{_series(p.device, p.variable, p.slot)} {fields} {p.time_ns}"


def encode_points(points: list[Point]) -> bytes:
    return "\n".join(encode_point(p) for p in points).encode("utf-8")


def devices_in(body: bytes) -> set[str]:
    """The devices a body of our line protocol writes to (device ids need no escaping,
    and the ``variable`` tag always follows). About 0.4 µs a line; a regex is slower."""
    start = len(_LINE_START)
    found = {line[start:line.find(b",", start)] for line in body.split(b"\n")
             if line.startswith(_LINE_START)}
    return {device.decode("ascii", "replace") for device in found}


def _number(value: float | int) -> float | int:
    """A stored number as the client sees it. Numbers are stored as 64-bit floats so
    dashboards can mean() them; a whole number below 2**53 (where every integer is exact)
    comes back as an integer, so ``20`` round-trips as ``20``; anything larger comes back
    as a float (``1e300``, ``-1.2e19``), since JSON encoders refuse integers past 64 bits
    and the float is what is stored anyway. InfluxDB's JSON may say ``20`` or ``1e+20``."""
    if isinstance(value, int):
        return value if -_MAX_EXACT_INT < value < _MAX_EXACT_INT else float(value)
    if value.is_integer() and abs(value) < _MAX_EXACT_INT:
        return int(value)
    return value


def row_value(row: dict[str, Any]) -> Any:
    """The value a row holds (None: none). Version 1 rows say which field in
    ``value_type``; version 2 rows hold one of the three. When a repeated write of one key
    changed the value type, both fields remain (InfluxDB merges fields): then
    ``value_type`` decides if present, else a string wins over a boolean over a number."""
    vtype = row.get("value_type")
    if vtype is not None:
        if vtype == "number":
            return row.get("value")
        if vtype == "string":
            return row.get("value_str")
        if vtype == "boolean":
            return row.get("value_bool")
        return None
    for key in ("value_str", "value_bool", "value"):
        if row.get(key) is not None:
            return row[key]
    return None


def generated_us(group: str) -> int | None:
    """The receive time (µs) a group names if it has the shape of a generated one (24
    lowercase hex digits, a time before 2262); else None."""
    if len(group) != 24 or not group.startswith("00000000"):
        return None
    try:
        us = int(group, 16)
    except ValueError:
        return None
    return us if us < 2**63 // 1000 and group == f"{us:024x}" else None


def created_ns(row: dict[str, Any]) -> int:
    """When the service received the row's point: ``created_us`` (version 2),
    ``created`` (version 1, ns), or the point's own time (version 2, untimed points)."""
    created_us = row.get("created_us")
    if created_us is not None:
        return int(created_us) * 1000
    created = row.get("created")
    if created is not None:
        return int(created)
    return int(row["time"])


def row_group(row: dict[str, Any], created: int) -> str:
    group = row.get("group")
    return group if group is not None else generated_group(created)


def row_to_point(row: dict[str, Any], *, details: bool = False) -> dict[str, Any]:
    """A stored row (column -> value, ``time`` in ns) as the TagoIO point a client sees."""
    variable = variable_from_tag(row["variable"])
    slot = int(row.get("slot") or 0)
    time_ns = int(row["time"])
    created = created_ns(row)
    out: dict[str, Any] = {"id": point_id(time_ns, variable, slot), "variable": variable}
    value = row_value(row)
    if value is not None:
        out["value"] = _number(value) if value.__class__ in (int, float) else value
    if row.get("unit") is not None:
        out["unit"] = row["unit"]
    out["group"] = row_group(row, created)
    out["time"] = format_iso_ms(time_ns)
    if row.get("lat") is not None and row.get("lng") is not None:
        out["location"] = {"type": "Point", "coordinates": [row["lng"], row["lat"]]}
    if row.get("metadata") is not None:
        out["metadata"] = orjson.loads(row["metadata"])
    out["device"] = row["device"]
    out["origin"] = row["device"]
    if details:
        out["created_at"] = format_iso_ms(created)
    return out


def row_to_stored(row: dict[str, Any]) -> Point:
    """A stored row back into a Point (for edits, which rewrite the same key)."""
    created = created_ns(row)
    return Point(
        device=row["device"], variable=variable_from_tag(row["variable"]),
        time_ns=int(row["time"]), created_ns=created, group=row_group(row, created),
        value=row_value(row), unit=row.get("unit"), lat=row.get("lat"), lng=row.get("lng"),
        metadata=row.get("metadata"), slot=int(row.get("slot") or 0),
    )


FIELDS = ("value", "value_str", "value_bool", "novalue", "unit", "group", "lat", "lng",
          "metadata", "created_us", "created", "value_type")


def row_fields(row: dict[str, Any]) -> set[str]:
    """The fields a stored row holds (either version)."""
    return {key for key in FIELDS if row.get(key) is not None}


def point_fields(p: Point) -> set[str]:
    """The fields ``encode_point(p)`` writes (for edits: what a rewrite would not cover)."""
    value = p.value
    fields = {"novalue" if value is None else "value_bool" if value.__class__ is bool
              else "value_str" if value.__class__ is str else "value"}
    for key in ("unit", "metadata"):
        if getattr(p, key) is not None:
            fields.add(key)
    if p.lat is not None and p.lng is not None:
        fields.update(("lat", "lng"))
    if p.group != generated_group(p.created_ns):
        fields.add("group")
    if p.created_ns // 1000 != p.time_ns // 1000:
        fields.add("created_us")
    return fields


def number_from_series(series: list[Series]) -> float | int:
    """The one number a count/sum/avg/min/max statement answered (0 when no row matched)."""
    for s in series:
        for row in s.rows:
            for key, value in row.items():
                if key != "time" and isinstance(value, int | float):
                    return _number(value)
    return 0


def aggregate_points(series: list[Series], device_id: str, ascending: bool,
                     value_of: Callable[[dict[str, Any]], Any] | None = None,
                     ) -> list[dict[str, Any]]:
    """One point per interval and variable, from an aggregate statement's series
    (``value_of(row)``: the interval's value, by default its ``value`` column)."""
    points = []
    for s in series:
        variable = variable_from_tag(s.tags.get("variable", ""))
        for row in s.rows:
            value = row.get("value") if value_of is None else value_of(row)
            if value is None:
                continue
            if isinstance(value, int | float):
                value = _number(value)
            points.append({"variable": variable, "value": value,
                           "time": format_iso_ms(int(row["time"])),
                           "device": device_id, "origin": device_id})
    points.sort(key=lambda p: (p["time"], p["variable"]), reverse=not ascending)
    return points
