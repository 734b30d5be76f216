"""Newest-first reads that look at recent data first.

InfluxDB 1.x answers ``ORDER BY time DESC LIMIT n`` over a device's whole history by
opening every shard of every series, which on a long history costs far more than the few
rows wanted. The newest rows usually lie in the last hour or day, so these reads try a
short window first and widen it only when it cannot hold the answer. Each step is exact:
a window is accepted only when it provably contains the same rows the unbounded query
would return, so results never differ from a plain query.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bridge.query import DataQuery, edge_statement, list_statements, variables_statement
from bridge.schema import variable_from_tag
from bridge.store import InfluxStore
from bridge.timeparse import now_ns

_S = 10**9
WINDOWS_NS = (3600 * _S, 86400 * _S, 7 * 86400 * _S, 31 * 86400 * _S, 366 * 86400 * _S)
Row = dict[str, Any]


def _lower_bounds(q: DataQuery) -> list[int | None]:
    """Start times to try, narrowest first, ending with the query's own start."""
    now = now_ns()
    bounds: list[int | None] = []
    for width in WINDOWS_NS:
        lower = now - width
        if q.start_ns is not None and q.start_ns >= lower:
            break  # the query's own range is already this narrow
        bounds.append(lower)
    bounds.append(q.start_ns)
    return bounds


async def newest_rows(store: InfluxStore, device_id: str, q: DataQuery) -> list[Row]:
    """``query=default`` newest first: the window holds the answer when it returns a
    full page (it then holds at least skip + qty rows, all newer than anything outside)."""
    if q.qty == 0:
        return []
    for lower in _lower_bounds(q):
        narrowed = dataclasses.replace(q, start_ns=lower)
        (series,) = await store.query(list_statements(device_id, narrowed))
        rows = [row for s in series for row in s.rows]
        if len(rows) == q.qty or lower == q.start_ns:
            return rows
    raise AssertionError("unreachable: the last bound is the query's own")


async def newest_per_variable(store: InfluxStore, device_id: str, q: DataQuery) -> list[Row]:
    """``last_*``: one row per variable; a variable found in a window is final (nothing
    outside it is newer), the others are looked for in the next, wider window."""
    wanted = list(q.variables)
    if not wanted:
        (series,) = await store.query([variables_statement(device_id)])
        wanted = [variable_from_tag(str(row["value"])) for s in series for row in s.rows]
    found: list[Row] = []
    missing = set(wanted)
    for lower in _lower_bounds(q):
        if not missing:
            break
        narrowed = dataclasses.replace(q, start_ns=lower, variables=sorted(missing))
        (series,) = await store.query([edge_statement(device_id, narrowed)])
        for s in series:
            for row in s.rows:
                name = variable_from_tag(row["variable"])
                if name in missing:
                    missing.discard(name)
                    found.append(row)
    return found
