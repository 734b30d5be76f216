"""Chaos tests for SPEC section 6: every acknowledged point survives an InfluxDB outage,
a SIGKILL of the bridge or the API, a slow store and a poisoned batch. Each test counts
what was acknowledged and what InfluxDB holds afterwards, and asserts they are equal."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.settings import Settings
from devicedata.procs import free_port
from devicedata.servers import InfluxServer
from support.api import ApiServer
from support.http import count
from support.influx_proxy import HoldingProxy
from support.mqtt import BridgeProcess, connect_when_allowed, running_bridge, wait_until
from support.processes import ApiProcess


@pytest.fixture
def device(api: ApiServer) -> Iterator[tuple[str, str]]:
    yield api.mqtt_device("full")


@pytest.fixture
def bridge(stack_settings: Settings, tmp_path: Path) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings, tmp_path / "bridge.log")


def test_influxdb_outage_loses_no_acknowledged_point(
        api: ApiServer, influx: InfluxServer, bridge: BridgeProcess,
        device: tuple[str, str]) -> None:
    device_id, token = device
    client = connect_when_allowed(api.settings, device_id, token)
    influx.stop()
    try:
        acked = 0
        for i in range(200):
            reason = client.publish(f"devices/{device_id}/data", json.dumps(
                {"variable": "m", "value": i, "time": 1_700_000_000_000 + i}))
            acked += not reason.is_failure
        posted = 0
        with api.client(token) as http:
            for i in range(50):
                response = http.post("/data", json=[
                    {"variable": "h", "value": i, "time": 1_700_000_100_000 + i},
                    {"variable": "h2", "value": "text"}])
                assert response.status_code == 200, response.text
                posted += 2
        assert acked == 200
        assert api.sink.spool.records > 0  # the API's share is on disk
        wait_until(lambda: "event=spooling_started" in bridge.text(), what="the bridge to spool")
    finally:
        influx.start()
        client.close()
    wait_until(lambda: count(api, token) == acked + posted, timeout=30,
               what=f"{acked + posted} points after the outage")
    with api.client(token) as http:
        values = [p["value"] for p in http.get("/data", params={
            "variables": "m", "qty": 500, "ordination": "asc"}).json()["result"]]
    assert values == list(range(200))
    assert api.sink.spool.empty


def test_sigkilled_api_replays_its_spool(
        api: ApiServer, stack_settings: Settings, influx: InfluxServer, tmp_path: Path) -> None:
    _, token = api.device()
    settings = stack_settings.replace(http_port=free_port())
    process = ApiProcess(settings, tmp_path / "api.log").start()
    influx.stop()
    try:
        with httpx.Client(base_url=process.url, headers={"token": token}) as http:
            for i in range(40):
                response = http.post("/data", json={"variable": "k", "value": i,
                                                    "time": 1_700_000_000_000 + i})
                assert response.status_code == 200, response.text
        process.kill()  # 40 acknowledged points exist only in the spool now
    finally:
        influx.start()
    process = ApiProcess(settings, tmp_path / "api.log").start()
    try:
        wait_until(lambda: count(api, token) == 40, timeout=30, what="the replayed spool")
    finally:
        assert process.stop() == 0


def test_random_sigkills_of_the_bridge_lose_nothing(
        api: ApiServer, stack_settings: Settings, device: tuple[str, str],
        tmp_path: Path) -> None:
    device_id, token = device
    total = 2000
    client = connect_when_allowed(api.settings, device_id, token)
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    done = threading.Event()

    def publish_all() -> None:
        for i in range(total):
            client.publish(f"devices/{device_id}/data", json.dumps(
                {"variable": "x", "value": i, "time": 1_700_000_000_000 + i}), wait=False)
            if i % 100 == 0:
                time.sleep(0.05)
        done.set()

    sender = threading.Thread(target=publish_all)
    sender.start()
    rng = random.Random(7)
    kills = 0
    try:
        while not done.is_set() or kills < 3:
            time.sleep(rng.uniform(0.1, 0.6))
            bridge.stop(signal.SIGKILL)
            kills += 1
            bridge.start()
        sender.join(60)
        wait_until(lambda: count(api, token) == total, timeout=60, what=f"{total} points")
    finally:
        client.close()
        if bridge.running():
            assert bridge.stop() == 0
    assert kills >= 3


def test_slow_store_gets_back_pressure_not_unbounded_memory(
        api: ApiServer, stack_settings: Settings, make_api: Any) -> None:
    proxy = HoldingProxy(stack_settings.influx_url)
    proxy.delay = 0.3
    try:
        # One device stands for many here: the subject is the store's back-pressure, not
        # the device's fair share (api/fairness.py), so those limits are off.
        server = make_api(influx_url=proxy.url, max_pending_points=300, batch_max_points=100,
                          influx_timeout=30.0, http_concurrency=0, http_requests_per_second=0)
        _, token = server.device()
        accepted = 0
        refused = 0

        def post(i: int) -> httpx.Response:
            with server.client(token) as http:
                return http.post("/data", json=[
                    {"variable": "s", "value": j, "time": 1_700_000_000_000 + i * 100 + j}
                    for j in range(100)])

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(20) as pool:
            for response in pool.map(post, range(40)):
                if response.status_code == 200:
                    accepted += 100
                else:
                    assert response.status_code == 503, response.text
                    assert int(response.headers["retry-after"]) >= 1
                    refused += 1
        assert refused > 0, "no back-pressure at all"
        assert accepted > 0
        with server.client(token) as http:
            wait_until(lambda: http.get("/data", params={"query": "count"}).json()[
                "result"] == accepted, timeout=30, what="the accepted points")
    finally:
        proxy.close()


def test_poisoned_spooled_batch_is_isolated(
        api: ApiServer, influx: InfluxServer, stack_settings: Settings) -> None:
    device_id, token = api.device()
    # An outside writer gave value_str the wrong type in this shard: our string is refused.
    httpx.post(f"{influx.url}/write", params={"db": stack_settings.influx_db},
               content=f"data,device={device_id},variable=p value_str=1i 1700000000000000000"
               ).raise_for_status()
    influx.stop()
    try:
        with api.client(token) as http:
            response = http.post("/data", json=[
                {"variable": "p", "value": "poison", "time": 1_700_000_000_001},
                {"variable": "ok", "value": 1, "time": 1_700_000_000_002}])
            assert response.status_code == 200
            response = http.post("/data", json={"variable": "later", "value": 2,
                                                "time": 1_700_000_000_003})
            assert response.status_code == 200
    finally:
        influx.start()
    sink = api.sink
    wait_until(lambda: sink.spool.empty and not sink.spooling, timeout=30, what="the drain")
    with api.client(token) as http:
        names = sorted(p["variable"] for p in http.get(
            "/data", params={"qty": 10}).json()["result"])
    assert "ok" in names and "later" in names
    assert sink.stats.lines_rejected >= 1
    spool_dir = api.settings.spool_path(f"api-{api.settings.http_port}")
    dead = (spool_dir / "rejected.lp").read_text()
    assert "poison" in dead and "field type conflict" in dead


def test_slow_store_makes_the_bridge_stop_reading_then_catch_up(
        api: ApiServer, stack_settings: Settings, device: tuple[str, str],
        tmp_path: Path) -> None:
    device_id, token = device
    proxy = HoldingProxy(stack_settings.influx_url)
    proxy.delay = 0.5
    slow = stack_settings.replace(influx_url=proxy.url, influx_timeout=30.0,
                                  batch_max_points=50)
    bridge = BridgeProcess(slow, tmp_path / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        for i in range(300):
            client.publish(f"devices/{device_id}/data", json.dumps(
                [{"variable": "w", "value": i * 100 + j, "time": 1_700_000_000_000 + i * 100 + j}
                 for j in range(100)]), wait=False)
        wait_until(lambda: "event=mqtt_paused" in bridge.text(), timeout=30,
                   what="the bridge to stop reading")
        proxy.delay = 0.0
        wait_until(lambda: count(api, token) == 30_000, timeout=60, what="30000 points")
    finally:
        client.close()
        assert bridge.stop() == 0
        proxy.close()
    assert "event=mqtt_resumed" in bridge.text()
