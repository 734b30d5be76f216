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
import hashlib
import re
from typing import Any

import orjson

from bridge.model.points import Point
from bridge.model.timeparse import format_iso_ms

MEASUREMENT = "data"
# Why a marker: InfluxDB 1.x cannot escape a backslash in a tag value (``a\ b`` breaks the
# line), so such variables are stored base64-encoded behind a prefix no plain name uses.
_ENCODED_PREFIX = "~b64~"
_TAG_ESCAPE = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_ID_RE = re.compile(r"^([0-9a-f]{16})([0-9a-f]{8})([0-9a-f]{1,4})$")
_MAX_EXACT_INT = 2**53
_LINE_START = f"{MEASUREMENT},device=".encode()


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


def _variable_hash(variable: str) -> int:
    return int.from_bytes(hashlib.blake2b(variable.encode("utf-8"), digest_size=4).digest(), "big")


def point_id(time_ns: int, variable: str, slot: int) -> str:
    """The id is the storage key itself (time, a hash of the variable, slot): a lookup by
    id is an exact-time query, never a scan of the device's history."""
    return f"{time_ns:016x}{_variable_hash(variable):08x}{slot:x}"


def parse_point_id(point_id_text: str) -> tuple[int, int, int]:
    """(time_ns, variable hash, slot) from an id; ValueError when it is not one of ours."""
    match = _ID_RE.match(point_id_text)
    if match is None:
        raise ValueError("not a data point id")
    return int(match[1], 16), int(match[2], 16), int(match[3], 16)


def id_matches(point_id_text: str, variable: str, slot: int) -> bool:
    _, vhash, id_slot = parse_point_id(point_id_text)
    return vhash == _variable_hash(variable) and id_slot == slot


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


def quote_string(text: str) -> str:
    """An InfluxQL string literal; the only way request text reaches a query."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def equals(column: str, text: str, cast: str = "") -> str:
    """``column = 'text'`` in InfluxQL (``cast`` pins a field's type). A carriage return
    cannot appear in an InfluxQL string literal (the parser refuses it, escaped or not), so
    such text is matched with an anchored regular expression, which can spell it ``\\r``."""
    ident = quote_ident(column) + (f"::{cast}" if cast else "")
    if "\r" not in text:
        return f"{ident} = {quote_string(text)}"
    return f"{ident} =~ /^{_regex_literal(text)}$/"


_REGEX_SPECIAL = set("\\.+*?()|[]{}^$/")


def _regex_literal(text: str) -> str:
    out = []
    for char in text:
        if char == "\r":
            out.append("\\r")
        elif char == "\n":
            out.append("\\n")
        elif char in _REGEX_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
