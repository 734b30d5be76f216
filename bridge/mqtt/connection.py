"""The bridge's MQTT connection on asyncio (plain TCP or TLS): connect (MQTT 5 or 3.1.1,
``session``), subscribe, receive, acknowledge later, reconnect with capped, jittered
backoff (``backoff``).

A QoS 1 message is acknowledged only when ``ack`` is called, after the write, so the broker
keeps what the bridge has not stored. Why our own codec: docs/benchmarks.md.

Over 300 lines: connecting, protocol fallback, subscribing and reconnecting share one
connection's state; the parts that stand alone are already in their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from bridge.mqtt import wire
from bridge.mqtt.backoff import Backoff
from bridge.mqtt.keepalive import keep_alive
from bridge.mqtt.outbound import Outbound
from bridge.mqtt.session import (
    PROTOCOL_NAMES,
    ConnectionOptions,
    ProtocolChoice,
    Session,
    refusal,
)
from bridge.mqtt.stream import Stream, first

log = logging.getLogger("devicedata.mqtt")

MessageHandler = Callable[[wire.Message], None]


class MqttConnection:
    def __init__(self, options: ConnectionOptions, on_message: MessageHandler,
                 rng: random.Random | None = None) -> None:
        self.options = options
        self.on_message = on_message
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.takeovers = 0  # DISCONNECT 0x8E, or a socket closed without a word (below)
        self.generation = 0  # bumped on every CONNACK; message ids are per connection
        self.last_error = ""
        self.granted: set[str] = set()  # a refused one is absent: connected but deaf
        self.refused = ""  # why the broker refused the last CONNECT or SUBSCRIBE
        self.session: Session | None = None  # what the last CONNACK agreed
        self.protocols = ProtocolChoice(options.protocol)
        self.backoff = Backoff(options.backoff_initial, options.backoff_max, rng)
        self.client_id = options.client_id  # an Assigned Client Identifier replaces it
        self.retained_skipped = 0  # 3.1.1 retained copies of what the session already had
        self._subscribing: dict[int, str] = {}  # SUBSCRIBE packet id -> topic filter
        self.last_heard = 0.0
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._disconnected = asyncio.Event()
        self._connack: asyncio.Future[wire.ConnAck] | None = None
        self._paused = False
        self._closing = False
        self._retry_at_once = False
        self.out = Outbound(self._loop)


    def ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a message received on connection ``generation``. After a
        reconnect the broker resends unacknowledged messages, possibly reusing old ids
        for other messages, so an ack from an earlier connection is dropped."""
        if qos and generation == self.generation and self.connected.is_set():
            self.out.send(wire.puback(mid))

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Fire and forget (error reports to devices, inspector events): nothing is resent
        after a reconnect, and the broker's limits apply (``Outbound.publish``)."""
        if self.connected.is_set() and self.session is not None:
            self.out.publish(self.session, topic, payload, qos, retain)

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

    @property
    def live(self) -> tuple[asyncio.Transport, Session] | None:
        """The transport and what its CONNACK agreed, while connected."""
        transport, session = self._transport, self.session
        if transport is None or session is None or not self.connected.is_set():
            return None
        return transport, session

    async def run(self, stopping: asyncio.Event) -> None:
        """Stay connected until ``stopping`` is set, reconnecting with jittered backoff."""
        pinger = asyncio.create_task(keep_alive(self))
        try:
            while not stopping.is_set():
                if await self._connect():
                    self.backoff.reset()
                    await first(stopping.wait(), self._disconnected.wait())
                if stopping.is_set():
                    break
                if self._retry_at_once:  # the same broker, another protocol version
                    self._retry_at_once = False
                    continue
                self.reconnects += 1
                delay = self.backoff.next()
                log.warning("event=mqtt_reconnect_wait seconds=%.2f reason=%s", delay,
                            self.last_error or "connection lost")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def disconnect(self) -> None:
        """A clean DISCONNECT that keeps the session (and its queue) on the broker."""
        if (transport := self._transport) is None:
            return
        self.out.flush()
        self._closing = True
        transport.write(wire.DISCONNECT_PACKET)
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnected.wait(), 5)

    @property
    def ready(self) -> tuple[bool, str]:
        """Connected and every subscription granted; else why not."""
        if not self.connected.is_set():
            return False, self.refused or self.last_error or "not connected to the broker"
        missing = [t for t in self.options.subscriptions if t not in self.granted]
        if missing:
            return False, self.refused or f"waiting for the broker to grant {missing[0]}"
        return True, "ok"


    def handle(self, packets: list[wire.Message | wire.Packet]) -> None:
        for packet in packets:
            if isinstance(packet, wire.Message):
                if packet.retain and self.session and self.session.stored_before(packet):
                    self.retained_skipped += 1  # acknowledged, not stored twice
                    self.ack(packet.mid, packet.qos, self.generation)
                    continue
                self.on_message(packet)
            elif packet.kind == wire.PUBACK:
                self.out.acked(packet.body)
            elif packet.kind == wire.CONNACK:
                self._connacked(packet.body)
            elif packet.kind == wire.SUBACK:
                self._subacked(packet.body)
            elif packet.kind == wire.DISCONNECT:
                code, text = wire.disconnect_reason(packet.body)
                if code == wire.SESSION_TAKEN_OVER:
                    self.takeovers += 1
                self.last_error = ("broker disconnected us: " + wire.reason_text(code)
                                   + (f": {text}" if text else ""))
                log.error("event=mqtt_broker_disconnect reason=%s", self.last_error)

    def _connacked(self, body: bytes) -> None:
        protocol = self.protocols.current
        ack = wire.connack(body, protocol)
        if ack.code == 0:
            # Now, not when _connect resumes: the broker may resend unacknowledged
            # messages in the very same read, and their acks must be accepted.
            self.session = Session.agreed(ack, protocol, self.options.keepalive,
                                          self.client_id)
            self.client_id = self.session.client_id
            self.out.agreed(self.session)
            self.generation += 1
            self.connected.set()
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(ack)

    def _subacked(self, body: bytes) -> None:
        protocol = self.session.protocol if self.session else wire.MQTT5
        packet_id, codes = wire.suback_codes(body, protocol)
        topic = self._subscribing.pop(packet_id, "?")
        refused = [code for code in codes if code >= 0x80]
        if refused:
            self.granted.discard(topic)
            reason = wire.reason_text(refused[0], protocol)
            self.refused = f"the broker refused the subscription to {topic}: {reason}"
            log.error("event=mqtt_subscribe_refused topic=%s reason=%s", topic, reason)
        else:
            self.granted.add(topic)
            self.refused = ""

    def too_large(self, exc: wire.PacketTooLarge) -> None:
        """The broker ignored the Maximum Packet Size we gave it: say so and hang up
        (MQTT 5, 3.1.2.11.4), before any of the packet is buffered."""
        self.last_error = f"the broker sent a packet too large: {exc}"
        log.error("event=mqtt_packet_too_large reason=%s", exc)
        transport = self._transport
        if transport is not None and self.session and self.session.protocol == wire.MQTT5:
            transport.write(wire.disconnect(wire.PACKET_TOO_LARGE))
        self.abort()

    def lost(self, transport: asyncio.BaseTransport | None, exc: Exception | None) -> None:
        if transport is not self._transport:
            return  # an earlier connection, already given up on
        if self.connected.is_set():
            if not self.last_error and exc is None and not self._closing:
                # Mosquitto 2.0 closes the socket of a session taken over without saying so.
                self.last_error = ("the broker closed the connection (is another client "
                                   "using this bridge's user name?)")
                self.takeovers += 1
            log.warning("event=mqtt_disconnected reason=%s", self.last_error or exc)
        self.connected.clear()
        self.granted.clear()
        self._subscribing.clear()
        self._transport = None
        self.out.attach(None)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectionError(self.last_error or "connection lost"))
        self._disconnected.set()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _fall_back(self, code: int | None, protocol: int, reason: str) -> bool:
        """Another protocol version to try at once (``auto``), after this refusal?"""
        if not self.protocols.fall_back(code):
            return False
        log.warning("event=mqtt_protocol_fallback from=%s to=%s reason=%s",
                    PROTOCOL_NAMES[protocol], PROTOCOL_NAMES[self.protocols.current], reason)
        self._retry_at_once = True
        return True

    def _give_up(self) -> None:
        """Drop a connection that never worked; its late ``lost`` is then ignored."""
        self.abort()
        self._transport = None
        self.out.attach(None)

    async def _connect(self) -> bool:
        self._disconnected.clear()
        options, protocol = self.options, self.protocols.current
        reader = wire.Reader(properties=protocol == wire.MQTT5,
                             maximum=options.maximum_packet_size)
        try:
            transport, _ = await asyncio.wait_for(self._loop.create_connection(
                lambda: Stream(self, reader), options.host, options.port, ssl=options.tls,
                server_hostname=options.server_name if options.tls else None), 10)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError (a failed handshake) too
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._disconnected.set()
            return False
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.out.attach(transport)
        self._closing = False
        if self._paused:
            transport.pause_reading()
        self._connack = self._loop.create_future()
        self.last_heard = time.monotonic()
        transport.write(wire.connect(
            self.client_id, options.username, options.password,
            keepalive=options.keepalive, session_expiry=options.session_expiry,
            receive_maximum=options.receive_maximum, protocol=protocol,
            maximum_packet_size=options.maximum_packet_size,
            clean_start=not options.session_expiry))
        try:
            ack = await asyncio.wait_for(self._connack, 10)
        except (TimeoutError, ConnectionError) as exc:
            self.last_error = self.last_error or "no CONNACK within 10 s"
            self._give_up()
            if isinstance(exc, ConnectionError):  # closed without a word
                self._fall_back(None, protocol, "the broker closed the connection")
            return False
        if ack.code:
            reason = refusal(ack.code, protocol)
            self._give_up()
            if not self._fall_back(ack.code, protocol, reason):
                self.last_error = self.refused = f"the broker refused the connection: {reason}"
                log.error("event=mqtt_refused reason=%s", reason)
            return False
        self.protocols.worked()
        # Needed when the broker lost the session (restarted: session present 0).
        for topic in options.subscriptions:
            packet_id = self.out.packet_id()
            self._subscribing[packet_id] = topic
            handling = (wire.RETAIN_ALWAYS if topic in options.retained_always
                        else wire.RETAIN_IF_NEW)
            transport.write(wire.subscribe(packet_id, topic, qos=1, retain_handling=handling,
                                           protocol=protocol))
        self.last_error = ""
        session = self.session
        assert session is not None
        log.info("event=mqtt_connected protocol=%s session_present=%s keepalive=%d "
                 "send_quota=%d max_packet=%d subscriptions=%s", PROTOCOL_NAMES[protocol],
                 session.session_present, session.keepalive, session.send_quota,
                 session.maximum_packet_size, ",".join(options.subscriptions))
        return True
