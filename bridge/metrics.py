"""Prometheus metrics, one registry per process (never the library's global one).

Counters and histograms are updated where things happen; values that already live in
other objects (spool depth, per-device last input, MQTT reconnects) are read at scrape
time by a collector, so the hot path pays nothing for them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Reading = Callable[[], float]


class _Readings(Collector):
    """Gauges and counters whose values are read from live objects at scrape time."""

    def __init__(self) -> None:
        self.gauges: dict[str, tuple[str, Reading]] = {}
        self.counters: dict[str, tuple[str, Reading]] = {}
        self.last_seen: Callable[[], dict[str, int]] | None = None

    def collect(self) -> Iterator[Metric]:
        for name, (doc, read) in self.gauges.items():
            yield GaugeMetricFamily(name, doc, value=read())
        for name, (doc, read) in self.counters.items():
            yield CounterMetricFamily(name, doc, value=read())
        if self.last_seen is not None:
            family = GaugeMetricFamily(
                "devicedata_device_last_seen_timestamp_seconds",
                "When each device last sent data (unix seconds), as seen by this process.",
                labels=["device"])
            for device, at_ns in self.last_seen().items():
                family.add_metric([device], at_ns / 1e9)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.points_accepted = Counter(
            "devicedata_points_accepted", "Points validated and queued for storage.",
            ["path"], registry=r)
        self.points_rejected = Counter(
            "devicedata_points_rejected", "Requests or messages refused, by reason.",
            ["path", "reason"], registry=r)
        self.points_written = Counter(
            "devicedata_points_written", "Points written to InfluxDB or the spool.", registry=r)
        self.batch_points = Histogram(
            "devicedata_batch_points", "Points per write to the store.", registry=r,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000))
        self.write_seconds = Histogram(
            "devicedata_write_seconds", "Time to write one batch (InfluxDB or spool).",
            registry=r, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))
        self.http_requests = Counter(
            "devicedata_http_requests", "HTTP requests by route, method and status.",
            ["route", "method", "status"], registry=r)
        self.http_seconds = Histogram(
            "devicedata_http_request_seconds", "HTTP request duration by route.", ["route"],
            registry=r, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.lorawan_uplinks = Counter(
            "devicedata_lorawan_uplinks", "Network-server webhook calls by network and outcome.",
            ["network", "outcome"], registry=r)
        self.mqtt_messages = Counter(
            "devicedata_mqtt_messages", "MQTT messages received by QoS.", ["qos"], registry=r)
        self._readings = _Readings()
        r.register(self._readings)
        self._before_scrape: list[Callable[[], None]] = []
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, resolved once: ``labels()`` validates and looks up
        its key under a lock on every call, which showed up per request. Label sets here
        are small (paths, reasons, route templates), so the cache stays small too."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.child(self.http_requests, route, method, str(status)).inc()
        self.child(self.http_seconds, route).observe(seconds)

    def gauge(self, name: str, doc: str, read: Reading) -> None:
        self._readings.gauges[name] = (doc, read)

    def counter(self, name: str, doc: str, read: Reading) -> None:
        self._readings.counters[name] = (doc, read)

    def track_last_seen(self, read: Callable[[], dict[str, int]]) -> None:
        self._readings.last_seen = read

    def observe_batch(self, points: int, seconds: float) -> None:
        self.batch_points.observe(points)
        self.write_seconds.observe(seconds)
        self.points_written.inc(points)

    def before_scrape(self, flush: Callable[[], None]) -> None:
        """Run ``flush`` before each scrape: hot paths count in plain ints (a Prometheus
        counter takes a lock per increment) and move their totals over here."""
        self._before_scrape.append(flush)

    def render(self) -> bytes:
        for flush in self._before_scrape:
            flush()
        return generate_latest(self.registry)


Readiness = Callable[[], tuple[bool, str]]


async def serve(metrics: Metrics, host: str, port: int,
                ready: Readiness | None = None) -> asyncio.Server:
    """A minimal HTTP endpoint for processes without a web app (the bridge):
    ``GET /metrics``, ``GET /health`` (the process is alive) and ``GET /ready`` (``ready()``
    holds; 503 with the reason otherwise). Anything else is a 404."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            parts = request.split(b" ", 2)
            path = parts[1].split(b"?")[0] if len(parts) > 1 else b""
            if parts[0] == b"GET" and path == b"/metrics":
                status, body, kind = "200 OK", metrics.render(), CONTENT_TYPE
            elif parts[0] == b"GET" and path == b"/health":
                status, body, kind = "200 OK", b'{"status":true,"result":"ok"}', "application/json"
            elif parts[0] == b"GET" and path == b"/ready":
                ok, reason = ready() if ready is not None else (True, "ok")
                status = "200 OK" if ok else "503 Service Unavailable"
                body = json.dumps({"status": ok, "result" if ok else "message": reason}).encode()
                kind = "application/json"
            else:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
