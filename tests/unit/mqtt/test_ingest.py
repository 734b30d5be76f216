"""bridge.mqtt.ingest without a broker: each topic's format goes through DataService.accept,
what reaches the writer, what is answered on devices/{id}/errors (capped), what is acked.

The broker keeps some topics from ever reaching the bridge (Mosquitto 2.0.11 drops a
PUBLISH whose topic holds a control character), so the bridge's own refusal of them is
tested here."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import orjson
import pytest

from bridge.errors import REPORTED_ERRORS
from bridge.model import topics
from bridge.mqtt.ingest import Ingest
from bridge.mqtt.wire import Message
from bridge.service import DataService
from bridge.write.batcher import Batcher

DEVICE = "0123456789abcdef01234567"


class Sink:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: Any = None) -> None:
        self.bodies.append(body)


class Conn:
    generation = 1
    paused = False

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.published: list[tuple[str, dict[str, Any]]] = []

    def ack(self, mid: int, qos: int, generation: int) -> None:
        self.acked.append(mid)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.published.append((topic, orjson.loads(payload)))

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Devices:
    def known(self, device_id: str) -> bool:
        return device_id == DEVICE

    async def lookup(self, device_id: str) -> bool:
        return self.known(device_id)


async def deliver(topic: str, payload: bytes, max_points: int = 100) -> tuple[Conn, Sink]:
    sink = Sink()
    batcher = Batcher(sink, linger=0)
    await batcher.start()
    service = DataService(None, batcher, max_points=max_points)  # type: ignore[arg-type]
    ingest = Ingest(service, batcher, Devices(), max_payload=1 << 20,  # type: ignore[arg-type]
                    high_water=1000)
    conn = Conn()
    ingest.conn = conn
    ingest.on_message(Message(topic, payload, 1, 7))
    for _ in range(100):
        if conn.acked:
            break
        await asyncio.sleep(0.01)
    await batcher.close()
    return conn, sink


@pytest.mark.parametrize(("suffix", "payload", "line"), [
    ("data", b'{"variable":"t","value":1}', b"data,device=" + DEVICE.encode() + b",variable=t "),
    ("data/room/1", b"21.5", b",variable=room/1 "),
    ("kv", b'{"env":{"t":21}}', b",variable=env_t "),
    ("senml", b'[{"n":"t","v":1}]', b",variable=t "),
    ("senml/cbor", b"\x81\xa2\x00\x61t\x02\x01", b",variable=t "),
])
async def test_each_topic_is_converted_and_written(suffix: str, payload: bytes,
                                                   line: bytes) -> None:
    conn, sink = await deliver(topics.device_topic(DEVICE, suffix), payload)
    assert conn.acked == [7] and conn.published == []
    (body,) = sink.bodies
    assert line in body


@pytest.mark.parametrize(("variable", "message"), [
    ("a\x01b", "topic must not contain control characters (as the variable name)"),
    ("a\nb", "topic must not contain control characters (as the variable name)"),
    ("v" * 101, "topic must be at most 100 characters (as the variable name)"),
    ("", "topic "),
])
async def test_raw_variables_are_held_to_the_json_rules(variable: str, message: str) -> None:
    topic = topics.device_topic(DEVICE, f"data/{variable}")
    conn, sink = await deliver(topic, b"1")
    assert sink.bodies == [] and conn.acked == [7]
    ((where, report),) = conn.published
    assert where == topics.errors_topic(DEVICE)
    assert message in report["message"] and report["topic"] == topic
    assert [e["field"] for e in report["errors"]] == ["topic"]


async def test_a_bug_costs_one_message_not_the_connection(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("a bug in the validation")

    monkeypatch.setattr(DataService, "accept", broken)
    conn, sink = await deliver(topics.device_topic(DEVICE, "data"), b'{"variable":"t"}')
    assert conn.acked == [7] and sink.bodies == []  # acked: never handed back
    ((_, report),) = conn.published
    assert "could not be handled" in report["message"]
    assert "a bug in the validation" not in report["message"]  # only in the log
    assert "event=message_failed" in caplog.text and "a bug in the validation" in caplog.text


async def test_not_a_data_topic_is_acked_and_not_answered() -> None:
    for topic in (f"devices/{DEVICE}/errors", f"devices/{DEVICE}/kv/x", "other/x/data",
                  "devices//data"):
        conn, sink = await deliver(topic, b"1")
        assert conn.acked == [7] and conn.published == [] and sink.bodies == []


async def test_an_error_report_lists_at_most_the_first_faults() -> None:
    conn, sink = await deliver(topics.device_topic(DEVICE, "senml"),
                               orjson.dumps([{}] * 1000), max_points=1000)
    ((_, report),) = conn.published
    assert sink.bodies == []
    assert len(report["errors"]) == REPORTED_ERRORS
    assert report["more_errors"] == 2000 - REPORTED_ERRORS
    assert len(report["field_errors"]) == REPORTED_ERRORS // 2  # two faults per record
    assert report["errors"][0] == {"field": "n", "index": 0, "message": report["errors"][0][
        "message"]}
    assert len(orjson.dumps(report)) < 30_000
