"""What the running app holds: built once in the lifespan from Settings, reached by
handlers through ``AppState.of(request)``. No module-level state anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bridge.activity import LastInput, save_periodically
from bridge.batcher import Batcher
from bridge.inspector.link import InspectorLink
from bridge.metrics import Metrics
from bridge.pipeline import open_pipeline
from bridge.registry import Registry, open_registry
from bridge.service import DataService
from bridge.settings import Settings
from bridge.spooling import SpoolingSink
from bridge.store import InfluxStore
from bridge.tokens import TokenCache

log = logging.getLogger("devicedata.api")
T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    registry: Registry
    tokens: TokenCache
    store: InfluxStore
    batcher: Batcher
    service: DataService
    sink: SpoolingSink
    metrics: Metrics
    last_input: LastInput = field(default_factory=LastInput)
    admin_token: str = ""  # set at start-up by api.admin; empty refuses every admin call
    inspector: InspectorLink | None = None  # None with DEVICEDATA_INSPECTOR=false

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
            state = AppState(
                settings=settings, registry=reg,
                tokens=TokenCache(reg, settings.token_cache_seconds),
                store=pipe.store, batcher=pipe.batcher, service=pipe.service, sink=pipe.sink,
                metrics=metrics,
            )
            metrics.track_last_seen(state.last_input.snapshot)
            app.state.devicedata = state
            if settings.inspector:
                state.inspector = InspectorLink(settings, f"api-{settings.http_port}")
                await state.inspector.start()
            saver = asyncio.create_task(save_periodically(state.last_input, reg))
            try:
                yield
            finally:
                if state.inspector is not None:
                    await state.inspector.close()
                saver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await saver
                await run_in_threadpool(state.last_input.save, reg)
    finally:
        if own_registry:
            reg.close()

