"""What the bridge sends on one connection: PUBACKs gathered per turn of the event loop into
one socket write, and its own PUBLISHes kept within what the broker's CONNACK allowed
(Maximum Packet Size, Receive Maximum: ``bridge.mqtt.session``)."""

from __future__ import annotations

import asyncio
import logging

from bridge.mqtt import wire
from bridge.mqtt.session import Outbox, Session

log = logging.getLogger("devicedata.mqtt")


class Outbound:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._next_id = 0
        self.outbox = Outbox()
        self.too_large_dropped = 0  # our packets over the broker's Maximum Packet Size

    def attach(self, transport: asyncio.Transport | None) -> None:
        """A new connection (or none): nothing of the previous one is sent on it."""
        self._transport = transport
        self._out.clear()

    def agreed(self, session: Session) -> None:
        self.outbox.reset(session.send_quota)

    def packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def send(self, packet: bytes) -> None:
        self._out.append(packet)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._transport is not None:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def publish(self, session: Session, topic: str, payload: bytes, qos: int,
                retain: bool = False) -> None:
        """A packet over the broker's Maximum Packet Size is dropped (an error report: the
        device is told nothing rather than the broker being sent what it must refuse);
        QoS>0 ones beyond its Receive Maximum wait for a PUBACK of ours."""
        packet_id = self.packet_id() if qos else 0
        packet: bytes | None = wire.publish(topic, payload, qos, packet_id, session.protocol,
                                            retain)
        assert packet is not None
        if not session.fits(packet):
            self.too_large_dropped += 1
            log.warning("event=mqtt_publish_dropped topic=%s bytes=%d reason=over the "
                        "broker's maximum packet size of %d", topic, len(packet),
                        session.maximum_packet_size)
            return
        if qos:
            packet = self.outbox.offer(packet_id, packet)
        if packet is not None:
            self.send(packet)

    def acked(self, body: bytes) -> None:
        """A PUBACK from the broker for one of ours: the next waiting one may go."""
        following = self.outbox.acked(int.from_bytes(body[:2], "big"))
        if following is not None:
            self.send(following)
