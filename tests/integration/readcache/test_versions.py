"""Data versions and kept answers: a repeated GET is answered without InfluxDB, and any
write ends that at once, whoever made it: this API, another API on the same registry, the
MQTT bridge process, a spool drain after an outage (real InfluxDB, Mosquitto, bridge)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import RegistryError
from bridge.readcache.versions import DataVersions
from bridge.registry.sqlite import SQLiteRegistry
from bridge.settings import Settings
from devicedata.procs import free_port
from devicedata.servers import InfluxServer
from support.api import ApiServer, start_api
from support.http import get, post
from support.metrics import samples, value
from support.mqtt import BridgeProcess, connect_when_allowed, running_bridge, wait_until

T0 = time.time_ns() // 1_000_000 - 3_600_000  # ms: recent, as a test may shorten retention


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    yield from running_bridge(stack_settings, tmp_path_factory.mktemp("bridge") / "b.log")


def last_values(c: Any) -> dict[str, Any]:
    return {p["variable"]: p["value"] for p in get(c, {"query": "last_value"})}


@pytest.mark.parametrize("params", [{}, {"query": "first_value"}, {"query": "count"},
                                    {"query": "last_item", "variables": "t", "group": "g"},
                                    {"qty": 2, "details": "true"}])
def test_a_repeated_read_is_answered_without_influxdb(api: ApiServer,
                                                      params: dict[str, str]) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, [{"variable": "t", "value": i, "time": T0 + i, "group": "g"}
                        for i in range(3)]
                    + [{"variable": "s", "value": "x", "time": T0}]).status_code == 200
        hits = value(samples(c.get("/metrics").text), "devicedata_read_cache_hits_total")
        first, cold = api.statements_during(lambda: get(c, params))
        again, warm = api.statements_during(lambda: get(c, params))
        hits = value(samples(c.get("/metrics").text), "devicedata_read_cache_hits_total") - hits
    assert cold >= 1 and warm == 0
    assert again == first
    assert hits == 1


def test_a_read_with_a_date_bound_always_asks_influxdb(api: ApiServer) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, [{"variable": "t", "value": 1}]).status_code == 200
        for params in ({"start_date": "1 hour"}, {"end_date": "2100-01-01T00:00:00Z"}):
            for _ in range(2):
                answer, statements = api.statements_during(lambda p=params: get(c, p))
                assert [p["value"] for p in answer] == [1] and statements >= 1


def test_this_apis_own_posts_puts_and_deletes_end_kept_answers(api: ApiServer) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
        assert last_values(c) == last_values(c) == {"t": 1}
        assert post(c, {"variable": "t", "value": 2, "time": T0 + 1}).status_code == 200
        assert last_values(c) == {"t": 2}
        newest = get(c, {"query": "last_item"})[0]["id"]
        edited = c.put("/data", json={"id": newest, "value": "two"})
        assert edited.status_code == 200, edited.text
        assert last_values(c) == {"t": "two"}
        assert c.delete("/data", params={"ids": newest}).json()["result"] == "1 Data Removed"
        assert last_values(c) == {"t": 1}
        assert get(c, {"query": "count"}) == 1


def test_a_bridge_write_ends_the_apis_kept_answer(
        api: ApiServer, bridge: BridgeProcess) -> None:
    """The bridge is another process; it bumps the version in the shared registry once
    the point is stored. The device's PUBACK comes from the broker, before that, so the
    test polls, for far less than the kept answer's 60 s max age."""
    device_id, token = api.mqtt_device()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        with api.client(token) as c:
            assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
            assert last_values(c) == {"t": 1}
            _, statements = api.statements_during(lambda: last_values(c))
            assert statements == 0  # kept
            for i in range(2, 6):
                reason = client.publish(f"devices/{device_id}/data", json.dumps(
                    {"variable": "t", "value": i, "time": T0 + i}))
                assert not reason.is_failure
                wait_until(lambda i=i: last_values(c) == {"t": i}, timeout=15,
                           what=f"value {i} from the bridge")
    finally:
        client.close()


def test_a_write_through_another_api_on_the_same_registry(
        api: ApiServer, stack_settings: Settings) -> None:
    registry = SQLiteRegistry(Path(stack_settings.registry_location.removeprefix("sqlite:///")))
    other = start_api(stack_settings.replace(http_port=free_port()), registry)
    try:
        _device, token = api.device()
        with api.client(token) as c, other.client(token) as o:
            assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
            assert last_values(c) == last_values(o) == {"t": 1}
            assert post(o, {"variable": "t", "value": 2, "time": T0 + 1}).status_code == 200
            assert last_values(c) == {"t": 2}
            newest = get(o, {"query": "last_item"})[0]["id"]
            assert o.delete("/data", params={"ids": newest}).status_code == 200
            assert last_values(c) == {"t": 1}
    finally:
        other.stop()
        registry.close()


def test_points_drained_from_the_spool_end_kept_answers(api: ApiServer,
                                                        influx: InfluxServer) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
        assert last_values(c) == {"t": 1}
        influx.stop()
        try:
            assert post(c, {"variable": "t", "value": 2, "time": T0 + 1}).status_code == 200
            assert api.sink.spool.records > 0
            # Spooled points are invisible until drained; the kept answer still stands.
            assert last_values(c) == {"t": 1}
        finally:
            influx.start()
        # Longer than the drain takes, far shorter than the answer's 60 s max age.
        wait_until(lambda: last_values(c) == {"t": 2}, timeout=30, what="the drained point")
    assert api.state.service.answers.max_age >= 60


class _Unreachable:
    """A registry that fails like a PostgreSQL registry whose server went away."""

    def data_version(self, device_id: str, wait: bool = True) -> int | None:
        self._fail(wait)
        return None

    def watch_data_version(self, device_id: str, wait: bool = True) -> int | None:
        self._fail(wait)
        return None

    @staticmethod
    def _fail(wait: bool) -> None:
        if not wait:  # as PostgresRegistry: never on the event loop
            raise BlockingIOError("this registry is reached over the network")
        raise RegistryError("PostgreSQL registry postgresql://x@h:5432/d: connection refused")


def test_an_unreachable_registry_keeps_nothing() -> None:
    versions = DataVersions(_Unreachable())  # type: ignore[arg-type]

    async def run() -> tuple[int | None, int | None]:
        return await versions.current("a"), await versions.watch("a")

    assert asyncio.run(run()) == (None, None)  # so the reader keeps nothing
