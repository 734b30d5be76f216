"""The bridge's MQTT connection against a scripted broker (tests/support/scripted_broker.py):
framing, the limits a CONNACK sets, refusals, MQTT 3.1.1, and the guard against acks that
cross a reconnect. The connection runs in the test's event loop; the broker is a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bridge.mqtt import wire
from bridge.mqtt.connection import ConnectionOptions, MqttConnection
from support import scripted_broker as sb
from support.scripted_broker import Peer, ScriptedBroker

TOPIC = "devices/+/data"
ACCEPTED = sb.connack()


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Wait (generously) for ``check``; the test fails if it never holds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return result


def answering(connack: Callable[[Peer, bytes], bytes] | bytes = ACCEPTED,
              after_suback: Callable[[Peer], None] | None = None,
              v311: bool = False) -> sb.Script:
    """CONNECT -> ``connack`` (bytes, or built per peer), SUBSCRIBE -> granted QoS 1, then
    ``after_suback(peer)``; PINGREQ -> PINGRESP."""

    def script(peer: Peer, kind: int, body: bytes) -> None:
        if kind == sb.CONNECT:
            peer.send(connack(peer, body) if callable(connack) else connack)
        elif kind == sb.SUBSCRIBE:
            packet_id = int.from_bytes(body[:2], "big")
            peer.send(sb.suback_311(packet_id, 1) if v311 else sb.suback(packet_id, 1))
            if after_suback is not None:
                after_suback(peer)
        elif kind == sb.PINGREQ:
            peer.send(sb.packet(sb.PINGRESP, b""))

    return script


class Client:
    def __init__(self, conn: MqttConnection, messages: list[wire.Message]) -> None:
        self.conn = conn
        self.messages = messages


@contextlib.asynccontextmanager
async def connected(broker: ScriptedBroker, wait_ready: bool = True,
                    **options: Any) -> AsyncIterator[Client]:
    messages: list[wire.Message] = []
    settings: dict[str, Any] = {"backoff_initial": 0.05, "backoff_max": 0.2,
                                "keepalive": 600, **options}
    conn = MqttConnection(ConnectionOptions(
        host="127.0.0.1", port=broker.port, client_id="bridge", username="bridge",
        password="pw", subscriptions=(TOPIC,), **settings), messages.append)
    stopping = asyncio.Event()
    task = asyncio.create_task(conn.run(stopping))
    try:
        if wait_ready:
            await until(lambda: conn.ready[0], "the connection to be ready")
        yield Client(conn, messages)
    finally:
        stopping.set()
        await conn.disconnect()
        await asyncio.wait_for(task, 10)
        broker.close()


def pubacks(peer: Peer) -> list[int]:
    return [int.from_bytes(body[:2], "big") for kind, body in list(peer.received)
            if kind == sb.PUBACK]


def publishes(peer: Peer) -> list[bytes]:
    return [body for kind, body in list(peer.received) if kind == sb.PUBLISH]


async def test_partial_and_coalesced_packets() -> None:
    def after_suback(peer: Peer) -> None:
        # Three PUBLISHes and a PINGRESP in one write, then one PUBLISH in three pieces.
        peer.send(b"".join(sb.publish("devices/a/data", b"%d" % i, i) for i in (1, 2, 3))
                  + sb.packet(sb.PINGRESP, b""))
        split = sb.publish("devices/b/data", b"x" * 300, 4)
        for piece in (split[:1], split[1:3], split[3:]):  # header, length, rest
            peer.send(piece)
            time.sleep(0.05)

    async with connected(ScriptedBroker(answering(after_suback=after_suback))) as client:
        await until(lambda: len(client.messages) == 4, "four messages")
        assert [(m.topic, m.payload, m.mid) for m in client.messages] == [
            ("devices/a/data", b"1", 1), ("devices/a/data", b"2", 2),
            ("devices/a/data", b"3", 3), ("devices/b/data", b"x" * 300, 4)]


async def test_a_packet_over_our_maximum_ends_the_connection_with_reason_0x95(
        caplog: pytest.LogCaptureFixture) -> None:
    def after_suback(peer: Peer) -> None:
        if peer.index == 0:
            peer.send(sb.publish("devices/a/data", b"x" * 5000, 1))

    broker = ScriptedBroker(answering(after_suback=after_suback))
    with caplog.at_level(logging.ERROR, "devicedata.mqtt"):
        async with connected(broker, maximum_packet_size=1000) as client:
            first = broker.peers[0]
            await until(lambda: (sb.DISCONNECT, b"\x95") in list(first.received),
                        "DISCONNECT 0x95 (packet too large)")
            assert client.messages == []
            assert "event=mqtt_packet_too_large" in caplog.text
            await until(lambda: len(broker.peers) == 2 and client.conn.ready[0],
                        "the reconnection")
    connect = broker.peers[0].received[0][1]
    assert b"\x27" + (1000).to_bytes(4, "big") in connect  # announced in CONNECT


async def test_our_packet_over_the_brokers_maximum_is_not_sent() -> None:
    broker = ScriptedBroker(answering(sb.connack(properties=sb.prop(0x27, 100, 4))))
    async with connected(broker) as client:
        conn = client.conn
        assert conn.session is not None and conn.session.maximum_packet_size == 100
        conn.publish("devices/a/errors", b"x" * 200)  # an error report too large: dropped
        conn.publish("devices/a/errors", b"small")
        conn.ack(999, 1, conn.generation)  # a marker: sent after both publishes
        peer = broker.peers[0]
        await until(lambda: 999 in pubacks(peer), "the marker")
        assert [body[-5:] for body in publishes(peer)] == [b"small"]
        assert conn.out.too_large_dropped == 1


async def test_receive_maximum_smaller_than_our_in_flight_count() -> None:
    broker = ScriptedBroker(answering(sb.connack(properties=sb.prop(0x21, 2, 2))))
    async with connected(broker) as client:
        conn = client.conn
        for i in range(5):
            conn.publish("devices/a/errors", b"report %d" % i, qos=1)
        conn.ack(999, 1, conn.generation)  # a marker: sent after whatever may go now
        peer = broker.peers[0]
        await until(lambda: 999 in pubacks(peer), "the marker")
        sent = publishes(peer)
        assert [body[-8:] for body in sent] == [b"report 0", b"report 1"]
        first_id = sent[0][18:20]  # after the topic "devices/a/errors"
        peer.send(sb.packet(sb.PUBACK, first_id))
        await until(lambda: len(publishes(peer)) == 3, "the third report")
        assert publishes(peer)[2][-8:] == b"report 2"


async def test_disconnect_with_a_reason_is_logged_and_in_readiness(
        caplog: pytest.LogCaptureFixture) -> None:
    def script(peer: Peer, kind: int, body: bytes) -> None:
        if peer.index > 0:
            peer.close()  # the broker is going away: later connections get no CONNACK
            return
        answering(after_suback=lambda p: (p.send(sb.disconnect(0x8B, "maintenance")),
                                          p.close()))(peer, kind, body)

    with caplog.at_level(logging.WARNING, "devicedata.mqtt"):
        broker = ScriptedBroker(script)
        async with connected(broker, wait_ready=False) as client:
            await until(lambda: len(broker.peers) >= 3, "attempts to connect again")
            assert client.conn.ready == (
                False, "broker disconnected us: server shutting down (0x8b): maintenance")
    assert "server shutting down (0x8b): maintenance" in caplog.text


async def test_a_refused_connect_names_its_reason_code(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    broker = ScriptedBroker(answering(sb.connack(0x87)))
    with caplog.at_level(logging.ERROR, "devicedata.mqtt"):
        async with connected(broker, wait_ready=False) as client:
            await until(lambda: client.conn.refused, "the refusal")
            assert client.conn.ready == (
                False, "the broker refused the connection: not authorized (0x87)")
    assert "event=mqtt_refused reason=not authorized (0x87)" in caplog.text


async def test_session_not_present_after_a_broker_restart_subscribes_again() -> None:
    def connack(peer: Peer, body: bytes) -> bytes:
        return sb.connack(session_present=peer.index == 0)  # the restart lost the session

    def after_suback(peer: Peer) -> None:
        if peer.index == 0:
            peer.close()  # the broker restarts
        else:
            peer.send(sb.publish("devices/a/data", b"after", 1))

    broker = ScriptedBroker(answering(connack, after_suback))
    async with connected(broker, wait_ready=False) as client:
        await until(lambda: client.messages, "a message after the restart")
        assert [p.kinds().count(sb.SUBSCRIBE) for p in broker.peers] == [1, 1]
        conn = client.conn
        assert conn.session is not None and not conn.session.session_present
        assert conn.ready == (True, "ok")


async def test_a_server_keep_alive_shorter_than_ours_is_kept() -> None:
    broker = ScriptedBroker(answering(sb.connack(properties=sb.prop(0x13, 1, 2))))
    async with connected(broker, keepalive=600) as client:
        assert client.conn.session is not None and client.conn.session.keepalive == 1
        # Ours (600 s) would send the first PINGREQ after 300 s; the broker's asks for
        # one at least every second.
        await until(lambda: broker.peers[0].kinds().count(sb.PINGREQ) >= 3, "three pings")
        assert len(broker.peers) == 1  # and the connection stayed up


async def test_an_ack_from_before_a_reconnect_is_dropped() -> None:
    def after_suback(peer: Peer) -> None:
        peer.send(sb.publish("devices/a/data", b"m", 7))  # the same id on each connection

    broker = ScriptedBroker(answering(after_suback=after_suback))
    async with connected(broker) as client:
        conn = client.conn
        await until(lambda: client.messages, "the first delivery")
        old = conn.generation
        broker.peers[0].close()
        await until(lambda: len(client.messages) == 2 and conn.ready[0], "the redelivery")
        conn.ack(7, 1, old)  # written before the reconnect, acked after: must not count
        conn.ack(8, 1, conn.generation)  # a marker
        await until(lambda: 8 in pubacks(broker.peers[1]), "the marker")
        assert pubacks(broker.peers[1]) == [8]
        conn.ack(7, 1, conn.generation)  # the redelivered one, acked on its connection
        await until(lambda: pubacks(broker.peers[1]) == [8, 7], "its ack")


def only_311(peer: Peer, body: bytes) -> bytes:
    """A 3.1.1 broker: a level 5 CONNECT gets return code 1 in its own format."""
    if sb.protocol_level(body) == 5:
        return sb.connack_311(1)
    return sb.connack_311(0, session_present=False)


async def test_auto_falls_back_to_311_and_speaks_it(caplog: pytest.LogCaptureFixture) -> None:
    def after_suback(peer: Peer) -> None:
        peer.send(sb.publish("devices/a/data", b"old", 3, v311=True))

    broker = ScriptedBroker(answering(only_311, after_suback, v311=True))
    with caplog.at_level(logging.WARNING, "devicedata.mqtt"):
        async with connected(broker, protocol="auto") as client:
            await until(lambda: client.messages, "a message")
            assert client.messages == [wire.Message("devices/a/data", b"old", 1, 3)]
            assert [sb.protocol_level(p.received[0][1]) for p in broker.peers] == [5, 4]
            subscribe = next(body for kind, body in broker.peers[1].received
                             if kind == sb.SUBSCRIBE)
            assert subscribe[2:4] == len(TOPIC).to_bytes(2, "big")  # no properties
            assert subscribe[-1] == 1  # QoS 1, no retain handling bits
            client.conn.ack(3, 1, client.conn.generation)
            await until(lambda: pubacks(broker.peers[1]) == [3], "the PUBACK")
            assert client.conn.reconnects == 0  # the fallback is no reconnect
    assert "event=mqtt_protocol_fallback from=5 to=3.1.1" in caplog.text


async def test_mqtt5_only_says_why_a_311_broker_refuses() -> None:
    async with connected(ScriptedBroker(answering(only_311)), wait_ready=False,
                         protocol="5") as client:
        await until(lambda: client.conn.refused, "the refusal")
        assert client.conn.ready[1] == (
            "the broker refused the connection: unsupported protocol version (0x01)")


@pytest.mark.parametrize("present", [True, False])
async def test_311_retained_copies_on_a_resumed_session_are_acked_not_stored(
        present: bool) -> None:
    def after_suback(peer: Peer) -> None:
        peer.send(sb.publish("devices/a/data", b"retained", 5, retain=True, v311=True)
                  + sb.publish("devices/a/data", b"live", 6, v311=True))

    broker = ScriptedBroker(answering(lambda p, b: sb.connack_311(0, present), after_suback,
                                      v311=True))
    async with connected(broker, protocol="3.1.1") as client:
        expected = [b"live"] if present else [b"retained", b"live"]
        await until(lambda: len(client.messages) == len(expected), "the deliveries")
        assert [m.payload for m in client.messages] == expected
        if present:
            await until(lambda: pubacks(broker.peers[0]) == [5], "the retained copy's ack")
            assert client.conn.retained_skipped == 1


async def test_auto_falls_back_when_a_311_broker_just_hangs_up() -> None:
    """RabbitMQ 3.10 closes the socket of a level 5 CONNECT without any CONNACK."""
    def script(peer: Peer, kind: int, body: bytes) -> None:
        if kind == sb.CONNECT and sb.protocol_level(body) == 5:
            peer.close()
            return
        answering(sb.connack_311(0), v311=True)(peer, kind, body)

    broker = ScriptedBroker(script)
    async with connected(broker, protocol="auto") as client:
        assert client.conn.session is not None
        assert client.conn.session.protocol == wire.MQTT311


def test_a_silent_close_changes_nothing_once_5_worked() -> None:
    from bridge.mqtt.session import ProtocolChoice
    choice = ProtocolChoice("auto")
    choice.worked()
    assert not choice.fall_back(None) and choice.current == wire.MQTT5
    assert choice.fall_back(0x84) and choice.current == wire.MQTT311
    with pytest.raises(ValueError):
        ProtocolChoice("4")


async def test_an_assigned_client_identifier_is_asked_for_again() -> None:
    def connack(peer: Peer, body: bytes) -> bytes:
        if peer.index == 0:
            return sb.connack(properties=sb.text_prop(0x12, "assigned-7"))
        return sb.connack(session_present=True)

    def after_suback(peer: Peer) -> None:
        if peer.index == 0:
            peer.close()

    broker = ScriptedBroker(answering(connack, after_suback))
    async with connected(broker, wait_ready=False) as client:
        await until(lambda: len(broker.peers) == 2 and client.conn.ready[0], "a reconnection")
        second_connect = broker.peers[1].received[0][1]
        assert b"\x00\x0aassigned-7" in second_connect
        assert client.conn.client_id == "assigned-7"
