"""Which devices exist, as the bridge needs to know for every message, without ever making
the event loop wait on the registry (a PostgreSQL registry may be across a network).

The whole id set is reloaded in a worker thread every ``ttl`` seconds. An id not in the
set (a device created since the last reload, or an id that does not exist) is looked up
in a worker thread too: at most one look-up per id at a time, at most ``max_lookups``
at once, and a miss is remembered for ``ttl`` so a publisher of random ids costs the
registry one query per id and the other devices nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bridge.errors import DeviceDataError, NotFound
from bridge.registry import Registry

log = logging.getLogger("devicedata.bridge")

MAX_REMEMBERED_MISSES = 100_000


class KnownDevices:
    def __init__(self, registry: Registry, ttl: float, *, max_lookups: int = 4) -> None:
        self._registry = registry
        self._ttl = ttl
        self._ids: frozenset[str] = frozenset()
        self._misses: dict[str, float] = {}  # id -> monotonic time the miss expires
        self._lookups: dict[str, asyncio.Future[bool]] = {}
        self._slots = asyncio.Semaphore(max_lookups)
        self.lookups = 0  # registry look-ups of single ids, for tests and metrics

    def known(self, device_id: str) -> bool | None:
        """From memory: True, False (a recent miss), or None when ``lookup`` must ask."""
        if device_id in self._ids:
            return True
        expires = self._misses.get(device_id)
        if expires is not None and expires > time.monotonic():
            return False
        return None

    async def lookup(self, device_id: str) -> bool:
        """Ask the registry in a worker thread; concurrent callers for one id share it."""
        running = self._lookups.get(device_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._lookups[device_id] = future
        try:
            async with self._slots:
                found = await asyncio.to_thread(self._exists, device_id)
        except Exception as exc:  # registry unreachable: refuse the message, ask again next time
            log.warning("event=device_lookup_failed reason=%s", exc)
            future.set_result(False)
            return False
        finally:
            del self._lookups[device_id]
        if found:
            self._ids = self._ids | {device_id}
        else:
            if len(self._misses) >= MAX_REMEMBERED_MISSES:
                self._misses.clear()
            self._misses[device_id] = time.monotonic() + self._ttl
        future.set_result(found)
        return found

    def _exists(self, device_id: str) -> bool:
        self.lookups += 1
        try:
            self._registry.get_device(device_id)
        except NotFound:
            return False
        return True

    def reload(self) -> None:
        """Called in a worker thread."""
        ids = frozenset(d.id for d in self._registry.list_devices())
        self._ids = ids  # one assignment: readers see the old set or the new one
        self._misses.clear()

    async def refresh_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.reload)
            except DeviceDataError as exc:
                log.warning("event=device_list_failed reason=%s", exc)
            await asyncio.sleep(self._ttl)
