"""MQTT ingestion end to end: a device publishes to our Mosquitto, the bridge (a real
`devicedata bridge` process) stores into our InfluxDB, the API reads it back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import Settings
from support.api import ApiServer
from support.http import count, read
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    drop_session,
    running_bridge,
    wait_refused,
    wait_until,
)


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings, tmp_path_factory.mktemp("bridge") / "bridge.log")


@pytest.fixture
def mqtt_device(api: ApiServer, bridge: BridgeProcess) -> Iterator[tuple[str, str, DeviceClient]]:
    device_id, token = api.mqtt_device("full")
    client = connect_when_allowed(api.settings, device_id, token)
    yield device_id, token, client
    client.close()


def test_published_point_is_readable_over_http(api: ApiServer, mqtt_device: Any) -> None:
    device_id, token, client = mqtt_device
    reason = client.publish(f"devices/{device_id}/data",
                            json.dumps({"variable": "temperature", "value": 21.5, "unit": "C"}))
    assert not reason.is_failure
    (point,) = wait_until(lambda: read(api, token), what="the point")
    assert (point["variable"], point["value"], point["unit"]) == ("temperature", 21.5, "C")
    assert point["device"] == device_id


@pytest.mark.parametrize("qos", [0, 1])
def test_array_payload_stores_every_point(api: ApiServer, mqtt_device: Any, qos: int) -> None:
    device_id, token, client = mqtt_device
    points = [{"variable": f"v{i}", "value": i, "time": 1_700_000_000_000 + i} for i in range(10)]
    client.publish(f"devices/{device_id}/data", json.dumps(points), qos=qos)
    wait_until(lambda: count(api, token) == 10, what="10 points")
    assert sorted(p["value"] for p in read(api, token, qty=20)) == list(range(10))


def test_the_broker_refuses_missing_and_wrong_credentials(api: ApiServer,
                                                          mqtt_device: Any) -> None:
    device_id, token, _ = mqtt_device
    for username, password in ((None, None), (device_id, "wrong"), ("nobody", token),
                               (device_id, "")):
        client = DeviceClient(api.settings, username, password)
        try:
            assert not client.accepted, (username, password)
        finally:
            client.close()


def test_a_device_cannot_publish_or_read_for_another(api: ApiServer, mqtt_device: Any) -> None:
    _a_id, a_token, a = mqtt_device
    b_id, b_token = api.mqtt_device("full")
    b = connect_when_allowed(api.settings, b_id, b_token)
    try:
        a.subscribe("devices/#")
        a.subscribe(f"devices/{b_id}/errors")
        reason = a.publish(f"devices/{b_id}/data", json.dumps({"variable": "x", "value": 1}))
        assert reason.is_failure and reason.value == 135  # not authorized
        b.publish(f"devices/{b_id}/data", "not json")  # B's own error and data
        b.publish(f"devices/{b_id}/data", json.dumps({"variable": "mine", "value": 2}))
        wait_until(lambda: count(api, b_token) == 1, what="B's own point")
        assert read(api, b_token)[0]["variable"] == "mine"
        time.sleep(0.3)  # anything the broker were to deliver to A would be here by now
        assert a.messages.empty(), "A received B's traffic"
        assert count(api, a_token) == 0
    finally:
        b.close()


def test_bad_payloads_are_answered_on_the_error_topic(api: ApiServer, mqtt_device: Any) -> None:
    device_id, token, client = mqtt_device
    client.subscribe(f"devices/{device_id}/errors")
    topic = f"devices/{device_id}/data"
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "Invalid JSON"),
        (b"\xff\xfe\x00", "Invalid JSON"),
        (b"42", "Expected a JSON object or an array"),
        (json.dumps([{"variable": "ok", "value": 1}, {"variable": "bad", "value": None}])
         .encode(), "[1] value"),
        (b'{"variable": "x", "value": "' + b"y" * (1024 * 1024) + b'"}', "over the limit"),
    ]
    for payload, expected in cases:
        reason = client.publish(topic, payload)
        assert not reason.is_failure
        error = json.loads(client.next_message().payload)
        assert error["status"] is False
        assert expected in error["message"], error
        assert error["topic"] == topic
    invalid_point = json.loads(cases[3][0])
    assert invalid_point  # the array had a valid first point, which must not be stored
    client.publish(topic, json.dumps({"variable": "good", "value": 3}))
    wait_until(lambda: count(api, token) == 1, what="the good message")
    assert [p["variable"] for p in read(api, token)] == ["good"]


def test_a_time_python_reads_as_a_zone_is_refused_and_the_next_stored(
        api: ApiServer, mqtt_device: Any) -> None:
    device_id, token, client = mqtt_device
    client.subscribe(f"devices/{device_id}/errors")
    topic = f"devices/{device_id}/data"
    # datetime.fromisoformat reads "03-04" as 03:00 at UTC-04:00: an aware time.
    client.publish(topic, b'{"variable": "x", "value": 1, "time": "2024-01-02T03-04:05.123Z"}')
    error = json.loads(client.next_message().payload)
    assert error["errors"][0]["field"] == "time", error
    client.publish(topic, json.dumps({"variable": "good", "value": 3}))
    wait_until(lambda: count(api, token) == 1, what="the good message")


def test_error_message_names_index_and_field(api: ApiServer, mqtt_device: Any) -> None:
    device_id, _, client = mqtt_device
    client.subscribe(f"devices/{device_id}/errors")
    client.publish(f"devices/{device_id}/data",
                   json.dumps([{"variable": "a"}, {"variable": "b", "unit": 5}]))
    error = json.loads(client.next_message().payload)
    assert error["errors"] == [{"field": "unit", "message": error["errors"][0]["message"],
                                "index": 1}]
    assert "string" in error["errors"][0]["message"]


def test_revocation_and_new_tokens_reach_the_broker(api: ApiServer, mqtt_device: Any) -> None:
    device_id, token, _client = mqtt_device
    newer = api.registry.create_token(device_id, "write").token
    api.sync_broker()
    connect_when_allowed(api.settings, device_id, newer).close()
    api.registry.revoke_token(newer)
    api.sync_broker()

    wait_refused(api.settings, device_id, newer)
    connect_when_allowed(api.settings, device_id, token).close()


def test_an_expired_token_is_refused_without_any_explicit_sync(
        api: ApiServer, bridge: BridgeProcess) -> None:
    device = api.registry.create_device("expiring")
    token = api.registry.create_token(device.id, "write",
                                      expires_ns=time.time_ns() + 3 * 10**9).token
    connect_when_allowed(api.settings, device.id, token).close()  # the bridge synced it
    time.sleep(3)

    wait_refused(api.settings, device.id, token)


def test_deleted_device_is_refused(api: ApiServer, bridge: BridgeProcess) -> None:
    device_id, token = api.mqtt_device()
    connect_when_allowed(api.settings, device_id, token).close()
    api.registry.delete_device(device_id)
    api.sync_broker()

    wait_refused(api.settings, device_id, token)


def test_read_only_token_cannot_publish(api: ApiServer, bridge: BridgeProcess) -> None:
    device_id, token = api.device("read")
    api.sync_broker()
    probe = DeviceClient(api.settings, device_id, token)
    probe.close()
    assert not probe.accepted


def test_bridge_log_mentions_rejections_without_secrets(api: ApiServer, bridge: BridgeProcess,
                                                        mqtt_device: Any) -> None:
    device_id, token, client = mqtt_device
    for _ in range(5):
        client.publish(f"devices/{device_id}/data", b"nope")
    wait_until(lambda: f"device={device_id}" in bridge.text(), what="a log line")
    assert bridge.text().count(f"event=message_rejected device={device_id}") == 1
    assert token not in bridge.text()


def test_shared_group_splits_the_load(api: ApiServer, stack_settings: Settings,
                                      tmp_path: Path, bridge: BridgeProcess) -> None:
    bridge.stop()
    shared = stack_settings.replace(mqtt_shared_group="g1")
    # Each bridge has a user of its own: the broker binds a session to a user name.
    members = [BridgeProcess(shared.replace(mqtt_client_id=f"member-{i}",
                                            mqtt_username=f"member-{i}"),
                             tmp_path / f"member-{i}.log").start() for i in range(2)]
    try:
        device_id, token = api.mqtt_device()
        client = connect_when_allowed(api.settings, device_id, token)
        for i in range(200):
            client.publish(f"devices/{device_id}/data",
                           json.dumps({"variable": "s", "value": i}), wait=False)
        client.publish(f"devices/{device_id}/data", json.dumps({"variable": "s", "value": -1}))
        client.close()
        wait_until(lambda: count(api, token) == 201, what="201 points")
    finally:
        codes = [m.stop() for m in members]
        for member in members:
            drop_session(member.settings)
        bridge.start()
    assert codes == [0, 0]
    handled = [_messages_handled(m.text()) for m in members]
    assert sum(handled) == 201 and all(h > 20 for h in handled), handled


def _messages_handled(log: str) -> int:
    line = [x for x in log.splitlines() if "event=bridge_stopped" in x][-1]
    return int(line.split("messages=")[1].split()[0])
