"""A short, blocking MQTT 5 session that sends commands to Mosquitto's dynamic-security
plugin (``$CONTROL/dynamic-security/v1``) and waits for their answers. Used by the broker
sync, from a worker thread or a command-line process; the bridge's own data connection is
never involved.

Responses go to every subscriber of the response topic, so each batch carries correlation
data of its own and other answers are skipped.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import orjson

from bridge.errors import BrokerError
from bridge.mqtt import wire
from bridge.registry.dynsec import CONTROL_TOPIC, RESPONSE_TOPIC, Command

BATCH = 50  # commands per message: each can stall a broker with 10,000 roles ~0.3 s


class BrokerControl:
    def __init__(self, host: str, port: int, username: str, password: str, *,
                 tls: ssl.SSLContext | None = None, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._reader = wire.Reader()
        self._pending: list[wire.Message | wire.Packet] = []
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
            self._sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        except OSError as exc:
            raise BrokerError(f"cannot reach the broker at {host}:{port}: {exc}") from exc
        try:
            self._sock.sendall(wire.connect(f"control-{secrets.token_hex(4)}", username,
                                            password, keepalive=60, session_expiry=0,
                                            receive_maximum=10, clean_start=True))
            _, code = wire.connack(self._packet(wire.CONNACK).body)
            if code:
                raise BrokerError(f"the broker refused {username}: {wire.reason_text(code)}")
            self._sock.sendall(wire.subscribe(1, RESPONSE_TOPIC, qos=0))
            _, codes = wire.suback_codes(self._packet(wire.SUBACK).body)
            if any(c >= 0x80 for c in codes):
                raise BrokerError(f"the broker refused {username} its command answers: "
                                  f"{wire.reason_text(codes[0])}")
        except BaseException:
            self._sock.close()
            raise

    def run(self, commands: Sequence[Command]) -> list[dict[str, Any]]:
        """Every response, in the order of ``commands`` (sent ``BATCH`` at a time)."""
        responses: list[dict[str, Any]] = []
        for start in range(0, len(commands), BATCH):
            tag = secrets.token_hex(8)
            batch = [{**c, "correlationData": f"{tag}-{i}"}
                     for i, c in enumerate(commands[start:start + BATCH])]
            self._send(wire.publish(CONTROL_TOPIC, orjson.dumps({"commands": batch})))
            responses.extend(self._answer(tag))
        return responses

    def _answer(self, tag: str) -> list[dict[str, Any]]:
        while True:
            message = self._message()
            if message.topic != RESPONSE_TOPIC:
                continue
            try:
                found = orjson.loads(message.payload).get("responses", [])
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if found and str(found[0].get("correlationData", "")).startswith(tag + "-"):
                return list(found)

    def _send(self, packet: bytes) -> None:
        try:
            self._sock.sendall(packet)
        except OSError as exc:
            raise BrokerError(f"lost the broker: {exc}") from exc

    def _packet(self, kind: int) -> wire.Packet:
        while True:
            found = self._next()
            if isinstance(found, wire.Packet) and found.kind == kind:
                return found

    def _message(self) -> wire.Message:
        while True:
            found = self._next()
            if isinstance(found, wire.Message):
                return found

    def _next(self) -> wire.Message | wire.Packet:
        deadline = time.monotonic() + self._timeout
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerError("the broker did not answer in time")
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(65536)
                if not data:
                    raise BrokerError("the broker closed the connection")
                self._pending.extend(self._reader.feed(data))
            except (OSError, wire.ProtocolError, IndexError, ValueError) as exc:
                raise BrokerError(f"lost the broker: {exc}") from exc
        found = self._pending.pop(0)
        if isinstance(found, wire.Packet) and found.kind == wire.DISCONNECT:
            raise BrokerError("the broker disconnected: " + wire.reason_text(
                wire.disconnect_reason(found.body)))
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(wire.DISCONNECT_PACKET)
        self._sock.close()

    def __enter__(self) -> BrokerControl:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
