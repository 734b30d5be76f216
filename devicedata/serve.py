"""``devicedata api`` (and, later, ``devicedata bridge``): long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bridge.settings import Settings
from bridge.store import InfluxStore

BRIDGE_AVAILABLE = False
SettingsLoader = Callable[[], Settings]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )


def add_commands(sub: Any, load: SettingsLoader) -> None:
    api = sub.add_parser("api", help="run the HTTP API (TagoIO-compatible /data)")
    api.add_argument("--host", help="listen address (DEVICEDATA_HTTP_HOST)")
    api.add_argument("--port", type=int, help="listen port (DEVICEDATA_HTTP_PORT)")
    api.set_defaults(func=lambda args: run_api(load(), args))


def run_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    settings = settings.replace(
        http_host=args.host or settings.http_host, http_port=args.port or settings.http_port)
    configure_logging(settings)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port,
                log_level=settings.log_level.lower(), access_log=False,
                timeout_graceful_shutdown=10)
    return 0


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
