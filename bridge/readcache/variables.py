"""Each device's variables, known without asking InfluxDB per write: what the per-device
limit on distinct variables (``DEVICEDATA_MAX_VARIABLES``) is checked against.

What is counted is series, InfluxDB's unit of cost: a variable is one, and each extra
slot of it (points of one variable at one time in one message) one more; otherwise a
device could grow the index without bound under a few names (docs/schema.md,
Cardinality). Names here are ``schema.series_name``s.

A device's set is read once from InfluxDB's index (``SHOW SERIES``, no data read), the
first time one of its writes needs it: the faces ``prepare`` it (HTTP awaits it, the bridge
holds that device's messages aside while it loads) so ``admit`` is a set difference on
the event loop. Names the device adds are added to the set as they are admitted. A write
with only known names costs nothing more; a set older than ``ttl`` is refreshed in the
background when its device adds a name (catching names other processes admitted), the
stale set answering meanwhile. Sets are evicted least recently used past ``max_names``
names in all.

Each process counts on its own between refreshes, so a device writing through P processes
can reach P times the limit for a moment, never more. When InfluxDB cannot say, the set
starts empty (writes are not refused because the store is away) and is read again later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from bridge.errors import FieldError, StoreError, ValidationError
from bridge.influx.influxql import device_series_statement
from bridge.influx.schema import series_name_from_key
from bridge.influx.store import InfluxStore

log = logging.getLogger("devicedata.variables")

TTL = 300.0  # seconds before a set is read again, when its device adds a name
RETRY = 5.0  # after a failed read, how soon the next one may run
MAX_NAMES = 500_000  # names kept in all (about 50 MB at worst)
MAX_LOADS = 8  # reads of InfluxDB's index at once
SHOWN = 100  # at most this many refused points are named in one answer
_NEW = "is a new variable"
_SLOT = "shares variable and time with another point, which counts as one more variable,"


@dataclass(slots=True)
class _Entry:
    names: set[str]
    read_at: float
    refreshing: bool = False
    added: set[str] = field(default_factory=set)  # admitted while a refresh runs


class DeviceVariables:
    """``limit`` 0: no limit (nothing is read or kept)."""

    def __init__(self, store: InfluxStore, limit: int, *, ttl: float = TTL,
                 max_names: int = MAX_NAMES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = store
        self.limit = limit
        self.ttl = ttl
        self.max_names = max_names
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._kept = 0  # names in all entries
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._slots = asyncio.Semaphore(MAX_LOADS)
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # index reads sent to InfluxDB, for tests

    def ready(self, device_id: str) -> bool:
        """Whether ``admit`` can answer for the device from memory."""
        return self.limit <= 0 or device_id in self._entries

    async def prepare(self, device_id: str) -> None:
        """Read the device's set unless it is in memory; concurrent callers share one read.
        Never raises: when InfluxDB cannot answer, the set starts empty."""
        if self.ready(device_id):
            return
        running = self._loading.get(device_id)
        if running is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loading[device_id] = future
        try:
            names = await self._read(device_id)
            if device_id not in self._entries:  # else admit started it, and its refresh
                self._put(device_id, _Entry(names or set(), self._read_time(names)))
        finally:
            del self._loading[device_id]
            future.set_result(None)

    def admit_names(self, device_id: str, names: list[str]) -> None:
        """``admit`` for a validated write, given each point's series name."""
        if self.limit <= 0 or not names:
            return
        self.admit(device_id, set(names),
                   lambda new: [(i, name) for i, name in enumerate(names) if name in new])

    def admit(self, device_id: str, variables: Collection[str],
              new_at: Callable[[set[str]], list[tuple[int, str]]]) -> None:
        """Accept a write's variables, or raise ``ValidationError`` when its new names
        would take the device past the limit. ``new_at(names)`` gives the points carrying
        those names (index, name), for the answer."""
        entry = self._entries.get(device_id)
        if entry is None:  # not prepared: count from empty, read the truth in the background
            entry = _Entry(set(), self.clock() - self.ttl)
            self._put(device_id, entry)
        else:
            self._entries.move_to_end(device_id)
        if entry.names.issuperset(variables):
            return
        new = set(variables) - entry.names
        if len(entry.names) + len(new) > self.limit:
            have = len(entry.names)
            errors = [FieldError("variable", (_SLOT if "\x00" in name else _NEW)
                                 + f" past this device's limit of {self.limit}", index=i)
                      for i, name in new_at(new)[:SHOWN]]
            raise ValidationError(
                f"Variable limit reached: a device may have at most {self.limit} distinct "
                f"variables (DEVICEDATA_MAX_VARIABLES); this one has {have} and the request "
                f"adds {len(new)} new", errors)
        entry.names |= new
        self._kept += len(new)
        if entry.refreshing:
            entry.added |= new
        elif self.clock() - entry.read_at >= self.ttl:
            entry.added = new  # perhaps not stored yet when the read runs
            self._refresh(device_id, entry)
        self._evict()

    def forget(self, device_id: str) -> None:
        """After a delete: the device's names may be gone; read them again when needed."""
        entry = self._entries.pop(device_id, None)
        if entry is not None:
            self._kept -= len(entry.names)

    def __len__(self) -> int:
        return len(self._entries)

    # -- internals ------------------------------------------------------------------------

    def _read_time(self, names: set[str] | None) -> float:
        """A failed read counts as old enough to be retried RETRY seconds from now."""
        now = self.clock()
        return now if names is not None else now - self.ttl + RETRY

    async def _read(self, device_id: str) -> set[str] | None:
        try:
            async with self._slots:
                self.reads += 1
                (series,) = await self.store.query([device_series_statement(device_id)])
        except StoreError as exc:
            log.warning("event=variables_unreadable device=%s reason=%s", device_id, exc)
            return None
        return {series_name_from_key(str(row.get("key", ""))) for s in series for row in s.rows}

    def _refresh(self, device_id: str, entry: _Entry) -> None:
        entry.refreshing = True

        async def run() -> None:
            names = await self._read(device_id)
            entry.refreshing = False
            if self._entries.get(device_id) is not entry:
                return  # forgotten or evicted meanwhile
            if names is None:
                entry.read_at = self._read_time(None)
                entry.added = set()
            else:
                self._merge(device_id, names)

        task = asyncio.get_running_loop().create_task(run(), name="variables-refresh")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _merge(self, device_id: str, names: set[str]) -> None:
        """InfluxDB's names plus those admitted since the read began (not all stored yet)."""
        entry = self._entries[device_id]
        merged = names | entry.added
        self._kept += len(merged) - len(entry.names)
        entry.names = merged
        entry.added = set()
        entry.read_at = self.clock()
        self._evict()

    def _put(self, device_id: str, entry: _Entry) -> None:
        self.forget(device_id)
        self._entries[device_id] = entry
        self._kept += len(entry.names)
        self._evict()

    def _evict(self) -> None:
        while self._kept > self.max_names and len(self._entries) > 1:
            _, entry = self._entries.popitem(last=False)
            self._kept -= len(entry.names)
