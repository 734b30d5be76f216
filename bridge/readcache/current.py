"""Current values in constant time: ``last_item`` / ``last_value`` / ``last_location`` and
the Data page read rows of the registry (``bridge/registry/current.py``), never the
device's history in InfluxDB.

Writers keep them: every write that reached InfluxDB hands its candidates (the newest
point per variable and kind, ``bridge/model/current.py``) to ``record``, which the store
calls after InfluxDB answered and before the write is acknowledged, in the same registry
transaction that bumps the data versions. So a read right after a write, in any process,
sees it; a backfilled point never replaces a newer one; spooled points become current
when the drain writes them to InfluxDB, the moment every other read sees them too.
DELETE drops the rows of the variables it touched and rebuilds them from InfluxDB; a
device's first read builds all of its rows (data written before they existed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from bridge.errors import DeviceDataError, StoreUnavailable
from bridge.influx.lines import parse_line
from bridge.influx.schema import (
    encode_point,
    row_to_point,
    row_to_stored,
    variable_from_tag,
    variable_tag,
)
from bridge.metrics import Metrics
from bridge.model.current import KINDS, Candidates
from bridge.model.query import DataQuery
from bridge.readcache.versions import without_waiting
from bridge.registry import Registry
from bridge.registry.current import CurrentRow

log = logging.getLogger("devicedata.current")
# Records on the event loop leave the SQLite WAL to grow; move it into the database in
# a worker thread this often.
CHECKPOINT_EVERY = 500

Row = dict[str, Any]
# Reads the newest rows of ``kind`` (a last_* query) for these variables (all: None).
NewestRows = Callable[[str, str, list[str] | None], Awaitable[list[Row]]]


def rows_of(candidates: Candidates) -> list[CurrentRow]:
    """One registry row per device and variable, its three kinds side by side."""
    rows: dict[tuple[str, str], list[Any]] = {}
    for (device, variable, kind), candidate in candidates.items():
        row = rows.get((device, variable))
        if row is None:
            row = rows[(device, variable)] = [device, variable, *([None] * 9)]
        at = 2 + 3 * KINDS.index(kind)
        row[at:at + 3] = candidate
    return [tuple(row) for row in rows.values()]


class CurrentValues:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self.records = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self.record_failures = 0
        self.rebuilds = 0

    def describe(self, metrics: Metrics) -> None:
        metrics.counter("devicedata_current_value_records",
                        "Writes whose current values (and data versions) were recorded.",
                        lambda: float(self.records))
        metrics.counter("devicedata_current_value_record_failures",
                        "Writes kept back because the registry could not record them.",
                        lambda: float(self.record_failures))
        metrics.counter("devicedata_current_value_rebuilds",
                        "Current values read again from InfluxDB (first read, DELETE).",
                        lambda: float(self.rebuilds))

    async def record(self, devices: Collection[str], candidates: Candidates | None) -> None:
        """The store's change hook. Raises StoreUnavailable when the registry cannot take
        them: the caller then keeps the batch (spool or retry), so that the write is
        acknowledged only once its points are current (a rewrite lands on the same keys)."""
        if not devices:
            return
        rows = rows_of(candidates) if candidates else []
        try:
            await without_waiting(self._registry.record_writes, rows, devices)
        except DeviceDataError as exc:
            self.record_failures += 1
            log.warning("event=current_values_not_recorded devices=%d reason=%s",
                        len(devices), exc)
            raise StoreUnavailable(f"current values not recorded: {exc}",
                                   retry_after=5.0) from None
        self.records += 1
        if self.records % CHECKPOINT_EVERY == 0 and self._checkpoint is None:
            self._checkpoint = asyncio.create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        try:
            await asyncio.to_thread(self._registry.checkpoint)
        except DeviceDataError as exc:
            log.warning("event=registry_checkpoint_failed reason=%s", exc)
        finally:
            self._checkpoint = None

    async def read(self, device_id: str, q: DataQuery, newest: NewestRows
                   ) -> list[dict[str, Any]]:
        """The answer to a last_* query that ``answers`` accepts."""
        kind = q.kind.removeprefix("last_")
        ready, texts = await without_waiting(self._registry.current_values, device_id, kind)
        if not ready:
            await self.rebuild(device_id, None, newest)
            ready, texts = await without_waiting(self._registry.current_values,
                                                  device_id, kind)
        rows = [parse_line(t) for t in texts]
        if q.variables:
            wanted = {variable_tag(v) for v in q.variables}
            rows = [r for r in rows if r["variable"] in wanted]
        if q.start_ns is not None:
            rows = [r for r in rows if r["time"] >= q.start_ns]
        rows.sort(key=lambda r: (r["time"], r["variable"]), reverse=not q.ascending)
        return [row_to_point(r, details=q.details) for r in rows]

    async def deleted(self, device_id: str, rows: list[Row], newest: NewestRows) -> None:
        """After a DELETE: the variables whose current point was among ``rows`` get
        their current values from what InfluxDB still holds."""
        ready, texts = await asyncio.to_thread(self._registry.current_values, device_id, None)
        if not ready:
            return  # the next read builds them all
        held = {_key(parse_line(t)) for t in texts}
        gone = {variable_from_tag(r["variable"]) for r in rows if _key(r) in held}
        if gone:
            await self.rebuild(device_id, gone, newest)

    async def rebuild(self, device_id: str, variables: Collection[str] | None,
                      newest: NewestRows) -> None:
        """Rebuild the rows of these variables (all: None) from InfluxDB."""
        self.rebuilds += 1
        await asyncio.to_thread(self._registry.forget_current, device_id,
                                None if variables is None else list(variables))
        found: Candidates = {}
        names = None if variables is None else sorted(variables)
        for kind in KINDS:
            for row in await newest(device_id, f"last_{kind}", names):
                point = row_to_stored(row)
                found[(device_id, point.variable, kind)] = (point.time_ns, point.slot,
                                                            encode_point(point))
        await asyncio.to_thread(self._registry.record_writes, rows_of(found), ())
        if variables is None:
            await asyncio.to_thread(self._registry.set_current_ready, device_id)


def answers(q: DataQuery) -> bool:
    """Whether the rows answer ``q`` exactly: a last_* query filtered at most by variable
    and start date (a point older than the start is not the newest after it either)."""
    return (q.kind in ("last_item", "last_value", "last_location") and not q.groups
            and not q.values and not q.ids and q.end_ns is None)


def _key(row: Row) -> tuple[int, str, int]:
    return int(row["time"]), row["variable"], int(row.get("slot") or 0)
