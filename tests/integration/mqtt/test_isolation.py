"""One device's token cannot hurt other devices through the broker (issue 12, items 1-2):
it cannot take over the bridge's or another device's session by client id, nor join the
bridges' shared subscription or read any topic but its own errors. The broker refuses
(SUBACK 0x87) rather than silently filtering, so no message is handed to a device that
may not read it. Each test runs its own bridge."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer
from support.http import count
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    drop_session,
    wait_until,
)

MESSAGES = 700


def test_a_device_cannot_take_over_the_bridges_or_another_devices_session(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    attacker_id, attacker_token = api.mqtt_device("full")
    victim_id, victim_token = api.mqtt_device("full")
    port = free_port()
    bridge = BridgeProcess(stack_settings.replace(bridge_metrics_port=port),
                           tmp_path / "bridge.log").start()
    victim = connect_when_allowed(api.settings, victim_id, victim_token)
    stop = threading.Event()

    def attack() -> None:
        while not stop.is_set():
            for stolen in (stack_settings.mqtt_client_id, "devicedata-bridge",
                           victim.client._client_id.decode()):
                DeviceClient(api.settings, attacker_id, attacker_token,
                             client_id=stolen).close()
            stop.wait(0.2)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        for i in range(MESSAGES):
            victim.publish(f"devices/{victim_id}/data",
                           json.dumps({"variable": "v", "value": i}), wait=i % 50 == 0)
        victim.publish(f"devices/{victim_id}/data", json.dumps({"variable": "v", "value": -1}))
        wait_until(lambda: count(api, victim_token) == MESSAGES + 1, timeout=20,
                   what="every acknowledged message of the victim")
        assert victim.disconnects == 0
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
    finally:
        stop.set()
        attacker.join()
        victim.close()
        code = bridge.stop()
    assert code == 0
    log = bridge.text()
    assert log.count("event=mqtt_connected") == 1 and "mqtt_reconnect_wait" not in log


REFUSED_FILTERS = ["$share/devicedata/devices/+/data", "$share/other/devices/+/data",
                   "$share/devicedata/#", "devices/+/data", "devices/#", "#", "+/+/+",
                   "devices/+/errors", "$SYS/#", "$CONTROL/#"]


def test_a_device_cannot_join_the_bridges_shared_group_or_read_others(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    attacker_id, attacker_token = api.mqtt_device("full")
    victim_id, victim_token = api.mqtt_device("full")
    group = stack_settings.replace(mqtt_shared_group="devicedata", mqtt_username="share-1",
                                   mqtt_client_id="share-1")
    bridge = BridgeProcess(group, tmp_path / "bridge.log").start()
    try:
        # A persistent session, so an accepted subscription would outlive the connection.
        attacker = DeviceClient(api.settings, attacker_id, attacker_token,
                                session_expiry=3600)
        for topic in [*REFUSED_FILTERS, f"devices/{victim_id}/errors"]:
            (code,) = attacker.subscribe(topic)
            assert code.is_failure, f"{topic}: {code}"
            assert code.value == 0x87, f"{topic}: {code}"  # not authorized
        (own,) = attacker.subscribe(f"devices/{attacker_id}/errors")
        assert not own.is_failure
        attacker.close()
        victim = connect_when_allowed(api.settings, victim_id, victim_token)
        for i in range(200):
            victim.publish(f"devices/{victim_id}/data",
                           json.dumps({"variable": "v", "value": i}), wait=False)
        victim.publish(f"devices/{victim_id}/data", json.dumps({"variable": "v", "value": -1}))
        victim.close()
        wait_until(lambda: count(api, victim_token) == 201, what="all 201 messages")
    finally:
        assert bridge.stop() == 0
        drop_session(group)  # so it does not queue later tests' messages


def test_a_message_that_trips_the_bridge_stops_no_other_device(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    """Once a poison message: a time Python read as a zone raised TypeError out of the
    connection, which closed; the broker handed the message back on every reconnect (18
    reconnects in 15 s here) and no other device's message was stored."""
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    hostile_id, hostile_token = api.mqtt_device("full")
    other_id, other_token = api.mqtt_device("full")
    hostile = connect_when_allowed(api.settings, hostile_id, hostile_token)
    other = connect_when_allowed(api.settings, other_id, other_token)
    try:
        hostile.publish(f"devices/{hostile_id}/data", json.dumps({"variable": "a", "value": 1}))
        wait_until(lambda: count(api, hostile_token) == 1, what="the device to be known")
        hostile.publish(f"devices/{hostile_id}/data", json.dumps(
            {"variable": "x", "value": 1, "time": "2024-01-02T03-04:05.123Z"}))
        other.publish(f"devices/{other_id}/data", json.dumps({"variable": "b", "value": 2}))
        wait_until(lambda: count(api, other_token) == 1, what="the other device's message")
        assert bridge.text().count("event=mqtt_connected") == 1  # never cut off
    finally:
        for client in (hostile, other):
            client.close()
        bridge.stop()
