"""The bridge's MQTT 5 connection on asyncio: connect, subscribe, receive, acknowledge
later, reconnect with capped backoff.

QoS 1 messages are acknowledged only when ``ack`` is called (after the write), so the
broker keeps every message the bridge has not stored. Neither aiomqtt 2.5 (it acks on
receipt) nor paho (fast enough for devices, not for the bridge's inflow) fit, so the few
packets a subscriber needs are read and written by ``bridge.mqtt.wire``. PUBACKs produced
in one turn of the event loop leave in one socket write.

Over 300 lines: connecting, subscribing, acknowledging, keep-alive and reconnecting share
one connection's state and are checked against each other when read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.mqtt import wire

log = logging.getLogger("devicedata.mqtt")

MessageHandler = Callable[[wire.Message], None]
SESSION_EXPIRY = 7 * 24 * 3600  # keep queued messages for a bridge that is down a week


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    host: str
    port: int
    client_id: str
    username: str
    password: str
    subscriptions: tuple[str, ...]
    receive_maximum: int = 1000  # unacknowledged QoS 1 messages the broker may send us
    keepalive: int = 30
    backoff_initial: float = 0.5
    backoff_max: float = 15.0
    session_expiry: int = SESSION_EXPIRY  # 0: a clean session that ends with the connection
    retained_always: tuple[str, ...] = ()  # retained sent on every connect (inspector leases)


class _Protocol(asyncio.Protocol):
    def __init__(self, conn: MqttConnection) -> None:
        self.conn = conn
        self.reader = wire.Reader()
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.conn.last_heard = time.monotonic()
        try:
            packets = self.reader.feed(data)
        except (wire.ProtocolError, IndexError, ValueError) as exc:
            self.conn.last_error = f"unreadable data from the broker: {exc}"
            self.conn.abort()
            return
        self.conn.handle(packets)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self.transport, exc)


class MqttConnection:
    def __init__(self, options: ConnectionOptions, on_message: MessageHandler) -> None:
        self.options = options
        self.on_message = on_message
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.takeovers = 0  # times another client took our session (DISCONNECT 0x8E)
        self.generation = 0  # bumped on every CONNACK; message ids are per connection
        self.last_error = ""
        self.granted: set[str] = set()  # a refused one is absent: connected but deaf
        self.refused = ""  # why the broker refused the last CONNECT or SUBSCRIBE
        self._subscribing: dict[int, str] = {}  # SUBSCRIBE packet id -> topic filter
        self.last_heard = 0.0
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._disconnected = asyncio.Event()
        self._connack: asyncio.Future[tuple[bool, int]] | None = None
        self._paused = False
        self._closing = False
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._next_id = 0

    # -- what the bridge calls ------------------------------------------------------

    def ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a message received on connection ``generation``. After a
        reconnect the broker resends unacknowledged messages, possibly reusing old ids
        for other messages, so an ack from an earlier connection is dropped."""
        if qos and generation == self.generation and self.connected.is_set():
            self._send(wire.puback(mid))

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Fire and forget (error reports to devices): nothing is resent after a reconnect.
        QoS 0 by default, so nothing counts against the broker's Receive Maximum."""
        if self.connected.is_set():
            self._send(wire.publish(topic, payload, qos, self._packet_id() if qos else 0, retain))

    def pause_reading(self) -> None:
        if not self._paused and self._transport is not None:
            self._transport.pause_reading()
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused and self._transport is not None:
            self._transport.resume_reading()
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    async def run(self, stopping: asyncio.Event) -> None:
        """Stay connected until ``stopping`` is set, reconnecting with capped backoff."""
        delay = self.options.backoff_initial
        pinger = asyncio.create_task(self._keepalive())
        try:
            while not stopping.is_set():
                if await self._connect():
                    delay = self.options.backoff_initial
                    await _first(stopping.wait(), self._disconnected.wait())
                if stopping.is_set():
                    break
                self.reconnects += 1
                log.warning("event=mqtt_reconnect_wait seconds=%.1f reason=%s", delay,
                            self.last_error or "connection lost")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, self.options.backoff_max)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def disconnect(self) -> None:
        """A clean DISCONNECT that keeps the session (and its queue) on the broker."""
        transport = self._transport
        if transport is None:
            return
        self._flush()
        self._closing = True
        transport.write(wire.DISCONNECT_PACKET)
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnected.wait(), 5)

    # -- called by the protocol --------------------------------------------------------

    def handle(self, packets: list[wire.Message | wire.Packet]) -> None:
        for packet in packets:
            if isinstance(packet, wire.Message):
                self.on_message(packet)
            elif packet.kind == wire.CONNACK:
                result = wire.connack(packet.body)
                if result[1] == 0:
                    # Now, not when _connect resumes: the broker may resend unacknowledged
                    # messages in the very same read, and their acks must be accepted.
                    self.generation += 1
                    self.connected.set()
                if self._connack is not None and not self._connack.done():
                    self._connack.set_result(result)
            elif packet.kind == wire.SUBACK:
                self._subacked(packet.body)
            elif packet.kind == wire.DISCONNECT:
                code = wire.disconnect_reason(packet.body)
                if code == wire.SESSION_TAKEN_OVER:
                    self.takeovers += 1
                self.last_error = "broker disconnected us: " + wire.reason_text(code)
            # PUBACK (for our error reports) and PINGRESP need nothing beyond last_heard.

    def _subacked(self, body: bytes) -> None:
        packet_id, codes = wire.suback_codes(body)
        topic = self._subscribing.pop(packet_id, "?")
        refused = [code for code in codes if code >= 0x80]
        if refused:
            self.granted.discard(topic)
            self.refused = (f"the broker refused the subscription to {topic}: "
                            f"{wire.reason_text(refused[0])}")
            log.error("event=mqtt_subscribe_refused topic=%s reason=%s", topic,
                      wire.reason_text(refused[0]))
        else:
            self.granted.add(topic)
            self.refused = ""

    @property
    def ready(self) -> tuple[bool, str]:
        """Connected and every subscription granted; else why not."""
        if not self.connected.is_set():
            return False, self.refused or self.last_error or "not connected to the broker"
        missing = [t for t in self.options.subscriptions if t not in self.granted]
        if missing:
            return False, self.refused or f"waiting for the broker to grant {missing[0]}"
        return True, "ok"

    def lost(self, transport: asyncio.BaseTransport | None, exc: Exception | None) -> None:
        if transport is not self._transport:
            return  # an earlier connection, already given up on
        if self.connected.is_set():
            if not self.last_error and exc is None and not self._closing:
                # Mosquitto 2.0 closes the socket of a session taken over without saying so.
                self.last_error = ("the broker closed the connection (is another client "
                                   "using this bridge's user name?)")
            log.warning("event=mqtt_disconnected reason=%s", self.last_error or exc)
        self.connected.clear()
        self.granted.clear()
        self._subscribing.clear()
        self._transport = None
        self._out.clear()
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectionError(self.last_error or "connection lost"))
        self._disconnected.set()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- internals ----------------------------------------------------------------------

    async def _connect(self) -> bool:
        self._disconnected.clear()
        options = self.options
        try:
            transport, _ = await asyncio.wait_for(self._loop.create_connection(
                lambda: _Protocol(self), options.host, options.port), 10)
        except (OSError, TimeoutError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._disconnected.set()
            return False
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._paused:
            transport.pause_reading()
        self._connack = self._loop.create_future()
        self.last_heard = time.monotonic()
        transport.write(wire.connect(
            options.client_id, options.username, options.password,
            keepalive=options.keepalive, session_expiry=options.session_expiry,
            receive_maximum=options.receive_maximum, clean_start=not options.session_expiry))
        try:
            session_present, code = await asyncio.wait_for(self._connack, 10)
        except (TimeoutError, ConnectionError):
            self.last_error = self.last_error or "no CONNACK within 10 s"
            self.abort()
            return False
        if code != 0:
            self.last_error = self.refused = (f"the broker refused the connection: "
                                              f"{wire.reason_text(code)}")
            log.error("event=mqtt_refused reason=%s", wire.reason_text(code))
            self.abort()
            return False
        # Subscribing again on every connect is harmless, and needed when the broker
        # lost the session (persistence off, or expired).
        for topic in options.subscriptions:
            packet_id = self._packet_id()
            self._subscribing[packet_id] = topic
            handling = (wire.RETAIN_ALWAYS if topic in options.retained_always
                        else wire.RETAIN_IF_NEW)
            transport.write(wire.subscribe(packet_id, topic, qos=1, retain_handling=handling))
        self.last_error = ""
        log.info("event=mqtt_connected session_present=%s subscriptions=%s",
                 session_present, ",".join(options.subscriptions))
        return True

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _send(self, packet: bytes) -> None:
        self._out.append(packet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._transport is not None:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    async def _keepalive(self) -> None:
        interval = max(1.0, self.options.keepalive / 2)
        while True:
            await asyncio.sleep(interval)
            transport = self._transport
            if transport is None or not self.connected.is_set():
                continue
            silent = time.monotonic() - self.last_heard
            if not self._paused and silent > self.options.keepalive * 1.5:
                self.last_error = f"no answer from the broker for {silent:.0f} s"
                self.abort()
                continue
            transport.write(wire.PINGREQ_PACKET)


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
