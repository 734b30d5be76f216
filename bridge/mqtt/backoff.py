"""How long the bridge waits before it connects again: capped, with decorrelated jitter.

After a broker restart every bridge of a fleet loses its connection at the same moment. A
plain doubling backoff would bring them all back in the same instants, again and again; a
random wait spreads them. "Decorrelated jitter" (each wait drawn between the first wait and
three times the previous one, capped) never waits less than ``initial`` (no hammering a
broker that just refused us) and, unlike "full jitter", does not make an unlucky bridge
wait the cap on its second attempt.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("backoff needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._rng = rng or random.Random()
        self._last = initial

    def next(self) -> float:
        """The next wait, in seconds: between ``initial`` and ``cap``."""
        wait = min(self.cap, self._rng.uniform(self.initial, self._last * 3))
        self._last = wait
        return wait

    def reset(self) -> None:
        """After a connection that worked: the next wait starts small again."""
        self._last = self.initial
