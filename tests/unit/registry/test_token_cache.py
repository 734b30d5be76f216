"""The per-process token cache: hits, expiry, bounds, and in front of a real SQLite registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.registry import TokenInfo
from bridge.registry.sqlite import SQLiteRegistry
from bridge.registry.token_cache import SerialCache, TokenCache
from bridge.registry.tokens import (
    token_hash,
)

S = 10**9


class FakeRegistry:
    """Only what TokenCache uses: ``authenticate``, counting calls."""

    def __init__(self) -> None:
        self.tokens: dict[str, TokenInfo] = {}
        self.calls: list[str] = []

    def authenticate(self, token: str, now_ns: int | None = None) -> TokenInfo | None:
        self.calls.append(token)
        info = self.tokens.get(token)
        return info if info is not None and info.active(now_ns or time.time_ns()) else None


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall_ns = 1_700_000_000 * S

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_ns += int(seconds * S)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


def _cache(fake: FakeRegistry, clock: Clock, ttl: float = 2.0, size: int = 10000) -> TokenCache:
    return TokenCache(fake, ttl, clock=lambda: clock.mono,  # type: ignore[arg-type]
                      max_entries=size, wall_clock_ns=lambda: clock.wall_ns)


def _info(clock: Clock, expires_in: float | None = None) -> TokenInfo:
    return TokenInfo(prefix="abcdef01", device_id="d" * 24, permission="write",
                     created_ns=clock.wall_ns,
                     expires_ns=None if expires_in is None else clock.wall_ns
                     + int(expires_in * S))


def test_cache_hits_within_ttl(fake: FakeRegistry, clock: Clock) -> None:
    fake.tokens["tok"] = info = _info(clock)
    cache = _cache(fake, clock)
    assert cache.lookup("tok") == info
    clock.advance(1.9)
    assert cache.lookup("tok") == info
    assert fake.calls == ["tok"]
    clock.advance(0.2)
    del fake.tokens["tok"]  # revoked: seen once the entry is older than the ttl
    assert cache.lookup("tok") is None
    assert fake.calls == ["tok", "tok"]


def test_cache_negative_results_expire(fake: FakeRegistry, clock: Clock) -> None:
    cache = _cache(fake, clock)
    assert cache.lookup("new") is None
    fake.tokens["new"] = info = _info(clock)
    clock.advance(1.0)
    assert cache.lookup("new") is None
    assert len(fake.calls) == 1
    clock.advance(1.0)
    assert cache.lookup("new") == info
    assert len(fake.calls) == 2


def test_cache_rechecks_expiry_on_hit(fake: FakeRegistry, clock: Clock) -> None:
    fake.tokens["tok"] = _info(clock, expires_in=0.5)
    cache = _cache(fake, clock, ttl=60)
    assert cache.lookup("tok") is not None
    clock.advance(0.6)
    assert cache.lookup("tok") is None
    assert len(fake.calls) == 1


def test_cache_is_bounded_and_keyed_by_hash(fake: FakeRegistry, clock: Clock) -> None:
    for name in ("a", "b", "c"):
        fake.tokens[name] = _info(clock)
    cache = _cache(fake, clock, size=2)
    cache.lookup("a")
    cache.lookup("b")
    cache.lookup("a")  # a is now the most recently used
    cache.lookup("c")  # evicts b
    assert len(cache) == 2
    keys = set(cache._entries)
    assert keys == {token_hash("a"), token_hash("c")}
    fake.calls.clear()
    cache.lookup("a")
    cache.lookup("b")
    assert fake.calls == ["b"]
    cache.clear()
    assert len(cache) == 0


def test_cache_in_front_of_sqlite(tmp_path: Path, clock: Clock) -> None:
    reg = SQLiteRegistry(tmp_path / "r.sqlite3")
    clock.wall_ns = time.time_ns()
    cache = TokenCache(reg, 2.0, clock=lambda: clock.mono, wall_clock_ns=lambda: clock.wall_ns)
    dev = reg.create_device("d")
    issued = reg.create_token(dev.id, "full")
    assert cache.lookup(issued.token) == issued.info
    reg.revoke_token(issued.token)
    assert cache.lookup(issued.token) == issued.info  # cached: revocation delay <= ttl
    clock.advance(2.0)
    assert cache.lookup(issued.token) is None
    assert issued.token not in repr(cache._entries)
    reg.close()


class CountingSerials(SQLiteRegistry):
    """A real SQLite registry that counts its serial look-ups."""

    serial_calls = 0

    def token_for_serial(self, serial: str, now_ns: int | None = None) -> TokenInfo | None:
        self.serial_calls += 1
        return super().token_for_serial(serial, now_ns)


def test_serials_known_and_unknown_cost_one_lookup_per_ttl(tmp_path: Path,
                                                            clock: Clock) -> None:
    reg = CountingSerials(tmp_path / "r.sqlite3")
    clock.wall_ns = time.time_ns()
    cache = SerialCache(reg, 2.0, clock=lambda: clock.mono, wall_clock_ns=lambda: clock.wall_ns)
    dev = reg.create_device("sensor")
    issued = reg.create_token(dev.id, "write", serial="70b3d57ed005ab01")
    for _ in range(100):  # a network server's uplinks, for a known and an unknown DevEUI
        assert cache.lookup("70b3d57ed005ab01") == issued.info
        assert cache.lookup("70b3d57ed005ab02") is None
    assert reg.serial_calls == 2
    clock.advance(2.0)
    assert cache.lookup("70b3d57ed005ab02") is None and reg.serial_calls == 3
    reg.close()
