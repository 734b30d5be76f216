"""What a broker sends the bridge again across reconnects: retained messages must be stored
once however often the bridge reconnects, and clearing one is not an error. Each test runs
its own bridge, so no other bridge stores the same messages meanwhile."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

from bridge.settings import Settings
from support.api import ApiServer
from support.http import count
from support.mqtt import BridgeProcess, connect_when_allowed, wait_until


def test_a_retained_message_is_stored_once_across_reconnects(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    topic = f"devices/{device_id}/data"
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        client.publish(topic, json.dumps({"variable": "retained", "value": 1}), retain=True)
        wait_until(lambda: count(api, token, variable="retained") == 1, what="the point")
        for reconnect in range(1, 3):
            assert bridge.stop() == 0
            bridge.start()  # resumes its session and subscribes again
            client.publish(topic, json.dumps({"variable": "marker", "value": reconnect}))
            wait_until(lambda n=reconnect: count(api, token, variable="marker") == n,  # type: ignore[misc]
                       what="the marker published after the reconnect")
        time.sleep(0.5)  # a retained copy resent on subscribe came before the marker
        assert count(api, token, variable="retained") == 1
    finally:
        client.publish(topic, b"", retain=True)  # clear it for the tests that follow
        client.close()
        if bridge.running():
            bridge.stop()


def test_clearing_a_retained_message_earns_no_error_report(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        client.subscribe(f"devices/{device_id}/errors")
        client.publish(f"devices/{device_id}/data", b"", retain=True)
        client.publish(f"devices/{device_id}/data", b"not json")  # this one is an error
        report = json.loads(client.next_message(timeout=10).payload)
        assert "not json" not in report["message"] and report["topic"].endswith("/data")
        assert report["message"].lower().startswith(("invalid", "malformed", "body")), report
        try:
            extra = client.next_message(timeout=1)
        except queue.Empty:
            extra = None
        assert extra is None, f"a second report: {extra.payload!r}"
        assert count(api, token) == 0
    finally:
        client.close()
        bridge.stop()
