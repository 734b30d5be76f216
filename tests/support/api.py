"""A real API server (uvicorn on a free port, in a thread) on the session's InfluxDB,
plus helpers to make devices and tokens for it. Loaded from conftest.py."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from bridge.influx.influxql import count_columns, count_points_statement, quote_string
from bridge.mqtt.inspector import InspectorLink
from bridge.registry import Permission, broker_sync
from bridge.registry.sqlite import SQLiteRegistry
from bridge.settings import Settings
from devicedata.httpserver import api_config
from devicedata.procs import free_port
from devicedata.servers import InfluxServer


@dataclass
class ApiServer:
    url: str
    settings: Settings
    registry: SQLiteRegistry
    app: Any
    _server: uvicorn.Server
    _thread: threading.Thread

    def device(self, permission: Permission = "full", name: str = "") -> tuple[str, str]:
        """A fresh device and a token for it: (device_id, token)."""
        device = self.registry.create_device(name or f"test-{uuid.uuid4().hex[:8]}")
        return device.id, self.registry.create_token(device.id, permission).token

    def mqtt_device(self, permission: Permission = "full") -> tuple[str, str]:
        """Like ``device``, and the broker knows it (credentials synced and reloaded)."""
        device_id, token = self.device(permission)
        self.sync_broker()
        return device_id, token

    def sync_broker(self) -> None:
        broker_sync.sync(self.settings, self.registry)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    @property
    def state(self) -> Any:
        return self.app.state.devicedata

    # The API itself reaches storage only through its DataService; tests look deeper.
    @property
    def store(self) -> Any:
        return self.state.service.store

    @property
    def batcher(self) -> Any:
        return self.state.service.batcher

    @property
    def sink(self) -> Any:
        return self.state.service.batcher.sink

    def statements_during(self, read: Callable[[], Any]) -> tuple[Any, int]:
        """``read()``'s result and how many InfluxQL statements this API sent meanwhile."""
        before = self.store.statements_run
        result = read()
        return result, self.store.statements_run - before

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def stored_points(influx: InfluxServer, api: ApiServer, device_id: str) -> int:
    """The device's points as InfluxDB itself counts them: what is stored, acknowledged
    or not (the API may answer a repeated read from a kept answer)."""
    return count_stored(influx, api.settings.influx_db, device_id)


def count_stored(influx: InfluxServer, db: str, device_id: str) -> int:
    """Every stored point of the device, of either schema version, counted by InfluxDB."""
    result = influx.query(count_points_statement(f'"device" = {quote_string(device_id)}'),
                          db=db)
    series = result["results"][0].get("series", [])
    if not series:
        return 0
    return count_columns(dict(zip(series[0]["columns"], series[0]["values"][0],
                                  strict=True))) or 0


def start_api(settings: Settings, registry: SQLiteRegistry, inspector: bool = False
              ) -> ApiServer:
    """``inspector``: with the live inspector's broker connection (it registers a broker
    user and syncs the broker from ``registry``, so only for the shared registry)."""
    app = create_app(settings, registry=registry,
                     inspector=InspectorLink if inspector else None)
    # The same server configuration as `devicedata api` (timeouts, connection cap).
    config = api_config(app, settings.replace(http_host="127.0.0.1"), log_level="warning",
                        lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.02)
    return ApiServer(f"http://127.0.0.1:{settings.http_port}", settings, registry, app,
                     server, thread)


@pytest.fixture(scope="session")
def api(stack_settings: Settings) -> Iterator[ApiServer]:
    """The API on the session's stack: same registry and database as the bridge."""
    settings = stack_settings.replace(token_cache_seconds=0.5)
    registry = SQLiteRegistry(Path(settings.registry_location.removeprefix("sqlite:///")))
    server = start_api(settings, registry, inspector=True)
    yield server
    server.stop()
    registry.close()


@pytest.fixture
def device(api: ApiServer) -> tuple[str, str]:
    return api.device("full")


@pytest.fixture
def client(api: ApiServer, device: tuple[str, str]) -> Iterator[httpx.Client]:
    with api.client(device[1]) as c:
        yield c


MakeApi = Callable[..., ApiServer]


@pytest.fixture
def make_api(stack_settings: Settings, tmp_path: Path) -> Iterator[MakeApi]:
    """Start an extra API on the session's stack with changed settings (limits, another
    InfluxDB URL...), its own registry and its own spool."""
    started: list[ApiServer] = []

    def make(**changes: Any) -> ApiServer:
        settings = stack_settings.replace(http_port=free_port(), token_cache_seconds=0.5,
                                          **changes)
        server = start_api(settings, SQLiteRegistry(tmp_path / f"reg-{len(started)}.sqlite3"))
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
        server.registry.close()


@pytest.fixture
def admin(api: ApiServer) -> Iterator[httpx.Client]:
    """An HTTP client for /admin/... that sends the admin token."""
    with httpx.Client(base_url=api.url, timeout=30,
                      headers={"admin-token": api.state.admin_token}) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The ``result`` of a successful answer (asserting the status and envelope)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] is True
    return body["result"]


def failed(response: httpx.Response, status: int) -> str:
    """The ``message`` of a failed answer (asserting the status and envelope)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] is False
    message: str = body["message"]
    return message


def new_device(admin: httpx.Client, name: str = "") -> dict[str, Any]:
    """A device created through the admin API: its id, name and first token."""
    created: dict[str, Any] = ok(admin.post("/admin/devices",
                                            json={"name": name or f"dev-{time.time_ns()}"}))
    return created
