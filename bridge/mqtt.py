"""paho-mqtt 2.x driven by the asyncio loop: connection, reconnection, manual acks.

Why paho and not aiomqtt: aiomqtt 2.5 acknowledges every QoS 1 message as soon as it is
read (it never calls paho's ``manual_ack_set``), and at-least-once into InfluxDB needs
the PUBACK to wait for the write. So this module does what aiomqtt does underneath:
paho's socket is watched with ``add_reader``/``add_writer`` and paho's loop functions
are called from the event loop, all in one thread, no paho thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("devicedata.mqtt")

MessageHandler = Callable[[paho.MQTTMessage], None]
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


class MqttConnection:
    def __init__(self, options: ConnectionOptions, on_message: MessageHandler) -> None:
        self.options = options
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.generation = 0  # bumped on every CONNACK; message ids are per connection
        self._loop = asyncio.get_running_loop()
        self._disconnected = asyncio.Event()
        self._paused = False
        self._sock: Any = None
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=options.client_id,
            protocol=MQTTProtocolVersion.MQTTv5)
        self._client.username_pw_set(options.username, options.password)
        self._client.manual_ack_set(True)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = lambda _c, _u, message: on_message(message)
        self._client.on_socket_open = self._on_socket_open
        self._client.on_socket_close = self._on_socket_close
        self._client.on_socket_register_write = self._on_register_write
        self._client.on_socket_unregister_write = self._on_unregister_write
        self.last_error = ""

    # -- what the bridge calls ------------------------------------------------------

    def ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a message received on connection ``generation``. After a
        reconnect the broker resends unacknowledged messages, possibly reusing old ids
        for other messages, so an ack from an earlier connection is dropped."""
        if qos > 0 and generation == self.generation and self.connected.is_set():
            self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.connected.is_set():
            self._client.publish(topic, payload, qos=qos)

    def pause_reading(self) -> None:
        if not self._paused and self._sock is not None:
            self._loop.remove_reader(self._sock)
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused and self._sock is not None:
            self._loop.add_reader(self._sock, self._read)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    async def run(self, stopping: asyncio.Event) -> None:
        """Stay connected until ``stopping`` is set, reconnecting with capped backoff."""
        delay = self.options.backoff_initial
        misc = asyncio.create_task(self._misc_loop())
        try:
            while not stopping.is_set():
                self._disconnected.clear()
                if await self._connect():
                    await _first(stopping.wait(), self._disconnected.wait())
                    if self.connected.is_set() or not self._disconnected.is_set():
                        delay = self.options.backoff_initial
                if stopping.is_set():
                    break
                self.reconnects += 1
                log.warning("event=mqtt_reconnect_wait seconds=%.1f reason=%s", delay,
                            self.last_error or "connection lost")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, self.options.backoff_max)
        finally:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc

    async def disconnect(self) -> None:
        """A clean DISCONNECT that keeps the session (and its queue) on the broker."""
        if self._sock is None:
            return
        self._client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnected.wait(), 5)

    # -- paho plumbing -----------------------------------------------------------------

    async def _connect(self) -> bool:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = self.options.receive_maximum
        try:
            # A blocking connect, but to a broker next door: milliseconds, or refused.
            self._client.connect(self.options.host, self.options.port,
                                 keepalive=self.options.keepalive, clean_start=False,
                                 properties=props)
        except (TimeoutError, OSError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        try:
            await asyncio.wait_for(_first(self.connected.wait(), self._disconnected.wait()),
                                   timeout=10)
        except TimeoutError:
            self.last_error = "no CONNACK within 10 s"
            self._client.disconnect()
            return False
        return self.connected.is_set()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("event=mqtt_refused reason=%s", reason)
            return
        # Subscribing again on every connect is harmless, and needed when the broker
        # lost the session (persistence off, or expired).
        for topic in self.options.subscriptions:
            client.subscribe(topic, qos=1)
        self.last_error = ""
        self.generation += 1
        log.info("event=mqtt_connected session_present=%s subscriptions=%s",
                 getattr(flags, "session_present", None), ",".join(self.options.subscriptions))
        self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason: ReasonCode, properties: Any) -> None:
        if self.connected.is_set():
            log.warning("event=mqtt_disconnected reason=%s", reason)
        self.connected.clear()
        self._disconnected.set()

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._sock = sock
        if not self._paused:
            self._loop.add_reader(sock, self._read)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = None
        self.connected.clear()
        self._disconnected.set()

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.add_writer(sock, self._write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _read(self) -> None:
        rc = self._client.loop_read(max_packets=100)
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            self.last_error = f"read failed: {paho.error_string(rc)}"

    def _write(self) -> None:
        self._client.loop_write()

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1)
            if self._sock is not None:
                self._client.loop_misc()  # keepalive pings and timeouts


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
