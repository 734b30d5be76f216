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
    assert wire.connack(b"\x01\x00\x00") == wire.ConnAck(True, 0)
    assert wire.connack(b"\x00\x86") == wire.ConnAck(False, 0x86)
    assert wire.reason_text(0x86) == "bad user name or password (0x86)"
    assert wire.reason_text(5, wire.MQTT311) == "not authorized (0x05)"
    assert wire.suback_codes(b"\x00\x05\x00\x01\x87") == (5, [1, 0x87])
    assert wire.puback(258) == b"\x40\x02\x01\x02"
    assert wire.subscribe(1, "devices/+/data") == (
        b"\x82\x14\x00\x01\x00\x00\x0edevices/+/data\x11")  # QoS 1, retain handling 1
    assert wire.publish("e", b"{}", 1, 9) == b"\x32\x08\x00\x01e\x00\x09\x00{}"
    with pytest.raises(wire.ProtocolError):
        wire.Reader().feed(b"\x30\xff\xff\xff\xff\x01")


def test_connack_properties() -> None:
    props = (b"\x13\x00\x05"  # server keep alive 5
             + b"\x21\x00\x02"  # receive maximum 2
             + b"\x27\x00\x00\x01\x00"  # maximum packet size 256
             + b"\x12\x00\x03abc"  # assigned client identifier
             + b"\x26\x00\x01k\x00\x01v"  # a user property: skipped
             + b"\x1f\x00\x02hi")  # reason string
    ack = wire.connack(b"\x01\x00" + bytes((len(props),)) + props)
    assert ack == wire.ConnAck(True, 0, keepalive=5, receive_maximum=2,
                               maximum_packet_size=256, assigned_client_id="abc", reason="hi")
    with pytest.raises(wire.ProtocolError):
        wire.connack(b"\x00\x00\x02\x7f\x00")  # an unknown property
    with pytest.raises(wire.ProtocolError):
        wire.connack(b"\x00\x00\x05\x13\x00")  # a block longer than the packet


def test_a_311_broker_answering_a_level_5_connect_is_read_as_311() -> None:
    assert wire.connack(b"\x00\x01") == wire.ConnAck(False, 1)


def test_mqtt_311_packets() -> None:
    packet = wire.connect("cid", "u", "p", keepalive=30, session_expiry=3600,
                          receive_maximum=1000, protocol=wire.MQTT311)
    assert packet == b"\x10\x15\x00\x04MQTT\x04\xc0\x00\x1e\x00\x03cid\x00\x01u\x00\x01p"
    assert wire.subscribe(1, "a/+", qos=1, protocol=wire.MQTT311) == (
        b"\x82\x08\x00\x01\x00\x03a/+\x01")  # no properties, no retain handling bits
    assert wire.publish("e", b"{}", 1, 9, wire.MQTT311) == b"\x32\x07\x00\x01e\x00\x09{}"
    assert wire.suback_codes(b"\x00\x05\x01\x80", wire.MQTT311) == (5, [1, 0x80])
    body = b"\x00\x01t" + b"\x00\x07" + b"payload"  # no property length byte in 3.1.1
    reader = wire.Reader(properties=False)
    assert reader.feed(wire._packet(wire.PUBLISH | 0x02 | 0x01, body)) == [
        wire.Message("t", b"payload", 1, 7, retain=True)]


def test_connect_announces_our_maximum_packet_size() -> None:
    packet = wire.connect("c", "u", "p", keepalive=30, session_expiry=0,
                          receive_maximum=10, maximum_packet_size=4096)
    assert b"\x27" + (4096).to_bytes(4, "big") in packet


def test_a_packet_over_our_maximum_is_refused_from_its_header() -> None:
    reader = wire.Reader(maximum=100)
    header = b"\x30" + wire._varint(10_000)  # only the fixed header has arrived
    with pytest.raises(wire.PacketTooLarge):
        reader.feed(header)
    small = publish_from_broker("t", b"x" * 50, 0, 0)
    assert len(wire.Reader(maximum=100).feed(small)) == 1


def test_disconnect_with_reason_and_reason_string() -> None:
    assert wire.disconnect_reason(b"") == (0, "")
    assert wire.disconnect_reason(b"\x8b\x06\x1f\x00\x03bye") == (0x8B, "bye")
    assert wire.disconnect(0x95) == b"\xe0\x01\x95"
