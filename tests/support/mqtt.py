"""Test-side MQTT: a device's client (paho, its own thread) and a bridge process."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.registry import broker_sync
from bridge.settings import Settings
from devicedata import procs, servers


class DeviceClient:
    """A device connected with username = device id, password = token (MQTT 5); over TLS
    to ``port`` when ``tls`` is given: (CA file to trust or None for the system's CAs,
    client certificate and key or None). A failed TLS handshake raises ssl.SSLError."""

    def __init__(self, settings: Settings, username: str | None, password: str | None,
                 client_id: str | None = None, session_expiry: int = 0, *,
                 port: int | None = None,
                 tls: tuple[Path | None, tuple[Path, Path] | None] | None = None,
                 host: str | None = None) -> None:
        """``session_expiry`` > 0: a persistent session (resumed, not started clean)."""
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"t-{os.urandom(6).hex()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.connack: Any = None
        self.session_present = False
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self._closing = False
        self._acks: dict[int, Any] = {}
        self._ack_event = threading.Condition()
        self.disconnects = 0  # times the broker closed this connection (not close())
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_publish = self._on_publish
        properties = None
        if session_expiry:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = session_expiry
        if tls is not None:
            ca_file, cert = tls
            self.client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                                certfile=str(cert[0]) if cert else None,
                                keyfile=str(cert[1]) if cert else None)
        try:
            self.client.connect(host or settings.mqtt_host, port or settings.mqtt_port,
                                keepalive=30, clean_start=not session_expiry,
                                properties=properties)
        except BaseException as exc:
            self.client._reset_sockets()
            _close_sockets_of(exc)
            raise
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("no CONNACK")

    def _on_connect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason
        self.session_present = bool(flags.session_present)
        self._connected.set()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if not self._closing:
            self.disconnects += 1

    def _on_publish(self, c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        with self._ack_event:
            self._acks[mid] = reason
            self._ack_event.notify_all()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                wait: bool = True, retain: bool = False) -> Any:
        """Publish; for QoS 1 wait for the PUBACK and return its reason code."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0 or not wait:
            return None
        deadline = time.monotonic() + 15
        with self._ack_event:
            while info.mid not in self._acks:
                if not self._ack_event.wait(deadline - time.monotonic()):
                    raise TimeoutError("no PUBACK")
            return self._acks.pop(info.mid)

    def subscribe(self, topic: str, qos: int = 1) -> list[Any]:
        """Subscribe and wait for the SUBACK; its reason codes (``.is_failure`` on refusal)."""
        done = threading.Event()
        codes: list[Any] = []

        def on_subscribe(c: Any, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
            codes.extend(reasons)
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe(topic, qos)
        assert done.wait(10), "no SUBACK"
        return codes

    def next_message(self, timeout: float = 10) -> paho.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()
        # paho keeps a socket pair for waking its loop; close it now rather than leave it
        # to the garbage collector (a ResourceWarning, an error under filterwarnings).
        self.client._reset_sockets()


def _close_sockets_of(exc: BaseException) -> None:
    """paho leaves the socket of a failed TLS handshake open (a ResourceWarning, an error
    under filterwarnings): close the sockets the failed call's frames still hold."""
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()
        tb = tb.tb_next


def connect_when_allowed(settings: Settings, username: str, password: str,
                         timeout: float = 5.0, **options: Any) -> DeviceClient:
    """The broker reloads credentials on SIGHUP, a moment after they change. ``options``
    are DeviceClient's (``port``, ``tls``, ``host``)."""
    deadline = time.monotonic() + timeout
    while True:
        client = DeviceClient(settings, username, password, **options)
        if client.accepted:
            return client
        client.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker still refuses {username}: {client.connack}")
        time.sleep(0.1)


def wait_refused(settings: Settings, username: str, password: str,
                 timeout: float = 5.0) -> None:
    """Wait until the broker refuses these credentials (it reloads them on SIGHUP)."""

    def refused() -> bool:
        probe = DeviceClient(settings, username, password)
        probe.close()
        return not probe.accepted

    wait_until(refused, timeout=timeout, what=f"the broker to refuse {username}")


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


class BridgeProcess:
    """``devicedata bridge`` as a real child process, with its log kept for assertions.
    Every one started is killed at the end of the session if a test left it running
    (``kill_leftovers``), so a failed test cannot leave a bridge behind."""

    started: ClassVar[list[BridgeProcess]] = []

    def __init__(self, settings: Settings, log: Path, *extra: str) -> None:
        self.settings = settings
        self.log = log
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> BridgeProcess:
        """Start the process and, with ``wait``, return once it is connected."""
        start = self.log.stat().st_size if self.log.exists() else 0
        env = {**os.environ, **self.settings.to_env()}
        with self.log.open("ab") as out:
            BridgeProcess.started.append(self)
            self.proc = subprocess.Popen([sys.executable, "-m", "devicedata", "bridge",
                                          *self.extra], env=env, stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)
        if not wait:
            return self
        wait_until(lambda: b"event=mqtt_connected" in self.log.read_bytes()[start:]
                   or self.proc is None or self.proc.poll() is not None,
                   timeout=20, what="the bridge to connect")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @classmethod
    def kill_leftovers(cls) -> None:
        for bridge in cls.started:
            if bridge.running():
                assert bridge.proc is not None
                bridge.proc.kill()
                bridge.proc.wait(10)
        cls.started.clear()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def drop_session(settings: Settings) -> None:
    """End a bridge user's persistent session (clean start, no expiry), so the broker
    stops queueing every later test's messages for a bridge that is gone."""
    DeviceClient(settings, settings.mqtt_username, broker_sync.bridge_password(settings)).close()


def env_of(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.to_env()}


__all__ = ["BridgeProcess", "DeviceClient", "OpenBroker", "connect_when_allowed", "drop_session",
           "env_of",
           "signal", "wait_refused", "wait_until"]


class OpenBroker(servers.Server):
    """A Mosquitto with no authentication and no ACL, for tests that need a client to
    publish under any device id (as a misconfigured or clustered broker might let it)."""

    name = "mosquitto"

    def _argv(self) -> list[str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "open.conf"
        root = "user root\n" if os.geteuid() == 0 else ""  # its files stay root's
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        f"persistence false\nmax_queued_messages 100000\n{root}"
                        "log_dest stderr\n")
        conf.chmod(0o644)
        return [self._binary("mosquitto"), "-c", str(conf)]

    def _ready(self) -> bool:
        return procs.tcp_accepts(self.host, self.port)


def running_bridge(settings: Settings, log: Path) -> Iterator[BridgeProcess]:
    """A fixture's body: a bridge process for the tests, stopped cleanly after them."""
    process = BridgeProcess(settings, log).start()
    yield process
    if process.running():
        assert process.stop() == 0
