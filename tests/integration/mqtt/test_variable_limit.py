"""The per-device limit on distinct variables over MQTT: a message past it is refused with
an error report naming the limit, while another device's new variables are stored; the
bridge reads each device's names from InfluxDB first, without holding up other devices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.settings import Settings
from support.api import ApiServer
from support.http import count, read
from support.mqtt import BridgeProcess, connect_when_allowed, wait_until

LIMIT = 4


@pytest.fixture
def bridge(stack_settings: Settings, tmp_path: Path) -> Iterator[BridgeProcess]:
    process = BridgeProcess(stack_settings.replace(max_variables=LIMIT),
                            tmp_path / "bridge.log").start()
    yield process
    assert process.stop() == 0


def test_a_message_past_the_limit_gets_an_error_report(api: ApiServer,
                                                       bridge: BridgeProcess) -> None:
    greedy_id, greedy_token = api.mqtt_device()
    other_id, other_token = api.mqtt_device()
    # Stored before the bridge first hears of the device: it must count these too.
    with api.client(greedy_token) as c:
        assert c.post("/data", json=[{"variable": "old", "value": 0}]).status_code == 200
    greedy = connect_when_allowed(api.settings, greedy_id, greedy_token)
    other = connect_when_allowed(api.settings, other_id, other_token)
    try:
        greedy.subscribe(f"devices/{greedy_id}/errors")
        topic = f"devices/{greedy_id}/data"
        greedy.publish(topic, json.dumps([{"variable": f"v{i}", "value": i}
                                          for i in range(LIMIT - 1)]))
        greedy.publish(topic, json.dumps([{"variable": "v0", "value": 9},
                                          {"variable": "past", "value": 1}]))
        report = json.loads(greedy.next_message().payload)
        assert f"at most {LIMIT} distinct variables" in report["message"], report
        assert "DEVICEDATA_MAX_VARIABLES" in report["message"]
        assert report["errors"] == [{"field": "variable", "index": 1, "message":
                                     f"is a new variable past this device's limit of {LIMIT}"}]
        other.publish(f"devices/{other_id}/data", json.dumps(
            [{"variable": f"o{i}", "value": i} for i in range(LIMIT)]))
        wait_until(lambda: count(api, other_token) == LIMIT, what="the other device's points")
        assert count(api, greedy_token) == LIMIT  # "old" and v0..v2; not the refused message
        assert {p["variable"] for p in read(api, greedy_token, qty=20)} == {
            "old", "v0", "v1", "v2"}
    finally:
        greedy.close()
        other.close()
