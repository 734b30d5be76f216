"""``devicedata device ...`` / ``token ...``, driven in-process through argparse."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import RegistryError
from bridge.registry import Registry, open_registry
from bridge.settings import Settings
from devicedata import registry_cli

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Cli:
    settings: Settings
    capsys: pytest.CaptureFixture[str]
    deleted: list[tuple[str, bool]] = field(default_factory=list)
    notified: list[Settings] = field(default_factory=list)

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="devicedata")
        sub = parser.add_subparsers(dest="command", required=True)
        registry_cli.add_commands(sub, lambda: self.settings,
                                  on_device_deleted=self.on_deleted)
        return parser

    def on_deleted(self, settings: Settings, device_id: str) -> None:
        with self.registry() as reg:  # the device must still be there when data goes
            present = any(d.id == device_id for d in reg.list_devices())
        self.deleted.append((device_id, present))

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        args = self.parser().parse_args(list(argv))
        code = args.func(args)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def registry(self) -> _Closing:
        return _Closing(open_registry(self.settings.registry_location))


class _Closing:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def __enter__(self) -> Registry:
        return self.reg

    def __exit__(self, *exc: object) -> None:
        self.reg.close()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    runner = Cli(Settings(data_dir=tmp_path), capsys)
    monkeypatch.setattr(registry_cli, "on_credentials_changed",
                        lambda settings, registry: runner.notified.append(settings))
    yield runner


def _create(cli: Cli, name: str = "Kitchen sensor") -> dict[str, str]:
    result = cli.json("device", "create", name)
    assert isinstance(result, dict)
    return result


def test_device_create_human(cli: Cli) -> None:
    code, out, err = cli("device", "create", "Kitchen sensor")
    assert code == 0 and err == ""
    with cli.registry() as reg:
        [device] = reg.list_devices()
        [info] = reg.list_tokens(device.id)
    token = re.search(r"token\s+([0-9a-f]{40})", out)
    assert token, out
    assert info.prefix == token.group(1)[:8] and info.permission == "full"
    assert device.name == "Kitchen sensor" and device.id in out
    assert re.search(rf"username\s+{device.id}", out)
    assert re.search(rf"password\s+{token.group(1)}", out)
    assert f"devices/{device.id}/data" in out
    assert len(cli.notified) == 1


def test_device_create_json(cli: Cli) -> None:
    result = _create(cli)
    assert set(result) == {"id", "name", "token", "mqtt_username", "mqtt_password", "topic",
                           "created_at"}
    assert result["mqtt_username"] == result["id"]
    assert result["mqtt_password"] == result["token"]
    assert result["topic"] == f"devices/{result['id']}/data"
    assert ISO.fullmatch(result["created_at"])
    with cli.registry() as reg:
        info = reg.authenticate(result["token"])
    assert info is not None and info.device_id == result["id"] and info.permission == "full"


def test_device_list_rename(cli: Cli) -> None:
    hostile = "Robert'); DROP TABLE devices;-- \"ü\" 🌡️"
    first = _create(cli, hostile)
    second = _create(cli, "Garage")
    listed = cli.json("device", "list")
    assert [(d["id"], d["name"]) for d in listed] == [
        (first["id"], hostile), (second["id"], "Garage")]
    assert listed[0]["last_input"] is None
    code, out, _ = cli("device", "list")
    assert code == 0 and hostile in out and first["token"] not in out
    assert out.splitlines()[0].split() == ["ID", "NAME", "CREATED", "LAST", "INPUT"]
    code, out, _ = cli("device", "rename", second["id"], "Shed")
    assert code == 0 and "Shed" in out
    with cli.registry() as reg:
        assert reg.get_device(second["id"]).name == "Shed"


def test_device_delete(cli: Cli) -> None:
    dev = _create(cli)
    other = _create(cli, "other")
    code, out, _ = cli("device", "delete", dev["id"])
    assert code == 0 and dev["id"] in out
    assert cli.deleted == [(dev["id"], True)]
    with cli.registry() as reg:
        assert [d.id for d in reg.list_devices()] == [other["id"]]
        assert reg.authenticate(dev["token"]) is None
        assert reg.authenticate(other["token"]) is not None
    assert len(cli.notified) == 3


def test_errors_are_one_line_exit_1(cli: Cli) -> None:
    missing = "0" * 24
    for argv in (("device", "delete", missing), ("device", "rename", missing, "x"),
                 ("token", "create", missing, "--permission", "read"),
                 ("token", "list", missing), ("token", "revoke", "abcdef12"),
                 ("device", "create", "bad\nname")):
        code, out, err = cli(*argv)
        assert code == 1 and out == ""
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    assert cli.deleted == [] and cli.notified == []


def test_data_deletion_failure_keeps_the_device(cli: Cli) -> None:
    dev = _create(cli)

    def fail(settings: Settings, device_id: str) -> None:
        raise RegistryError("store is down")

    parser = argparse.ArgumentParser()
    registry_cli.add_commands(parser.add_subparsers(), lambda: cli.settings,
                              on_device_deleted=fail)
    args = parser.parse_args(["device", "delete", dev["id"]])
    assert args.func(args) == 1
    with cli.registry() as reg:
        assert reg.get_device(dev["id"]).id == dev["id"]


def test_token_create_list_revoke(cli: Cli) -> None:
    dev = _create(cli)
    before = time.time_ns()
    made = cli.json("token", "create", dev["id"], "--permission", "write",
                    "--expires", "30d", "--name", "field unit")
    assert isinstance(made, dict)
    token = made["token"]
    assert made["permission"] == "write" and made["name"] == "field unit"
    assert made["prefix"] == token[:8] and made["device_id"] == dev["id"]
    with cli.registry() as reg:
        info = reg.authenticate(token)
    assert info is not None and info.expires_ns is not None
    assert before + 30 * 86400 * 10**9 <= info.expires_ns <= time.time_ns() + 30 * 86400 * 10**9
    assert ISO.fullmatch(made["expires_at"])

    code, out, _ = cli("token", "create", dev["id"], "--permission", "read")
    assert code == 0
    read_token = re.search(r"token\s+([0-9a-f]{40})", out)
    assert read_token and "never" in out

    code, out, _ = cli("token", "list", dev["id"])
    assert code == 0
    for secret in (token, read_token.group(1), dev["token"]):
        assert secret not in out and secret[:8] in out
    listed = cli.json("token", "list", dev["id"])
    assert isinstance(listed, list) and len(listed) == 3
    assert all("token" not in t and t["status"] == "active" for t in listed)

    code, out, _ = cli("token", "revoke", token[:6])
    assert code == 0 and token[:8] in out and token not in out
    code, out, _ = cli("token", "revoke", read_token.group(1))
    assert code == 0
    statuses = {t["prefix"]: t["status"] for t in cli.json("token", "list", dev["id"])}
    assert statuses == {dev["token"][:8]: "active", token[:8]: "revoked",
                        read_token.group(1)[:8]: "revoked"}
    with cli.registry() as reg:
        assert reg.authenticate(token) is None
    assert len(cli.notified) == 5  # device create, two token creates, two revokes


def test_token_with_a_serial(cli: Cli) -> None:
    dev = _create(cli)
    made = cli.json("token", "create", dev["id"], "--permission", "write",
                    "--serial", "70-B3-D5-7E-D0-00-00-01")
    assert made["serie_number"] == "70b3d57ed0000001"
    listed = {t["prefix"]: t["serie_number"] for t in cli.json("token", "list", dev["id"])}
    assert listed == {dev["token"][:8]: None, made["token"][:8]: "70b3d57ed0000001"}
    code, out, _ = cli("token", "list", dev["id"])
    assert code == 0 and "SERIAL" in out and "70b3d57ed0000001" in out
    code, _, err = cli("token", "create", dev["id"], "--permission", "full",
                       "--serial", "70B3D57ED0000001")
    assert code == 1 and "revoke that token first" in err and made["token"][:8] in err
    for bad, why in (("not a serial", "serie_number must be"), ("70b3", None)):
        code, _, err = cli("token", "create", dev["id"], "--permission", "write",
                           "--serial", bad)
        assert (code == 0) is (why is None), err  # "70b3" is a serial, just not an EUI
        if why:
            assert why in err
    code, _, err = cli("token", "create", dev["id"], "--permission", "read", "--serial", "s1")
    assert code == 1 and "write or full" in err


def test_network_create_list_revoke(cli: Cli) -> None:
    made = cli.json("network", "create", "ChirpStack")
    token = made["token"]
    assert token.startswith("net_") and made["prefix"] == token[:12]
    assert made["name"] == "ChirpStack" and made["status"] == "active"
    code, out, _ = cli("network", "create", "TTN")
    assert code == 0 and "shown only now" in out
    second = re.search(r"token\s+(net_[0-9a-f]{40})", out)
    assert second
    code, out, _ = cli("network", "list")
    assert code == 0 and token not in out and second.group(1) not in out
    assert token[:12] in out and "ChirpStack" in out and "TTN" in out
    code, out, _ = cli("network", "revoke", token[:12])
    assert code == 0 and token[:12] in out and token not in out
    listed = {n["name"]: n["status"] for n in cli.json("network", "list")}
    assert listed == {"ChirpStack": "revoked", "TTN": "active"}
    with cli.registry() as reg:
        assert reg.authenticate_network(token) is None
        assert reg.authenticate_network(second.group(1)) is not None
        assert reg.authenticate(second.group(1)) is None
    code, _, err = cli("network", "revoke", "net_zzzzzz")
    assert code == 1 and "no network token matches" in err
    assert cli.notified == []  # network tokens never reach the broker


def test_ambiguous_prefix_is_an_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.registry import tokens

    queue = ["abcdef01" + "1" * 32, "abcdef02" + "2" * 32]
    monkeypatch.setattr(tokens, "new_token", lambda: queue.pop(0))
    dev = _create(cli)
    cli("token", "create", dev["id"], "--permission", "read")
    code, _, err = cli("token", "revoke", "abcdef")
    assert code == 1 and "abcdef01" in err and "1" * 32 not in err


@pytest.mark.parametrize("argv", [
    ["token", "create", "x", "--permission", "admin"],
    ["token", "create", "x", "--permission", "read", "--expires", "soon"],
    ["token", "create", "x"],
    ["device"],
])
def test_usage_errors_exit_2(cli: Cli, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.parser().parse_args(argv)
    assert exc.value.code == 2


def test_bad_registry_url(cli: Cli) -> None:
    cli.settings = Settings(data_dir=cli.settings.data_dir,
                            registry_url="mysql://admin:s3cret@db/registry")
    code, _, err = cli("device", "list")
    assert code == 1 and "DEVICEDATA_REGISTRY_URL" in err and "s3cret" not in err


def test_unreachable_postgresql_is_a_clear_error_without_the_password(cli: Cli) -> None:
    cli.settings = Settings(data_dir=cli.settings.data_dir,
                            registry_url="postgresql://nobody:s3cret@127.0.0.1:1/x")
    code, _, err = cli("device", "list")
    assert code == 1 and err.startswith("error: ") and "PostgreSQL" in err
    assert "s3cret" not in err


def test_sync_failure_only_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings, registry: Registry) -> None:
        raise OSError("broker dir not writable")

    monkeypatch.setattr(registry_cli, "on_credentials_changed", broken)
    parser = argparse.ArgumentParser()
    registry_cli.add_commands(parser.add_subparsers(), lambda: Settings(data_dir=tmp_path))
    args = parser.parse_args(["device", "create", "x", "--json"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["token"]
    assert err.startswith("warning: broker credentials not updated")


def test_iso_times() -> None:
    assert registry_cli.iso(None) is None
    assert registry_cli.iso(0) == "1970-01-01T00:00:00.000Z"
    assert registry_cli.iso(1_795_865_398_351_000_000) == "2026-11-28T11:29:58.351Z"
    assert registry_cli.iso(1_795_865_398_999_999_999) == "2026-11-28T11:29:58.999Z"
