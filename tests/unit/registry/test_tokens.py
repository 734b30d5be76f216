"""Token generation and hashing, Mosquitto compatibility and durations."""

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
from bridge.registry.tokens import (
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
