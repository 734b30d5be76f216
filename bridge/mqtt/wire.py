"""MQTT 5 packets, the handful a subscribing bridge needs, encoded and decoded by hand.

Why not paho: paho builds several Python objects and runs a callback chain per message;
at tens of thousands of QoS 1 messages a second that, not our own work, was the limit.
Here a whole socket read is parsed in one loop and every PUBACK of that read goes out in
one write. Only what the bridge uses is implemented: CONNECT/CONNACK, SUBSCRIBE/SUBACK,
PUBLISH (both ways), PUBACK, PINGREQ/PINGRESP and DISCONNECT, MQTT 5.0 only.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
PROP_SESSION_EXPIRY, PROP_RECEIVE_MAXIMUM = 0x11, 0x21
# Retain Handling (MQTT 5, 3.8.3.1): 1 sends retained messages only when the subscription is
# new. The bridge subscribes again on every connect; on a resumed session that subscription
# already exists, so retained messages it has already stored are not sent again. When the
# broker lost the session they are sent once more, since the bridge may have missed them.
RETAIN_ALWAYS, RETAIN_IF_NEW, RETAIN_NEVER = 0, 1, 2
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection; the session (and its queue) stays

SESSION_TAKEN_OVER = 0x8E
REASONS = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8E: "session taken over",
    0x95: "packet too large", 0x97: "quota exceeded", 0x9F: "connection rate exceeded",
}


class ProtocolError(Exception):
    """The broker sent something this client cannot read; the connection is dropped."""


@dataclass(slots=True)
class Message:
    """An incoming PUBLISH: what ``bridge.mqtt.ingest`` reads of it."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool = False


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def connect(client_id: str, username: str, password: str, *, keepalive: int,
            session_expiry: int, receive_maximum: int, clean_start: bool = False) -> bytes:
    flags = 0x80 | 0x40 | (0x02 if clean_start else 0)
    props = (bytes((PROP_SESSION_EXPIRY,)) + session_expiry.to_bytes(4, "big")
             + bytes((PROP_RECEIVE_MAXIMUM,)) + receive_maximum.to_bytes(2, "big"))
    body = (_string("MQTT") + b"\x05" + bytes((flags,)) + keepalive.to_bytes(2, "big")
            + _varint(len(props)) + props
            + _string(client_id) + _string(username) + _string(password))
    return _packet(CONNECT, body)


def subscribe(packet_id: int, topic_filter: str, qos: int = 1,
              retain_handling: int = RETAIN_IF_NEW) -> bytes:
    options = qos | (retain_handling << 4)
    body = packet_id.to_bytes(2, "big") + b"\x00" + _string(topic_filter) + bytes((options,))
    return _packet(SUBSCRIBE, body)


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0,
            retain: bool = False) -> bytes:
    body = _string(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + b"\x00" + payload
    return _packet(PUBLISH | (qos << 1) | int(retain), body)


def puback(packet_id: int) -> bytes:
    # Reason "success" with no properties may be left out entirely (MQTT 5, 3.4.2.1).
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


@dataclass(slots=True)
class Packet:
    """A control packet other than PUBLISH, as (type, flags, body)."""

    kind: int
    body: bytes


class Reader:
    """Splits a byte stream into packets. ``feed`` returns the complete packets so far:
    PUBLISH as ``Message``, everything else as ``Packet``."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Message | Packet]:
        buf = self._buffer + data if self._buffer else data
        out: list[Message | Packet] = []
        at, size = 0, len(buf)
        while at + 2 <= size:
            first = buf[at]
            # Remaining length: 1..4 bytes, 7 bits each, low bits first.
            length, shift, pos = 0, 0, at + 1
            while True:
                if pos >= size:
                    self._buffer = buf[at:]
                    return out
                byte = buf[pos]
                length |= (byte & 0x7F) << shift
                pos += 1
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length over 4 bytes")
            end = pos + length
            if end > size:
                break
            kind = first & 0xF0
            if kind == PUBLISH:
                out.append(_read_publish(first, buf, pos, end))
            else:
                out.append(Packet(kind, buf[pos:end]))
            at = end
        self._buffer = buf[at:]
        return out


def _read_publish(first: int, buf: bytes, pos: int, end: int) -> Message:
    qos = (first >> 1) & 0x03
    topic_len = int.from_bytes(buf[pos:pos + 2], "big")
    pos += 2
    topic = buf[pos:pos + topic_len].decode("utf-8", "replace")
    pos += topic_len
    mid = 0
    if qos:
        mid = int.from_bytes(buf[pos:pos + 2], "big")
        pos += 2
    # Properties: skipped whole (we never ask for topic aliases, so none can matter).
    props, pos = _read_varint(buf, pos)
    pos += props
    if pos > end:
        raise ProtocolError("PUBLISH shorter than its headers")
    return Message(topic, buf[pos:end], qos, mid, bool(first & 0x01))


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A variable byte integer at ``pos``: (value, position after it)."""
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer over 4 bytes")


def connack(body: bytes) -> tuple[bool, int]:
    """(session present, reason code) of a CONNACK."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    return bool(body[0] & 0x01), body[1]


def suback_codes(body: bytes) -> tuple[int, list[int]]:
    """(packet id, granted QoS or reason codes) of a SUBACK."""
    packet_id = int.from_bytes(body[:2], "big")
    props, pos = _read_varint(body, 2)
    return packet_id, list(body[pos + props:])


def disconnect_reason(body: bytes) -> int:
    return body[0] if body else 0


def reason_text(code: int) -> str:
    return REASONS.get(code, f"reason code {code:#04x}")
