"""The bridge over other MQTT client libraries, for ``bench.py clients``.

Each adapter implements what ``runner`` and ``ingest`` use of ``MqttConnection``: the
``Connection`` protocol (generation, ack, publish, pause_reading, resume_reading, paused)
plus ``connected``, ``reconnects``, ``run(stopping)`` and ``disconnect()``. Run as

    python bench/mqtt_clients.py CLIENT      (settings from DEVICEDATA_* as for the bridge)

it is ``devicedata bridge`` with ``runner.MqttConnection`` replaced by CLIENT's adapter
before the bridge starts, so the real pipeline (Ingest -> Batcher -> InfluxDB, spool,
data versions) runs unchanged over each library and a QoS 1 PUBACK still leaves only when
ingest calls ``ack`` after the write. ``ours`` replaces nothing.

    python bench/mqtt_clients.py --check CLIENT HOST PORT USER PASSWORD TOPIC

checks the late acknowledgement against a broker: messages not acked are redelivered
to a new connection of the same session, acked ones are not (``lib.check_late_ack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The bridge modules this bench drives, in one place. The package layout is moving them
# (bridge/mqtt.py -> bridge/mqtt/connection.py, bridge/mqtt_wire.py -> bridge/mqtt/wire.py,
# bridge/ingest.py -> bridge/mqtt/ingest.py, bridge/runner.py -> bridge/mqtt/runner.py):
# only these four lines change.
from bridge.mqtt import connection as connection_mod  # noqa: E402
from bridge.mqtt import ingest as ingest_mod  # noqa: E402
from bridge.mqtt import runner as runner_mod  # noqa: E402
from bridge.mqtt import session as session_mod  # noqa: E402
from bridge.mqtt import wire  # noqa: E402

ConnectionOptions = session_mod.ConnectionOptions
Message = wire.Message
SESSION_EXPIRY = session_mod.SESSION_EXPIRY
log = logging.getLogger("devicedata.mqtt")
Handler = Callable[[Any], None]


def _check_connection(cls: type) -> None:
    """Fail at start, not mid-run, if an adapter lacks a method runner or ingest calls."""
    needed = [n for n in vars(ingest_mod.Connection) if not n.startswith("_")
              and n != "generation"] + ["run", "disconnect"]
    missing = [n for n in needed if not hasattr(cls, n)]
    if missing:
        raise TypeError(f"{cls.__name__} lacks {missing}")


class _Adapter:
    """What every adapter shares: the state runner and ingest read, and the generation
    guard: an ack for a message of an earlier connection is dropped (after a reconnect
    the broker may reuse its packet id for another message)."""

    generation: int

    def __init__(self, options: Any, on_message: Handler) -> None:
        self.options = options
        self.on_message = on_message
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.generation = 0
        self.last_error = ""
        self._paused = False
        self._loop = asyncio.get_running_loop()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._set_reading(False)

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._set_reading(True)

    def _set_reading(self, on: bool) -> None:
        raise NotImplementedError

    def _connected(self, session_present: bool) -> None:
        self.generation += 1
        self.connected.set()
        log.info("event=mqtt_connected session_present=%s subscriptions=%s",
                 session_present, ",".join(self.options.subscriptions))

    def _lost(self, reason: str) -> None:
        if self.connected.is_set():
            log.warning("event=mqtt_disconnected reason=%s", reason)
            self.reconnects += 1
        self.connected.clear()


# -- mqtt5: the sans-IO codec (Rust) in place of bridge/mqtt_wire.py ------------------------

class Mqtt5Codec:
    """Stands in for ``bridge.mqtt_wire`` inside ``bridge.mqtt``: the same names, each
    built on the ``mqtt5`` package's packets. Our connection code runs unchanged on top,
    so this isolates the codec: framing, PUBLISH parsing, PUBACK encoding."""

    CONNACK, SUBACK, DISCONNECT = wire.CONNACK, wire.SUBACK, wire.DISCONNECT
    Message = wire.Message
    Packet = wire.Packet
    ProtocolError = wire.ProtocolError
    reason_text = staticmethod(wire.reason_text)

    def __init__(self) -> None:
        import mqtt5
        self.m = mqtt5
        self.PINGREQ_PACKET = mqtt5.PingReqPacket().write()
        self.DISCONNECT_PACKET = mqtt5.DisconnectPacket().write()
        kinds = {mqtt5.ConnAckPacket: wire.CONNACK, mqtt5.SubAckPacket: wire.SUBACK,
                 mqtt5.DisconnectPacket: wire.DISCONNECT, mqtt5.PubAckPacket: wire.PUBACK,
                 mqtt5.PingRespPacket: wire.PINGRESP}
        codec = self

        class Reader:
            """mqtt5.read on the buffer until it reports an incomplete packet
            (IndexError "Not enough bytes"); PUBLISH becomes wire.Message, as ingest
            reads it, the rest wire.Packet with the decoded packet as body."""

            def __init__(self, properties: bool = True, maximum: int = 0) -> None:
                self._buffer = b""  # MQTT 5 only; no maximum enforced (bench use)

            def feed(self, data: bytes) -> list[Any]:
                buf = self._buffer + data if self._buffer else data
                view = memoryview(buf)
                read, publish, message = codec.m.read, codec.m.PublishPacket, wire.Message
                out: list[Any] = []
                at, size = 0, len(buf)
                while at < size:
                    try:
                        packet, n = read(view[at:])
                    except IndexError:
                        break
                    at += n
                    if type(packet) is publish:
                        out.append(message(packet.topic, packet.payload, int(packet.qos),
                                           packet.packet_id or 0, packet.retain))
                    else:
                        out.append(wire.Packet(kinds.get(type(packet), 0), packet))
                self._buffer = buf[at:]
                return out

        self.Reader = Reader

    def __getattr__(self, name: str) -> Any:
        """Constants and helpers the connection uses that need no codec (since issue 15)."""
        return getattr(wire, name)

    def connect(self, client_id: str, username: str, password: str, *, keepalive: int,
                session_expiry: int, receive_maximum: int, clean_start: bool = False,
                **_: Any) -> bytes:
        return bytes(self.m.ConnectPacket(
            client_id, username=username, password=password.encode(), clean_start=clean_start,
            keep_alive=keepalive, session_expiry_interval=session_expiry,
            receive_max=receive_maximum).write())

    def subscribe(self, packet_id: int, topic_filter: str, qos: int = 1, **_: Any) -> bytes:
        m = self.m
        return bytes(m.SubscribePacket(packet_id, [m.TopicFilter(
            topic_filter, max_qos=m.QoS(qos))]).write())

    def publish(self, topic: str, payload: bytes, qos: int = 0, packet_id: int = 0,
                protocol: int = wire.MQTT5) -> bytes:
        return bytes(self.m.PublishPacket(topic, payload, qos=self.m.QoS(qos),
                                          packet_id=packet_id or None).write())

    def puback(self, packet_id: int) -> bytes:
        return bytes(self.m.PubAckPacket(packet_id).write())

    @staticmethod
    def connack(body: Any, protocol: int = wire.MQTT5) -> wire.ConnAck:
        return wire.ConnAck(bool(body.session_present), int(body.reason_code))

    @staticmethod
    def suback_codes(body: Any, protocol: int = wire.MQTT5) -> tuple[int, list[int]]:
        return int(body.packet_id), [int(c) for c in body.reason_codes]

    @staticmethod
    def disconnect_reason(body: Any) -> tuple[int, str]:
        return int(body.reason_code), ""


def use_mqtt5() -> type:
    connection_mod.wire = Mqtt5Codec()  # type: ignore[attr-defined,assignment]
    return connection_mod.MqttConnection


# -- gmqtt: optimistic_acknowledgement=False ------------------------------------------------

class GmqttConnection(_Adapter):
    """gmqtt with ``optimistic_acknowledgement=False`` sends a QoS 1 PUBACK when the
    ``on_message`` coroutine returns (with a plain function it never acks: gmqtt drops
    the callback). So each message's coroutine hands it to ingest and waits on a future
    that ``ack`` resolves after the write: one asyncio Task per message. gmqtt does not
    pass the packet id to ``on_message``; the adapter numbers messages itself."""

    def __init__(self, options: Any, on_message: Handler) -> None:
        super().__init__(options, on_message)
        import gmqtt  # type: ignore[import-untyped]
        self.client = gmqtt.Client(
            options.client_id, clean_session=False, optimistic_acknowledgement=False,
            session_expiry_interval=SESSION_EXPIRY, receive_maximum=options.receive_maximum)
        self.client.set_auth_credentials(options.username, options.password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._session_present = False

    async def _on_message(self, client: Any, topic: str, payload: bytes, qos: int,
                          properties: Any) -> int:
        if not qos:
            self.on_message(Message(topic, payload, 0, 0))
            return 0
        self._next_id += 1
        mid = self._next_id
        done = self._loop.create_future()
        self._waiting[mid] = done
        self.on_message(Message(topic, payload, qos, mid, bool(properties.get("retain"))))
        await done  # raises if the connection is lost first: then no PUBACK at all
        return 0

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if qos and generation == self.generation:
            done = self._waiting.pop(mid, None)
            if done is not None and not done.done():
                done.set_result(None)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.connected.is_set():
            self.client.publish(topic, payload, qos=qos)

    def _set_reading(self, on: bool) -> None:
        conn = self.client._connection  # private: gmqtt has no flow control of its own
        if conn is not None and not conn._transport.is_closing():
            (conn._transport.resume_reading if on else conn._transport.pause_reading)()

    def _on_connect(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self._session_present = bool(flags)
        for topic in self.options.subscriptions:
            client.subscribe(topic, qos=1)

    def _on_subscribe(self, client: Any, mid: int, qos: Any, properties: Any) -> None:
        if not self.connected.is_set():
            self._connected(self._session_present)
            if self._paused:
                self._set_reading(False)

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        self._lost(str(exc or "closed"))
        waiting, self._waiting = self._waiting, {}
        for done in waiting.values():
            if not done.done():
                done.set_exception(ConnectionError("connection lost before the write"))

    async def run(self, stopping: asyncio.Event) -> None:
        delay = self.options.backoff_initial
        self.client.set_config({"reconnect_retries": -1,
                                "reconnect_delay": self.options.backoff_initial})
        while not stopping.is_set():
            try:
                await self.client.connect(self.options.host, self.options.port,
                                          keepalive=self.options.keepalive)
                break
            except Exception as exc:  # OSError, or gmqtt's own refusal types
                log.warning("event=mqtt_reconnect_wait seconds=%.1f reason=%s", delay, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)
                delay = min(delay * 2, self.options.backoff_max)
        await stopping.wait()  # gmqtt reconnects by itself meanwhile

    async def disconnect(self) -> None:
        await self.client.disconnect()


# -- paho-mqtt 2.x: manual_ack, on our event loop -------------------------------------------

class PahoConnection(_Adapter):
    """paho-mqtt 2.x with ``manual_ack=True`` and ``client.ack(mid, qos)`` after the write,
    driven by the event loop through paho's socket callbacks (the integration of paho's
    ``examples/loop_asyncio.py``): no thread, so no hand-over per message. paho reads one
    packet per ``loop_read`` and writes each PUBACK with its own ``send``."""

    def __init__(self, options: Any, on_message: Handler) -> None:
        super().__init__(options, on_message)
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        self.mqtt = mqtt
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=options.client_id, protocol=MQTTProtocolVersion.MQTTv5,
                             manual_ack=True)
        client.username_pw_set(options.username, options.password)
        self.props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        self.props.SessionExpiryInterval = SESSION_EXPIRY
        self.props.ReceiveMaximum = options.receive_maximum
        handler = on_message
        client.on_message = lambda c, u, msg: handler(msg)  # MQTTMessage: topic, payload, qos, mid
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        self.client = client
        self._sock: Any = None
        self._misc: asyncio.Task[None] | None = None
        self._disconnected = asyncio.Event()
        self._session_present = False

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if qos and generation == self.generation and self.connected.is_set():
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.connected.is_set():
            self.client.publish(topic, payload, qos=qos)

    # socket callbacks: paho asks, the event loop watches
    def _socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._sock = sock
        if not self._paused:
            self._loop.add_reader(sock, client.loop_read)
        self._misc = self._loop.create_task(self._misc_loop())

    def _socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = None
        if self._misc is not None:
            self._misc.cancel()

    def _register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._loop.add_writer(sock, client.loop_write)

    def _unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _set_reading(self, on: bool) -> None:
        if self._sock is not None:
            if on:
                self._loop.add_reader(self._sock, self.client.loop_read)
            else:
                self._loop.remove_reader(self._sock)

    async def _misc_loop(self) -> None:
        while self.client.loop_misc() == self.mqtt.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("event=mqtt_refused reason=%s", reason)
            return
        self._session_present = bool(flags.session_present)
        for topic in self.options.subscriptions:
            client.subscribe(topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if not self.connected.is_set():
            self._connected(self._session_present)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._lost(str(reason))
        self._disconnected.set()

    async def run(self, stopping: asyncio.Event) -> None:
        delay = self.options.backoff_initial
        while not stopping.is_set():
            self._disconnected.clear()
            try:
                self.client.connect(self.options.host, self.options.port,
                                    keepalive=self.options.keepalive, clean_start=False,
                                    properties=self.props)
            except OSError as exc:
                self.last_error = str(exc)
                self._disconnected.set()
            else:
                delay = self.options.backoff_initial
                await connection_mod._first(stopping.wait(), self._disconnected.wait())
            if stopping.is_set():
                break
            log.warning("event=mqtt_reconnect_wait seconds=%.1f reason=%s", delay,
                        self.last_error or "connection lost")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, self.options.backoff_max)

    async def disconnect(self) -> None:
        if self._sock is None:
            return
        self.client.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnected.wait(), 5)


# -- aiomqtt: no manual ack in its API; the workaround from its issue #345 -------------------

class AiomqttConnection(_Adapter):
    """aiomqtt 2.x acknowledges on receipt and has no manual-ack option (its issue #345
    is open, PR #346 unmerged). The workaround given in that issue reaches through to the
    paho client it wraps, a private attribute: ``client._client.manual_ack_set(True)``
    and ``client._client.ack(mid, qos)``. Messages come through aiomqtt's own queue and
    ``async for`` iterator, as its users read them."""

    def __init__(self, options: Any, on_message: Handler) -> None:
        super().__init__(options, on_message)
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        self.aiomqtt = aiomqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = options.receive_maximum
        self.client = aiomqtt.Client(
            options.host, options.port, username=options.username, password=options.password,
            identifier=options.client_id, protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False, properties=props, keepalive=options.keepalive,
            max_queued_incoming_messages=0)
        self.client._client.manual_ack_set(True)  # private: the issue #345 workaround
        self._task: asyncio.Task[None] | None = None

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if qos and generation == self.generation and self.connected.is_set():
            self.client._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.connected.is_set():
            self.client._client.publish(topic, payload, qos=qos)

    def _set_reading(self, on: bool) -> None:
        sock = self.client._client.socket()
        if sock is None:
            return
        if on:
            self._loop.add_reader(sock, self.client._client.loop_read)
        else:
            self._loop.remove_reader(sock)

    async def run(self, stopping: asyncio.Event) -> None:
        delay = self.options.backoff_initial
        while not stopping.is_set():
            try:
                async with self.client:
                    for topic in self.options.subscriptions:
                        await self.client.subscribe(topic, qos=1)
                    self._connected(False)
                    delay = self.options.backoff_initial
                    reader = asyncio.ensure_future(self._read())
                    await connection_mod._first(stopping.wait(), reader)
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError, self.aiomqtt.MqttError):
                        await reader
                    self.connected.clear()
            except self.aiomqtt.MqttError as exc:
                self._lost(str(exc))
                self.last_error = str(exc)
            if stopping.is_set():
                break
            log.warning("event=mqtt_reconnect_wait seconds=%.1f reason=%s", delay,
                        self.last_error or "connection lost")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, self.options.backoff_max)

    async def _read(self) -> None:
        handler = self.on_message
        async for msg in self.client.messages:
            handler(Message(msg.topic.value, msg.payload, msg.qos, msg.mid, msg.retain))

    async def disconnect(self) -> None:
        pass  # leaving ``async with`` in run() sends DISCONNECT; the session stays


# -- which client is which ----------------------------------------------------------------

def _ours() -> type:
    return connection_mod.MqttConnection


CLIENTS: dict[str, tuple[str, Callable[[], type]]] = {
    # name: (the distribution whose version is reported, adapter factory)
    "ours": ("devicedata", _ours),
    "mqtt5": ("mqtt5", use_mqtt5),
    "gmqtt": ("gmqtt", lambda: GmqttConnection),
    "paho": ("paho-mqtt", lambda: PahoConnection),
    "aiomqtt": ("aiomqtt", lambda: AiomqttConnection),
}


def describe(client: str) -> str:
    """What the adapter does, for the result file."""
    if client == "ours":
        return "bridge/mqtt.py + bridge/mqtt_wire.py, as `devicedata bridge` runs them"
    cls = {"mqtt5": Mqtt5Codec, "gmqtt": GmqttConnection, "paho": PahoConnection,
           "aiomqtt": AiomqttConnection}[client]
    return " ".join((cls.__doc__ or "").split())


def version(client: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version
    try:
        return dist_version(CLIENTS[client][0])
    except PackageNotFoundError:
        return "not installed"


def install(client: str) -> type:
    """Make the bridge use ``client``'s connection; returns the class it will build."""
    cls = CLIENTS[client][1]()
    _check_connection(cls)
    runner_mod.MqttConnection = cls  # type: ignore[attr-defined,assignment]
    return cls


# -- the late-acknowledgement check -------------------------------------------------------

async def check_late_ack(client: str, host: str, port: int, username: str, password: str,
                         topic: str, publish: Callable[[int], None], n: int = 5,
                         client_id: str = "bench-late-ack") -> dict[str, Any]:
    """Three sessions of one client id, with ``publish(n)`` publishing n QoS 1 messages
    to ``topic`` meanwhile: (1) receive them and ack none; (2) a new connection gets all n
    again (redelivered: nothing was acknowledged), and acks them; (3) a new connection
    gets none. Returns what each step saw."""
    cls = install(client)
    options = ConnectionOptions(host=host, port=port, client_id=client_id, username=username,
                                password=password, subscriptions=(topic,))
    seen: list[list[Any]] = []

    async def session(ack: bool, expect: int, before: Callable[[], None] | None) -> list[Any]:
        got: list[Any] = []
        stopping = asyncio.Event()
        conn = cls(options, got.append)
        task = asyncio.create_task(conn.run(stopping))
        await asyncio.wait_for(conn.connected.wait(), 20)
        if before is not None:
            await asyncio.to_thread(before)
        deadline = time.monotonic() + (10 if expect else 2)
        while len(got) < max(expect, 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if ack:
            for m in got:
                conn.ack(m.mid, m.qos, conn.generation)
            await asyncio.sleep(0.5)
        await conn.disconnect()
        stopping.set()
        await asyncio.wait_for(task, 10)
        return got

    seen.append(await session(False, n, lambda: publish(n)))
    seen.append(await session(True, n, None))
    seen.append(await session(False, 0, None))
    counts = [len(s) for s in seen]
    return {"client": client, "received_unacked": counts[0], "redelivered": counts[1],
            "after_ack": counts[2], "ok": counts == [n, n, 0]}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        import json

        import paho.mqtt.publish as publish_mod
        client, host, port, user, password, topic, dev_user, dev_pass = argv[1:9]

        def publish(n: int) -> None:
            publish_mod.multiple(
                [{"topic": topic.replace("+", dev_user), "payload": f"{i}", "qos": 1}
                 for i in range(n)], hostname=host, port=int(port),
                auth={"username": dev_user, "password": dev_pass})

        logging.basicConfig(level=logging.WARNING)
        result = asyncio.run(check_late_ack(client, host, int(port), user, password, topic,
                                            publish))
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    client = argv[0] if argv else "ours"
    install(client)
    from devicedata import cli
    return cli.main(["bridge", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
