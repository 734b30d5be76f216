"""A line of ours (either schema version) read back into the row InfluxDB would return
for it: current values are kept as lines (``bridge/readcache/current.py``), and the
spool's drain has only the lines."""

from __future__ import annotations

from typing import Any

from bridge.influx.schema import MEASUREMENT, unescape_tag


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
        row[key] = unescape_tag(raw)
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
