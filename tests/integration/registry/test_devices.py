"""bridge.registry.devices directly: the registry + broker-sync operations behind the CLI and the
admin API, against the session's registry and Mosquitto."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.errors import NotFound, RegistryError, ValidationError
from bridge.registry import Registry, devices, open_registry
from bridge.registry.devices import DeviceAdmin
from bridge.settings import Settings
from support.mqtt import connect_when_allowed, wait_refused


@pytest.fixture
def registry(stack_settings: Settings) -> Iterator[Registry]:
    reg = open_registry(stack_settings.registry_location)
    yield reg
    reg.close()


@pytest.fixture
def ops(stack_settings: Settings, registry: Registry) -> DeviceAdmin:
    return DeviceAdmin(stack_settings, registry)




def test_create_device_reaches_the_broker(ops: DeviceAdmin, registry: Registry,
                                          stack_settings: Settings) -> None:
    new = ops.create_device("greenhouse")
    info = registry.authenticate(new.issued.token)
    assert info is not None and info.device_id == new.device.id and info.permission == "full"
    shown = new.as_json()
    assert shown["mqtt_username"] == new.device.id
    assert shown["topic"] == f"devices/{new.device.id}/data"
    connect_when_allowed(stack_settings, new.device.id, new.issued.token).close()


def test_token_create_and_revoke_reach_the_broker(ops: DeviceAdmin,
                                                  stack_settings: Settings) -> None:
    new = ops.create_device("rotating")
    newer = ops.create_token(new.device.id, "write", name="second").token
    connect_when_allowed(stack_settings, new.device.id, newer).close()
    info = ops.revoke_token(newer[:8])
    assert info.revoked_ns is not None and info.name == "second"
    wait_refused(stack_settings, new.device.id, newer)


def test_delete_order_data_then_registry_then_broker(ops: DeviceAdmin, registry: Registry,
                                                     stack_settings: Settings) -> None:
    new = ops.create_device("doomed")
    connect_when_allowed(stack_settings, new.device.id, new.issued.token).close()
    seen: list[tuple[str, bool]] = []

    def delete_data(device_id: str) -> None:
        present = any(d.id == device_id for d in registry.list_devices())
        seen.append((device_id, present))

    deleted = ops.delete_device(new.device.id, delete_data)
    assert deleted.id == new.device.id and seen == [(new.device.id, True)]
    with pytest.raises(NotFound):
        registry.get_device(new.device.id)
    assert registry.authenticate(new.issued.token) is None
    wait_refused(stack_settings, new.device.id, new.issued.token)


def test_failed_data_deletion_keeps_the_device(ops: DeviceAdmin, registry: Registry) -> None:
    new = ops.create_device("kept")

    def broken(device_id: str) -> None:
        raise RegistryError("store is down")

    with pytest.raises(RegistryError):
        ops.delete_device(new.device.id, broken)
    assert registry.get_device(new.device.id).name == "kept"
    with pytest.raises(NotFound):
        ops.delete_device("0" * 24, broken)  # NotFound before any data is touched


def test_a_failed_sync_is_reported_not_raised(stack_settings: Settings,
                                              registry: Registry) -> None:
    errors: list[Exception] = []

    def broken(settings: Settings, reg: Registry) -> None:
        raise OSError("broker dir not writable")

    ops = DeviceAdmin(stack_settings, registry, sync=broken, on_sync_error=errors.append)
    new = ops.create_device("unsynced")
    ops.revoke_token(new.issued.token)
    assert [str(e) for e in errors] == ["broker dir not writable"] * 2
    assert registry.list_tokens(new.device.id)[0].revoked_ns is not None


def test_create_device_is_undone_when_its_token_fails(stack_settings: Settings,
                                                      registry: Registry,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ops = DeviceAdmin(stack_settings, registry)
    before = {d.id for d in registry.list_devices()}

    def broken(*args: object, **kwargs: object) -> None:
        raise RegistryError("disk full")

    monkeypatch.setattr(registry, "create_token", broken)
    with pytest.raises(RegistryError):
        ops.create_device("half")
    assert {d.id for d in registry.list_devices()} == before


def test_parse_expires() -> None:
    assert devices.parse_expires(None) is None
    assert devices.parse_expires("") is None
    assert devices.parse_expires("30d", now_ns=5) == 5 + 30 * 86400 * 10**9
    assert devices.parse_expires("12 hours", now_ns=0) == 12 * 3600 * 10**9
    with pytest.raises(ValidationError, match="expires"):
        devices.parse_expires("soon")


def test_token_status_and_json(ops: DeviceAdmin) -> None:
    new = ops.create_device("shapes")
    issued = ops.create_token(new.device.id, "read", expires_ns=time.time_ns() + 10**9)
    later = issued.info.created_ns + 2 * 10**9
    assert devices.token_status(issued.info, issued.info.created_ns) == "active"
    assert devices.token_status(issued.info, later) == "expired"
    shown = devices.token_json(issued.info, later)
    assert shown["status"] == "expired" and "token" not in shown
    assert devices.device_json(new.device)["last_input"] is None
    assert devices.device_json(new.device, 0)["last_input"] == "1970-01-01T00:00:00.000Z"


def test_admin_token_configured_wins(tmp_path: Path) -> None:
    assert devices.admin_token(Settings(data_dir=tmp_path, admin_token="given")) == "given"
    assert not (tmp_path / devices.ADMIN_TOKEN_NAME).exists()


def test_admin_token_generated_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    first = devices.admin_token(settings)
    assert len(first) >= 43 and first == devices.admin_token(settings)
    path = settings.data_dir / devices.ADMIN_TOKEN_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(settings.data_dir) == [devices.ADMIN_TOKEN_NAME]  # no temp files left
    path.write_text("\n")  # emptied: a new one replaces it
    second = devices.admin_token(settings)
    assert second and second != first and path.read_text().strip() == second
