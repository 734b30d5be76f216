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
from bridge.registry import Registry, open_registry
from bridge.service import DataService
from bridge.settings import Settings
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
    last_input: LastInput = field(default_factory=LastInput)

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
    store = InfluxStore(settings)
    try:
        await store.start()
    except Exception as exc:  # InfluxDB may come up later; /ready says so meanwhile
        log.warning("event=store_not_ready reason=%s", exc)
    batcher = Batcher(store, max_points=settings.batch_max_points,
                      linger=settings.batch_linger_ms / 1000)
    await batcher.start()
    state = AppState(
        settings=settings, registry=reg,
        tokens=TokenCache(reg, settings.token_cache_seconds),
        store=store, batcher=batcher,
        service=DataService(store, batcher, max_points=settings.max_points),
    )
    app.state.devicedata = state
    saver = asyncio.create_task(save_periodically(state.last_input, reg))
    try:
        yield
    finally:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
        await batcher.close()
        await run_in_threadpool(state.last_input.save, reg)
        await store.close()
        if own_registry:
            reg.close()

