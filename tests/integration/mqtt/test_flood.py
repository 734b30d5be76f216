"""One device flooding over MQTT gets its messages refused past its limit, with an error
report saying when to retry, while another device's messages are all stored. The test
asserts what each device observes, not timing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer
from support.http import count
from support.metrics import samples, value
from support.mqtt import BridgeProcess, connect_when_allowed, wait_until

RATE, BURST = 200.0, 1000.0


def test_a_flooding_device_is_refused_past_its_limit_and_others_are_not(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    flooder_id, flooder_token = api.mqtt_device("full")
    other_id, other_token = api.mqtt_device("full")
    # The burst is at least DEVICEDATA_MAX_POINTS (a largest message must be able to pass).
    bridge = BridgeProcess(stack_settings.replace(mqtt_points_per_second=RATE,
                                                  mqtt_points_burst=BURST, max_points=500),
                           tmp_path / "bridge.log").start()
    flooder = connect_when_allowed(api.settings, flooder_id, flooder_token)
    other = connect_when_allowed(api.settings, other_id, other_token)
    try:
        flooder.subscribe(f"devices/{flooder_id}/errors")
        batch = [{"variable": "f", "value": i} for i in range(100)]
        for n in range(100):  # 10,000 points, as fast as the broker takes them
            flooder.publish(f"devices/{flooder_id}/data", json.dumps(batch), wait=False)
            if n % 10 == 0:
                other.publish(f"devices/{other_id}/data",
                              json.dumps({"variable": "o", "value": n}), qos=1)
        flooder.publish(f"devices/{flooder_id}/data", json.dumps(batch))  # all sent
        wait_until(lambda: count(api, other_token) == 10, what="the other device's points")
        report = json.loads(flooder.next_message(timeout=10).payload)
        assert report["message"].startswith("Too many points")
        assert "200 points per second" in report["message"] and "retry in" in report["message"]
        stored = count(api, flooder_token)
        assert BURST <= stored < 10_100 / 2, stored  # the burst, and what refilled meanwhile
    finally:
        for client in (flooder, other):
            client.close()
        bridge.stop()
    assert "reason=rate_limited" in bridge.text()


def test_limits_can_be_turned_off(api: ApiServer, stack_settings: Settings,
                                  tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    bridge = BridgeProcess(stack_settings.replace(mqtt_points_per_second=0),
                           tmp_path / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        batch = [{"variable": "f", "value": i} for i in range(1000)]
        for _ in range(60):
            client.publish(f"devices/{device_id}/data", json.dumps(batch), wait=False)
        client.publish(f"devices/{device_id}/data", json.dumps({"variable": "last"}))
        wait_until(lambda: count(api, token) == 60_001, timeout=30, what="every point")
    finally:
        client.close()
        bridge.stop()
    assert "rate_limited" not in bridge.text()


def test_a_flood_of_bad_messages_is_refused_unparsed_past_the_burst(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    port = free_port()
    bridge = BridgeProcess(stack_settings.replace(
        mqtt_points_per_second=1.0, mqtt_points_burst=50.0, max_points=50,
        bridge_metrics_port=port), tmp_path / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        for i in range(500):
            client.publish(f"devices/{device_id}/data", b"{bad json %d" % i, qos=0)
        client.publish(f"devices/{device_id}/data", b"{bad json")  # QoS 1: all sent

        def refused() -> dict[str, float]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return {reason: value(samples(text), "devicedata_points_rejected_total",
                                  path="mqtt", reason=reason)
                    for reason in ("invalid", "rate_limited")}

        wait_until(lambda: sum(refused().values()) == 501, what="every message refused")
        # Each bad message costs a point: past the burst (and what refilled meanwhile)
        # they are refused before they are parsed.
        counts = refused()
        assert counts["invalid"] < 50 + 20, counts
    finally:
        client.close()
        bridge.stop()
