"""What the running app holds: built once in the lifespan from Settings, reached by
handlers through ``AppState.of(request)``. No module-level state anywhere."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.fairness import DeviceLimits
from bridge.inspector.link import Link, LinkFactory
from bridge.limits import Gate
from bridge.metrics import Metrics
from bridge.pipeline import open_pipeline
from bridge.registry import Registry, broker_files, open_registry
from bridge.registry.broker_login import BrokerLogin
from bridge.registry.token_cache import NetworkCache, SerialCache, TokenCache
from bridge.service import DataService
from bridge.settings import Settings

log = logging.getLogger("devicedata.api")
T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    registry: Registry
    tokens: TokenCache
    service: DataService
    metrics: Metrics
    limits: DeviceLimits
    networks: NetworkCache
    serials: SerialCache
    # One log line a minute per unknown DevEUI, however often its uplinks come, and at
    # most ten a minute for all of them (a network token could make up any number).
    unknown_euis: Gate = field(default_factory=lambda: Gate(every=60.0))
    unknown_eui_lines: Gate = field(default_factory=lambda: Gate(every=6.0, burst=10))
    admin_token: str = ""  # set at start-up by api.admin; empty refuses every admin call
    broker_login: BrokerLogin | None = None  # the broker hooks' (api.broker_hooks), if on
    inspector: Link | None = None  # the live inspector's broker connection, when there is one

    @staticmethod
    def of(request: Request) -> AppState:
        state: AppState = request.app.state.devicedata
        return state

    def forget_credentials(self) -> None:
        """After a token is revoked or deleted: this process refuses it (and the serial
        it carried) at once, not after the caches' TTL."""
        self.tokens.clear()
        self.serials.clear()

    async def registry_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette, settings: Settings, registry: Registry | None = None,
                   inspector: LinkFactory | None = None) -> AsyncIterator[None]:
    """``inspector`` makes this process's broker connection for the live inspector
    (``bridge.mqtt.inspector.InspectorLink``); without one, or with
    DEVICEDATA_INSPECTOR=false, the live view is off."""
    own_registry = registry is None
    reg = registry if registry is not None else open_registry(settings.registry_location)
    metrics = Metrics()
    try:
        async with open_pipeline(settings, f"api-{settings.http_port}", metrics, reg,
                                 serves_reads=True) as pipe:
            state = app.state.devicedata = AppState(
                settings=settings, registry=reg,
                tokens=TokenCache(reg, settings.token_cache_seconds),
                service=pipe.service, metrics=metrics,
                limits=DeviceLimits.from_settings(settings),
                networks=NetworkCache(reg, settings.token_cache_seconds),
                serials=SerialCache(reg, settings.token_cache_seconds),
                broker_login=_broker_login(settings, reg),
            )
            if settings.inspector and inspector is not None:
                state.inspector = inspector(settings, f"api-{settings.http_port}", reg)
                await state.inspector.start()
            try:
                yield
            finally:
                if state.inspector is not None:
                    await state.inspector.close()
    finally:
        if own_registry:
            reg.close()



def _broker_login(settings: Settings, registry: Registry) -> BrokerLogin | None:
    """Only with ``DEVICEDATA_BROKER_HOOK_SECRET`` set: the broker hooks' log-in checks,
    with the passwords of our own broker users and of the broker admin."""
    if not settings.broker_hook_secret:
        return None
    return BrokerLogin(registry, shared_password=broker_files.bridge_password(settings),
                       admin_username=settings.mqtt_admin_username,
                       admin_password=broker_files.admin_password(settings),
                       ttl=settings.token_cache_seconds)
