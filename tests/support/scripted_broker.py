"""A scripted MQTT peer: a real TCP server that answers each packet the way a test says, so
a client can be shown a broker's rarer behaviour (refusals, odd framing, DISCONNECT with a
reason) on purpose. Packets are built here by hand, not with the code under test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind: int, body: bytes, flags: int = 0) -> bytes:
    return bytes(((kind << 4) | flags,)) + varint(len(body)) + body


def connack(code: int = 0, session_present: bool = False, properties: bytes = b"") -> bytes:
    return packet(CONNACK, bytes((int(session_present), code)) + varint(len(properties))
                  + properties)


def suback(packet_id: int, *codes: int) -> bytes:
    return packet(SUBACK, packet_id.to_bytes(2, "big") + b"\x00" + bytes(codes))


def disconnect(reason: int) -> bytes:
    return packet(DISCONNECT, bytes((reason, 0)))


def publish(topic: str, payload: bytes, packet_id: int = 0, qos: int = 1) -> bytes:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw + (packet_id.to_bytes(2, "big") if qos else b"")
    return packet(PUBLISH, body + b"\x00" + payload, flags=qos << 1)


@dataclass
class Peer:
    """One client connection, as the script sees it."""

    sock: socket.socket
    received: list[tuple[int, bytes]] = field(default_factory=list)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


Script = Callable[[Peer, int, bytes], None]


def answer_connect_and_subscribe(connack_packet: bytes = connack(),
                                 suback_codes: tuple[int, ...] = (1,)) -> Script:
    """CONNECT gets ``connack_packet``, SUBSCRIBE gets ``suback_codes``, PINGREQ a PINGRESP."""

    def script(peer: Peer, kind: int, body: bytes) -> None:
        if kind == CONNECT:
            peer.send(connack_packet)
        elif kind == SUBSCRIBE:
            peer.send(suback(int.from_bytes(body[:2], "big"), *suback_codes))
        elif kind == PINGREQ:
            peer.send(packet(PINGRESP, b""))

    return script


class ScriptedBroker:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.peers: list[Peer] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            peer = Peer(sock)
            self.peers.append(peer)
            threading.Thread(target=self._serve, args=(peer,), daemon=True).start()

    def _serve(self, peer: Peer) -> None:
        buffer = b""
        while True:
            try:
                data = peer.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while len(buffer) >= 2:
                length, shift, pos = 0, 0, 1
                while pos < len(buffer):
                    length |= (buffer[pos] & 0x7F) << shift
                    pos += 1
                    if buffer[pos - 1] < 0x80:
                        break
                    shift += 7
                else:
                    break
                if len(buffer) < pos + length:
                    break
                kind, body = buffer[0] >> 4, buffer[pos:pos + length]
                buffer = buffer[pos + length:]
                peer.received.append((kind, body))
                try:
                    self.script(peer, kind, body)
                except OSError:
                    return

    def close(self) -> None:
        self._server.close()
        for peer in self.peers:
            peer.close()
