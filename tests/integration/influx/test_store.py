"""The InfluxDB schema contract (docs/schema.md) against the real InfluxDB."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.model.ids import parse_point_id
from support.api import ApiServer
from support.http import get, post

HOSTILE = [
    'quote " and \' both', "back\\slash \\", "comma, and space", "a=b", "new\nline",
    "tab\tand\rcr", "emoji 🌡️ ünïcødé 中文", "trailing\\", "\\,\\ \\=", "~b64~looks encoded",
    "'; DROP DATABASE x; --", '" OR 1=1 --',
]
VARIABLE_SAFE = [h for h in HOSTILE if not any(c in h for c in "\n\t\r")]


def influx_query(api: ApiServer, q: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{api.settings.influx_url}/query",
                          params={"db": api.settings.influx_db}, data={"q": q})
    response.raise_for_status()
    series: list[dict[str, Any]] = response.json()["results"][0].get("series", [])
    return series


def test_number_then_string_then_boolean_all_kept(client: httpx.Client, api: ApiServer) -> None:
    for i, value in enumerate([21.5, "warm", True, 22]):
        assert post(client, {"variable": "mixed", "value": value,
                             "time": f"2024-01-01T00:00:0{i}Z"}).status_code == 200
    assert [p["value"] for p in get(client, {"ordination": "asc"})] == [21.5, "warm", True, 22]
    fields = {tuple(v) for s in influx_query(api, 'SHOW FIELD KEYS FROM "data"')
              for v in s["values"]}
    assert ("value", "float") in fields
    assert ("value_str", "string") in fields
    assert ("value_bool", "boolean") in fields


def test_a_dashboard_can_mean_a_variable(client: httpx.Client, device: tuple[str, str],
                                         api: ApiServer) -> None:
    post(client, [{"variable": "temp", "value": v, "time": f"2024-01-01T00:0{i}:00Z"}
                  for i, v in enumerate([10, 20, "n/a", 30])])
    series = influx_query(api, (
        f'SELECT mean("value") FROM "data" WHERE "device" = \'{device[0]}\' AND '
        "\"variable\" = 'temp' AND time >= '2024-01-01T00:00:00Z' AND "
        "time < '2024-01-01T01:00:00Z' GROUP BY time(1h) fill(none)"))
    assert series[0]["values"][0][1] == 20


def test_same_variable_and_time_in_one_payload_both_survive(client: httpx.Client) -> None:
    post(client, [{"variable": "dup", "value": 1, "time": "2024-01-01T00:00:00Z"},
                  {"variable": "dup", "value": 2, "time": "2024-01-01T00:00:00Z"},
                  {"variable": "dup", "value": 3, "time": "2024-01-01T00:00:00Z"}])
    points = get(client)
    assert sorted(p["value"] for p in points) == [1, 2, 3]
    assert len({p["id"] for p in points}) == 3


def test_resending_the_same_timed_payload_does_not_duplicate(client: httpx.Client) -> None:
    payload = [{"variable": "r", "value": 1, "time": "2024-01-01T00:00:00Z"},
               {"variable": "r", "value": 2, "time": "2024-01-01T00:00:00Z"}]
    post(client, payload)
    post(client, payload)
    assert get(client, {"query": "count"}) == 2


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_round_trip_byte_for_byte(client: httpx.Client, text: str) -> None:
    variable = text if text in VARIABLE_SAFE else "hostile"
    metadata = {text: text, "nested": {"list": [text, 1, True]}}
    response = post(client, {"variable": variable, "value": text, "unit": text[:25],
                             "group": text, "metadata": metadata, "time": "2024-01-01T00:00:00Z"})
    assert response.status_code == 200, response.text
    (point,) = get(client)
    assert point["variable"] == variable
    assert point["value"] == text
    assert point["unit"] == text[:25]
    assert point["group"] == text
    assert point["metadata"] == metadata
    # ...and every filter finds it by the same text
    assert get(client, {"variables": variable})[0]["id"] == point["id"]
    assert get(client, {"groups": text})[0]["id"] == point["id"]
    assert get(client, {"values": text})[0]["id"] == point["id"]
    assert get(client, {"query": "last_value", "variables": variable})[0]["value"] == text


@pytest.mark.parametrize("name", ["variables", "groups", "values", "start_date", "query",
                                  "ordination", "function"])
def test_no_parameter_can_change_the_query(api: ApiServer, name: str) -> None:
    _, victim = api.device()
    _, attacker = api.device()
    with api.client(victim) as v:
        post(v, {"variable": "secret", "value": 1})
    injections = ["x' OR 1=1 --", "x') OR (\"device\" =~ /.*/", "x\\' OR device != '",
                  "x'; DROP DATABASE test; SELECT * FROM data WHERE '1'='1", "x\nx"]
    with api.client(attacker) as a:
        for payload in injections:
            response = a.get("/data", params={name: payload})
            assert response.status_code in (200, 400), response.text
            if response.status_code == 200:
                assert response.json()["result"] == []
    with api.client(victim) as v:
        assert get(v, {"query": "count"}) == 1


def test_id_lookups_touch_only_that_point_at_its_exact_time(
        client: httpx.Client, api: ApiServer, device: tuple[str, str]) -> None:
    post(client, [{"variable": "h", "value": i, "time": i * 1000} for i in range(50)])
    target = get(client, {"qty": 50})[25]
    store = api.store
    statements: list[str] = []
    original = store.query

    async def spy(batch: list[str]) -> Any:
        statements.extend(batch)
        return await original(batch)

    store.query = spy
    try:
        assert [p["id"] for p in get(client, {"ids": target["id"]})] == [target["id"]]
        client.put("/data", json={"id": target["id"], "unit": "edited"})
        assert client.delete("/data", params={"ids": target["id"]}).json()["result"] == (
            "1 Data Removed")
    finally:
        del store.query
    exact = f"time = {parse_point_id(target['id'])[0]}"
    assert statements, "the id lookups ran no statement"
    for statement in statements:
        assert exact in statement, statement  # one instant, never a range or a scan
    values = [p["value"] for p in get(client, {"qty": 100, "ordination": "asc"})]
    assert values == [i for i in range(50) if i != target["value"]]


def test_series_cardinality_stays_per_device_and_variable(
        client: httpx.Client, api: ApiServer, device: tuple[str, str]) -> None:
    post(client, [{"variable": f"v{i % 3}", "value": i, "group": f"g{i}",
                   "metadata": {"i": i}} for i in range(30)])
    series = influx_query(api, f"SHOW SERIES FROM \"data\" WHERE \"device\" = '{device[0]}'")
    assert len(series[0]["values"]) == 3
