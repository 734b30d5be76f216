"""The per-device limit on distinct variables (issue 12, item 3), over HTTP, against an
InfluxDB whose own max-values-per-tag is small enough to reach: one device filling it
used to make every other device's next new variable fail with InfluxDB's 400."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.registry.sqlite import SQLiteRegistry
from devicedata import procs
from devicedata.procs import free_port
from devicedata.servers import InfluxServer
from support.api import ApiServer, MakeApi, start_api

INFLUX_VALUES_PER_TAG = 40  # InfluxDB's own cap on distinct variable names, database-wide
LIMIT = 10  # ours, per device


@pytest.fixture(scope="module")
def small_influx() -> Iterator[InfluxServer]:
    with tempfile.TemporaryDirectory(prefix="devicedata-small-influx-") as tmp:
        server = procs.start_on_free_port(lambda port: InfluxServer(
            Path(tmp) / "influxdb", port, new_session=False,
            overrides={"max-values-per-tag": str(INFLUX_VALUES_PER_TAG)}))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def limited(make_api: MakeApi, small_influx: InfluxServer) -> ApiServer:
    db = f"limits_{uuid.uuid4().hex[:8]}"
    small_influx.create_database(db)
    return make_api(influx_url=small_influx.url, influx_db=db, max_variables=LIMIT)


def points(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"variable": f"{prefix}{i}", "value": i} for i in range(n)]


def test_a_device_past_its_limit_never_blocks_another_devices_new_variable(
        limited: ApiServer) -> None:
    _, greedy = limited.device()
    _, other = limited.device()
    with limited.client(greedy) as g:
        assert g.post("/data", json=points("mine", LIMIT)).status_code == 200
        # Five times the limit again, in new names: past InfluxDB's own cap too.
        refused = [g.post("/data", json=points(f"more{batch}-", LIMIT))
                   for batch in range(INFLUX_VALUES_PER_TAG // LIMIT + 1)]
        known = g.post("/data", json={"variable": "mine3", "value": 33})
    with limited.client(other) as o:
        added = o.post("/data", json=points("new", 5))
        assert added.status_code == 200, added.text
        stored = o.get("/data", params={"qty": 50}).json()["result"]
        assert sorted(p["variable"] for p in stored) == [f"new{i}" for i in range(5)]
    for response in refused:
        assert response.status_code == 400, response.text
        body = response.json()
        assert f"at most {LIMIT} distinct variables" in body["message"]
        assert "DEVICEDATA_MAX_VARIABLES" in body["message"]
        assert body["field_errors"]["0"] == [
            f"variable: is a new variable past this device's limit of {LIMIT}"]
    assert known.status_code == 200, known.text  # its own variables still go in
    with limited.client(greedy) as g:
        names = {p["variable"] for p in g.get("/data", params={"qty": 100}).json()["result"]}
    assert names == {f"mine{i}" for i in range(LIMIT)}


def test_a_request_past_the_limit_stores_nothing(limited: ApiServer) -> None:
    _, token = limited.device()
    with limited.client(token) as c:
        assert c.post("/data", json=points("a", LIMIT - 2)).status_code == 200
        response = c.post("/data", json=[{"variable": "a0", "value": 1}, *points("b", 3)])
        assert response.status_code == 400
        assert sorted(response.json()["field_errors"]) == ["1", "2", "3"]
        assert c.get("/data", params={"query": "count"}).json()["result"] == LIMIT - 2
        # Up to the limit exactly is fine.
        assert c.post("/data", json=points("b", 2)).status_code == 200


def test_another_process_counts_the_names_already_stored(limited: ApiServer) -> None:
    """A second API process (same registry and InfluxDB) learns each device's names from
    InfluxDB before it counts, so it refuses the next new name too."""
    _, token = limited.device()
    with limited.client(token) as c:
        assert c.post("/data", json=points("v", LIMIT)).status_code == 200
    second = start_api(limited.settings.replace(http_port=free_port()),
                       SQLiteRegistry(limited.registry.path))
    try:
        with second.client(token) as c:
            assert c.post("/data", json={"variable": "v1", "value": 1}).status_code == 200
            response = c.post("/data", json={"variable": "w", "value": 1})
            assert response.status_code == 400, response.text
            assert "DEVICEDATA_MAX_VARIABLES" in response.json()["message"]
        variables = second.state.service.variables
        assert variables is not None and variables.reads == 1
    finally:
        second.stop()
        second.registry.close()


def test_points_sharing_variable_and_time_count_as_more_variables(limited: ApiServer) -> None:
    """Each is a series of its own (a slot), so they count: a few names cannot grow the
    index without bound."""
    _, token = limited.device()
    same = [{"variable": "dup", "value": i, "time": "2024-01-01T00:00:00Z"}
            for i in range(LIMIT + 1)]
    with limited.client(token) as c:
        assert c.post("/data", json=same[:LIMIT]).status_code == 200
        response = c.post("/data", json=same)
        assert response.status_code == 400, response.text
        assert response.json()["field_errors"] == {str(LIMIT): [
            "variable: shares variable and time with another point, which counts as one "
            f"more variable, past this device's limit of {LIMIT}"]}
        assert c.get("/data", params={"query": "count"}).json()["result"] == LIMIT
