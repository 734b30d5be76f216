"""A variable's history in pages, newest first, with a cursor instead of ``skip``: the
console reads pages of a device with millions of points, and ``OFFSET n`` makes InfluxDB
walk past n rows, so a deep page would cost ever more. A cursor ``(t, k)`` continues
with the rows at exactly time ``t`` from the k-th on (k > 0 only when a page ended
inside such a group), then the rows older than ``t``; every page is one newest-first
read (``windows.newest_rows``) plus, rarely, one read of a group sharing a time.

InfluxDB returns rows sharing a time in no fixed order, so those are put in ours
(variable, then slot) and a page that ends inside such a group ends with a prefix of
the whole group, read on its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bridge.influx.influxql import list_statements
from bridge.influx.store import InfluxStore
from bridge.influx.windows import WindowHints, newest_rows
from bridge.model.query import MAX_QTY, DataQuery

Row = dict[str, Any]
Cursor = tuple[int, int]


async def page_rows(store: InfluxStore, device_id: str, q: DataQuery, before: Cursor | None,
                    hints: WindowHints) -> tuple[list[Row], Cursor | None]:
    """``q.qty`` rows newest first, continuing at ``before``, and the next page's cursor
    (None at the end)."""
    q = dataclasses.replace(q, kind="default", ascending=False, ids=[], skip=0)
    rows: list[Row] = []
    if before is not None and (q.end_ns is None or before[0] <= q.end_ns):
        at, shown = before
        if shown:
            ties = await _ties(store, device_id, q, at)
            rows = ties[shown:shown + q.qty]
            if len(ties) > shown + q.qty:
                return rows, (at, shown + q.qty)
        q.end_ns = at - 1
    need = q.qty - len(rows)
    older = await newest_rows(store, device_id, dataclasses.replace(q, qty=need + 1), hints)
    if need == 0:
        return rows, (int(rows[-1]["time"]), 0) if older else None
    if len(older) <= need:
        return rows + sorted(older, key=_order), None
    last = int(older[need - 1]["time"])
    rows += sorted(older[:need], key=_order)
    if int(older[need]["time"]) != last:
        return rows, (last, 0)
    taken = sum(1 for r in rows if int(r["time"]) == last)
    rows = [r for r in rows if int(r["time"]) != last]
    rows += (await _ties(store, device_id, q, last))[:taken]
    return rows, (last, taken)


async def _ties(store: InfluxStore, device_id: str, q: DataQuery, at: int) -> list[Row]:
    exact = dataclasses.replace(q, start_ns=at, end_ns=at, qty=MAX_QTY)
    (series,) = await store.query(list_statements(device_id, exact))
    return sorted((r for s in series for r in s.rows), key=_order)


def _order(row: Row) -> tuple[int, str, int]:
    """Newest first; rows sharing a time by variable, then slot."""
    return -int(row["time"]), row["variable"], int(row.get("slot") or 0)
