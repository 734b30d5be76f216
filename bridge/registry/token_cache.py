"""The per-process authentication cache in front of ``Registry.authenticate``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from bridge.registry.interface import Registry, TokenInfo
from bridge.registry.tokens import token_hash


class TokenCache:
    """A small per-process TTL cache in front of ``Registry.authenticate``.

    Keyed by the token's hash so plain tokens never sit in memory longer than a request.
    ``ttl_seconds`` bounds how long a revocation (or a new token after a failed attempt)
    takes to be noticed by this process. Expiry is re-checked against the wall clock on
    every hit, so a cached token never outlives its ``expires_ns``.
    """

    def __init__(self, registry: Registry, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._registry = registry
        self._ttl = ttl_seconds
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        self._max = max(1, max_entries)
        self._entries: OrderedDict[str, tuple[float, TokenInfo | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, TokenInfo | None]:
        """``(True, info or None)`` when the cache can answer, ``(False, None)`` when the
        registry must be asked (``lookup`` does); lets async callers skip a thread hop."""
        key = token_hash(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() - entry[0] < self._ttl:
                self._entries.move_to_end(key)
                info = entry[1]
                active = info is not None and info.active(self._wall_clock_ns())
                return True, info if active else None
        return False, None

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's info if it is active now, else None."""
        hit, info = self.cached(token)
        if hit:
            return info
        key = token_hash(token)
        now_ns = self._wall_clock_ns()
        # The registry call happens outside the lock: concurrent misses may both ask,
        # which is harmless, while holding the lock would serialise every request on I/O.
        info = self._registry.authenticate(token, now_ns)
        with self._lock:
            self._entries[key] = (self._clock(), info)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return info

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
