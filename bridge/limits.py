"""Per-key token buckets: how devicedata keeps one device (or one log line, or one error
report) from taking more than its share. A bucket per key, a bounded number of keys (the
least recently seen go first, so a flood of new keys cannot grow memory)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

REMEMBERED = 10_000  # keys a gate keeps state for


class Gate:
    """Per-key token bucket: ``burst`` units at once, then one unit per ``every`` seconds.
    ``passes(key, cost)`` takes ``cost`` units and returns how many tries were held back
    since the key last passed, or None (taking nothing) when there are not enough."""

    def __init__(self, every: float, burst: float = 1, remembered: int = REMEMBERED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._burst = burst
        self._remembered = remembered
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, float, int]] = OrderedDict()

    def passes(self, key: str, cost: float = 1.0) -> int | None:
        now = self._clock()
        tokens, at, held = self._state.pop(key, (float(self._burst), now, 0))
        tokens = min(float(self._burst), tokens + (now - at) / self._every)
        if tokens >= cost:
            self._state[key] = (tokens - cost, now, 0)
            result: int | None = held
        else:
            self._state[key] = (tokens, now, held + 1)
            result = None
        while len(self._state) > self._remembered:
            self._state.popitem(last=False)
        return result

    def __len__(self) -> int:
        return len(self._state)

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``cost`` units would pass for ``key`` (0 when they would now)."""
        state = self._state.get(key)
        if state is None:
            return 0.0
        tokens, at, _ = state
        tokens = min(float(self._burst), tokens + (self._clock() - at) / self._every)
        return max(0.0, (cost - tokens) * self._every)

