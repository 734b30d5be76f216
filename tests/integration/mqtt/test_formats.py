"""Every payload format through the real broker and a real bridge, read back over HTTP and
with the official TagoIO SDK: what each stores, what each refuses (a clear report on
devices/{id}/errors, nothing stored), and that a device reaches only its own topics."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from tagoio_sdk import Device

from bridge.errors import REPORTED_ERRORS
from bridge.model import topics
from bridge.settings import Settings
from support.api import ApiServer
from support.http import count, read
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    running_bridge,
    wait_until,
)

T0 = 1_500_000_000  # 2017-07-14T02:40:00Z: string values in a shard no other test writes to


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings, tmp_path_factory.mktemp("bridge") / "bridge.log")


class Dev:
    """A device of the session's API, connected to the broker and listening to its own
    error topic."""

    def __init__(self, api: ApiServer) -> None:
        self.id, self.token = api.mqtt_device("full")
        self.client = connect_when_allowed(api.settings, self.id, self.token)
        self.client.subscribe(topics.errors_topic(self.id))

    def publish(self, suffix: str, payload: bytes | str) -> None:
        reason = self.client.publish(topics.device_topic(self.id, suffix), payload)
        assert not reason.is_failure, reason

    def error(self) -> dict[str, Any]:
        message = self.client.next_message()
        assert message.topic == topics.errors_topic(self.id)
        report: dict[str, Any] = json.loads(message.payload)
        return report


@pytest.fixture
def dev(api: ApiServer, bridge: BridgeProcess) -> Iterator[Dev]:
    device = Dev(api)
    yield device
    device.client.close()


def points(api: ApiServer, dev: Dev, n: int) -> list[dict[str, Any]]:
    wait_until(lambda: count(api, dev.token) >= n, what=f"{n} points")
    got = read(api, dev.token, qty=100, ordination="ascending")
    assert len(got) == n, got
    return got


def quiet(api: ApiServer, dev: Dev) -> None:
    """The device's message after the refused ones is stored, so the bridge has handled
    the refused ones by then: none of them stored anything."""
    dev.publish("data", json.dumps({"variable": "marker", "value": 1}))
    wait_until(lambda: count(api, dev.token) >= 1, what="the marker")
    assert [p["variable"] for p in read(api, dev.token, qty=100)] == ["marker"]


# -- round trips ------------------------------------------------------------------------------


def test_raw_values(api: ApiServer, dev: Dev) -> None:
    for variable, payload in (("temperature", "21.5"), ("count", "20"), ("door", "open"),
                              ("alarm", "true"), ("room-1", " -3e2\r\n"), ("text", "True")):
        dev.publish(f"data/{variable}", payload)
    got = {p["variable"]: p["value"] for p in points(api, dev, 6)}
    assert got == {"temperature": 21.5, "count": 20, "door": "open", "alarm": True,
                   "room-1": -300.0, "text": "True"}
    assert isinstance(got["count"], int)


def test_key_value_objects(api: ApiServer, dev: Dev) -> None:
    dev.publish("kv", '{"temperature":21.5,"env":{"t":21,"h":48},"door":"open","on":true}')
    got = points(api, dev, 5)
    assert {p["variable"]: p["value"] for p in got} == {
        "temperature": 21.5, "env_t": 21, "env_h": 48, "door": "open", "on": True}
    assert len({p["group"] for p in got}) == 1  # one message, one group


def test_thingsboard_timestamped_values(api: ApiServer, dev: Dev) -> None:
    dev.publish("kv", json.dumps([{"ts": T0 * 1000, "values": {"t": 21.5}},
                                  {"ts": T0 * 1000 + 60_000, "values": {"t": 21.7}}]))
    got = points(api, dev, 2)
    assert [(p["time"], p["value"]) for p in got] == [
        ("2017-07-14T02:40:00.000Z", 21.5), ("2017-07-14T02:41:00.000Z", 21.7)]


PACK: list[dict[str, Any]] = [
    {"bn": "urn:dev:ow:10e2073a01080063:", "bt": T0, "n": "temp", "u": "Cel", "v": 21.5},
    {"n": "temp", "u": "Cel", "t": 60, "v": 21.7},
    {"n": "door", "vs": "open"},
    {"n": "alarm", "vb": False, "ut": 30, "unknown-label": 1},
]
PACK_POINTS = [
    ("urn:dev:ow:10e2073a01080063:temp", 21.5, "Cel", "2017-07-14T02:40:00.000Z"),
    ("urn:dev:ow:10e2073a01080063:door", "open", None, "2017-07-14T02:40:00.000Z"),
    ("urn:dev:ow:10e2073a01080063:alarm", False, None, "2017-07-14T02:40:00.000Z"),
    ("urn:dev:ow:10e2073a01080063:temp", 21.7, "Cel", "2017-07-14T02:41:00.000Z"),
]
CBOR_LABELS = {"bn": -2, "bt": -3, "n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "ut": 7}


def as_cbor(pack: list[dict[str, Any]]) -> bytes:
    return cbor2.dumps([{CBOR_LABELS.get(k, k): v for k, v in r.items()} for r in pack])


def stored_pack(got: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(p["variable"], p["value"], p.get("unit"), p["time"]) for p in got]


@pytest.mark.parametrize(("suffix", "payload"), [("senml", json.dumps(PACK)),
                                                 ("senml/cbor", as_cbor(PACK))],
                         ids=["json", "cbor"])
def test_senml_packs(api: ApiServer, dev: Dev, suffix: str, payload: bytes | str) -> None:
    dev.publish(suffix, payload)
    got = points(api, dev, 4)
    assert sorted(stored_pack(got), key=lambda p: (p[3], p[0])) == sorted(
        PACK_POINTS, key=lambda p: (p[3], p[0]))


def test_every_format_reads_back_with_the_tagoio_sdk(api: ApiServer, dev: Dev) -> None:
    dev.publish("data/raw", "1")
    dev.publish("kv", '{"kv":2}')
    dev.publish("senml", '[{"n":"senml","v":3,"u":"Cel"}]')
    dev.publish("senml/cbor", cbor2.dumps([{0: "cbor", 2: 4.5, 1: "%RH"}]))
    dev.publish("data", '{"variable":"tagoio","value":5}')
    wait_until(lambda: count(api, dev.token) == 5, what="5 points")
    sdk = Device({"token": dev.token, "region": {"api": api.url, "sse": api.url}})
    got = sdk.getData({"variables": ["raw", "kv", "senml", "cbor", "tagoio"],
                       "query": "last_value"})
    assert {p["variable"]: (p["value"], p.get("unit")) for p in got} == {
        "raw": (1, None), "kv": (2, None), "senml": (3, "Cel"), "cbor": (4.5, "%RH"),
        "tagoio": (5, None)}
    assert {p["device"] for p in got} == {dev.id}


# -- refused payloads ------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "payload", "message", "fields"), [
    ("data/" + "v" * 101, b"1", "topic must be at most 100 characters", ["topic"]),
    ("data/x", b"\xff\xfe", "neither a number, true/false nor UTF-8 text", ["payload"]),
    ("data/x", b"1e999", "finite", ["payload"]),
    ("kv", b'{"a": null, "b": [1], "c": 1}', "a must not be null", ["a", "b"]),
    ("kv", b'{"a_b": 1, "a": {"b": 2}}', 'both become variable "a_b"', ["a.b"]),
    ("kv", b"[1, 2]", "", None),
    ("kv", b"{not json", "invalid JSON", None),
    ("senml", b'[{"n": "x", "v": true}]', "[0] v must be a number, not a boolean", ["v"]),
    ("senml", b'[{"n": "x", "v": 1}, {"n": "y", "v": 1, "must_": 2}]', "[1] must_ is a "
     "must-understand extension", ["must_"]),
    ("senml", b'[{"n": "temp C", "v": 1}]', "[0] n", ["n"]),
    ("senml", b'{"n": "x", "v": 1}', "", None),
    ("senml/cbor", b"\xa1\x00", "", None),  # a map that ends early
    ("senml/cbor", b"\x81\xa2\x00\x61x\x02\xf5", "[0] v must be a number", ["v"]),
    ("senml/cbor", b"\x9f\xff", "indefinite-length", None),
    ("senml/cbor", b"\x81\xc1\x00", "tag", None),  # a date, no SenML value
    ("senml/cbor", cbor2.dumps([{0: "x", 2: 1}]) + b"\x00", "", None),  # trailing bytes
])
def test_malformed_payloads_are_reported_and_store_nothing(
        api: ApiServer, dev: Dev, suffix: str, payload: bytes, message: str,
        fields: list[str] | None) -> None:
    dev.publish(suffix, payload)
    error = dev.error()
    assert error["status"] is False and message in error["message"], error
    assert error["topic"] == topics.device_topic(dev.id, suffix)
    if fields is not None:
        assert [e["field"] for e in error["errors"]] == fields, error
    quiet(api, dev)


def test_a_pack_over_the_point_limit_is_refused_before_expansion(api: ApiServer,
                                                                  dev: Dev) -> None:
    limit = api.settings.max_points
    dev.publish("senml/cbor", cbor2.dumps([{0: f"v{i % 50}", 2: i} for i in range(limit + 1)]))
    error = dev.error()
    assert f"{limit + 1} SenML records, at most {limit}" in error["message"], error
    dev.publish("kv", json.dumps({f"k{i}": i for i in range(limit + 1)}))
    assert "at most" in dev.error()["message"]
    quiet(api, dev)


def test_a_report_of_many_faults_stays_small_and_the_bridge_connected(
        api: ApiServer, dev: Dev, bridge: BridgeProcess) -> None:
    """10,000 bad points: 20,000 faults. Listed whole, the report would be megabytes,
    over the broker's max_packet_size: the broker would disconnect the bridge (every
    device's data would wait) and the unacknowledged message would come back forever."""
    before = bridge.text().count("event=mqtt_disconnected")
    bad = json.dumps([{"unit": 1}] * api.settings.max_points)
    dev.publish("data", bad)
    error = dev.error()
    assert len(error["errors"]) == REPORTED_ERRORS
    assert error["more_errors"] == 2 * api.settings.max_points - REPORTED_ERRORS
    dev.publish("senml", json.dumps([{}] * api.settings.max_points))
    assert dev.error()["more_errors"] == 2 * api.settings.max_points - REPORTED_ERRORS
    quiet(api, dev)
    assert bridge.text().count("event=mqtt_disconnected") == before
    assert dev.client.messages.empty()  # each report came once: nothing was redelivered


# -- topics: each device its own ---------------------------------------------------------------


def test_a_device_publishes_only_to_its_own_data_topics(api: ApiServer, dev: Dev,
                                                        bridge: BridgeProcess) -> None:
    other = Dev(api)
    try:
        dev.client.subscribe("devices/#")
        for suffix in ("data", "data/x", "kv", "senml", "senml/cbor", "errors", "other",
                       "data2"):
            reason = dev.client.publish(topics.device_topic(other.id, suffix), b"1")
            assert reason.is_failure and reason.value == 135, suffix  # not authorised
        for suffix in ("errors", "other", "kv/x", "senml/xml", "senml/cbor/x", "data/a/b"):
            reason = dev.client.publish(topics.device_topic(dev.id, suffix), b"1")
            assert reason.is_failure and reason.value == 135, suffix
        reason = dev.client.publish("devices", b"1")
        assert reason.is_failure
        other.publish("kv", b'{"not json')  # other's own error report
        other.publish("kv", b'{"mine": 1}')
        assert "invalid JSON" in other.error()["message"]
        wait_until(lambda: count(api, other.token) == 1, what="the other device's point")
        quiet(api, dev)
        time.sleep(0.3)  # anything the broker were to deliver to dev would be here by now
        assert drained(dev.client) == []
    finally:
        other.client.close()


def drained(client: DeviceClient) -> list[str]:
    out = []
    while True:
        try:
            out.append(client.messages.get_nowait().topic)
        except queue.Empty:
            return out
