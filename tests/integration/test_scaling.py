"""Scale-out (issue 6): three ``devicedata bridge`` processes in one ``$share`` group and two
``devicedata api`` processes, all on one PostgreSQL registry (a throwaway database), the
session's Mosquitto and the session's InfluxDB.

Under a load of QoS 1 messages and HTTP POSTs, with one bridge SIGKILLed and restarted
mid-run, every timed point arrives exactly once; a token revoked through one API is
refused by both APIs and by the broker within 5 seconds.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from bridge.registry import Registry, broker_sync, open_registry
from bridge.settings import Settings, describe
from devicedata.procs import free_port
from support import postgres
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    signal,
    wait_until,
)
from support.processes import ApiProcess

BASE_MS = 1_700_000_000_000
MQTT_DEVICES = 4
MESSAGES = 300  # per device
POINTS = 4  # per message
POSTS = 48  # per API, a multiple of MQTT_DEVICES
POST_POINTS = 5
REVOCATION_BOUND = 5.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    settings: Settings
    registry: Registry
    bridges: list[BridgeProcess]
    apis: list[ApiProcess]

    def http(self, i: int, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.apis[i % len(self.apis)].url,
                            headers={"token": token}, timeout=30)

    def device(self, name: str) -> tuple[str, str]:
        device = self.registry.create_device(name)
        return device.id, self.registry.create_token(device.id, "full").token


@pytest.fixture(scope="module")
def cluster(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("scaling")
    tag = secrets.token_hex(4)
    with postgres.scratch_database("devicedata_test_scale") as url:
        settings = stack_settings.replace(registry_url=url, mqtt_shared_group=f"scale-{tag}",
                                          admin_token=secrets.token_urlsafe(24))
        registry = open_registry(url)
        bridges = [BridgeProcess(settings.replace(mqtt_client_id=f"scale-{tag}-{i}",
                                                  mqtt_username=f"scale-{tag}-{i}",
                                                  bridge_metrics_port=free_port()),
                                 logs / f"bridge-{i}.log") for i in range(3)]
        apis = [ApiProcess(settings.replace(http_port=free_port()), logs / f"api-{i}.log")
                for i in range(2)]
        try:
            # All five at once: they also race to migrate the empty database.
            with ThreadPoolExecutor(5) as pool:
                list(pool.map(lambda p: p.start(), [*bridges, *apis]))
            yield Cluster(settings, registry, bridges, apis)
        finally:
            _shut_down(stack_settings, bridges, apis)
            registry.close()


def _shut_down(stack_settings: Settings, bridges: list[BridgeProcess],
               apis: list[ApiProcess]) -> None:
    for bridge in bridges:
        if bridge.running():
            bridge.stop()
    for api in apis:
        if api.proc is not None and api.proc.poll() is None:
            api.stop()
    # The shared-group sessions would otherwise outlive the test (a week) and keep
    # queueing every later test's messages: clean start + expiry 0 drops them.
    for bridge in bridges:
        s = bridge.settings
        DeviceClient(s, s.mqtt_username, broker_sync.bridge_password(s),
                     client_id=s.mqtt_client_id).close()
    # The bridges synced the broker from PostgreSQL; give it back the session's devices.
    session_registry = open_registry(stack_settings.registry_location)
    try:
        broker_sync.sync(stack_settings, session_registry)
    finally:
        session_registry.close()


def _count(cluster: Cluster, i: int, token: str, **params: Any) -> Any:
    with cluster.http(i, token) as http:
        response = http.get("/data", params=params)
        assert response.status_code == 200, response.text
        return response.json()["result"]


def test_load_survives_a_killed_bridge(cluster: Cluster) -> None:
    devices = [cluster.device(f"scale-{i}") for i in range(MQTT_DEVICES)]
    broker_sync.sync(cluster.settings, cluster.registry)
    clients = [connect_when_allowed(cluster.settings, d, t) for d, t in devices]
    # One round trip first: from here on the group has a member and nothing is dropped.
    clients[0].publish(f"devices/{devices[0][0]}/data", json.dumps(
        {"variable": "probe", "value": 0, "time": BASE_MS}))
    wait_until(lambda: _count(cluster, 0, devices[0][1], query="count") == 1, timeout=15,
               what="the probe point")
    refused: list[Any] = []
    http_failures: list[str] = []

    def publish(n: int) -> None:
        (device_id, _), client = devices[n], clients[n]
        for k in range(MESSAGES):
            reason = client.publish(f"devices/{device_id}/data", json.dumps([
                {"variable": "m", "value": k * POINTS + j,
                 "time": BASE_MS + 1 + k * POINTS + j} for j in range(POINTS)]))
            if reason.is_failure:
                refused.append(reason)
            time.sleep(0.008)

    def post(api: int) -> None:
        for k in range(POSTS):
            token = devices[k % MQTT_DEVICES][1]
            with cluster.http(api, token) as http:
                response = http.post("/data", json=[
                    {"variable": f"h{api}", "value": k * POST_POINTS + j,
                     "time": BASE_MS + 1 + k * POST_POINTS + j} for j in range(POST_POINTS)])
            if response.status_code != 200:
                http_failures.append(response.text)
            time.sleep(0.04)

    workers = [threading.Thread(target=publish, args=(n,)) for n in range(MQTT_DEVICES)]
    workers += [threading.Thread(target=post, args=(a,)) for a in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        victim = cluster.bridges[1]
        victim.stop(signal.SIGKILL)
        killed_mid_run = any(w.is_alive() for w in workers[:MQTT_DEVICES])
        victim.start()  # same client id: its persistent session hands back what it missed
    finally:
        for w in workers:
            w.join(60)
        for client in clients:
            client.close()
    assert killed_mid_run, "the load finished before the kill; make it longer"
    assert refused == [] and http_failures == []

    per_device = MESSAGES * POINTS + 2 * (POSTS // MQTT_DEVICES) * POST_POINTS
    for n, (_, token) in enumerate(devices):
        expected = per_device + (1 if n == 0 else 0)
        wait_until(lambda n=n, t=token, e=expected: _count(cluster, n, t, query="count") == e,
                   timeout=30, what=f"{expected} points of device {n}")
        # Exactly these values, each once: nothing lost, nothing stored twice.
        values = [p["value"] for p in _count(cluster, n + 1, token, variables="m",
                                             qty=10_000, ordination="asc")]
        assert values == list(range(MESSAGES * POINTS))
    # Each bridge took part, the restarted one included.
    handled = [_messages_handled(b) for b in cluster.bridges]
    assert all(h > 0 for h in handled), handled
    print(f"messages handled per bridge: {handled}")


def _messages_handled(bridge: BridgeProcess) -> float:
    """MQTT messages the bridge's current run received, from its /metrics."""
    url = f"http://127.0.0.1:{bridge.settings.bridge_metrics_port}/metrics"
    return sum(float(line.rsplit(" ", 1)[1]) for line in httpx.get(url).text.splitlines()
               if line.startswith("devicedata_mqtt_messages_total{"))


def test_revocation_reaches_every_api_and_the_broker(cluster: Cluster) -> None:
    admin = {"admin-token": cluster.settings.admin_token}
    created = httpx.post(cluster.apis[0].url + "/admin/devices", json={"name": "revoked"},
                         headers=admin, timeout=30)
    assert created.status_code == 200, created.text
    body = created.json()["result"]
    device_id, token = body["id"], body["token"]
    for i in range(2):  # both APIs accept it now, and so hold it in their caches
        assert _count(cluster, i, token, query="count") == 0
    connect_when_allowed(cluster.settings, device_id, token).close()

    start = time.monotonic()
    revoked = httpx.delete(f"{cluster.apis[1].url}/admin/tokens/{token[:8]}", headers=admin,
                           timeout=30)
    assert revoked.status_code == 200, revoked.text

    def api_refuses(i: int) -> bool:
        with cluster.http(i, token) as http:
            return http.get("/data", params={"query": "count"}).status_code == 401

    def broker_refuses() -> bool:
        probe = DeviceClient(cluster.settings, device_id, token)
        probe.close()
        return not probe.accepted

    checks = {"api0": lambda: api_refuses(0), "api1": lambda: api_refuses(1),
              "broker": broker_refuses}
    took: dict[str, float] = {}
    while len(took) < len(checks) and time.monotonic() - start < REVOCATION_BOUND + 1:
        for name, refuses in checks.items():
            if name not in took and refuses():
                took[name] = time.monotonic() - start
        time.sleep(0.05)
    assert set(took) == set(checks), f"still accepted after {REVOCATION_BOUND} s: {took}"
    assert max(took.values()) <= REVOCATION_BOUND, took
    print("revocation took " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(took.items())))


def _cache_hits(cluster: Cluster, i: int) -> float:
    text = httpx.get(cluster.apis[i].url + "/metrics", timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("devicedata_read_cache_hits_total "))


def test_kept_answers_end_across_instances_on_postgresql(cluster: Cluster) -> None:
    """API 0 keeps an answer (a count) and reads current values; a write through API 1,
    or through any of the three bridges, ends the kept answer and is current at once
    (data versions and current values live in PostgreSQL)."""
    device_id, token = cluster.device(f"kept-{secrets.token_hex(3)}")
    broker_sync.sync(cluster.settings, cluster.registry)
    now_ms = time.time_ns() // 1_000_000

    def last(i: int) -> dict[str, Any]:
        return {p["variable"]: p["value"] for p in _count(cluster, i, token,
                                                           query="last_value")}

    def count(i: int) -> Any:
        return _count(cluster, i, token, query="count")

    with cluster.http(1, token) as http:
        assert http.post("/data", json={"variable": "t", "value": 1,
                                        "time": now_ms}).status_code == 200
    hits = _cache_hits(cluster, 0)
    assert count(0) == count(0) == 1
    assert _cache_hits(cluster, 0) - hits == 1  # the second read was the kept answer
    assert last(0) == {"t": 1}
    with cluster.http(1, token) as http:
        assert http.post("/data", json={"variable": "t", "value": 2,
                                        "time": now_ms + 1}).status_code == 200
        assert http.post("/data", json={"variable": "t", "value": 0,  # a backfill
                                        "time": now_ms - 1}).status_code == 200
    assert last(0) == {"t": 2}
    assert count(0) == 3
    client = connect_when_allowed(cluster.settings, device_id, token)
    try:
        assert not client.publish(f"devices/{device_id}/data", json.dumps(
            {"variable": "t", "value": 3, "time": now_ms + 2})).is_failure
        wait_until(lambda: last(0) == {"t": 3}, timeout=15, what="the bridges' write")
        assert count(0) == 4
    finally:
        client.close()


# -- docker-compose.scale.yml, read statically (no Docker engine here) -------------------


def _merged_services() -> dict[str, dict[str, Any]]:
    """docker-compose.yml with the override applied as compose does for what is checked
    here: mappings (environment, depends_on, build) merge, anything else is replaced, and
    ``extends`` starts from the named base service."""
    def load(path: Path) -> dict[str, Any]:
        services: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))["services"]
        return services

    base, override = load(ROOT / "docker-compose.yml"), load(ROOT / "docker-compose.scale.yml")
    merged = {name: dict(spec) for name, spec in base.items()}
    for name, spec in override.items():
        extends = spec.get("extends")
        if extends:
            assert extends["file"] == "docker-compose.yml"
            start = dict(base[extends["service"]])
            start.pop("depends_on", None)  # compose does not promise to carry it over
        else:
            start = merged.get(name, {})
        for key, value in spec.items():
            if key == "build" and isinstance(start.get(key), str):
                start[key] = {"context": start[key]}
            if isinstance(value, dict) and isinstance(start.get(key), dict):
                start[key] = {**start[key], **value}
            elif key != "extends":
                start[key] = value
        merged[name] = start
    return merged


def test_compose_override_runs_three_bridges_on_postgresql() -> None:
    services = _merged_services()
    settings = {name for name, _, _ in describe()}
    app = {n: s for n, s in services.items() if s.get("image") == services["api"]["image"]}
    bridges = {n: s["environment"] for n, s in app.items()
               if s.get("command") == ["devicedata", "bridge"]}
    assert len(bridges) == 3
    assert len({env["DEVICEDATA_MQTT_CLIENT_ID"] for env in bridges.values()}) == 3
    # The broker binds a session to the user name: each bridge needs its own.
    assert len({env["DEVICEDATA_MQTT_USERNAME"] for env in bridges.values()}) == 3
    assert len({env["DEVICEDATA_MQTT_SHARED_GROUP"] for env in bridges.values()}) == 1
    urls = {s["environment"]["DEVICEDATA_REGISTRY_URL"] for s in app.values()}
    assert len(urls) == 1 and urlsplit(urls.pop()).hostname == "postgres"
    assert set(app) >= {"init", "api", *bridges}
    for name, spec in app.items():
        assert set(spec["environment"]) <= settings, name
        assert "postgres" in spec["build"]["args"]["EXTRAS"].split(","), name
        assert spec["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "healthcheck" in services["postgres"]
        for target in spec["depends_on"]:
            assert target in services, (name, target)
    # Every bridge rewrites the broker's credential files: it needs the broker's volume.
    broker_dir = bridges["bridge"]["DEVICEDATA_MOSQUITTO_DIR"]
    for name in bridges:
        assert bridges[name]["DEVICEDATA_MOSQUITTO_DIR"] == broker_dir
        assert any(v.split(":")[1] == broker_dir for v in app[name]["volumes"]), name
    for name in bridges:
        assert set(services[name]["depends_on"]) >= set(services["bridge"]["depends_on"])
