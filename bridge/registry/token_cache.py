"""The per-process authentication cache in front of ``Registry.authenticate`` (device
tokens), ``Registry.authenticate_network`` (network tokens) or
``Registry.token_for_serial`` (serial numbers)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from bridge.registry.interface import NetworkInfo, Registry, TokenInfo
from bridge.registry.tokens import token_hash


class _Credential(Protocol):
    def active(self, now_ns: int) -> bool: ...


C = TypeVar("C", bound=_Credential)


class CredentialCache(Generic[C]):
    """A small per-process TTL cache in front of ``Registry.authenticate``.

    Keyed by the token's hash so plain tokens never sit in memory longer than a request.
    ``ttl_seconds`` bounds how long a revocation (or a new token after a failed attempt)
    takes to be noticed by this process. Expiry is re-checked against the wall clock on
    every hit, so a cached token never outlives its ``expires_ns``.
    """

    def __init__(self, authenticate: Callable[[str, int], C | None], ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._authenticate = authenticate
        self._ttl = ttl_seconds
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        self._max = max(1, max_entries)
        self._entries: OrderedDict[str, tuple[float, C | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, C | None]:
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

    def lookup(self, token: str) -> C | None:
        """The token's info if it is active now, else None."""
        hit, info = self.cached(token)
        if hit:
            return info
        key = token_hash(token)
        now_ns = self._wall_clock_ns()
        # The registry call happens outside the lock: concurrent misses may both ask,
        # which is harmless, while holding the lock would serialise every request on I/O.
        info = self._authenticate(token, now_ns)
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


class TokenCache(CredentialCache[TokenInfo]):
    """Device tokens: ``Registry.authenticate`` behind the cache."""

    def __init__(self, registry: Registry, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(registry.authenticate, ttl_seconds, clock, max_entries, wall_clock_ns)


class NetworkCache(CredentialCache[NetworkInfo]):
    """Network tokens: ``Registry.authenticate_network`` behind the cache."""

    def __init__(self, registry: Registry, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(registry.authenticate_network, ttl_seconds, clock, max_entries,
                         wall_clock_ns)


class SerialCache(CredentialCache[TokenInfo]):
    """Serial numbers (LoRaWAN DevEUIs): ``Registry.token_for_serial`` behind the cache,
    unknown ones included, so a network server's uplinks for an unknown or throttled
    device cost the registry one look-up per serial and TTL, not one per uplink."""

    def __init__(self, registry: Registry, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(registry.token_for_serial, ttl_seconds, clock, max_entries,
                         wall_clock_ns)
