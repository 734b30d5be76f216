"""MQTT packets, the handful a subscribing bridge needs, encoded and decoded by hand, for
MQTT 5 (protocol level 5) and MQTT 3.1.1 (protocol level 4).

Why not paho: paho builds several Python objects and runs a callback chain per message;
at tens of thousands of QoS 1 messages a second that, not our own work, was the limit.
Here a whole socket read is parsed in one loop and every PUBACK of that read goes out in
one write. Only what the bridge uses is implemented: CONNECT/CONNACK, SUBSCRIBE/SUBACK,
PUBLISH (both ways), PUBACK, PINGREQ/PINGRESP and DISCONNECT. The side by side with
maintained codecs is in docs/benchmarks.md ("MQTT client options for the bridge").

Over 300 lines: the same dozen packets in two protocol versions, kept side by side so
that every difference between 3.1.1 and 5 is visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
MQTT5, MQTT311 = 5, 4  # protocol levels
PROP_SESSION_EXPIRY, PROP_RECEIVE_MAXIMUM, PROP_MAXIMUM_PACKET_SIZE = 0x11, 0x21, 0x27
PROP_ASSIGNED_CLIENT_ID, PROP_SERVER_KEEP_ALIVE, PROP_REASON_STRING = 0x12, 0x13, 0x1F
# Retain Handling (MQTT 5, 3.8.3.1): 1 sends retained messages only when the subscription is
# new. The bridge subscribes again on every connect; on a resumed session that subscription
# already exists, so retained messages it has already stored are not sent again. When the
# broker lost the session they are sent once more, since the bridge may have missed them.
RETAIN_ALWAYS, RETAIN_IF_NEW, RETAIN_NEVER = 0, 1, 2
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection; the session (and its queue) stays
PACKET_TOO_LARGE = 0x95

SESSION_TAKEN_OVER = 0x8E
UNSUPPORTED_VERSION = 0x84  # MQTT 5 CONNACK; a 3.1.1 broker answers with return code 1
REASONS = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
    0x8D: "keep alive timeout", 0x8E: "session taken over", 0x8F: "topic filter invalid",
    0x93: "receive maximum exceeded", 0x95: "packet too large", 0x97: "quota exceeded",
    0x9C: "use another server", 0x9D: "server moved", 0x9E: "shared subscriptions not "
    "supported", 0x9F: "connection rate exceeded", 0xA2: "wildcard subscriptions not supported",
}
# MQTT 3.1.1 CONNACK return codes (3.2.2.3) and its one SUBACK failure code.
REASONS_311 = {1: "unsupported protocol version", 2: "client identifier not valid",
               3: "server unavailable", 4: "bad user name or password", 5: "not authorized",
               0x80: "subscription refused"}
# Property identifier -> how its value is encoded (MQTT 5, 2.2.2.2).
_BYTE, _TWO, _FOUR, _VARINT, _STR, _BIN, _PAIR = range(7)
_PROPERTY_KINDS = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _STR, 0x13: _TWO, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _FOUR,
    0x19: _BYTE, 0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _TWO, 0x22: _TWO, 0x23: _TWO,
    0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR, 0x28: _BYTE, 0x29: _BYTE,
    0x2A: _BYTE,
}


class ProtocolError(Exception):
    """The broker sent something this client cannot read; the connection is dropped."""


class PacketTooLarge(ProtocolError):
    """The broker sent a packet over the Maximum Packet Size we gave it."""


@dataclass(slots=True)
class Message:
    """An incoming PUBLISH: what ``bridge.mqtt.ingest`` reads of it."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool = False


@dataclass(frozen=True, slots=True)
class ConnAck:
    """A CONNACK and the limits it sets (MQTT 5 properties; None when the broker sent none)."""

    session_present: bool
    code: int
    keepalive: int | None = None  # Server Keep Alive: use it instead of ours
    receive_maximum: int | None = None  # our unacknowledged QoS>0 PUBLISHes at most
    maximum_packet_size: int | None = None  # never send a larger packet
    assigned_client_id: str | None = None
    reason: str = ""


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
            session_expiry: int, receive_maximum: int, clean_start: bool = False,
            protocol: int = MQTT5, maximum_packet_size: int = 0) -> bytes:
    """CONNECT. With MQTT 3.1.1 there are no properties: the session then lasts until the
    broker's own expiry (clean session off), and the broker's in-flight limit applies."""
    flags = 0x80 | 0x40 | (0x02 if clean_start else 0)
    props = b""
    if protocol == MQTT5:
        raw = (bytes((PROP_SESSION_EXPIRY,)) + session_expiry.to_bytes(4, "big")
               + bytes((PROP_RECEIVE_MAXIMUM,)) + receive_maximum.to_bytes(2, "big"))
        if maximum_packet_size:
            raw += bytes((PROP_MAXIMUM_PACKET_SIZE,)) + maximum_packet_size.to_bytes(4, "big")
        props = _varint(len(raw)) + raw
    body = (_string("MQTT") + bytes((protocol, flags)) + keepalive.to_bytes(2, "big")
            + props + _string(client_id) + _string(username) + _string(password))
    return _packet(CONNECT, body)


def subscribe(packet_id: int, topic_filter: str, qos: int = 1,
              retain_handling: int = RETAIN_IF_NEW, protocol: int = MQTT5) -> bytes:
    if protocol == MQTT5:
        body = (packet_id.to_bytes(2, "big") + b"\x00" + _string(topic_filter)
                + bytes((qos | (retain_handling << 4),)))
    else:  # 3.1.1: no properties, and the option bits above QoS are reserved
        body = packet_id.to_bytes(2, "big") + _string(topic_filter) + bytes((qos,))
    return _packet(SUBSCRIBE, body)


def publish(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0,
            protocol: int = MQTT5, retain: bool = False) -> bytes:
    body = (_string(topic) + (packet_id.to_bytes(2, "big") if qos else b"")
            + (b"\x00" if protocol == MQTT5 else b"") + payload)
    return _packet(PUBLISH | (qos << 1) | int(retain), body)


def puback(packet_id: int) -> bytes:
    # The same in 3.1.1 and 5: reason "success" with no properties may be left out
    # entirely (MQTT 5, 3.4.2.1).
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def disconnect(reason: int) -> bytes:
    """MQTT 5 DISCONNECT with a reason code (3.1.1 has only the bare one)."""
    return bytes((DISCONNECT, 1, reason))


@dataclass(slots=True)
class Packet:
    """A control packet other than PUBLISH, as (type, body)."""

    kind: int
    body: bytes


class Reader:
    """Splits a byte stream into packets. ``feed`` returns the complete packets so far:
    PUBLISH as ``Message``, everything else as ``Packet``. ``properties`` is False for
    MQTT 3.1.1 (its PUBLISH has none). A packet announced larger than ``maximum`` raises
    ``PacketTooLarge`` before any of it is buffered."""

    def __init__(self, properties: bool = True, maximum: int = 0) -> None:
        self._buffer = b""
        self.properties = properties
        self.maximum = maximum

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
            if self.maximum and end - at > self.maximum:
                raise PacketTooLarge(f"a packet of {end - at} bytes, over the maximum of "
                                     f"{self.maximum} we gave the broker")
            if end > size:
                break
            kind = first & 0xF0
            if kind == PUBLISH:
                out.append(_read_publish(first, buf, pos, end, self.properties))
            else:
                out.append(Packet(kind, buf[pos:end]))
            at = end
        self._buffer = buf[at:]
        return out


def _read_publish(first: int, buf: bytes, pos: int, end: int, properties: bool) -> Message:
    qos = (first >> 1) & 0x03
    topic_len = int.from_bytes(buf[pos:pos + 2], "big")
    pos += 2
    topic = buf[pos:pos + topic_len].decode("utf-8", "replace")
    pos += topic_len
    mid = 0
    if qos:
        mid = int.from_bytes(buf[pos:pos + 2], "big")
        pos += 2
    if properties:
        # Skipped whole (we never ask for topic aliases, so none can matter).
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


def read_properties(buf: bytes, pos: int) -> tuple[dict[int, int | str | bytes], int]:
    """The property block at ``pos``: ({identifier: value}, position after it). User
    properties are skipped; an unknown identifier is a protocol error (MQTT 5, 2.2.2.2)."""
    length, pos = _read_varint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ProtocolError("properties longer than the packet")
    found: dict[int, int | str | bytes] = {}
    while pos < end:
        ident, pos = _read_varint(buf, pos)
        kind = _PROPERTY_KINDS.get(ident)
        if kind is None:
            raise ProtocolError(f"unknown property {ident:#04x}")
        if kind in (_BYTE, _TWO, _FOUR):
            width = (1, 2, 4)[kind]
            found[ident] = int.from_bytes(buf[pos:pos + width], "big")
            pos += width
        elif kind == _VARINT:
            found[ident], pos = _read_varint(buf, pos)
        else:
            for _ in range(2 if kind == _PAIR else 1):
                size = int.from_bytes(buf[pos:pos + 2], "big")
                raw = buf[pos + 2:pos + 2 + size]
                pos += 2 + size
            if kind != _PAIR:
                found[ident] = raw if kind == _BIN else raw.decode("utf-8", "replace")
    if pos != end:
        raise ProtocolError("a property runs past its block")
    return found, end


def connack(body: bytes, protocol: int = MQTT5) -> ConnAck:
    """A CONNACK. A 3.1.1 broker answers a CONNECT of level 5 in its own format (two
    bytes, return code 1), so a short body is read as 3.1.1 whatever we asked for."""
    if len(body) < 2:
        raise ProtocolError("CONNACK too short")
    present, code = bool(body[0] & 0x01), body[1]
    if protocol != MQTT5 or len(body) == 2:
        return ConnAck(present, code)
    props, _ = read_properties(body, 2)

    num = {k: v for k, v in props.items() if isinstance(v, int)}
    text = {k: v for k, v in props.items() if isinstance(v, str)}
    return ConnAck(present, code, num.get(PROP_SERVER_KEEP_ALIVE),
                   num.get(PROP_RECEIVE_MAXIMUM), num.get(PROP_MAXIMUM_PACKET_SIZE),
                   text.get(PROP_ASSIGNED_CLIENT_ID), text.get(PROP_REASON_STRING, ""))


def suback_codes(body: bytes, protocol: int = MQTT5) -> tuple[int, list[int]]:
    """(packet id, granted QoS or reason codes) of a SUBACK."""
    packet_id = int.from_bytes(body[:2], "big")
    if protocol != MQTT5:
        return packet_id, list(body[2:])
    props, pos = _read_varint(body, 2)
    return packet_id, list(body[pos + props:])


def disconnect_reason(body: bytes) -> tuple[int, str]:
    """(reason code, reason string) of a DISCONNECT from the broker (MQTT 5 only)."""
    if not body:
        return 0, ""
    reason = ""
    if len(body) > 1:
        try:
            props, _ = read_properties(body, 1)
        except (ProtocolError, IndexError):
            props = {}
        text = props.get(PROP_REASON_STRING)
        reason = text if isinstance(text, str) else ""
    return body[0], reason


def reason_text(code: int, protocol: int = MQTT5) -> str:
    """Text and code, e.g. "not authorized (0x87)"."""
    table = REASONS if protocol == MQTT5 else REASONS_311
    return f"{table.get(code, 'reason code')} ({code:#04x})"
