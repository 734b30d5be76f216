"""MQTT messages in, data points out: the bridge's per-message logic.

A message on one of a device's data topics (``bridge.model.topics``: ``devices/{id}/data``,
``data/{variable}``, ``kv``, ``senml``, ``senml/cbor``) is checked (size, known device),
converted from its topic's payload format and validated by ``DataService.accept``, the
same path as HTTP, encoded, and queued on the batching writer. Its QoS 1 PUBACK goes out
only once the writer reports the points stored. A message that can never be stored
(bad JSON, invalid point, unknown device, rejected by InfluxDB) is acknowledged, counted,
logged at most once a minute per device, and answered on ``devices/{id}/errors``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.errors import (
    DeviceDataError,
    FieldError,
    PayloadTooLarge,
    StoreRejected,
    ValidationError,
)
from bridge.inspector.tap import Tap
from bridge.limits import Gate
from bridge.metrics import Metrics
from bridge.model import topics
from bridge.model.formats import PayloadFormat
from bridge.model.timeparse import now_ns
from bridge.mqtt.devices import KnownDevices
from bridge.mqtt.reports import Reports
from bridge.service import Accepted, DataService
from bridge.write.batcher import Batcher

log = logging.getLogger("devicedata.bridge")

MAX_WAITING = 10_000  # messages held while their unknown device ids are looked up
RETRY_MAX = 10.0


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
    fmt: PayloadFormat | None = None
    accepted: Accepted | None = None
    attempts: int = 0


class Connection(Protocol):
    """What ingest needs from the MQTT connection (``bridge.mqtt.MqttConnection``)."""

    generation: int

    def ack(self, mid: int, qos: int, generation: int) -> None: ...
    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    @property
    def paused(self) -> bool: ...


class Ingest:
    def __init__(self, service: DataService, batcher: Batcher, devices: KnownDevices,
                 *, max_payload: int, high_water: int, metrics: Metrics | None = None,
                 points_per_second: float = 0, points_burst: float = 0) -> None:
        """``points_per_second`` > 0 limits what each device may write (with bursts of
        ``points_burst``); a message over its device's limit is refused with a report."""
        self.service = service
        self.batcher = batcher
        self.devices = devices
        self.max_payload = max_payload
        self.high_water = high_water
        self.stats = BridgeStats()
        self.metrics = metrics or Metrics()
        self._by_qos = [self.metrics.mqtt_messages.labels(str(q)) for q in range(3)]
        self._counted = [0, 0, 0]  # per QoS, not yet added to the Prometheus counters
        self.metrics.before_scrape(self._flush_counts)
        self.inflight = 0
        # Messages of ids being looked up in the registry, in arrival order per id.
        self._waiting: dict[str, list[tuple[_Pending, bytes]]] = {}
        self._waiting_count = 0
        self._lookups: set[asyncio.Task[None]] = set()
        self.conn: Connection | None = None
        self.reports = Reports(self._publish_report)
        self.rate = points_per_second
        self.budget = (Gate(1.0 / points_per_second, max(points_burst, points_per_second))
                       if points_per_second > 0 else None)
        self.tap: Tap | None = None  # the live inspector (bridge/inspector), when wired
        self._tracebacks = Gate(60.0)  # one a minute per device: a bug, not a flood of logs

    def on_message(self, message: Any) -> None:
        """Called by the connection for every PUBLISH, in the event loop."""
        conn = self.conn
        assert conn is not None
        self.stats.messages += 1
        self._counted[message.qos] += 1
        topic: str = message.topic
        pending = _Pending(message.mid, message.qos, conn.generation, "", topic)
        device_id, fmt = topics.parse(topic)
        if fmt is None:
            self._reject(pending, "bad_topic", "not a device data topic", [])
            return
        pending.device_id = device_id
        pending.fmt = fmt
        payload: bytes = message.payload
        if len(payload) > self.max_payload:
            self._reject(pending, "too_large", f"payload of {len(payload)} bytes is over the "
                         f"limit of {self.max_payload}", [], payload)
            return
        if not payload:
            # Clearing a retained message publishes an empty payload: nothing to store,
            # and nothing to complain about.
            self._ack(pending)
            return
        known = self.devices.known(device_id)
        if known is None or (known and not self.service.ready_for(device_id)):
            self._wait_for_lookup(pending, payload)
        elif known:
            self._accept(pending, payload)
        else:
            self._reject(pending, "unknown_device", "unknown device", [])

    def _accept(self, pending: _Pending, payload: bytes) -> None:
        budget = self.budget
        if budget is not None and budget.wait(pending.device_id) > 0:
            # Out of points: refused unparsed, so past its burst a flood costs a look-up each.
            self._rate_limited(pending, 1)
            return
        try:
            accepted = self.service.accept(pending.device_id, payload, source="mqtt",
                                           received_ns=now_ns(), fmt=pending.fmt)
        except MemoryError:
            raise  # transient: unacknowledged, the broker hands the message back
        except Exception as exc:
            if budget is not None:
                budget.passes(pending.device_id)  # a refused message costs a point too
            if isinstance(exc, ValidationError):
                self._reject(pending, "invalid", exc.message, exc.errors, payload)
            elif isinstance(exc, PayloadTooLarge):
                self._reject(pending, "too_large", str(exc), [], payload)
            else:
                # A bug costs this message only: raised into the connection it would close
                # it, and the broker would hand the same message back again and again.
                if self._tracebacks.passes(pending.device_id) is not None:
                    log.exception("event=message_failed device=%s", pending.device_id)
                self._reject(pending, "error", "The message could not be handled (a server "
                             "error, logged)", [], payload)
            return
        tap = self.tap
        if tap is not None and tap.watching(pending.device_id):
            tap.accepted(pending.device_id, "mqtt", pending.topic, payload, accepted.count)
        if not accepted.count:
            self._ack(pending)
            return
        if budget is not None and budget.passes(pending.device_id, accepted.count) is None:
            # Refused rather than held: held messages would fill the receive window the
            # other devices' messages need.
            self._rate_limited(pending, accepted.count)
            return
        pending.accepted = accepted
        self.stats.points_accepted += accepted.count
        self.inflight += 1
        self._write(pending)

    def _rate_limited(self, pending: _Pending, points: int) -> None:
        assert self.budget is not None  # refused, telling the device when to try again
        wait = self.budget.wait(pending.device_id, points)
        self._reject(pending, "rate_limited", f"Too many points: this device may write "
                     f"{self.rate:g} points per second; retry in {max(1, round(wait))} s", [])

    def _wait_for_lookup(self, pending: _Pending, payload: bytes) -> None:
        """An id the bridge has not seen (or whose variable names it has not read yet):
        ask the registry (and InfluxDB) off the event loop while the other devices'
        messages flow on. Later messages of the same id wait behind it."""
        if self._waiting_count >= MAX_WAITING:
            self._reject(pending, "unknown_device", "unknown device (too many look-ups queued)", [])
            return
        waiting = self._waiting.get(pending.device_id)
        self._waiting_count += 1
        self.inflight += 1
        if waiting is not None:
            waiting.append((pending, payload))
            return
        self._waiting[pending.device_id] = [(pending, payload)]
        task = asyncio.create_task(self._look_up(pending.device_id),
                                   name=f"device-lookup-{pending.device_id[:32]}")
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _look_up(self, device_id: str) -> None:
        known = self.devices.known(device_id)
        if known is None:
            known = await self.devices.lookup(device_id)
        if known:  # what accept checks (its variable names), read before its messages
            await self.service.prepare(device_id)
        waiting = self._waiting.pop(device_id, [])
        self._waiting_count -= len(waiting)
        for pending, payload in waiting:
            self.inflight -= 1
            if pending.generation != (self.conn.generation if self.conn else -1):
                continue  # the broker resends it on the new connection
            if known:
                self._accept(pending, payload)
            else:
                self._reject(pending, "unknown_device", "unknown device", [])
        self._resume_if_drained()

    def _flush_counts(self) -> None:
        counted, self._counted = self._counted, [0, 0, 0]
        for qos, n in enumerate(counted):
            if n:
                self._by_qos[qos].inc(n)

    def _write(self, pending: _Pending) -> None:
        assert pending.accepted is not None
        self.service.write_later(pending.accepted, lambda exc: self._written(pending, exc))
        conn = self.conn
        if conn is not None and not conn.paused and self.batcher.pending_points > self.high_water:
            # The store is slower than the inflow: stop reading rather than grow. The
            # broker keeps the rest (QoS 1) in the bridge's session meanwhile.
            conn.pause_reading()
            self.stats.pauses += 1
            log.info("event=mqtt_paused pending_points=%d", self.batcher.pending_points)

    def _written(self, pending: _Pending, exc: BaseException | None) -> None:
        if exc is None:
            assert pending.accepted is not None
            self.stats.points_written += pending.accepted.count
            self._ack(pending)
            self._done()
        elif isinstance(exc, StoreRejected):
            # InfluxDB's own text stays in the store's log line; the device hears ours.
            self._reject(pending, "store_rejected", exc.public, [])
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
        self._resume_if_drained()

    def _resume_if_drained(self) -> None:
        conn = self.conn
        if conn is not None and conn.paused and self.batcher.pending_points <= self.high_water // 2:
            conn.resume_reading()
            log.info("event=mqtt_resumed pending_points=%d", self.batcher.pending_points)

    def _publish_report(self, topic: str, payload: bytes) -> None:
        if self.conn is not None:
            self.conn.publish(topic, payload, qos=0)

    def _ack(self, pending: _Pending) -> None:
        assert self.conn is not None
        self.conn.ack(pending.mid, pending.qos, pending.generation)
        self.stats.messages_acked += 1

    def _reject(self, pending: _Pending, reason: str, message: str,
                errors: list[FieldError], payload: bytes | None = None) -> None:
        """Never fatal: count, tell the device and the log (both rate-limited) and the
        inspector, acknowledge."""
        self.stats.rejected[reason] += 1
        tap = self.tap
        if tap is not None and tap.watching(pending.device_id):
            tap.rejected(pending.device_id, "mqtt", pending.topic, payload, reason, message,
                         errors)
        self.service.rejected("mqtt", reason)
        self.reports.refused(pending.device_id, pending.topic, reason, message, errors)
        self._ack(pending)
