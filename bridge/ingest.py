"""MQTT messages in, data points out: the bridge's per-message logic.

A message on ``devices/{id}/data`` is checked (size, known device), validated by the same
function as HTTP, encoded, and queued on the batching writer. Its QoS 1 PUBACK goes out
only once the writer reports the points stored. A message that can never be stored
(bad JSON, invalid point, unknown device, rejected by InfluxDB) is acknowledged, counted,
logged at most once a minute per device, and answered on ``devices/{id}/errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from bridge.activity import LastInput
from bridge.batcher import Batcher
from bridge.errors import (
    DeviceDataError,
    FieldError,
    PayloadTooLarge,
    StoreRejected,
    ValidationError,
)
from bridge.inspector.tap import Tap
from bridge.metrics import Metrics
from bridge.points import decode_json
from bridge.registry import Registry
from bridge.schema import encode_points
from bridge.service import DataService
from bridge.timeparse import format_iso_ms, now_ns

log = logging.getLogger("devicedata.bridge")

DATA_TOPIC = "devices/+/data"
LOG_EVERY = 60.0  # seconds between log lines about one device's rejected messages
RETRY_MAX = 10.0


def device_from_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and parts[2] == "data" and parts[1]:
        return parts[1]
    return None


def error_topic(device_id: str) -> str:
    return f"devices/{device_id}/errors"


@dataclass
class BridgeStats:
    messages: int = 0
    points_accepted: int = 0
    points_written: int = 0
    messages_acked: int = 0
    write_retries: int = 0
    pauses: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Pending:
    mid: int
    qos: int
    generation: int
    device_id: str
    topic: str
    body: bytes
    count: int
    attempts: int = 0


class Connection(Protocol):
    """What ingest needs from the MQTT connection (``bridge.mqtt.MqttConnection``)."""

    generation: int

    def ack(self, mid: int, qos: int, generation: int) -> None: ...
    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    @property
    def paused(self) -> bool: ...


class KnownDevices:
    """Which devices exist, answered from memory: the whole id set is reloaded from the
    registry in a worker thread every ``ttl`` seconds (``refresh_forever``), so the event
    loop never waits on the registry (PostgreSQL may be across a network). An id not in
    the set, such as a device created since the last reload, is looked up directly, at
    most once per ``ttl`` per id."""

    def __init__(self, registry: Registry, ttl: float) -> None:
        self._registry = registry
        self._ttl = ttl
        self._ids: frozenset[str] = frozenset()
        self._unknown: dict[str, float] = {}

    def exists(self, device_id: str) -> bool:
        if device_id in self._ids:
            return True
        now = time.monotonic()
        if self._unknown.get(device_id, 0.0) > now:
            return False
        try:
            self._registry.get_device(device_id)
        except DeviceDataError:
            if len(self._unknown) > 100_000:
                self._unknown.clear()
            self._unknown[device_id] = now + self._ttl
            return False
        self._ids = self._ids | {device_id}
        return True

    def reload(self) -> None:
        ids = frozenset(d.id for d in self._registry.list_devices())
        self._ids = ids  # one assignment: readers see the old set or the new one
        self._unknown.clear()

    async def refresh_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.reload)
            except DeviceDataError as exc:
                log.warning("event=device_list_failed reason=%s", exc)
            await asyncio.sleep(self._ttl)


class Ingest:
    def __init__(self, service: DataService, batcher: Batcher, devices: KnownDevices,
                 *, max_payload: int, high_water: int, metrics: Metrics | None = None) -> None:
        self.service = service
        self.batcher = batcher
        self.devices = devices
        self.max_payload = max_payload
        self.high_water = high_water
        self.stats = BridgeStats()
        self.metrics = metrics or Metrics()
        self._accepted = self.metrics.points_accepted.labels("mqtt")
        self._by_qos = [self.metrics.mqtt_messages.labels(str(q)) for q in range(3)]
        self._counted = [0, 0, 0]  # per QoS, not yet added to the Prometheus counters
        self._accepted_uncounted = 0
        self.metrics.before_scrape(self._flush_counts)
        self.last_input = LastInput()
        self.inflight = 0
        self.conn: Connection | None = None
        self._logged: dict[str, tuple[float, int]] = {}  # device -> (last line, not logged)
        self.tap: Tap | None = None  # the live inspector (bridge/inspector), when wired

    def on_message(self, message: Any) -> None:
        """Called by the connection for every PUBLISH, in the event loop."""
        conn = self.conn
        assert conn is not None
        self.stats.messages += 1
        self._counted[message.qos] += 1
        topic: str = message.topic
        pending = _Pending(message.mid, message.qos, conn.generation, "", topic, b"", 0)
        device_id = device_from_topic(topic)
        if device_id is None:
            self._reject(pending, "bad_topic", "not a devices/{id}/data topic", [])
            return
        pending.device_id = device_id
        payload: bytes = message.payload
        if len(payload) > self.max_payload:
            self._reject(pending, "too_large", f"payload of {len(payload)} bytes is over the "
                         f"limit of {self.max_payload}", [], payload)
            return
        if not self.devices.exists(device_id):
            self._reject(pending, "unknown_device", "unknown device", [])
            return
        received = now_ns()
        try:
            points = self.service.prepare(device_id, decode_json(payload), received)
        except ValidationError as exc:
            self._reject(pending, "invalid", exc.message, exc.errors, payload)
            return
        except PayloadTooLarge as exc:
            self._reject(pending, "too_large", str(exc), [], payload)
            return
        tap = self.tap
        if tap is not None and tap.watching(device_id):
            tap.accepted(device_id, "mqtt", topic, payload, len(points))
        if not points:
            self._ack(pending)
            return
        pending.body = encode_points(points)
        pending.count = len(points)
        self.stats.points_accepted += pending.count
        self._accepted_uncounted += pending.count
        self.last_input.note(device_id, received)
        self.inflight += 1
        self._write(pending)

    def _flush_counts(self) -> None:
        counted, self._counted = self._counted, [0, 0, 0]
        for qos, n in enumerate(counted):
            if n:
                self._by_qos[qos].inc(n)
        accepted, self._accepted_uncounted = self._accepted_uncounted, 0
        if accepted:
            self._accepted.inc(accepted)

    def _write(self, pending: _Pending) -> None:
        self.batcher.enqueue(pending.body, pending.count,
                             lambda exc: self._written(pending, exc), pending.device_id)
        conn = self.conn
        if conn is not None and not conn.paused and self.batcher.pending_points > self.high_water:
            # The store is slower than the inflow: stop reading rather than grow. The
            # broker keeps the rest (QoS 1) in the bridge's session meanwhile.
            conn.pause_reading()
            self.stats.pauses += 1
            log.info("event=mqtt_paused pending_points=%d", self.batcher.pending_points)

    def _written(self, pending: _Pending, exc: BaseException | None) -> None:
        if exc is None:
            self.stats.points_written += pending.count
            self._ack(pending)
            self._done()
        elif isinstance(exc, StoreRejected):
            self._reject(pending, "store_rejected", str(exc), [])
            self._done()
        else:
            # InfluxDB is down or slow: keep the message (it is not acknowledged, so the
            # broker holds it too) and try again; the receive window bounds how many wait.
            pending.attempts += 1
            self.stats.write_retries += 1
            delay = min(0.2 * 2 ** min(pending.attempts, 8), RETRY_MAX)
            if pending.attempts == 1 or pending.attempts % 10 == 0:
                log.warning("event=write_retry device=%s attempt=%d reason=%s",
                            pending.device_id, pending.attempts, exc)
            asyncio.get_running_loop().call_later(delay, self._retry, pending)

    def _retry(self, pending: _Pending) -> None:
        try:
            self._write(pending)
        except DeviceDataError:  # the writer is closing: leave it unacknowledged
            self._done()

    def _done(self) -> None:
        self.inflight -= 1
        conn = self.conn
        if conn is not None and conn.paused and self.batcher.pending_points <= self.high_water // 2:
            conn.resume_reading()
            log.info("event=mqtt_resumed pending_points=%d", self.batcher.pending_points)

    def _ack(self, pending: _Pending) -> None:
        assert self.conn is not None
        self.conn.ack(pending.mid, pending.qos, pending.generation)
        self.stats.messages_acked += 1

    def _reject(self, pending: _Pending, reason: str, message: str,
                errors: list[FieldError], payload: bytes | None = None) -> None:
        """Never fatal: count, tell the device and the inspector, log (rarely), acknowledge."""
        self.stats.rejected[reason] += 1
        tap = self.tap
        if tap is not None and tap.watching(pending.device_id):
            tap.rejected(pending.device_id, "mqtt", pending.topic, payload, reason, message,
                         errors)
        self.metrics.child(self.metrics.points_rejected, "mqtt", reason).inc()
        if pending.device_id:
            body = {"status": False, "message": message,
                    "errors": [e.as_dict() for e in errors], "topic": pending.topic,
                    "time": format_iso_ms(now_ns())}
            if errors:
                body["field_errors"] = ValidationError("", errors).field_errors()
            assert self.conn is not None
            self.conn.publish(error_topic(pending.device_id), orjson.dumps(body), qos=1)
        # At most one line per device per minute, however fast a broken device publishes;
        # the line says how many rejections it stands for. The metrics count every one.
        key = pending.device_id or "-"
        now = time.monotonic()
        last, quiet = self._logged.get(key, (-LOG_EVERY, 0))
        if now - last >= LOG_EVERY:
            self._logged[key] = (now, 0)
            log.warning("event=message_rejected device=%s reason=%s suppressed=%d detail=%s",
                        key, reason, quiet, message[:200].replace("\n", " "))
        else:
            self._logged[key] = (last, quiet + 1)
        self._ack(pending)
