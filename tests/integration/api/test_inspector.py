"""The live inspector end to end: a real bridge process, two API processes and the broker.
An admin watches a device through one API; what reaches the device through the bridge or
either API shows up there within about a second; devices can neither see nor forge any
of it (the broker's ACL)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.inspector import events
from bridge.registry.sqlite import SQLiteRegistry
from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer, ok, start_api
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    running_bridge,
    wait_until,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lorawan"


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings.replace(mqtt_client_id="inspector-bridge"),
                              tmp_path_factory.mktemp("bridge") / "bridge.log")


@pytest.fixture(scope="module")
def second_api(api: ApiServer) -> Iterator[ApiServer]:
    """Another API process on the same registry and broker."""
    settings = api.settings.replace(http_port=free_port())
    registry = SQLiteRegistry(Path(settings.registry_location.removeprefix("sqlite:///")))
    server = start_api(settings, registry, inspector=True)
    yield server
    server.stop()
    registry.close()


class Watcher:
    """What the console's live view does: long-poll ``/live`` and collect the events."""

    def __init__(self, api: ApiServer, device_id: str) -> None:
        self.client = httpx.Client(base_url=api.url, timeout=30,
                                   headers={"admin-token": api.state.admin_token})
        self.url = f"/admin/devices/{device_id}/live"
        self.after = 0
        self.seen: list[dict[str, Any]] = []

    def poll(self, wait: float = 0.5) -> dict[str, Any]:
        result: dict[str, Any] = ok(self.client.get(self.url, params={"after": self.after,
                                                                       "wait": wait}))
        self.seen += result["events"]
        self.after = result["last"]
        return result

    def start(self) -> Watcher:
        wait_until(lambda: self.poll(0)["watching"], what="the watch to reach the broker")
        return self

    def until(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 5
        while len(self.seen) < count and time.monotonic() < deadline:
            self.poll(1)
        return self.seen

    def close(self) -> None:
        self.client.delete(self.url)
        self.client.close()


@pytest.fixture
def watched(api: ApiServer, bridge: BridgeProcess) -> Iterator[tuple[str, str, Watcher]]:
    device_id, token = api.mqtt_device("full")
    watcher = Watcher(api, device_id).start()
    yield device_id, token, watcher
    watcher.close()


def test_mqtt_messages_and_rejections_show_up(api: ApiServer, watched: Any) -> None:
    device_id, token, watcher = watched
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        topic = f"devices/{device_id}/data"
        t = time.monotonic()
        client.publish(topic, json.dumps([{"variable": "t", "value": 1},
                                          {"variable": "h", "value": 2}]))
        (first,) = watcher.until(1)
        assert time.monotonic() - t < 2
        assert first["outcome"] == "accepted" and first["points"] == 2
        assert first["source"] == "mqtt" and first["where"] == topic
        assert first["process"] == "bridge-inspector-bridge"
        assert json.loads(first["payload"])[0]["variable"] == "t"
        client.publish(topic, json.dumps({"variable": "t", "value": None}))
        client.publish(topic, b"{not json")
        client.publish(topic, b"x" * 5000)
        rejected = watcher.until(4)[1:]
    finally:
        client.close()
    assert [e["outcome"] for e in rejected] == ["rejected"] * 3
    assert rejected[0]["reason"] == "invalid"
    assert rejected[0]["errors"][0]["field"] == "value"
    assert "Invalid JSON" in rejected[1]["message"]
    assert rejected[2]["payload_bytes"] == 5000 and rejected[2]["truncated"]
    assert len(rejected[2]["payload"]) == events.PAYLOAD_PREVIEW
    assert [e["seq"] for e in watcher.seen] == sorted(e["seq"] for e in watcher.seen)


def test_http_requests_from_every_api_show_up(api: ApiServer, second_api: ApiServer,
                                              watched: Any) -> None:
    device_id, token, watcher = watched
    wait_until(lambda: second_api.state.inspector.tap.watching(device_id),
               what="the second API to hear of the watch")
    with second_api.client(token) as device:
        ok(device.post("/data", json={"variable": "t", "value": 5}))
        assert device.post("/data", json=[{"variable": "ok", "value": 1},
                                          {"variable": "", "value": 1}]).status_code == 400
    with api.client(token) as device:
        ok(device.post("/data", json=[]))
    seen = watcher.until(3)
    assert [(e["source"], e["outcome"], e["points"]) for e in seen] == [
        ("http", "accepted", 1), ("http", "rejected", 0), ("http", "accepted", 0)]
    assert seen[0]["process"] == f"api-{second_api.settings.http_port}"
    assert seen[1]["reason"] == "invalid" and seen[1]["errors"][0]["index"] == 1
    assert seen[2]["process"] == f"api-{api.settings.http_port}"


def test_lorawan_uplinks_show_up(api: ApiServer, watched: Any) -> None:
    device_id, _, watcher = watched
    eui = secrets.token_hex(8)
    api.registry.create_token(device_id, "write", serial=eui)
    network = api.registry.create_network(f"net-{eui}").token
    body = json.loads((FIXTURES / "chirpstack-up-codec.json").read_text())
    body["deviceInfo"]["devEui"] = eui
    with httpx.Client(base_url=api.url, timeout=30, headers={"token": network}) as hooks:
        ok(hooks.post("/integrations/chirpstack", params={"event": "up"}, json=body))
        body["object"] = {"temp": [1, 2]}  # a decoded array: refused, naming the field
        assert hooks.post("/integrations/chirpstack", params={"event": "up"},
                          json=body).status_code == 400
    seen = watcher.until(2)
    assert [(e["source"], e["outcome"], e["where"]) for e in seen] == [
        ("http", "accepted", "POST /integrations/chirpstack"),
        ("http", "rejected", "POST /integrations/chirpstack")]
    assert seen[0]["points"] == 8 and json.loads(seen[0]["payload"])["deviceInfo"]
    assert seen[1]["reason"] == "invalid"


def test_nothing_is_published_for_unwatched_devices(api: ApiServer) -> None:
    tap = api.state.inspector.tap
    before = tap.published
    device_id, token = api.device()
    with api.client(token) as device:
        ok(device.post("/data", json={"variable": "t", "value": 1}))
        device.post("/data", json={"variable": "t", "value": None})
    assert tap.published == before and not tap.watching(device_id)


def test_stopping_clears_the_watch_everywhere(api: ApiServer, bridge: BridgeProcess) -> None:
    device_id, _ = api.device()
    watcher = Watcher(api, device_id).start()
    assert api.state.inspector.tap.watching(device_id)
    watcher.close()
    wait_until(lambda: not api.state.inspector.tap.watching(device_id),
               what="the lease to be cleared")


def test_devices_can_neither_read_nor_forge_inspector_topics(api: ApiServer,
                                                             watched: Any) -> None:
    device_id, token, watcher = watched
    spy_id, spy_token = api.mqtt_device("full")
    spy = connect_when_allowed(api.settings, spy_id, spy_token)
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        # The broker refuses these subscriptions (SUBACK 0x87); they are tried anyway.
        for pattern in ("devicedata/#", "#", events.EVENTS_FILTER, events.WATCH_FILTER):
            spy.subscribe(pattern)
            client.subscribe(pattern)
        client.subscribe(f"devices/{device_id}/errors")
        forged = {"device": device_id, "outcome": "accepted", "points": 99}
        for who in (spy, client):
            for topic, payload in ((events.events_topic(device_id), json.dumps(forged)),
                                   (events.watch_topic(device_id, "evil"),
                                    json.dumps({"until": 2**40}))):
                reason = who.publish(topic, payload)
                assert reason.is_failure and reason.value == 135, topic  # not authorized
        client.publish(f"devices/{device_id}/data", b"not json")
        watcher.until(1)
        time.sleep(0.5)
        watcher.poll(0.2)
    finally:
        spy.close()
        client.close()
    assert [e["outcome"] for e in watcher.seen] == ["rejected"]  # nothing forged
    assert spy.messages.empty(), "a device received inspector traffic"
    received = []
    while not client.messages.empty():
        received.append(client.messages.get().topic)
    assert received == [f"devices/{device_id}/errors"]  # its own error report only
    assert not api.state.inspector.tap.watching("nobody")


def test_live_needs_the_admin_token_and_a_device(api: ApiServer) -> None:
    device_id, token = api.device()
    for headers in ({}, {"token": token}, {"admin-token": "nope"}):
        response = httpx.get(f"{api.url}/admin/devices/{device_id}/live", headers=headers)
        assert response.status_code == 401
    response = httpx.get(f"{api.url}/admin/devices/{'0' * 24}/live?wait=0",
                         headers={"admin-token": api.state.admin_token})
    assert response.status_code == 404
    response = httpx.get(f"{api.url}/admin/devices/{device_id}/live?wait=x",
                         headers={"admin-token": api.state.admin_token})
    assert response.status_code == 400


def test_a_device_client_cannot_use_the_bridge_user(api: ApiServer) -> None:
    _, token = api.device()
    probe = DeviceClient(api.settings, api.settings.mqtt_username, token)
    probe.close()
    assert not probe.accepted



def test_a_restarted_bridge_learns_the_watches_again(api: ApiServer, bridge: BridgeProcess,
                                                     watched: Any) -> None:
    """The bridge resumes its session, where the lease subscription exists already: the
    leases must still be sent again (they are retained, and re-sent on every connect),
    well before the watcher renews its own (every LEASE_SECONDS / 2)."""
    device_id, token, watcher = watched
    assert bridge.stop() == 0
    bridge.start()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        client.publish(f"devices/{device_id}/data", b"[")
        (event,) = watcher.until(1)
    finally:
        client.close()
    assert event["outcome"] == "rejected" and event["process"] == "bridge-inspector-bridge"
