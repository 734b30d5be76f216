"""Where a process's data path is assembled, the same way in the API and the bridge:
store -> spooling sink -> batcher -> service, with the read cache and the last-input
bookkeeping. ``open_pipeline`` starts it; closing drains the batcher, then stops the
drainer (leaving what is still spooled on disk for the next start), saves last input,
then closes the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bridge.influx.store import InfluxStore
from bridge.metrics import Metrics
from bridge.readcache.answers import AnswerCache
from bridge.readcache.current import CurrentValues
from bridge.readcache.variables import DeviceVariables
from bridge.readcache.versions import DataVersions
from bridge.registry import Registry
from bridge.registry.activity import LastInput, save_periodically
from bridge.service import DataService
from bridge.settings import Settings
from bridge.write.batcher import Batcher
from bridge.write.sink import SpoolingSink
from bridge.write.spool import Spool

log = logging.getLogger("devicedata.pipeline")


@dataclass
class Pipeline:
    store: InfluxStore
    sink: SpoolingSink
    batcher: Batcher
    service: DataService


@contextlib.asynccontextmanager
async def open_pipeline(settings: Settings, process: str, metrics: Metrics | None = None,
                        registry: Registry | None = None,
                        serves_reads: bool = False) -> AsyncIterator[Pipeline]:
    """``process`` names this process's own spool directory (``api-8888``...). With a
    ``registry``, every write bumps the data versions of the devices readers watch
    (``bridge/readcache/versions.py``), and a process that ``serves_reads`` may answer repeated
    reads from its AnswerCache (``DEVICEDATA_READ_CACHE_*``)."""
    versions = answers = current = None
    if registry is not None:
        if serves_reads and settings.read_cache_seconds > 0:
            answers = AnswerCache(max_age=settings.read_cache_seconds,
                                  max_points=settings.read_cache_points)
        versions = DataVersions(registry)
        # Every write records its current values and bumps watched data versions, in one
        # registry transaction (bridge/readcache/current.py).
        current = CurrentValues(registry)
    store = InfluxStore(settings, on_change=current.record if current else None)
    try:
        await store.start()
    except Exception as exc:  # InfluxDB may come up later; the spool covers the meantime
        log.warning("event=store_not_ready reason=%s", exc)
    sink = SpoolingSink(store, Spool(settings.spool_path(process),
                                     max_bytes=settings.spool_max_bytes))
    try:
        await sink.start()
    except BaseException:
        await store.close()
        raise
    batcher = Batcher(sink, max_points=settings.batch_max_points,
                      linger=settings.batch_linger_ms / 1000,
                      max_pending_points=settings.max_pending_points,
                      on_written=metrics.observe_batch if metrics else None)
    metrics = metrics if metrics is not None else Metrics()
    sink.describe(metrics)
    if current is not None:
        current.describe(metrics)
    if answers is not None:
        answers.describe(metrics)
    last_input = LastInput()
    variables = DeviceVariables(store, settings.max_variables)
    service = DataService(store, batcher, max_points=settings.max_points, versions=versions,
                          answers=answers, metrics=metrics, last_input=last_input,
                          variables=variables, current=current)
    await batcher.start()
    saver = (asyncio.create_task(save_periodically(last_input, registry), name="last-input")
             if registry is not None else None)
    try:
        yield Pipeline(store, sink, batcher, service)
    finally:
        await batcher.close()
        await sink.close()
        if saver is not None and registry is not None:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
            await asyncio.to_thread(last_input.save, registry)
        await store.close()
