"""The bridge under failure: killed between write and ack, stopped mid-stream, the broker
restarted, InfluxDB away. Each test counts what was published and what is stored."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.settings import Settings
from devicedata.servers import InfluxServer, MosquittoServer
from support.api import ApiServer, stored_points
from support.http import count
from support.influx_proxy import HoldingProxy
from support.mqtt import BridgeProcess, connect_when_allowed, wait_until


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def device(api: ApiServer) -> Iterator[tuple[str, str]]:
    yield api.mqtt_device("full")


def handled(process: BridgeProcess) -> int:
    lines = [x for x in process.text().splitlines() if "event=bridge_stopped" in x]
    return int(lines[-1].split("messages=")[1].split()[0])


def test_redelivery_after_a_kill_between_write_and_ack_makes_no_duplicates(
        api: ApiServer, influx: InfluxServer, stack_settings: Settings, device: tuple[str, str],
        log_dir: Path) -> None:
    device_id, token = device
    proxy = HoldingProxy(stack_settings.influx_url)
    proxy.hold_writes.set()
    first = BridgeProcess(stack_settings.replace(influx_url=proxy.url, influx_timeout=120.0),
                          log_dir / "first.log").start()
    try:
        client = connect_when_allowed(api.settings, device_id, token)
        points = [{"variable": "r", "value": i, "time": f"2024-01-01T00:00:0{i}Z"}
                  for i in range(5)] + [{"variable": "r", "value": 9,
                                         "time": "2024-01-01T00:00:00Z"}]
        client.publish(f"devices/{device_id}/data", json.dumps(points), qos=1, wait=False)
        wait_until(lambda: stored_points(influx, api, device_id) == 6,
                   what="the write to land in InfluxDB")
        wait_until(lambda: proxy.writes_held >= 1, what="the proxy to hold the answer")
        first.stop(signal.SIGKILL)  # written, never acknowledged
        client.close()
    finally:
        if first.running():  # a failed wait above: never leave it holding the spool dir
            first.stop(signal.SIGKILL)
        proxy.close()
    second = BridgeProcess(stack_settings, log_dir / "second.log").start()
    time.sleep(2)  # the broker redelivers on session resume, well within this
    assert second.stop() == 0
    assert handled(second) >= 1, "the broker did not redeliver"
    assert count(api, token) == 6


def test_sigterm_drains_and_acknowledges_everything(
        api: ApiServer, stack_settings: Settings, device: tuple[str, str], log_dir: Path) -> None:
    device_id, token = device
    first = BridgeProcess(stack_settings, log_dir / "first.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    for i in range(300):  # untimed points: any message written twice would show
        client.publish(f"devices/{device_id}/data", json.dumps({"variable": "d", "value": i}),
                       wait=False)
    client.publish(f"devices/{device_id}/data", json.dumps({"variable": "d", "value": -1}))
    client.close()
    assert first.stop(signal.SIGTERM) == 0
    second = BridgeProcess(stack_settings, log_dir / "second.log").start()
    try:
        wait_until(lambda: count(api, token) >= 301, what="all 301 points")
    finally:
        assert second.stop() == 0
    assert count(api, token) == 301


def test_broker_restart_mid_stream_loses_no_qos1_message(
        api: ApiServer, stack_settings: Settings, mosquitto: MosquittoServer,
        device: tuple[str, str], log_dir: Path) -> None:
    device_id, token = device
    bridge = BridgeProcess(stack_settings, log_dir / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    client.client.reconnect_delay_set(0.1, 1)
    total = 1500

    def publish_all() -> None:
        for i in range(total):
            client.publish(f"devices/{device_id}/data",
                           json.dumps({"variable": "b", "value": i, "time": 1_700_000_000_000 + i}),
                           wait=False)

    try:
        sender = threading.Thread(target=publish_all)
        sender.start()
        wait_until(lambda: count(api, token) > 100, what="the stream to start")
        mosquitto.stop()
        mosquitto.start()
        sender.join(60)
        wait_until(lambda: count(api, token) == total, timeout=60, what=f"{total} points")
    finally:
        client.close()
        assert bridge.stop() == 0
    assert "event=mqtt_reconnect_wait" in bridge.text()


def test_nothing_is_acknowledged_that_is_neither_stored_nor_spooled(
        api: ApiServer, stack_settings: Settings, influx: InfluxServer,
        device: tuple[str, str], log_dir: Path) -> None:
    """With no room in the spool, an InfluxDB outage holds back the bridge's PUBACKs: a
    bridge killed then keeps nothing, and the broker hands every message to the next."""
    device_id, token = device
    no_spool = stack_settings.replace(spool_max_bytes=0)
    first = BridgeProcess(no_spool, log_dir / "first.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    influx.stop()
    try:
        for i in range(50):  # untimed: a message acknowledged but not stored is lost
            client.publish(f"devices/{device_id}/data",
                           json.dumps({"variable": "o", "value": i}))
        wait_until(lambda: "event=write_retry" in first.text(), what="a retried write")
        first.stop(signal.SIGKILL)
    finally:
        influx.start()
        client.close()
    second = BridgeProcess(no_spool, log_dir / "second.log").start()
    try:
        wait_until(lambda: count(api, token) == 50, timeout=30, what="50 redelivered points")
    finally:
        assert second.stop() == 0
    assert count(api, token) == 50


def test_devices_keep_connecting_while_bridge_is_away(
        api: ApiServer, stack_settings: Settings, device: tuple[str, str], log_dir: Path) -> None:
    """Messages published while no bridge runs wait in its persistent session."""
    device_id, token = device
    client = connect_when_allowed(api.settings, device_id, token)
    for i in range(20):
        client.publish(f"devices/{device_id}/data",
                       json.dumps({"variable": "q", "value": i, "time": 1_600_000_000_000 + i}))
    client.close()
    bridge = BridgeProcess(stack_settings, log_dir / "bridge.log").start()
    try:
        wait_until(lambda: count(api, token) == 20, what="20 queued points")
    finally:
        assert bridge.stop() == 0
    assert handled(bridge) >= 20  # they reached this bridge from its session's queue
    assert count(api, token) == 20
