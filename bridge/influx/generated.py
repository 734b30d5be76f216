"""Reads that name a generated group (schema version 2 derives it, never stores it).

A generated group is the microsecond its message was received (``generated_group``), so
its points are found by the receive time they carry (``created_us``) or, for untimed
points, which carry none, by their own time within that microsecond. InfluxQL cannot put
a time range inside an OR, so those are two statements; their rows are merged, every row
whose group (stored or derived) is not one asked for is dropped, and the query is
answered from the rows here. Both statements are bounded: one message's points, plus the
rare other point of that microsecond, plus rows of any stored group the query also names
(at most ``MAX_ROWS`` per statement).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bridge.influx.influxql import group_rows_statements
from bridge.influx.schema import (
    Series,
    aggregate_points,
    created_ns,
    generated_us,
    row_group,
    row_to_point,
    row_value,
)
from bridge.influx.schema import (
    _number as client_number,
)
from bridge.influx.store import InfluxStore
from bridge.model.query import EDGE_KINDS, NUMBER_KINDS, DataQuery

Row = dict[str, Any]
MAX_ROWS = 100_000


def names_generated_group(q: DataQuery) -> bool:
    return any(generated_us(group) is not None for group in q.groups)


async def group_rows(store: InfluxStore, device_id: str, q: DataQuery) -> list[Row]:
    """Every row matching ``q`` (all its filters, groups included), oldest first."""
    results = await store.query(group_rows_statements(device_id, q, MAX_ROWS))
    found: dict[tuple[int, str, str], Row] = {}
    for series in results:
        for s in series:
            for row in s.rows:
                found[(int(row["time"]), row["variable"], str(row.get("slot") or ""))] = row
    wanted = set(q.groups)
    rows = [r for r in found.values() if row_group(r, created_ns(r)) in wanted]
    rows.sort(key=lambda r: (int(r["time"]), r["variable"]))
    return rows


def _is_number(value: Any) -> bool:
    return value.__class__ in (int, float)


def list_rows(rows: list[Row], q: DataQuery) -> list[Row]:
    ordered = rows if q.ascending else rows[::-1]
    return ordered[q.skip: q.skip + q.qty]


def edge_rows(rows: list[Row], q: DataQuery) -> list[Row]:
    if q.kind.endswith("_value"):
        rows = [r for r in rows if row_value(r) is not None]
    elif q.kind.endswith("_location"):
        rows = [r for r in rows if r.get("lat") is not None]
    chosen: dict[str, Row] = {}
    for row in rows if q.kind.startswith("last") else rows[::-1]:
        chosen[row["variable"]] = row  # the last one seen wins
    return list(chosen.values())


def number(rows: list[Row], kind: str) -> float | int:
    if kind == "count":
        return len(rows)
    values = [v for v in map(row_value, rows) if _is_number(v)]
    if not values:
        return 0
    if kind == "sum":
        result = sum(values)
    elif kind == "min":
        result = min(values)
    elif kind == "max":
        result = max(values)
    else:
        result = sum(values) / len(values)
    return client_number(result)  # as every other answer: whole below 2**53, else float


def aggregate(rows: list[Row], q: DataQuery, device_id: str) -> list[dict[str, Any]]:
    """One point per interval and variable, like ``aggregate_statement`` (whose LIMIT and
    OFFSET apply per variable)."""
    buckets: dict[str, dict[int, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        start = int(row["time"]) // q.interval_ns * q.interval_ns
        buckets[row["variable"]][start].append(row)
    series = []
    for variable, by_start in buckets.items():
        out = []
        for start in sorted(by_start, reverse=not q.ascending):
            in_bucket = by_start[start]
            if q.function != "count" and not any(_is_number(row_value(r)) for r in in_bucket):
                continue
            out.append({"time": start, "value": number(in_bucket, q.function)})
        series.append(Series("data", {"variable": variable}, out[q.skip: q.skip + q.qty]))
    return aggregate_points(series, device_id, q.ascending)



def answer(rows: list[Row], q: DataQuery, device_id: str
           ) -> list[dict[str, Any]] | float | int:
    """The answer to ``q`` from ``group_rows``."""
    if q.kind in NUMBER_KINDS:
        return number(rows, q.kind)
    if q.kind == "aggregate":
        return aggregate(rows, q, device_id)
    if q.kind in EDGE_KINDS:
        rows = edge_rows(rows, q)
        rows.sort(key=lambda r: (r["time"], r["variable"]), reverse=not q.ascending)
    else:
        rows = list_rows(rows, q)
    return [row_to_point(r, details=q.details) for r in rows]
