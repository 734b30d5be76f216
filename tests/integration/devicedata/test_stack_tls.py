"""`devicedata stack` with TLS: the local CA made on the first start and kept, devices and
the bridge over the TLS listener, the plain listener turned off, the operator's own
certificate."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.settings import Settings
from devicedata import procs
from devicedata.servers import MOSQUITTO_USER
from devicedata.tls import ensure_local_tls
from support.mqtt import DeviceClient
from support.stack import cli, port_args


def outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if it
    has one other than loopback."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address: str = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def publish_over_tls(info: dict[str, Any], ca_file: Path, payload: str) -> None:
    client = DeviceClient(Settings(), info["device_id"], info["device_token"],
                          port=info["mqtt_tls_port"], tls=(ca_file, None),
                          host=info["mqtt_tls_host"])
    try:
        assert client.accepted, client.connack
        reason = client.publish(f"{info['mqtt_topic']}/temperature", payload)
        assert not reason.is_failure, reason
    finally:
        client.close()


def read_back(info: dict[str, Any], variable: str, expected: list[Any]) -> None:
    with httpx.Client(base_url=info["api_url"], trust_env=False, timeout=30) as http:
        deadline = time.monotonic() + 10
        values: list[Any] = []
        while values != expected and time.monotonic() < deadline:
            time.sleep(0.1)
            got = http.get("/data", params={"variable": variable},
                           headers={"token": info["device_token"]})
            values = [p["value"] for p in got.json()["result"]]
    assert values == expected


def test_up_offers_tls_with_a_local_ca_kept_across_restarts(stack_dir: Path) -> None:
    up = cli("stack", "up", "--json", "--data-dir", str(stack_dir), *port_args())
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    ca_file = stack_dir / "tls" / "ca.crt"
    assert info["ca_file"] == str(ca_file) and Path(info["ca_file"]).is_absolute()
    assert info["mqtt_tls_port"] != info["mqtt_port"] and info["mqtt_tls_host"] == "localhost"
    assert "created a local CA" in up.stderr
    assert stat.S_IMODE((stack_dir / "tls" / "ca.key").stat().st_mode) == 0o600
    if os.geteuid() == 0:  # the broker reads its key as `mosquitto`; the CA's stays root's
        key = stack_dir / "tls" / "server.key"
        assert key.owner() == MOSQUITTO_USER and (stack_dir / "tls" / "ca.key").owner() == "root"
    publish_over_tls(info, ca_file, "21.5")
    read_back(info, "temperature", [21.5])
    console = httpx.get(f"{info['api_url']}/admin/info", trust_env=False,
                        headers={"admin-token": info["admin_token"]}).json()["result"]
    assert (console["mqtt_port"], console["mqtt_tls_port"], console["ca_file"]) == (
        info["mqtt_port"], info["mqtt_tls_port"], str(ca_file))  # the console's snippets
    ca = ca_file.read_bytes()
    assert cli("stack", "down", "--data-dir", str(stack_dir)).returncode == 0

    again = cli("stack", "up", "--json", "--no-bridge", "--data-dir", str(stack_dir),
                *port_args())
    assert again.returncode == 0, again.stderr
    assert ca_file.read_bytes() == ca  # devices keep trusting the same CA
    assert "created a local CA" not in again.stderr
    publish_over_tls(json.loads(again.stdout), ca_file, "22")


def test_tls_only_with_the_operators_certificate(stack_dir: Path, tmp_path: Path) -> None:
    # The operator's certificate, from a CA of their own (devices and bridge trust it).
    own = ensure_local_tls(tmp_path / "own", hosts=("localhost", "127.0.0.1"))
    private = tmp_path / "private"  # where an ACME client keeps its files: root's only
    private.mkdir(mode=0o700)
    cert, key = private / "fullchain.pem", private / "privkey.pem"
    shutil.copy(own.server_cert, cert)
    shutil.copy(own.server_key, key)
    ports = port_args()
    plain_port = int(ports[ports.index("--mqtt-port") + 1])
    args = ("stack", "up", "--json", "--no-plain-mqtt", "--mqtt-listen", "0.0.0.0",
            "--data-dir", str(stack_dir),
            "--tls-cert", str(cert), "--tls-key", str(key), *ports)
    env = {"DEVICEDATA_MQTT_TLS_CA_FILE": str(own.ca_cert)}
    if os.geteuid() == 0:
        refused = cli(*args, env=env)
        assert refused.returncode == 1
        assert f"user `mosquitto` cannot read {cert}" in refused.stderr, refused.stderr
        # What docs/deployment.md says to do: give the broker a copy it can read.
        copies = stack_dir / "broker-cert"
        copies.mkdir()
        for path in (cert, key):
            shutil.copy(path, copies / path.name)
            shutil.chown(copies / path.name, MOSQUITTO_USER, MOSQUITTO_USER)
        cert, key = copies / cert.name, copies / key.name
        args = (*args[:-len(ports) - 4], "--tls-cert", str(cert), "--tls-key", str(key),
                *ports)
    up = cli(*args, env=env)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert info["mqtt_port"] is None and info["ca_file"] == ""
    assert "bridge" in info["pids"]  # connected over TLS, checking the certificate
    assert not (stack_dir / "tls").exists()  # no local CA when the operator brings one
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", plain_port), timeout=5)
    conf = (stack_dir / "mosquitto" / "mosquitto.conf").read_text()
    # Devices on other machines reach it (production); ours dial 127.0.0.1.
    assert [line for line in conf.splitlines() if line.startswith("listener ")] == [
        f"listener {info['mqtt_tls_port']} 0.0.0.0"]
    outside = outward_address()
    if outside is not None:
        socket.create_connection((outside, info["mqtt_tls_port"]), timeout=5).close()
    assert f"certfile {cert}" in conf
    publish_over_tls(info, own.ca_cert, "true")
    read_back(info, "temperature", [True])
    assert procs.port_free(plain_port)
    console = httpx.get(f"{info['api_url']}/admin/info", trust_env=False,
                        headers={"admin-token": info["admin_token"]}).json()["result"]
    # No plain snippet; the TLS one trusts the device's own store (a public certificate).
    assert (console["mqtt_port"], console["mqtt_tls_port"], console["ca_file"]) == (
        None, info["mqtt_tls_port"], "")
