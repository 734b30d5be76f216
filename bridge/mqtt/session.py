"""What one connection agreed with the broker, and which protocol version to ask for.

A CONNACK may lower what we asked for (MQTT 5, 3.2.2.3): the Server Keep Alive replaces our
keep-alive, the broker's Receive Maximum bounds our unacknowledged QoS>0 PUBLISHes, its
Maximum Packet Size bounds every packet we send, and an Assigned Client Identifier names
the session we must ask for again next time. MQTT 3.1.1 has none of these: our keep-alive
stands and the broker's in-flight limit is its own business.
"""

from __future__ import annotations

import ssl
from collections import deque
from dataclasses import dataclass

from bridge.mqtt import wire

PROTOCOLS = {"5": (wire.MQTT5,), "3.1.1": (wire.MQTT311,), "auto": (wire.MQTT5, wire.MQTT311)}
PROTOCOL_NAMES = {wire.MQTT5: "5", wire.MQTT311: "3.1.1"}
DEFAULT_RECEIVE_MAXIMUM = 65535  # MQTT 5, 3.2.2.3.3: when the broker sends none
MAX_WAITING = 1000  # our QoS>0 publishes held while the broker's window is full


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
    protocol: str = "5"  # "5", "3.1.1" or "auto"
    maximum_packet_size: int = 0  # the largest packet we accept (MQTT 5); 0: no limit
    session_expiry: int = SESSION_EXPIRY  # 0: a clean session that ends with the connection
    retained_always: tuple[str, ...] = ()  # retained sent on every connect (inspector leases)
    tls: ssl.SSLContext | None = None  # bridge.mqtt.tls.client_context
    server_name: str | None = None  # checked against the broker's certificate


@dataclass(frozen=True, slots=True)
class Session:
    protocol: int
    session_present: bool
    keepalive: int  # seconds; 0: no keep-alive at all
    send_quota: int  # our unacknowledged QoS>0 PUBLISHes at most
    maximum_packet_size: int  # 0: no limit given
    client_id: str

    @classmethod
    def agreed(cls, ack: wire.ConnAck, protocol: int, keepalive: int, client_id: str) -> Session:
        return cls(protocol=protocol, session_present=ack.session_present,
                   keepalive=keepalive if ack.keepalive is None else ack.keepalive,
                   send_quota=ack.receive_maximum or DEFAULT_RECEIVE_MAXIMUM,
                   maximum_packet_size=ack.maximum_packet_size or 0,
                   client_id=ack.assigned_client_id or client_id)

    def ping_every(self) -> float:
        """Seconds between PINGREQs: half the keep-alive, so one is always in time."""
        return self.keepalive / 2 if self.keepalive else 0.0

    def stored_before(self, message: wire.Message) -> bool:
        """A retained copy of a message this session already delivered (MQTT 3.1.1 only).

        3.1.1 has no Retain Handling: every SUBSCRIBE, ours on each reconnect included,
        makes the broker send the retained messages again, flagged retain. A message
        published while our session existed reached us as a normal delivery (retain flag
        clear), so on a resumed session (session present) a retained copy is one we have
        already stored. On a new session it may be news to us: it is stored."""
        return (message.retain and self.session_present
                and self.protocol == wire.MQTT311)

    def fits(self, packet: bytes) -> bool:
        return not self.maximum_packet_size or len(packet) <= self.maximum_packet_size


class ProtocolChoice:
    """``DEVICEDATA_MQTT_PROTOCOL``: "5", "3.1.1", or "auto": 5 first; 3.1.1 when the broker
    answers "unsupported protocol version" or, as long as 5 never worked with it, closes
    the connection without any CONNACK (RabbitMQ 3.10 does that to a level 5 CONNECT)."""

    def __init__(self, setting: str) -> None:
        if setting not in PROTOCOLS:
            raise ValueError(f"MQTT protocol {setting!r}: expected one of {', '.join(PROTOCOLS)}")
        self._choices = PROTOCOLS[setting]
        self._at = 0
        self._worked = False

    @property
    def current(self) -> int:
        return self._choices[self._at]

    def worked(self) -> None:
        """A CONNACK accepted this version: a later silent close is no reason to change."""
        self._worked = True

    def fall_back(self, code: int | None) -> bool:
        """After a refused CONNECT (``code``), or none at all (None): True when another
        version is worth trying at once."""
        unsupported = code in (wire.UNSUPPORTED_VERSION, 1) or (
            code is None and not self._worked)
        if unsupported and self._at + 1 < len(self._choices):
            self._at += 1
            return True
        return False


def refusal(code: int, protocol: int) -> str:
    """The reason of a refused CONNECT. A 3.1.1 broker answers a level 5 CONNECT with its
    own return codes (all below 0x80), so those are read as 3.1.1 codes."""
    return wire.reason_text(code, wire.MQTT311 if code < 0x80 else protocol)


class Outbox:
    """Our QoS>0 PUBLISHes against the broker's Receive Maximum: at most ``quota`` wait for
    their PUBACK; later ones wait here (at most ``MAX_WAITING``, then they are dropped:
    the bridge publishes only fire-and-forget reports). Emptied on every new connection."""

    def __init__(self) -> None:
        self.quota = DEFAULT_RECEIVE_MAXIMUM
        self.inflight: set[int] = set()
        self.waiting: deque[tuple[int, bytes]] = deque()
        self.dropped = 0

    def reset(self, quota: int) -> None:
        self.quota = quota
        self.inflight.clear()
        self.waiting.clear()

    def offer(self, packet_id: int, packet: bytes) -> bytes | None:
        """The packet to send now, or None (it waits, or was dropped)."""
        if len(self.inflight) < self.quota:
            self.inflight.add(packet_id)
            return packet
        if len(self.waiting) >= MAX_WAITING:
            self.dropped += 1
        else:
            self.waiting.append((packet_id, packet))
        return None

    def acked(self, packet_id: int) -> bytes | None:
        """A PUBACK for one of ours: the next waiting packet, if any may go now."""
        if packet_id not in self.inflight:
            return None
        self.inflight.discard(packet_id)
        if self.waiting:
            next_id, packet = self.waiting.popleft()
            self.inflight.add(next_id)
            return packet
        return None
