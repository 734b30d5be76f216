"""The live inspector's parts without servers: event shapes, the publishing Tap, the Feed."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from bridge.errors import FieldError, Overloaded
from bridge.inspector import events
from bridge.inspector.feed import Feed
from bridge.inspector.tap import Tap


def test_preview_cuts_text_and_shows_binary_as_hex() -> None:
    short = events.preview(b'{"variable": "t"}')
    assert short == {"payload": '{"variable": "t"}', "payload_bytes": 17, "truncated": False,
                     "encoding": "utf-8"}
    # A cut that would split a character ends before it.
    text = ("x" * (events.PAYLOAD_PREVIEW - 1) + "é" * 10).encode()
    cut = events.preview(text)
    assert cut["payload"] == "x" * (events.PAYLOAD_PREVIEW - 1)
    assert cut["truncated"] and cut["payload_bytes"] == len(text)
    binary = events.preview(bytes(range(256)) * 4)
    assert binary["encoding"] == "hex" and binary["truncated"]
    assert binary["payload"].startswith("00 01 02") and len(binary["payload"].split()) == 256
    assert events.preview(b"\xff\xfe")["payload"] == "ff fe"


def test_topics() -> None:
    assert events.lease_of(events.watch_topic("dev1", "api-1")) == ("dev1", "api-1")
    for bad in ("devicedata/inspect/watch/dev1", "devicedata/inspect/watch//w",
                "devicedata/inspect/watch/d/w/x", "devices/d/data"):
        assert events.lease_of(bad) is None
    assert events.device_of_events(events.events_topic("dev1")) == "dev1"
    assert events.device_of_events("devicedata/inspect/events/a/b") is None


def test_rejected_event_is_bounded() -> None:
    errors = [FieldError("value", "bad", index=i) for i in range(100)]
    event = events.rejected("d", "mqtt", "devices/d/data", "bridge-x", b"y" * 100_000,
                            "invalid", "m" * 10_000, errors)
    assert len(event["errors"]) == events.MAX_ERRORS
    assert len(event["message"]) == events.MAX_MESSAGE
    assert len(events.encode(event)) < 5000
    assert events.decode(events.encode(event)) == event
    assert events.decode(b"[1]") is None and events.decode(b"{nope") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease(until: float) -> bytes:
    return orjson.dumps({"until": until})


def test_tap_publishes_only_while_a_lease_runs() -> None:
    clock = Clock()
    sent: list[tuple[str, bytes]] = []
    tap = Tap("bridge-x", clock=clock)
    tap.publish = lambda topic, payload: sent.append((topic, payload))
    tap.accepted("dev1", "mqtt", "devices/dev1/data", b"{}", 1)
    assert sent == [] and not tap.watching("dev1")

    assert tap.take(events.watch_topic("dev1", "w1"), lease(1060))
    assert not tap.take("devices/dev1/data", b"{}")
    assert tap.watching("dev1") and not tap.watching("dev2")
    tap.accepted("dev1", "mqtt", "devices/dev1/data", b'{"variable":"t"}', 1)
    tap.rejected("dev1", "http", "POST /data", None, "invalid", "Invalid", [])
    tap.accepted("dev2", "mqtt", "devices/dev2/data", b"{}", 1)
    assert [t for t, _ in sent] == [events.events_topic("dev1")] * 2
    first = orjson.loads(sent[0][1])
    assert (first["outcome"], first["points"], first["process"]) == ("accepted", 1, "bridge-x")
    assert "payload" not in orjson.loads(sent[1][1])

    clock.now = 1061  # the lease ran out (its watcher died): nothing more
    tap.accepted("dev1", "mqtt", "devices/dev1/data", b"{}", 1)
    assert len(sent) == 2
    tap.take(events.watch_topic("dev1", "w2"), lease(2000))  # another watcher
    assert tap.watching("dev1")
    tap.take(events.watch_topic("dev1", "w2"), b"")  # ... cleared
    tap.take(events.watch_topic("dev1", "w1"), b"")
    assert not tap.watching("dev1") and tap.watched() == []
    tap.take(events.watch_topic("dev3", "w1"), b"garbage")
    assert not tap.watching("dev3")


def test_tap_rate_limit_counts_what_it_leaves_out() -> None:
    sent: list[bytes] = []
    tap = Tap("p", rate=0.001, burst=3)
    tap.publish = lambda topic, payload: sent.append(payload)
    tap.take(events.watch_topic("d", "w"), lease(10**12))
    for _ in range(10):
        tap.accepted("d", "mqtt", "t", b"{}", 1)
    assert len(sent) == 3 and tap.dropped == 7
    tap._budget["d"] = (1.0, tap._budget["d"][1], 7)  # the budget refilled
    tap.accepted("d", "mqtt", "t", b"{}", 1)
    assert orjson.loads(sent[-1])["dropped"] == 7


async def test_feed_keeps_a_bounded_ring_and_wakes_polls() -> None:
    leases: list[tuple[str, bytes]] = []
    feed = Feed("api-1", capacity=3, max_devices=2)
    feed.publish_retained = lambda topic, payload: leases.append((topic, payload))
    events_seen, last = await feed.poll("d1", 0, 0)
    assert events_seen == [] and leases[0][0] == events.watch_topic("d1", "api-1")
    assert orjson.loads(leases[0][1])["until"] > 0
    feed.add("other", {"device": "other"})  # not watched here: dropped
    for i in range(5):
        feed.add("d1", {"device": "d1", "n": i})
    got, last = feed.since("d1", 0)
    assert [e["n"] for e in got] == [2, 3, 4] and last == 5
    assert [e["seq"] for e in got] == [3, 4, 5]

    waiting = asyncio.create_task(feed.poll("d1", last, 5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    feed.add("d1", {"device": "d1", "n": 5})
    got, last = await asyncio.wait_for(waiting, 1)
    assert [e["n"] for e in got] == [5] and last == 6
    assert len(leases) == 1  # prolonged only when half used up

    feed.watch("d2")
    with pytest.raises(Overloaded):
        feed.watch("d3")
    feed.unwatch("d2")
    assert leases[-1] == (events.watch_topic("d2", "api-1"), b"")
    feed.lease_seconds = 0.0
    feed.expire()
    assert feed.watched() == [] and leases[-1] == (events.watch_topic("d1", "api-1"), b"")
