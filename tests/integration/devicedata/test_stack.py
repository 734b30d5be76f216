"""`devicedata stack` end to end, and the broker configuration and credential sync it ships
(mosquitto/*.template, bridge/registry/broker_sync.py) against the real Mosquitto."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.registry import Registry, broker_sync, open_registry
from bridge.settings import Settings
from devicedata import procs, servers

REPO = Path(__file__).resolve().parents[3]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEDATA_")}
    return subprocess.run([sys.executable, "-m", "devicedata", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    # mkdtemp under /tmp rather than tmp_path: Mosquitto (user `mosquitto` once it drops
    # root) must be able to enter every parent of its directory.
    path = Path(tempfile.mkdtemp(prefix="devicedata-stack-"))
    path.chmod(0o755)
    yield path
    cli("stack", "down", "--data-dir", str(path))
    shutil.rmtree(path, ignore_errors=True)


def port_args() -> list[str]:
    return ["--http-port", str(procs.free_port()), "--mqtt-port", str(procs.free_port()),
            "--influx-port", str(procs.free_port())]


def wait_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while any(procs.pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if procs.pid_alive(p)] == []


def test_up_serves_data_then_down_stops_everything(stack_dir: Path) -> None:
    up = cli("stack", "up", "--json", "--no-bridge", "--data-dir", str(stack_dir),
             *port_args())
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)  # the whole of stdout is one JSON object
    for key in ("api_url", "mqtt_host", "mqtt_port", "influx_url", "device_id",
                "device_token", "data_dir", "pids"):
        assert key in info, key
    assert set(info["pids"]) == {"influxd", "mosquitto", "api"}
    assert info["data_dir"] == str(stack_dir)
    token = info["device_token"]
    with httpx.Client(base_url=info["api_url"], trust_env=False, timeout=30) as http:
        assert http.get("/health").status_code == 200
        posted = http.post("/data", headers={"token": token},
                           json={"variable": "temperature", "value": 21.5, "unit": "C"})
        assert posted.json() == {"status": True, "result": "1 Data Added"}
        got = http.get("/data", params={"variable": "temperature"}, headers={"token": token})
        assert [p["value"] for p in got.json()["result"]] == [21.5]
    # The broker already knows the demo device: id and token log in.
    client, rc = connect(info["mqtt_port"], info["device_id"], token)
    disconnect(client)
    assert rc == 0

    status = cli("stack", "status", "--json", "--data-dir", str(stack_dir))
    assert json.loads(status.stdout)["running"] == info["pids"]

    down = cli("stack", "down", "--data-dir", str(stack_dir))
    assert down.returncode == 0, down.stderr
    for name in info["pids"]:
        assert f"stopped {name}" in down.stdout
    wait_gone(list(info["pids"].values()))
    assert list((stack_dir / "run").glob("*.pid")) == []
    again = cli("stack", "down", "--data-dir", str(stack_dir))
    assert again.returncode == 0 and "nothing runs" in again.stdout


@pytest.mark.parametrize("flag", ["--mqtt-port", "--http-port", "--influx-port"])
def test_taken_port_fails_at_once_naming_the_flag(stack_dir: Path, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = port_args()
        args[args.index(flag) + 1] = str(port)
        started = time.monotonic()
        up = cli("stack", "up", "--json", "--no-bridge", "--data-dir", str(stack_dir), *args)
    assert up.returncode == 1
    assert f"port {port} ({flag}) is already in use; choose another with {flag}" in up.stderr
    assert up.stdout == ""
    assert time.monotonic() - started < 15
    assert not (stack_dir / "run").exists() or not list((stack_dir / "run").iterdir())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_everything_it_started_on_signal(stack_dir: Path, sig: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEDATA_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devicedata", "stack", "run", "--no-bridge", "--data-dir",
         str(stack_dir), *port_args()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    state = stack_dir / "run" / "stack.json"
    try:
        deadline = time.monotonic() + 60
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.exists(), proc.communicate()[1] if proc.poll() is not None else "timeout"
        pids = list(json.loads(state.read_text())["pids"].values())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "TOKEN=" in out and "curl -s -X POST $API/data" in out
    wait_gone(pids)
    assert not state.exists()


# --- the broker: credentials and ACL, as synced from the registry ---------------------


def connect(port: int, username: str, password: str,
            inbox: queue.Queue[tuple[str, bytes]] | None = None) -> tuple[mqtt.Client, int]:
    """An MQTT 5 client, connected (or refused): (client, CONNACK reason code)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                         client_id=f"test-{uuid.uuid4().hex[:10]}")
    client.username_pw_set(username, password)
    done = threading.Event()
    result: dict[str, int] = {}

    def on_connect(c: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        result.setdefault("rc", rc.value)
        if rc.value != 0:
            c.disconnect()  # otherwise paho keeps retrying in the background
        done.set()

    client.on_connect = on_connect
    if inbox is not None:
        client.on_message = lambda c, u, m: inbox.put((m.topic, bytes(m.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(5), "no CONNACK"
    if result["rc"] != 0:
        client.loop_stop()
    return client, result["rc"]


def disconnect(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def subscribe(client: mqtt.Client, *topics: str) -> None:
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.subscribe([(t, 1) for t in topics])
    assert done.wait(5)


def drain(inbox: queue.Queue[tuple[str, bytes]], wait: float = 0.5) -> list[tuple[str, bytes]]:
    out = []
    deadline = time.monotonic() + wait
    while True:
        try:
            out.append(inbox.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            return out


@pytest.fixture(scope="module")
def registry(stack_settings: Settings) -> Iterator[Registry]:
    reg = open_registry(stack_settings.registry_location)
    yield reg
    reg.close()


def new_device(registry: Registry, permission: Any = "write") -> tuple[str, str]:
    device = registry.create_device(f"acl-{uuid.uuid4().hex[:8]}")
    return device.id, registry.create_token(device.id, permission).token


def test_devices_reach_only_their_own_topics(stack_settings: Settings, registry: Registry,
                                            mosquitto: servers.MosquittoServer) -> None:
    (a, a_token), (b, b_token) = new_device(registry), new_device(registry, "full")
    broker_sync.sync(stack_settings, registry)
    port = mosquitto.port
    bridge_inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    a_inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    bridge, rc = connect(port, stack_settings.mqtt_username,
                         broker_sync.bridge_password(stack_settings), bridge_inbox)
    assert rc == 0
    dev_a, rc = connect(port, a, a_token, a_inbox)
    assert rc == 0
    try:
        subscribe(bridge, "devices/+/data")
        # Mosquitto's acl_file grants any SUBSCRIBE; what it refuses is delivery.
        subscribe(dev_a, "devices/#", f"devices/{b}/errors", "#", "$SYS/#",
                  f"devices/{a}/errors")
        dev_a.publish(f"devices/{a}/data", b"own", qos=1).wait_for_publish(5)
        forged = dev_a.publish(f"devices/{b}/data", b"forged", qos=1)
        forged.wait_for_publish(5)
        dev_a.publish(f"devices/{a}/errors", b"self-made error", qos=1).wait_for_publish(5)
        bridge.publish(f"devices/{b}/errors", b"for b", qos=1).wait_for_publish(5)
        bridge.publish(f"devices/{a}/errors", b"for a", qos=1).wait_for_publish(5)
        assert forged.rc == 0  # queued and acknowledged with a refusal, not delivered
        assert drain(bridge_inbox) == [(f"devices/{a}/data", b"own")]
        assert set(drain(a_inbox)) == {(f"devices/{a}/errors", b"for a")}
    finally:
        disconnect(dev_a)
        disconnect(bridge)
    for user, password in ((a, b_token), (a, ""), ("nobody", a_token)):
        assert connect(port, user, password)[1] != 0


def test_the_newest_token_is_the_mqtt_password(stack_settings: Settings,
                                               registry: Registry,
                                               mosquitto: servers.MosquittoServer) -> None:
    device, older = new_device(registry)
    newer = registry.create_token(device, "full").token
    broker_sync.sync(stack_settings, registry)
    text = broker_sync.passwd_path(mosquitto.dir).read_text()
    assert sum(line.startswith(device + ":") for line in text.splitlines()) == 1
    client, rc = connect(mosquitto.port, device, newer)
    disconnect(client)
    assert rc == 0
    assert connect(mosquitto.port, device, older)[1] != 0
    registry.revoke_token(newer)
    broker_sync.sync(stack_settings, registry)
    client, rc = connect(mosquitto.port, device, older)
    disconnect(client)
    assert rc == 0


def test_revoking_or_deleting_cuts_open_connections(stack_settings: Settings,
                                                    registry: Registry,
                                                    mosquitto: servers.MosquittoServer) -> None:
    (a, a_token), (b, b_token) = new_device(registry), new_device(registry)
    broker_sync.sync(stack_settings, registry)
    clients = []
    gone = {a: threading.Event(), b: threading.Event()}
    for device, token in ((a, a_token), (b, b_token)):
        client, rc = connect(mosquitto.port, device, token)
        assert rc == 0
        client.on_disconnect = lambda *args, d=device: gone[d].set()
        clients.append(client)
    try:
        registry.revoke_token(a_token)
        registry.delete_device(b)
        broker_sync.sync(stack_settings, registry)
        assert gone[a].wait(5) and gone[b].wait(5)
    finally:
        for client in clients:
            disconnect(client)
    assert connect(mosquitto.port, a, a_token)[1] != 0
    assert connect(mosquitto.port, b, b_token)[1] != 0


def test_sync_is_idempotent_and_safe_to_run_concurrently(
        stack_settings: Settings, registry: Registry,
        mosquitto: servers.MosquittoServer) -> None:
    broker_sync.sync(stack_settings, registry)
    passwd = broker_sync.passwd_path(mosquitto.dir)
    before = passwd.stat().st_mtime_ns
    reloads = mosquitto.log.read_text().count("Reloading config.")
    broker_sync.sync(stack_settings, registry)
    assert passwd.stat().st_mtime_ns == before
    assert mosquitto.log.read_text().count("Reloading config.") == reloads

    devices = [new_device(registry) for _ in range(4)]
    threads = [threading.Thread(target=broker_sync.sync, args=(stack_settings, registry))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    users = [line.partition(":")[0] for line in passwd.read_text().splitlines()]
    assert len(users) == len(set(users))
    assert {d for d, _ in devices} <= set(users)
    if os.geteuid() == 0:
        assert passwd.stat().st_uid == mosquitto.dir.stat().st_uid != 0
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert list(mosquitto.dir.glob(".passwd-*")) == []  # no temp files left behind


def test_bridge_password_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = broker_sync.bridge_password(settings)
    assert len(first) >= 32 and broker_sync.bridge_password(settings) == first
    assert stat.S_IMODE((tmp_path / "mqtt-bridge-password").stat().st_mode) == 0o600
    assert broker_sync.bridge_password(settings.replace(mqtt_password="given")) == "given"


def test_bridge_starts_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from devicedata import localstack

    args = SimpleNamespace(no_bridge=False)
    monkeypatch.delenv("DEVICEDATA_STACK_BRIDGE", raising=False)
    assert localstack.bridge_wanted(args)  # type: ignore[arg-type]
    assert not localstack.bridge_wanted(SimpleNamespace(no_bridge=True))  # type: ignore[arg-type]
    monkeypatch.setenv("DEVICEDATA_STACK_BRIDGE", "0")
    assert not localstack.bridge_wanted(args)  # type: ignore[arg-type]


def test_up_with_the_bridge_stores_what_the_demo_device_publishes(stack_dir: Path) -> None:
    up = cli("stack", "up", "--json", "--data-dir", str(stack_dir), *port_args())
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert "bridge" in info["pids"]
    client, rc = connect(info["mqtt_port"], info["device_id"], info["device_token"])
    assert rc == 0
    try:
        client.publish(info["mqtt_topic"], json.dumps(
            [{"variable": "humidity", "value": 48}, {"variable": "humidity", "value": 49}]),
            qos=1).wait_for_publish(5)
    finally:
        disconnect(client)
    with httpx.Client(base_url=info["api_url"], trust_env=False, timeout=30) as http:
        deadline = time.monotonic() + 5
        values: list[Any] = []
        while sorted(values) != [48, 49] and time.monotonic() < deadline:
            time.sleep(0.1)
            got = http.get("/data", params={"variable": "humidity"},
                           headers={"token": info["device_token"]})
            values = [p["value"] for p in got.json()["result"]]
    assert sorted(values) == [48, 49]
    down = cli("stack", "down", "--data-dir", str(stack_dir))
    assert "stopped bridge" in down.stdout
    wait_gone(list(info["pids"].values()))
