"""The bridge process: registry, store, writer, MQTT connection and ingest wired together.

``run`` returns when ``stopping`` is set, after draining: it stops reading, waits for the
messages in hand to be written and acknowledged, then disconnects keeping its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bridge.errors import DeviceDataError
from bridge.inspector.events import WATCH_FILTER
from bridge.inspector.tap import Tap
from bridge.metrics import Metrics, Readiness
from bridge.metrics import serve as serve_metrics
from bridge.model import topics
from bridge.mqtt import tls, wire
from bridge.mqtt.connection import MqttConnection
from bridge.mqtt.devices import KnownDevices
from bridge.mqtt.ingest import Ingest
from bridge.mqtt.session import ConnectionOptions
from bridge.pipeline import Pipeline, open_pipeline
from bridge.registry import Registry, broker_sync, dynsec, open_registry
from bridge.registry.broker_sync import BrokerSync
from bridge.settings import Settings

log = logging.getLogger("devicedata.bridge")
DRAIN_TIMEOUT = 30.0


def max_packet_size(settings: Settings) -> int:
    """The largest packet the bridge accepts (MQTT 5 Maximum Packet Size): room for twice
    the largest payload, so a payload somewhat over the limit still reaches ingest and earns
    the device an error report, while no broker can make the bridge buffer without bound."""
    return 2 * settings.max_body_bytes + 65536


async def run(settings: Settings, stopping: asyncio.Event,
              ready: asyncio.Event | None = None) -> Ingest:
    tls.client_context(settings)  # a TLS file that cannot be used fails the start, here
    registry = open_registry(settings.registry_location)
    metrics = Metrics()
    try:
        async with open_pipeline(settings, f"bridge-{settings.mqtt_client_id}", metrics,
                                 registry) as pipe:
            return await _serve(settings, registry, pipe, metrics, stopping, ready)
    finally:
        registry.close()


async def _serve(settings: Settings, registry: Registry, pipe: Pipeline, metrics: Metrics,
                 stopping: asyncio.Event, ready: asyncio.Event | None) -> Ingest:
    batcher = pipe.batcher
    devices = KnownDevices(registry, settings.token_cache_seconds)
    await asyncio.to_thread(devices.reload)
    ingest = Ingest(pipe.service, batcher, devices,
                    max_payload=settings.max_body_bytes,
                    high_water=max(settings.batch_max_points * 4, 20_000), metrics=metrics,
                    points_per_second=settings.mqtt_points_per_second,
                    points_burst=max(settings.mqtt_points_burst, settings.max_points))
    options = ConnectionOptions(
        host=settings.mqtt_host, port=settings.mqtt_port, client_id=settings.mqtt_client_id,
        username=settings.mqtt_username, password=broker_sync.bridge_password(settings),
        subscriptions=(*topics.data_filters(settings.mqtt_shared_group), WATCH_FILTER),
        retained_always=(WATCH_FILTER,),
        tls=tls.client_context(settings), server_name=tls.server_name(settings),
        protocol=settings.mqtt_protocol, maximum_packet_size=max_packet_size(settings))
    # The live inspector: leases arrive on WATCH_FILTER, events leave as QoS 0.
    tap = ingest.tap = Tap(f"bridge-{settings.mqtt_client_id}")

    def on_message(message: wire.Message) -> None:
        if tap.take(message.topic, message.payload):
            conn.ack(message.mid, message.qos, conn.generation)
        else:
            ingest.on_message(message)

    conn = MqttConnection(options, on_message)
    tap.publish = lambda topic, payload: conn.publish(topic, payload, qos=0)
    ingest.conn = conn
    metrics.counter("devicedata_mqtt_reconnects", "Times the bridge lost the broker.",
                    lambda: float(conn.reconnects))
    metrics.counter("devicedata_mqtt_session_takeovers",
                    "Times the broker pushed the bridge off: DISCONNECT 0x8E (session "
                    "taken over), or its socket closed without a word (Mosquitto 2.0).",
                    lambda: float(conn.takeovers))
    metrics.gauge("devicedata_mqtt_ready",
                  "1 while connected with every subscription granted by the broker.",
                  lambda: float(conn.ready[0]))
    metrics.gauge("devicedata_mqtt_paused", "1 while the bridge has stopped reading.",
                  lambda: float(conn.paused))
    metrics.gauge("devicedata_mqtt_inflight", "Messages read but not yet acknowledged.",
                  lambda: float(ingest.inflight))
    server = await _metrics_server(settings, metrics, lambda: conn.ready)
    broker = BrokerSync(settings)
    # This bridge's own user must be known before it connects: to the broker's files (the
    # sync below), or to the broker hooks of the API (which read the registry).
    await asyncio.to_thread(_register, settings, registry)
    if settings.broker_sync_seconds > 0:
        await _sync_once(broker, registry)
    syncer = asyncio.create_task(_sync_broker(broker, registry), name="broker-sync")
    refresher = asyncio.create_task(devices.refresh_forever(), name="device-list")
    connection = asyncio.create_task(conn.run(stopping), name="mqtt-connection")
    if ready is not None:
        await conn.connected.wait()
        ready.set()
    await stopping.wait()
    log.info("event=bridge_draining inflight=%d", ingest.inflight)
    conn.pause_reading()
    deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
    while ingest.inflight > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    if ingest.inflight:
        log.warning("event=drain_incomplete unacknowledged=%d (the broker will redeliver)",
                    ingest.inflight)
    await conn.disconnect()
    await connection
    for task in (syncer, refresher):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if server is not None:
        server.close()
        await server.wait_closed()
    log.info("event=bridge_stopped messages=%d acked=%d rejected=%d", ingest.stats.messages,
             ingest.stats.messages_acked, sum(ingest.stats.rejected.values()))
    return ingest


def _register(settings: Settings, registry: Registry) -> None:
    try:
        registry.add_service_user(settings.mqtt_username, dynsec.BRIDGE_ROLE)
    except DeviceDataError as exc:
        log.warning("event=service_user_not_registered reason=%s", exc)


async def _sync_once(broker: BrokerSync, registry: Registry) -> None:
    try:
        await asyncio.to_thread(broker.sync, registry)
    except (OSError, DeviceDataError) as exc:
        log.warning("event=broker_sync_failed reason=%s (retrying)", exc)


async def _sync_broker(broker: BrokerSync, registry: Registry) -> None:
    """Keep the broker in step with the registry, so an expiry or a change made by
    another process reaches the broker within a few seconds."""
    if broker.settings.broker_sync_seconds <= 0:
        return
    while True:
        await asyncio.sleep(broker.settings.broker_sync_seconds)
        await _sync_once(broker, registry)


async def _metrics_server(settings: Settings, metrics: Metrics,
                         ready: Readiness) -> asyncio.Server | None:
    if not settings.bridge_metrics_port:
        return None
    try:
        server = await serve_metrics(metrics, settings.bridge_metrics_host,
                                     settings.bridge_metrics_port, ready,
                                     token=settings.metrics_token)
    except OSError as exc:  # a second bridge on this host: it still runs, unobserved
        log.warning("event=metrics_port_unavailable port=%d reason=%s",
                    settings.bridge_metrics_port, exc)
        return None
    log.info("event=metrics_listening port=%d", settings.bridge_metrics_port)
    return server
