"""Who the broker hooks let in: every active write/full token of a device, our own users with
the shared password, the admin; never a word on whether a device id exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.registry.broker_auth import DEVICE_ROLE, Identity
from bridge.registry.broker_login import BrokerLogin
from bridge.registry.dynsec import ADMIN_ROLE, BRIDGE_ROLE
from bridge.registry.sqlite import SQLiteRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting(SQLiteRegistry):
    """Counts what the log-in asks the registry, to show two answers took the same path."""

    calls: list[str]

    def authenticate(self, token: str, now_ns: int | None = None) -> Any:
        self.calls.append("authenticate")
        return super().authenticate(token, now_ns)

    def service_users(self) -> list[tuple[str, str]]:
        self.calls.append("service_users")
        return super().service_users()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Counting]:
    reg = Counting(tmp_path / "r.sqlite3")
    reg.calls = []
    yield reg
    reg.close()


def make(registry: Counting, clock: Clock, ttl: float = 2.0) -> BrokerLogin:
    return BrokerLogin(registry, shared_password="shared-pw", admin_username="admin",
                       admin_password="admin-pw", ttl=ttl, clock=clock)


def test_every_write_or_full_token_of_a_device_logs_in(registry: Counting) -> None:
    device = registry.create_device("d")
    first = registry.create_token(device.id, "write").token
    second = registry.create_token(device.id, "full").token
    reader = registry.create_token(device.id, "read").token
    login = make(registry, Clock())
    assert login.authenticate(device.id, first) == Identity(device.id, DEVICE_ROLE)
    assert login.authenticate(device.id, second) == Identity(device.id, DEVICE_ROLE)
    assert login.authenticate(device.id, reader) is None


def test_a_token_logs_in_only_as_its_own_device(registry: Counting) -> None:
    mine, other = registry.create_device("a"), registry.create_device("b")
    token = registry.create_token(mine.id, "full").token
    login = make(registry, Clock())
    assert login.authenticate(other.id, token) is None
    assert login.authenticate("devicedata-bridge", token) is None
    assert login.authenticate(mine.id, token, client_id="devicedata-bridge") is None
    assert login.authenticate(mine.id, token, client_id=other.id) is None
    assert login.authenticate(mine.id, token, client_id=mine.id) is not None


def test_an_unknown_id_and_a_wrong_token_take_the_same_path(registry: Counting) -> None:
    known = registry.create_device("known")
    registry.create_token(known.id, "full")
    login = make(registry, Clock())
    registry.calls.clear()
    assert login.authenticate(known.id, "wrong-token-1") is None
    known_calls = list(registry.calls)
    registry.calls.clear()
    assert login.authenticate("c" * 24, "wrong-token-2") is None
    assert registry.calls == known_calls == ["authenticate"]


def test_a_revoked_token_is_refused_within_the_ttl(registry: Counting) -> None:
    device = registry.create_device("d")
    token = registry.create_token(device.id, "full").token
    clock = Clock()
    login = make(registry, clock, ttl=60)  # asked for 60 s: held to 5
    assert login.authenticate(device.id, token) is not None
    registry.revoke_token(token)
    clock.now += 5.0
    assert login.authenticate(device.id, token) is None
    assert login.identity(device.id) is None  # no active token left: publishes refused too


def test_a_deleted_device_is_refused_its_publishes(registry: Counting) -> None:
    device = registry.create_device("d")
    registry.create_token(device.id, "write")
    clock = Clock()
    login = make(registry, clock)
    assert login.identity(device.id) == Identity(device.id, DEVICE_ROLE)
    registry.delete_device(device.id)
    clock.now += 2.0
    assert login.identity(device.id) is None


def test_our_own_users_and_the_admin(registry: Counting) -> None:
    registry.add_service_user("devicedata-bridge-2", BRIDGE_ROLE)
    login = make(registry, Clock())
    assert login.authenticate("devicedata-bridge-2", "shared-pw") == Identity(
        "devicedata-bridge-2", BRIDGE_ROLE)
    assert login.authenticate("devicedata-bridge-2", "admin-pw") is None
    assert login.authenticate("unregistered", "shared-pw") is None
    assert login.authenticate("admin", "admin-pw") == Identity("admin", ADMIN_ROLE)
    assert login.authenticate("admin", "shared-pw") is None
    # A device id with the shared password is no service user, whatever the registry says.
    device = registry.create_device("d")
    registry.add_service_user(device.id, BRIDGE_ROLE)
    assert make(registry, Clock()).authenticate(device.id, "shared-pw") is None


def test_an_overlong_password_is_refused_without_a_lookup(registry: Counting) -> None:
    login = make(registry, Clock())
    registry.calls.clear()
    assert login.authenticate("d" * 24, "x" * 100_000) is None
    assert "authenticate" not in registry.calls
