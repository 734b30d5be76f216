"""Newest-first reads that look at recent data first.

InfluxDB 1.x answers ``ORDER BY time DESC LIMIT n`` over a device's whole history by
opening every shard of every series, which on a long history costs far more than the few
rows wanted. The newest rows usually lie in the last hour or day, so these reads try a
short window first and widen it only when it cannot hold the answer. Each step is exact:
a window is accepted only when it provably contains the same rows the unbounded query
would return, so results never differ from a plain query.

Dashboards poll the same read again and again, so the narrowest window that answered last
time (its oldest row's time) is remembered per device and read shape and tried first. A
hint is only a first guess: it passes the same test as any window, so a stale one (its
rows deleted since) costs one more statement, never a wrong answer.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from bridge.influx.influxql import (
    edge_statement,
    last_location_times_statement,
    list_statements,
    newest_matching_statement,
    select_exact,
    variables_statement,
)
from bridge.influx.schema import variable_from_tag
from bridge.influx.store import InfluxStore
from bridge.model.query import DataQuery
from bridge.model.timeparse import now_ns

_S = 10**9
# A hinted last_* window is read whole (newest first) when it holds at most this many
# rows; a fuller one is not trusted to be whole and the per-variable windows follow.
HINTED_ROWS = 2000
WINDOWS_NS = (3600 * _S, 86400 * _S, 7 * 86400 * _S, 31 * 86400 * _S, 366 * 86400 * _S)
Row = dict[str, Any]
HintKey = tuple[Any, ...]


class WindowHints:
    """Per device and read shape: the lower time bound that last held the whole answer,
    and whether that window proved too full to read whole (see ``newest_per_variable``).
    Bounded (least recently used out) so that many devices cannot grow it without end."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._bounds: OrderedDict[HintKey, tuple[int, bool]] = OrderedDict()
        self._max = max_entries

    @staticmethod
    def key(device_id: str, q: DataQuery) -> HintKey:
        return (device_id, q.kind, tuple(q.variables), tuple(q.groups), tuple(q.values),
                q.qty, q.skip, q.end_ns is None)

    def get(self, key: HintKey) -> tuple[int, bool] | None:
        """``(bound, too_full)``, or None."""
        hint = self._bounds.get(key)
        if hint is not None:
            self._bounds.move_to_end(key)
        return hint

    def put(self, key: HintKey, bound: int, too_full: bool = False) -> None:
        self._bounds[key] = (bound, too_full)
        self._bounds.move_to_end(key)
        if len(self._bounds) > self._max:
            self._bounds.popitem(last=False)


def _lower_bounds(q: DataQuery, hint: int | None) -> list[int | None]:
    """Start times to try, narrowest first, ending with the query's own start. The
    windows reach back from the query's end when it has one in the past (history pages)."""
    now = now_ns()
    if q.end_ns is not None and q.end_ns < now:
        now = q.end_ns
    bounds: list[int | None] = []
    if hint is not None and (q.start_ns is None or hint > q.start_ns):
        bounds.append(hint)
    for width in WINDOWS_NS:
        lower = now - width
        if q.start_ns is not None and q.start_ns >= lower:
            break  # the query's own range is already this narrow
        if hint is None or lower < hint:
            bounds.append(lower)
    bounds.append(q.start_ns)
    return bounds


def _oldest(rows: list[Row]) -> int:
    return min(int(row["time"]) for row in rows)


async def newest_rows(store: InfluxStore, device_id: str, q: DataQuery,
                      hints: WindowHints) -> list[Row]:
    """``query=default`` newest first: the window holds the answer when it returns a
    full page (it then holds at least skip + qty rows, all newer than anything outside)."""
    if q.qty == 0:
        return []
    key = hints.key(device_id, q)
    hint = hints.get(key)
    for lower in _lower_bounds(q, hint[0] if hint else None):
        narrowed = dataclasses.replace(q, start_ns=lower)
        (series,) = await store.query(list_statements(device_id, narrowed))
        rows = [row for s in series for row in s.rows]
        if len(rows) == q.qty:
            hints.put(key, _oldest(rows))
            return rows
        if lower == q.start_ns:
            return rows
    raise AssertionError("unreachable: the last bound is the query's own")


async def newest_per_variable(store: InfluxStore, device_id: str, q: DataQuery,
                              hints: WindowHints) -> list[Row]:
    """``last_*``: one row per variable; a variable found in a window is final (nothing
    outside it is newer), the others are looked for in the next, wider window. The
    device's variables come from the index in the same request as the first window,
    which, when hinted, is read whole rather than grouped per variable."""
    key = hints.key(device_id, q)
    hint = hints.get(key)
    bounds = _lower_bounds(q, hint[0] if hint else None)
    narrowed = dataclasses.replace(q, start_ns=bounds[0])
    # Read whole: a hinted window not yet found too full (a variable last seen long ago
    # stretches the window over much of the history; then the grouped read is cheaper).
    whole = hint is not None and bounds[0] == hint[0] and not hint[1]
    first = (newest_matching_statement(device_id, narrowed, HINTED_ROWS + 1) if whole
             else edge_statement(device_id, narrowed))
    if q.variables:
        wanted = list(q.variables)
        (series,) = await store.query([first])
    else:
        names, series = await store.query([variables_statement(device_id), first])
        wanted = [variable_from_tag(str(row["value"])) for s in names for row in s.rows]
    found: list[Row] = []
    missing = set(wanted)

    def take(rows: list[Row]) -> None:
        for row in rows:  # newest first within a variable: its first row is its newest
            name = variable_from_tag(row["variable"])
            if name in missing:
                missing.discard(name)
                found.append(row)

    rows = [row for s in series for row in s.rows]
    overflowed = whole and len(rows) > HINTED_ROWS  # the window was not read whole
    if not overflowed:
        take(rows)
    too_full = overflowed or (hint is not None and hint[1])
    for lower in bounds[1:]:
        if not missing:
            break
        narrowed = dataclasses.replace(q, start_ns=lower, variables=sorted(missing))
        (series,) = await store.query([edge_statement(device_id, narrowed)])
        take([row for s in series for row in s.rows])
    if found and not missing:
        hints.put(key, _oldest(found), too_full)
    return found


async def newest_locations(store: InfluxStore, device_id: str,
                           variables: list[str] | None) -> list[Row]:
    """``last_location`` per variable over the whole history without reading it: the
    newest location's time per series from ``last()``, then those rows by exact time."""
    (series,) = await store.query([last_location_times_statement(device_id, variables or [])])
    newest: dict[str, tuple[int, str]] = {}
    for s in series:
        for row in s.rows:
            key = (int(row["time"]), s.tags.get("slot", ""))
            variable = s.tags.get("variable", "")
            if variable not in newest or key > newest[variable]:
                newest[variable] = key
    if not newest:
        return []
    results = await store.query([select_exact(device_id, t) for t, _ in newest.values()])
    found = []
    for (variable, (_, slot)), result in zip(newest.items(), results, strict=True):
        found += [row for s in result for row in s.rows if row["variable"] == variable
                  and str(row.get("slot") or "") == slot and row.get("lat") is not None]
    return found
