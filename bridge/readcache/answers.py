"""Answers to repeated reads, kept per device and query while the device's data version
(``bridge/readcache/versions.py``) is unchanged, so a dashboard or device polling ``last_value``
between writes is answered without InfluxDB.

Bounded three ways: an answer lives at most ``max_age`` seconds (the backstop for a
version bump that could not be recorded, or a writer that does not bump), answers hold at
most ``max_points`` points together (least recently used go first), and an answer larger
than a tenth of that is not kept at all.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridge.metrics import Metrics

Answer = list[dict[str, Any]] | float | int


@dataclass(slots=True)
class _Kept:
    version: int
    stored_at: float
    answer: Answer
    size: int


def _size(answer: Answer) -> int:
    return len(answer) if isinstance(answer, list) else 1


def _copy(answer: Answer) -> Answer:
    # A caller may reorder its list (the Data page sorts by name); the points themselves
    # are never changed after they are built.
    return list(answer) if isinstance(answer, list) else answer


class AnswerCache:
    def __init__(self, *, max_age: float, max_points: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.max_points = max_points
        self._clock = clock
        self._kept: OrderedDict[tuple[str, str], _Kept] = OrderedDict()
        self._points = 0
        self.hits = 0
        self.misses = 0

    async def lookup(self, device_id: str, key: str,
                     current: Callable[[str], Awaitable[int | None]]) -> Answer | None:
        """The kept answer (a copy) if it is not too old and the device's data version,
        ``await current(device_id)``, is still the one it was read at. ``current`` is
        asked only when an answer is kept. Counts a hit or a miss."""
        slot = (device_id, key)
        kept = self._kept.get(slot)
        if (kept is None or self._clock() - kept.stored_at >= self.max_age
                or await current(device_id) != kept.version):
            self.misses += 1
            return None
        if self._kept.get(slot) is kept:  # a put may have replaced it during the await
            self._kept.move_to_end(slot)
        self.hits += 1
        return _copy(kept.answer)

    def put(self, device_id: str, key: str, version: int, answer: Answer) -> None:
        size = _size(answer)
        if self.max_age <= 0 or size > self.max_points // 10:
            return
        self._drop((device_id, key))
        self._kept[(device_id, key)] = _Kept(version, self._clock(), _copy(answer), size)
        self._points += size
        while self._points > self.max_points:
            self._drop(next(iter(self._kept)))

    def describe(self, metrics: Metrics) -> None:
        metrics.counter("devicedata_read_cache_hits", "GETs answered from kept answers.",
                        lambda: float(self.hits))
        metrics.counter("devicedata_read_cache_misses",
                        "Cacheable GETs that had to ask InfluxDB.",
                        lambda: float(self.misses))
        metrics.gauge("devicedata_read_cache_points", "Points held in kept answers.",
                      lambda: float(self.points))

    def clear(self) -> None:
        self._kept.clear()
        self._points = 0

    def _drop(self, slot: tuple[str, str]) -> None:
        kept = self._kept.pop(slot, None)
        if kept is not None:
            self._points -= kept.size

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def points(self) -> int:
        return self._points
