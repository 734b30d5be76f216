"""Per-device data versions in the shared registry: how a process that keeps an answer
learns that another process (an API, a bridge, a spool drain minutes later, a PUT or a
DELETE) has changed the device's data since.

- A reader that is about to keep an answer first *watches* the device (a flag in the
  registry) and reads its version, then queries InfluxDB, and keeps the answer under
  that version. It serves it again while the version is unchanged.
- A writer, once InfluxDB has answered its write and before it acknowledges it, looks
  whether any of its devices is watched, and if so bumps their versions and unwatches
  them.

Why this is safe: a write that completes after the reader's watch sees the flag and
bumps, so the kept answer is never served again; a write that saw no flag completed
before the watch, so the reader's query, which starts after the watch, includes it. And
why it is cheap: a device nobody reads costs its writers one indexed read per batch,
done on the event loop for SQLite (about 20 µs, no file write); the bump, a registry
write, happens at most once per answer kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from bridge.errors import DeviceDataError
from bridge.metrics import Metrics
from bridge.registry import Registry

log = logging.getLogger("devicedata.versions")

WARN_EVERY_SECONDS = 60.0
T = TypeVar("T")


class DataVersions:
    def __init__(self, registry: Registry, *,
                 on_bump_failed: Callable[[], None] | None = None) -> None:
        """``on_bump_failed`` runs when a bump could not be recorded: this process then
        drops what it kept (other processes' kept answers live at most their max age)."""
        self._registry = registry
        self._on_bump_failed = on_bump_failed
        self._warned = -WARN_EVERY_SECONDS
        self.bump_failures = 0
        self.bumps = 0

    def describe(self, metrics: Metrics) -> None:
        metrics.counter("devicedata_data_version_bumps",
                        "Writes that ended a watched device's kept answers.",
                        lambda: float(self.bumps))
        metrics.counter("devicedata_data_version_bump_failures",
                        "Writes whose data version could not be bumped in the registry.",
                        lambda: float(self.bump_failures))

    async def bump(self, device_ids: Collection[str]) -> None:
        """Never raises: the data is already stored, so the write must still succeed."""
        if not device_ids:
            return
        try:
            watched = await _without_waiting(self._registry.watched_devices, device_ids)
            if watched:
                self.bumps += 1
                # A registry write: never on the event loop (a file write can stall).
                await asyncio.to_thread(self._registry.bump_data_versions, watched)
        except DeviceDataError as exc:
            self.bump_failures += 1
            if self._on_bump_failed is not None:
                self._on_bump_failed()
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY_SECONDS:
                self._warned = now
                log.warning("event=data_version_not_bumped devices=%d failures=%d reason=%s",
                            len(device_ids), self.bump_failures, exc)

    async def current(self, device_id: str) -> int | None:
        """The device's version, or None when unknown or unreadable."""
        try:
            return await _without_waiting(self._registry.data_version, device_id)
        except DeviceDataError:
            return None

    async def watch(self, device_id: str) -> int | None:
        """Watch the device and return its version; None when unknown or when the
        registry cannot be written (then keep nothing)."""
        try:
            return await asyncio.to_thread(self._registry.watch_data_version, device_id)
        except DeviceDataError:
            return None


async def _without_waiting(call: Callable[..., T], arg: Any) -> T:
    """``call(arg)`` on the loop when the registry can answer at once (SQLite, lock free),
    else in a thread: a thread hop costs about 0.2 ms of CPU here, more than the read."""
    try:
        return call(arg, wait=False)
    except BlockingIOError:
        return await asyncio.to_thread(call, arg)
