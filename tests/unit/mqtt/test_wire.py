"""The MQTT 5 codec the bridge uses (pure logic; the real broker is in test_bridge)."""

from __future__ import annotations

import pytest

from bridge.mqtt import wire


def publish_from_broker(topic: str, payload: bytes, qos: int, mid: int,
                        props: bytes = b"") -> bytes:
    body = (len(topic.encode()).to_bytes(2, "big") + topic.encode()
            + (mid.to_bytes(2, "big") if qos else b"") + bytes((len(props),)) + props + payload)
    return wire._packet(wire.PUBLISH | (qos << 1), body)


def test_connect_packet_layout() -> None:
    packet = wire.connect("cid", "user", "pw", keepalive=30, session_expiry=3600,
                          receive_maximum=1000)
    assert packet[0] == wire.CONNECT
    body = packet[2:]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # user name and password, no clean start
    assert body[8:10] == (30).to_bytes(2, "big")
    assert body[10] == 8  # properties: session expiry (5 bytes) + receive maximum (3)
    assert body[11:16] == b"\x11" + (3600).to_bytes(4, "big")
    assert body[16:19] == b"\x21" + (1000).to_bytes(2, "big")
    assert body[19:] == b"\x00\x03cid\x00\x04user\x00\x02pw"


@pytest.mark.parametrize("n, encoded", [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"),
                                        (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
                                        (2097152, b"\x80\x80\x80\x01")])
def test_remaining_length(n: int, encoded: bytes) -> None:
    assert wire._varint(n) == encoded


def test_reader_splits_a_stream_read_byte_by_byte() -> None:
    big = b"x" * 200_000  # a three-byte remaining length
    stream = (publish_from_broker("devices/a/data", b'{"v":1}', 1, 7)
              + b"\xd0\x00"
              + publish_from_broker("devices/b/data", big, 0, 0, props=b"\x01\x01")
              + publish_from_broker("devices/ü/data", b"", 1, 65535))
    reader = wire.Reader()
    out: list[wire.Message | wire.Packet] = []
    for i in range(len(stream)):
        out.extend(reader.feed(stream[i:i + 1]))
    assert reader.feed(b"") == []  # nothing left half-read
    first, ping, second, third = out
    assert first == wire.Message("devices/a/data", b'{"v":1}', 1, 7)
    assert isinstance(ping, wire.Packet) and ping.kind == wire.PINGRESP
    assert isinstance(second, wire.Message)
    assert (second.topic, second.payload, second.qos) == ("devices/b/data", big, 0)
    assert third == wire.Message("devices/ü/data", b"", 1, 65535)


def test_reader_in_one_read() -> None:
    stream = b"".join(publish_from_broker("t", b"%d" % i, 1, i + 1) for i in range(1000))
    messages = wire.Reader().feed(stream)
    assert [m.mid for m in messages if isinstance(m, wire.Message)] == list(range(1, 1001))


def test_control_packets() -> None:
    assert wire.connack(b"\x01\x00\x00") == (True, 0)
    assert wire.connack(b"\x00\x86") == (False, 0x86)
    assert wire.reason_text(0x86) == "bad user name or password"
    assert wire.suback_codes(b"\x00\x05\x00\x01\x87") == (5, [1, 0x87])
    assert wire.puback(258) == b"\x40\x02\x01\x02"
    assert wire.subscribe(1, "devices/+/data") == (
        b"\x82\x14\x00\x01\x00\x00\x0edevices/+/data\x11")  # QoS 1, retain handling 1
    assert wire.publish("e", b"{}", 1, 9) == b"\x32\x08\x00\x01e\x00\x09\x00{}"
    with pytest.raises(wire.ProtocolError):
        wire.Reader().feed(b"\x30\xff\xff\xff\xff\x01")
