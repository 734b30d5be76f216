"""``devicedata api`` and ``devicedata bridge``: the long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterator
from typing import Any

from bridge import logs
from bridge.influx.store import InfluxStore
from bridge.settings import Settings, configured

SettingsLoader = Callable[[], Settings]


def add_commands(sub: Any, load: SettingsLoader) -> None:
    api = sub.add_parser("api", help="run the HTTP API (TagoIO-compatible /data)")
    api.add_argument("--host", help="listen address (DEVICEDATA_HTTP_HOST)")
    api.add_argument("--port", type=int, help="listen port (DEVICEDATA_HTTP_PORT)")
    api.set_defaults(func=lambda args: run_api(load(), args))
    bridge = sub.add_parser("bridge", help="run the MQTT bridge (devices/+/data... -> "
                            "InfluxDB)")
    bridge.add_argument("--shared-group", help="subscribe as $share/NAME/devices/+/... so "
                        "several bridges split the load (DEVICEDATA_MQTT_SHARED_GROUP)")
    bridge.add_argument("--client-id", help="fixed MQTT client id; each bridge of a shared "
                        "group needs its own (DEVICEDATA_MQTT_CLIENT_ID)")
    bridge.set_defaults(func=lambda args: run_bridge(load(), args))


def run_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from bridge.mqtt.inspector import InspectorLink
    from devicedata.httpserver import api_config

    settings = settings.replace(
        http_host=args.host or settings.http_host, http_port=args.port or settings.http_port)
    logs.configure(settings)
    cert, key = configured(settings.http_tls_cert_file), configured(settings.http_tls_key_file)
    if key is not None and cert is None:
        raise ValueError("DEVICEDATA_HTTP_TLS_KEY_FILE is set without "
                         "DEVICEDATA_HTTP_TLS_CERT_FILE")
    # HTTPS by uvicorn itself, for those without a reverse proxy (docs/deployment.md).
    app = create_app(settings, inspector=InspectorLink)
    config = api_config(app, settings, log_level=settings.log_level.lower(), log_config=None,
                        timeout_graceful_shutdown=10, ssl_certfile=cert, ssl_keyfile=key)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises SIGTERM after a graceful shutdown, so the process would
            # die "by signal"; a drained, clean stop should exit 0 like the bridge does.
            yield

    server = Server(config)

    async def _main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await server.serve()

    tune_gc()
    asyncio.run(_main())
    return 0 if server.started else 1


def run_bridge(settings: Settings, args: argparse.Namespace) -> int:
    from bridge.mqtt import runner

    settings = settings.replace(
        mqtt_shared_group=args.shared_group or settings.mqtt_shared_group,
        mqtt_client_id=args.client_id or settings.mqtt_client_id)
    logs.configure(settings)

    async def _main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await runner.run(settings, stopping)

    tune_gc()
    asyncio.run(_main())
    return 0


def tune_gc() -> None:
    """Keep the cyclic garbage collector off the hot path (the bridge and the API).

    Under a QoS 1 flood every in-flight message lives a few milliseconds. With CPython's
    default first threshold (700 allocations) such objects are collected while still
    alive, promoted, and scanned again by the older generations: a quarter of the bridge's
    busy time (py-spy --native: gc_collect_main; docs/benchmarks.md). A larger first
    threshold lets them die young; freezing what start-up made keeps the modules and
    caches out of every full scan."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def delete_device_data(settings: Settings, device_id: str) -> None:
    """Remove every stored point of a device (used when the device is deleted)."""
    from bridge.service import delete_device_points

    async def _run() -> None:
        store = InfluxStore(settings)
        try:
            await delete_device_points(store, device_id)
        finally:
            await store.close()

    asyncio.run(_run())
