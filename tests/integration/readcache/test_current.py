"""Current values (bridge/readcache/current.py): last_item / last_value / last_location and
the Data page read the registry, not InfluxDB, right after any write, and stay exact under
backfill, PUT and DELETE of the newest point, device deletion, and a registry that cannot
record a write (the write then waits in the spool). Writes through another API, the
bridge and a spool drain are in test_versions.py, whose last_value reads go here too."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bridge.errors import RegistryError
from support.api import ApiServer
from support.http import get, post
from support.mqtt import wait_until

T0 = time.time_ns() // 1_000_000 - 3_600_000  # ms


def current(c: httpx.Client, kind: str = "last_value", **params: Any) -> dict[str, Any]:
    points = get(c, {"query": kind, **params})
    return {p["variable"]: p.get("value", p.get("location")) for p in points}


def test_current_values_need_no_influxdb_right_after_a_write(api: ApiServer) -> None:
    device_id, token = api.device()
    with api.client(token) as c, httpx.Client(
            base_url=api.url, headers={"admin-token": api.state.admin_token}) as admin:
        assert post(c, {"variable": "t", "value": 0, "time": T0}).status_code == 200
        _, first = api.statements_during(lambda: current(c))
        assert first > 0  # the device's first read builds its rows from InfluxDB
        for i in range(1, 4):
            assert post(c, [{"variable": "t", "value": i, "time": T0 + i},
                            {"variable": "s", "value": f"s{i}", "time": T0 + i},
                            {"variable": "p", "location": {"lat": i, "lng": 1},
                             "time": T0 + i}]).status_code == 200
            reads = [
                lambda: current(c),
                lambda: current(c, variables="t"),
                lambda: current(c, "last_item", variables=["t", "s"]),
                lambda: current(c, "last_location"),
                lambda: admin.get(f"/admin/devices/{device_id}/variables").json()["result"],
            ]
            answers = []
            for read in reads:
                answer, statements = api.statements_during(read)
                assert statements == 0, read
                answers.append(answer)
            assert answers[0] == {"t": i, "s": f"s{i}"}
            assert answers[1] == {"t": i}
            assert answers[2] == {"t": i, "s": f"s{i}"}
            assert answers[3] == {"p": {"type": "Point", "coordinates": [1, i]}}
            assert [p["variable"] for p in answers[4]] == ["p", "s", "t"]
        newest = get(c, {"query": "last_item", "variables": "t", "details": "true"})[0]
        assert newest == get(c, {"variables": "t", "qty": 1, "details": "true"})[0]


def test_a_backfilled_point_never_becomes_current(api: ApiServer) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, {"variable": "t", "value": 2, "time": T0 + 10}).status_code == 200
        assert current(c) == {"t": 2}
        assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
        assert post(c, [{"variable": "t", "value": 0, "time": T0 - 10},
                        {"variable": "u", "value": 5, "time": T0 - 10}]).status_code == 200
        assert current(c) == {"t": 2, "u": 5}
        assert post(c, {"variable": "t", "value": 3, "time": T0 + 11}).status_code == 200
        assert current(c) == {"t": 3, "u": 5}


def test_edit_and_delete_of_the_newest_point(api: ApiServer) -> None:
    _device, token = api.device()
    with api.client(token) as c:
        assert post(c, [{"variable": "t", "value": i, "time": T0 + i, "unit": "C"}
                        for i in range(3)]
                    + [{"variable": "t", "time": T0 + 5}]).status_code == 200
        assert current(c) == {"t": 2}
        assert current(c, "last_item") == {"t": None}
        newest = get(c, {"query": "last_value"})[0]
        assert c.put("/data", json={"id": newest["id"], "value": "two"}).status_code == 200
        assert current(c) == {"t": "two"}
        assert get(c, {"query": "last_value"})[0]["unit"] == "C"
        removed = c.delete("/data", params={"ids": newest["id"]})
        assert removed.json()["result"] == "1 Data Removed"
        assert current(c) == {"t": 1}
        item = get(c, {"query": "last_item"})[0]
        assert c.delete("/data", params={"ids": item["id"]}).status_code == 200
        assert current(c, "last_item") == {"t": 1}
        # deleting an older point leaves the current one alone, without reading InfluxDB
        oldest = get(c, {"ordination": "asc", "qty": 1})[0]
        assert c.delete("/data", params={"ids": oldest["id"]}).status_code == 200
        assert api.statements_during(lambda: current(c)) == ({"t": 1}, 0)


def test_deleting_a_device_drops_its_current_values(api: ApiServer) -> None:
    device_id, token = api.device()
    with api.client(token) as c:
        assert post(c, {"variable": "t", "value": 1}).status_code == 200
        assert current(c) == {"t": 1}
    assert api.registry.current_values(device_id, None)[1]
    with httpx.Client(base_url=api.url, headers={"admin-token": api.state.admin_token}) as a:
        assert a.delete(f"/admin/devices/{device_id}").status_code == 200
    assert api.registry.current_values(device_id, None) == (False, [])


def test_a_write_the_registry_cannot_record_waits_in_the_spool(api: ApiServer) -> None:
    """Acknowledged (spooled), current only once recorded: the drain writes it again."""
    _device, token = api.device()
    registry = api.state.service.current._registry
    original = registry.record_writes

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RegistryError("registry unavailable")

    with api.client(token) as c:
        assert post(c, {"variable": "t", "value": 1, "time": T0}).status_code == 200
        assert current(c) == {"t": 1}
        registry.record_writes = refuse
        try:
            assert post(c, {"variable": "t", "value": 2, "time": T0 + 1}).status_code == 200
            assert api.sink.spool.records > 0
            assert current(c) == {"t": 1}
        finally:
            registry.record_writes = original
        wait_until(lambda: current(c) == {"t": 2}, timeout=30, what="the drained point")
        assert get(c, {"query": "count"}) == 2
