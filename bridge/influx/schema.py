"""The InfluxDB schema contract (docs/schema.md): how a Point becomes a line of line
protocol, how a stored row becomes a TagoIO point again, and how ids map to storage keys.

One measurement, ``data``. Tags: ``device``, ``variable`` and, only for the second and
later points of one message sharing variable and time, ``slot``. Each value type has its
own field (``value`` float, ``value_str`` string, ``value_bool`` boolean), so a variable
can receive a number, then a string, then a boolean without a field type conflict.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.model.ids import point_id
from bridge.model.points import Point
from bridge.model.timeparse import format_iso_ms

MEASUREMENT = "data"
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
    runs for every point the service stores."""
    value = p.value
    if value is None:
        fields = ""
    elif value.__class__ is bool:
        fields = f',value_bool={"true" if value else "false"},value_type="boolean"'
    elif value.__class__ is str:
        fields = f',value_str={_field_str(value)},value_type="string"'
    else:
        fields = f',value={float(value)!r},value_type="number"'
    if p.unit is not None:
        fields += f",unit={_field_str(p.unit)}"
    if p.lat is not None and p.lng is not None:
        fields += f",lat={float(p.lat)!r},lng={float(p.lng)!r}"
    if p.metadata is not None:
        fields += f",metadata={_field_str(p.metadata)}"
    return (f"{_series(p.device, p.variable, p.slot)} created={p.created_ns}i{fields},"
            f"group={_field_str(p.group)} {p.time_ns}")


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
    # Numbers are stored as float so dashboards can mean() them; give integers back as
    # integers so ``20`` round-trips as ``20`` (InfluxDB's JSON may already say ``20``).
    if isinstance(value, int):
        return value
    if value.is_integer() and abs(value) < _MAX_EXACT_INT:
        return int(value)
    return value


def row_to_point(row: dict[str, Any], *, details: bool = False) -> dict[str, Any]:
    """A stored row (column -> value, ``time`` in ns) as the TagoIO point a client sees."""
    variable = variable_from_tag(row["variable"])
    slot = int(row.get("slot") or 0)
    time_ns = int(row["time"])
    out: dict[str, Any] = {"id": point_id(time_ns, variable, slot), "variable": variable}
    vtype = row.get("value_type")
    if vtype == "number" and row.get("value") is not None:
        out["value"] = _number(row["value"])
    elif vtype == "string" and row.get("value_str") is not None:
        out["value"] = row["value_str"]
    elif vtype == "boolean" and row.get("value_bool") is not None:
        out["value"] = row["value_bool"]
    if row.get("unit") is not None:
        out["unit"] = row["unit"]
    if row.get("group") is not None:
        out["group"] = row["group"]
    out["time"] = format_iso_ms(time_ns)
    if row.get("lat") is not None and row.get("lng") is not None:
        out["location"] = {"type": "Point", "coordinates": [row["lng"], row["lat"]]}
    if row.get("metadata") is not None:
        out["metadata"] = orjson.loads(row["metadata"])
    out["device"] = row["device"]
    out["origin"] = row["device"]
    if details and row.get("created") is not None:
        out["created_at"] = format_iso_ms(int(row["created"]))
    return out


def row_to_stored(row: dict[str, Any]) -> Point:
    """A stored row back into a Point (for edits, which rewrite the same key)."""
    vtype = row.get("value_type")
    value: Any = None
    if vtype == "number":
        value = row.get("value")
    elif vtype == "string":
        value = row.get("value_str")
    elif vtype == "boolean":
        value = row.get("value_bool")
    return Point(
        device=row["device"], variable=variable_from_tag(row["variable"]),
        time_ns=int(row["time"]), created_ns=int(row.get("created") or row["time"]),
        group=row.get("group") or "", value=value, unit=row.get("unit"),
        lat=row.get("lat"), lng=row.get("lng"), metadata=row.get("metadata"),
        slot=int(row.get("slot") or 0),
    )


def number_from_series(series: list[Series]) -> float | int:
    """The one number a count/sum/avg/min/max statement answered (0 when no row matched)."""
    for s in series:
        for row in s.rows:
            for key, value in row.items():
                if key != "time" and isinstance(value, int | float):
                    return int(value) if float(value).is_integer() else value
    return 0


def aggregate_points(series: list[Series], device_id: str,
                     ascending: bool) -> list[dict[str, Any]]:
    """One point per interval and variable, from an aggregate statement's series."""
    points = []
    for s in series:
        variable = variable_from_tag(s.tags.get("variable", ""))
        for row in s.rows:
            value = row.get("value")
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            points.append({"variable": variable, "value": value,
                           "time": format_iso_ms(int(row["time"])),
                           "device": device_id, "origin": device_id})
    points.sort(key=lambda p: (p["time"], p["variable"]), reverse=not ascending)
    return points
