"""Rows without InfluxDB: the row InfluxDB would return for a Point once written, and a
line of ours (either schema version) read back into that row. Current values are built
from them (``bridge/readcache/current.py``); the spool's drain has only the lines."""

from __future__ import annotations

from typing import Any

from bridge.influx.schema import MEASUREMENT, variable_tag
from bridge.model.points import Point, generated_group

_TAG_UNESCAPE = {"\\,": ",", "\\ ": " ", "\\=": "="}


def stored_row(p: Point) -> dict[str, Any]:
    """The row InfluxDB would return for ``p`` once written (``row_to_point`` reads it)."""
    row: dict[str, Any] = {"time": p.time_ns, "device": p.device,
                           "variable": variable_tag(p.variable),
                           "slot": str(p.slot) if p.slot else None,
                           "unit": p.unit, "metadata": p.metadata}
    value = p.value
    key = ("novalue" if value is None else "value_bool" if value.__class__ is bool
           else "value_str" if value.__class__ is str else "value")
    row[key] = True if value is None else float(value) if key == "value" else value
    if p.lat is not None and p.lng is not None:
        row["lat"], row["lng"] = float(p.lat), float(p.lng)
    if p.group != generated_group(p.created_ns):
        row["group"] = p.group
    if p.created_ns // 1000 != p.time_ns // 1000:
        row["created_us"] = p.created_ns // 1000
    return row


def parse_line(line: str) -> dict[str, Any]:
    """A line of ours (either schema version) back into the row InfluxDB would return;
    ValueError if it is not one. For the spool's drain, which has only the lines."""
    i, n = 0, len(line)
    parts: list[str] = []  # measurement, then tag pairs, up to the first bare space
    start = 0
    while i < n and line[i] != " ":
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == ",":
            parts.append(line[start:i])
            start = i + 1
        i += 1
    parts.append(line[start:i])
    if parts[0] != MEASUREMENT or i >= n:
        raise ValueError("not a line of ours")
    row: dict[str, Any] = {}
    for pair in parts[1:]:
        key, _, raw = pair.partition("=")
        for escaped, plain in _TAG_UNESCAPE.items():
            raw = raw.replace(escaped, plain)
        row[key] = raw
    fields, _, stamp = line[i + 1:].rpartition(" ")
    row["time"] = int(stamp)
    j, m = 0, len(fields)
    while j < m:
        eq = fields.index("=", j)
        key = fields[j:eq]
        j = eq + 1
        if fields[j] == '"':
            k = j + 1
            chars = []
            while fields[k] != '"':
                if fields[k] == "\\" and fields[k + 1] in '"\\':
                    k += 1
                chars.append(fields[k])
                k += 1
            row[key] = "".join(chars)
            j = k + 1
        else:
            end = fields.find(",", j)
            end = m if end < 0 else end
            raw = fields[j:end]
            row[key] = (int(raw[:-1]) if raw.endswith("i") else raw == "true"
                        if raw in ("true", "false") else float(raw))
            j = end
        j += 1  # the comma
    if "device" not in row or "variable" not in row:
        raise ValueError("not a line of ours")
    return row
