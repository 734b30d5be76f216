"""Token generation and hashing, Mosquitto compatibility, durations and the token cache."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from bridge.model.timeparse import parse_duration
from bridge.registry import TokenInfo
from bridge.registry.sqlite import SQLiteRegistry
from bridge.registry.tokens import (
    TokenCache,
    hashes_equal,
    mosquitto_hash,
    mosquitto_verify,
    new_device_id,
    new_token,
    token_hash,
    token_prefix,
)

S = 10**9


def test_new_token_is_long_random_hex() -> None:
    seen = {new_token() for _ in range(1000)}
    assert len(seen) == 1000
    for token in seen:
        assert re.fullmatch(r"[0-9a-f]{40}", token)  # 160 bits, URL- and header-safe


def test_hash_and_prefix() -> None:
    token = new_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_prefix(token) == token[:8]
    assert hashes_equal(token_hash(token), token_hash(token))
    assert not hashes_equal(token_hash(token), token_hash(token + "x"))
    assert not hashes_equal("abc", "abcd")


def test_new_device_id() -> None:
    before = int(time.time())
    ids = {new_device_id() for _ in range(1000)}
    after = int(time.time())
    assert len(ids) == 1000
    for device_id in ids:
        assert re.fullmatch(r"[0-9a-f]{24}", device_id)
        assert before <= int(device_id[:8], 16) <= after


MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


@pytest.mark.parametrize("password", [new_token(), new_token(), "pw", "ünï cødé $7$ :"])
def test_mosquitto_hash_matches_mosquitto_passwd(tmp_path: Path, password: str) -> None:
    """Recompute mosquitto_passwd's own line with its salt: byte-identical output."""
    path = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(path), "dev1", password],
                   check=True, capture_output=True, timeout=30)
    user, _, theirs = path.read_text().strip().partition(":")
    assert user == "dev1"
    match = re.fullmatch(r"\$7\$101\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", theirs)
    assert match, theirs
    salt = base64.b64decode(match.group(1))
    assert len(salt) == 12
    assert mosquitto_hash(password, salt=salt) == theirs
    assert mosquitto_verify(password, theirs)
    assert not mosquitto_verify(password + "x", theirs)


def test_mosquitto_hash_format_and_verify() -> None:
    token = new_token()
    first, second = mosquitto_hash(token), mosquitto_hash(token)
    assert first != second  # fresh salt each time
    for hashed in (first, second):
        _, seven, rounds, salt, digest = hashed.split("$")
        assert (seven, rounds) == ("7", "101")
        assert len(base64.b64decode(salt)) == 12 and len(base64.b64decode(digest)) == 64
        assert mosquitto_verify(token, hashed)
        assert not mosquitto_verify(new_token(), hashed)
    for broken in ("", "$6$abc$def", "$7$x$y$z", "$7$101$!!$!!", token):
        assert not mosquitto_verify(token, broken)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 90 * 60), ("2w", 14 * 86400),
    ("45s", 45), ("1 day", 86400), ("3 hours", 3 * 3600), ("30 minutes", 1800),
    ("2 weeks", 14 * 86400), ("1 second", 1), (" 5 MIN ", 300), ("7days", 7 * 86400),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds * S


@pytest.mark.parametrize("text", ["", "30", "d", "30x", "-1d", "0d", "1.5h", "1 month",
                                  "2 years", "3 hours ago", "1d2h", "１d", "9999999999d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_calendar_units_only_when_asked() -> None:
    assert parse_duration("1 month", calendar=True) == 30 * 86400 * S
    assert parse_duration("2 years", calendar=True) == 2 * 365 * 86400 * S


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
