"""The sink that never loses an acknowledged batch: InfluxDB when it answers, the on-disk
spool when it does not, and a drainer that moves the spool into InfluxDB in order.

``write`` returns only when the batch is in InfluxDB or fsynced in the spool, so the
caller may acknowledge it (HTTP 200, MQTT PUBACK). Once anything is spooled, later
batches queue behind it in the spool until the drainer has caught up, so batches reach
InfluxDB in the order they were acknowledged. Every line carries its timestamp, so a
batch written twice (a crash between a drain and its commit) lands on the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass

from bridge.errors import Overloaded, StoreRejected, StoreUnavailable
from bridge.influx.lines import parse_line
from bridge.influx.schema import devices_in, row_value, variable_from_tag
from bridge.influx.store import InfluxStore
from bridge.metrics import Metrics
from bridge.model.current import Candidates, merge
from bridge.write.spool import Cursor, Spool, SpoolFull

log = logging.getLogger("devicedata.spool")


@dataclass
class SpoolStats:
    batches_spooled: int = 0
    batches_drained: int = 0
    bytes_drained: int = 0
    lines_rejected: int = 0
    drain_errors: int = 0


class SpoolingSink:
    def __init__(self, store: InfluxStore, spool: Spool, *, drain_records: int = 1000,
                 drain_bytes: int = 8 * 1024 * 1024, retry_max: float = 5.0) -> None:
        self.store = store
        self.spool = spool
        self.stats = SpoolStats()
        self._drain_records = drain_records
        self._drain_bytes = drain_bytes
        self._retry_max = retry_max
        self._spooling = False
        self._appending = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def describe(self, metrics: Metrics) -> None:
        """Spool depth and drain progress, read at scrape time."""
        metrics.gauge("devicedata_spool_records", "Batches waiting in the on-disk spool.",
                      lambda: float(self.spool.records))
        metrics.gauge("devicedata_spool_bytes", "Bytes waiting in the on-disk spool.",
                      lambda: float(self.spool.size_bytes))
        metrics.counter("devicedata_spool_batches_drained",
                        "Spooled batches written to InfluxDB.",
                        lambda: float(self.stats.batches_drained))
        metrics.counter("devicedata_spool_lines_rejected",
                        "Spooled lines InfluxDB refused (kept in rejected.lp).",
                        lambda: float(self.stats.lines_rejected))

    @property
    def spooling(self) -> bool:
        return self._spooling

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.open)
        if not self.spool.empty:
            log.warning("event=spool_recovered records=%d bytes=%d", self.spool.records,
                        self.spool.size_bytes)
            self._spooling = True
        self._task = asyncio.create_task(self._drain_forever(), name="spool-drain")
        self._wake.set()

    async def close(self) -> None:
        """Stop draining; what is still spooled stays on disk for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.spool.close)

    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: Candidates | None = None) -> None:
        """Spooled points become current when the drain writes them (``current`` is
        then read again from their lines)."""
        if not self._spooling:
            try:
                await self.store.write(body, devices, current)
                return
            except StoreUnavailable as exc:
                log.warning("event=spooling_started reason=%s", exc)
                self._spooling = True
        self._appending += 1
        try:
            await asyncio.to_thread(self.spool.append, [body])
        except SpoolFull:
            raise Overloaded("InfluxDB is unavailable and the local spool is full",
                             retry_after=30.0) from None
        finally:
            self._appending -= 1
        self.stats.batches_spooled += 1
        self._wake.set()

    async def _drain_forever(self) -> None:
        delay = 0.2
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
                delay = 0.2
            except StoreUnavailable as exc:
                self.stats.drain_errors += 1
                log.info("event=spool_drain_waiting records=%d reason=%s", self.spool.records,
                         exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                self._wake.set()

    def _read_chunk(self) -> tuple[list[bytes], bytes, set[str], Candidates, Cursor]:
        """In a worker thread: a chunk of the spool, joined, whose lines it holds and
        their candidates for current values (passes over up to 8 MiB that would
        otherwise hold up the event loop)."""
        records, cursor = self.spool.read(self._drain_records, self._drain_bytes)
        body = b"\n".join(records)
        return records, body, devices_in(body), current_in(body), cursor

    async def _drain(self) -> None:
        while not self.spool.empty:
            records, body, devices, current, cursor = await asyncio.to_thread(
                self._read_chunk)
            if not records:
                break
            try:
                await self.store.write(body, devices, current)
            except StoreRejected as exc:
                await self._isolate(records, str(exc))
            await asyncio.to_thread(self.spool.commit, cursor)
            self.stats.batches_drained += len(records)
            self.stats.bytes_drained += len(body)
        # Only now may writes go straight to InfluxDB again: nothing older is waiting.
        if self.spool.empty and self._appending == 0 and self._spooling:
            self._spooling = False
            log.warning("event=spool_drained batches=%d", self.stats.batches_drained)

    async def _isolate(self, records: list[bytes], reason: str) -> None:
        """A refused chunk: write record by record, then line by line, so that only the
        lines InfluxDB itself refuses are set aside (never retried forever)."""
        for record in records:
            try:
                await self.store.write(record)
                continue
            except StoreRejected:
                pass
            for line in record.split(b"\n"):
                try:
                    await self.store.write(line)
                except StoreRejected as exc:
                    self.stats.lines_rejected += 1
                    log.error("event=spool_line_rejected reason=%s", exc)
                    await asyncio.to_thread(self.spool.dead_letter, line, str(exc))
        log.warning("event=spool_chunk_rejected records=%d reason=%s", len(records), reason)


def current_in(body: bytes) -> Candidates:
    """Candidates for current values from lines of ours (a line that is not one is left
    to InfluxDB to judge)."""
    out: Candidates = {}
    for line in body.decode("utf-8", "replace").split("\n"):
        try:
            row = parse_line(line)
            variable = variable_from_tag(row["variable"])
            slot = int(row.get("slot") or 0)
        except (ValueError, KeyError, IndexError):
            continue
        kinds = ["item"]
        if row_value(row) is not None:
            kinds.append("value")
        if row.get("lat") is not None:
            kinds.append("location")
        merge(out, {(row["device"], variable, kind): (row["time"], slot, line)
                    for kind in kinds})
    return out
