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

from bridge.limits import Gate
from bridge.metrics import Metrics
from bridge.pipeline import open_pipeline
from bridge.registry import Registry, open_registry
from bridge.registry.token_cache import NetworkCache, TokenCache
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
    networks: NetworkCache
    # One log line a minute per unknown DevEUI, however often its uplinks come, and at
    # most ten a minute for all of them (a network token could make up any number).
    unknown_euis: Gate = field(default_factory=lambda: Gate(every=60.0))
    unknown_eui_lines: Gate = field(default_factory=lambda: Gate(every=6.0, burst=10))
    admin_token: str = ""  # set at start-up by api.admin; empty refuses every admin call

    @staticmethod
    def of(request: Request) -> AppState:
        state: AppState = request.app.state.devicedata
        return state

    async def registry_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette, settings: Settings,
                   registry: Registry | None = None) -> AsyncIterator[None]:
    own_registry = registry is None
    reg = registry if registry is not None else open_registry(settings.registry_location)
    metrics = Metrics()
    try:
        async with open_pipeline(settings, f"api-{settings.http_port}", metrics, reg,
                                 serves_reads=True) as pipe:
            app.state.devicedata = AppState(
                settings=settings, registry=reg,
                tokens=TokenCache(reg, settings.token_cache_seconds),
                service=pipe.service, metrics=metrics,
                networks=NetworkCache(reg, settings.token_cache_seconds),
            )
            yield
    finally:
        if own_registry:
            reg.close()

