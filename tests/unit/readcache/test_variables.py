"""bridge.readcache.variables with a scripted store: reads, counting, refresh, eviction."""

from __future__ import annotations

import asyncio

import pytest

from bridge.errors import StoreUnavailable, ValidationError
from bridge.influx.schema import Series
from bridge.readcache.variables import RETRY, DeviceVariables


class Store:
    def __init__(self) -> None:
        self.series: dict[str, list[str]] = {}  # device -> series keys
        self.down = False
        self.statements: list[str] = []

    async def query(self, statements: list[str]) -> list[list[Series]]:
        self.statements.extend(statements)
        if self.down:
            raise StoreUnavailable("down")
        device = statements[0].rsplit("'", 2)[1]
        rows = [{"key": k} for k in self.series.get(device, [])]
        return [[Series("data", rows=rows)] if rows else []]


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def at(names: set[str]) -> list[tuple[int, str]]:
    return [(i, n) for i, n in enumerate(sorted(names))]


@pytest.fixture
def store() -> Store:
    return Store()


def cache(store: Store, limit: int = 3, **kw: object) -> DeviceVariables:
    return DeviceVariables(store, limit, **kw)  # type: ignore[arg-type]


async def test_reads_once_and_counts_what_is_stored(store: Store) -> None:
    store.series["d"] = ["data,device=d,variable=a", "data,device=d,slot=1,variable=a"]
    v = cache(store)
    assert not v.ready("d")
    await v.prepare("d")
    await v.prepare("d")
    assert v.ready("d") and v.reads == 1
    v.admit("d", {"a", "a\x001"}, at)  # known: fine
    v.admit("d", {"b"}, at)
    with pytest.raises(ValidationError, match="at most 3 distinct variables"):
        v.admit("d", {"c"}, at)
    v.admit("d", {"a", "b"}, at)  # still fine


async def test_one_request_past_the_limit_is_refused_whole(store: Store) -> None:
    v = cache(store)
    await v.prepare("d")
    with pytest.raises(ValidationError) as info:
        v.admit("d", {"a", "b", "c", "e"}, at)
    assert len(info.value.errors) == 4
    v.admit("d", {"a", "b", "c"}, at)  # nothing of the refused request was counted


async def test_a_failed_read_starts_empty_and_is_read_again_later(store: Store) -> None:
    clock = Clock()
    store.down = True
    v = cache(store, clock=clock)
    await v.prepare("d")
    assert v.ready("d")
    v.admit("d", {"x"}, at)  # not refused because the store is away
    store.down = False
    store.series["d"] = ["data,device=d,variable=a", "data,device=d,variable=b",
                         "data,device=d,variable=x"]  # x was written meanwhile
    clock.now += RETRY
    v.admit("d", {"y"}, at)  # schedules a refresh
    for _ in range(5):
        await asyncio.sleep(0)
    assert v.reads == 2
    with pytest.raises(ValidationError, match="this one has 4"):  # a, b, x, and y (in flight)
        v.admit("d", {"z"}, at)


async def test_only_a_device_adding_names_is_refreshed(store: Store) -> None:
    clock = Clock()
    v = cache(store, limit=10, clock=clock, ttl=60)
    await v.prepare("d")
    clock.now += 3600
    v.admit("d", set(), at)
    assert v.reads == 1  # known names only: no read however old the set
    v.admit("d", {"new"}, at)
    for _ in range(5):
        await asyncio.sleep(0)
    assert v.reads == 2


async def test_sets_are_evicted_past_max_names(store: Store) -> None:
    v = cache(store, limit=10, max_names=5)
    for device in ("d1", "d2", "d3"):
        await v.prepare(device)
        v.admit(device, {"a", "b"}, at)
    assert not v.ready("d1") and v.ready("d2") and v.ready("d3")
    v.forget("d2")
    assert not v.ready("d2") and len(v) == 1
