"""The batching writer: many small submissions become few large writes.

A submission is a chunk of line protocol plus its point count; ``submit`` returns only
once that chunk is written, so HTTP can answer "N Data Added" and MQTT can acknowledge.

Batches start at most once per ``linger`` seconds, unless one holds ``max_points``: after
a quiet spell the first submission goes out at once (a lone request pays no delay), while
a steady stream is gathered into one write per ``linger``. Measured at a steady 2,000
messages/s, writing whenever no write was in flight instead made 1,211 writes/s where
this makes ~150, and cost InfluxDB and the bridge 3.4 times the CPU. The batcher knows
its sink only through ``Sink``: the InfluxDB store, or the spooling sink in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from bridge.errors import Overloaded, StoreRejected
from bridge.model.current import Candidates, merge

log = logging.getLogger("devicedata.batcher")


class Sink(Protocol):
    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: Candidates | None = None) -> None:
        """``devices``: whose lines ``body`` holds, when every submitter said so (the
        sink would otherwise read them from the lines); ``current``: the newest point
        per device, variable and kind among them."""


Done = Callable[[BaseException | None], None]


@dataclass(slots=True)
class _Submission:
    body: bytes
    count: int
    done: Done
    device: str | None
    current: Candidates | None


class Batcher:
    def __init__(self, sink: Sink, *, max_points: int = 5000, linger: float = 0.005,
                 max_pending_points: int = 200_000, max_in_flight: int = 2,
                 on_written: Callable[[int, float], None] | None = None) -> None:
        self._sink = sink
        self._on_written = on_written  # (points, seconds) of each successful write
        self._max_points = max_points
        self._linger = linger
        self._max_pending = max_pending_points
        self._pending: deque[_Submission] = deque()
        self._pending_points = 0
        self._wakeup = asyncio.Event()
        # Ends a batch's growing early: it is full, or the writer is closing.
        self._go = asyncio.Event()
        self._last_start = -float("inf")  # loop time the last batch went out
        self._task: asyncio.Task[None] | None = None
        # Two writes at once keep InfluxDB busy while the next batch is being built (its
        # ingest rate nearly doubles from one connection to two); batches may then land out
        # of order, which only matters for the same key, written by the same device twice.
        self._slots = asyncio.Semaphore(max_in_flight)
        self._writing: set[asyncio.Task[None]] = set()
        self._closing = False
        self.batches_written = 0
        self.points_written = 0

    @property
    def sink(self) -> Sink:
        return self._sink

    @property
    def pending_points(self) -> int:
        return self._pending_points

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    async def submit(self, body: bytes, count: int, device: str | None = None,
                     current: Candidates | None = None) -> None:
        """Wait until ``body`` (all lines of ``device``, when given) is written. Raises
        what the sink raised for it, or ``Overloaded`` at once when too much is already
        waiting."""
        if self._pending and self._pending_points + count > self._max_pending:
            raise Overloaded(f"{self._pending_points} points are waiting to be written")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(exc: BaseException | None) -> None:
            if done.done():
                return
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)

        self.enqueue(body, count, settle, device, current)
        # A cancelled waiter (client gone) cancels ``done``; settle() then ignores it and
        # the submission is still written with its batch.
        await done

    def enqueue(self, body: bytes, count: int, done: Done, device: str | None = None,
                current: Candidates | None = None) -> None:
        """Queue ``body`` without waiting; ``done(None)`` once written, ``done(exc)`` if not.
        No overload check: callers that use this bound their own intake (the MQTT bridge
        stops reading instead)."""
        if self._closing or self._task is None:
            raise Overloaded("the writer is shutting down", retry_after=5.0)
        self._pending.append(_Submission(body, count, done, device, current))
        self._pending_points += count
        self._wakeup.set()
        if self._pending_points >= self._max_points:
            self._go.set()

    async def close(self) -> None:
        """Drain: everything submitted before close is written (or failed) first."""
        self._closing = True
        self._wakeup.set()
        self._go.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if not self._pending:
                if self._closing:
                    if self._writing:
                        await asyncio.gather(*self._writing)
                    return
                self._wakeup.clear()
                continue
            loop = asyncio.get_running_loop()
            wait = self._last_start + self._linger - loop.time()
            if wait > 0 and not self._closing and self._pending_points < self._max_points:
                self._go.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._go.wait(), wait)
            await self._slots.acquire()
            self._last_start = loop.time()
            task = asyncio.create_task(self._write(self._take()))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    async def _write(self, batch: list[_Submission]) -> None:
        try:
            await self._flush(batch)
        finally:
            self._slots.release()

    def _take(self) -> list[_Submission]:
        batch: list[_Submission] = []
        points = 0
        while self._pending and (not batch or points + self._pending[0].count <= self._max_points):
            sub = self._pending.popleft()
            batch.append(sub)
            points += sub.count
        self._pending_points -= points
        return batch

    async def _flush(self, batch: list[_Submission]) -> None:
        started = time.perf_counter()
        try:
            devices = {s.device for s in batch if s.device is not None}
            unnamed = any(s.device is None for s in batch)
            current: Candidates | None = None
            for s in batch:
                if s.current:
                    if current is None:
                        current = dict(s.current)
                    else:
                        merge(current, s.current)
            await self._sink.write(b"\n".join(s.body for s in batch),
                                   None if unnamed else devices, current)
        except StoreRejected as exc:
            if len(batch) == 1:
                batch[0].done(exc)
                return
            # One bad submission must not sink the others: write each on its own.
            log.warning("event=batch_rejected submissions=%d reason=%s", len(batch), exc)
            for sub in batch:
                await self._flush([sub])
            return
        except Exception as exc:  # every failure reaches the waiting submitters
            for sub in batch:
                sub.done(exc)
            return
        self.batches_written += 1
        points = 0
        for sub in batch:
            points += sub.count
            sub.done(None)
        self.points_written += points
        if self._on_written is not None:
            self._on_written(points, time.perf_counter() - started)
