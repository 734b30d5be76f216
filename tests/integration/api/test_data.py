"""POST/GET/PUT/DELETE /data and /info over real HTTP against the real InfluxDB."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest

from support.api import ApiServer
from support.http import get, post

T0 = "2024-01-02T03:04:05.000Z"


def series(n: int, variable: str = "temperature", start_minute: int = 0) -> list[dict[str, Any]]:
    return [{"variable": variable, "value": i, "time": f"2024-01-02T03:{start_minute + i:02d}:00Z"}
            for i in range(n)]


def test_post_then_get_returns_the_point(client: httpx.Client, device: tuple[str, str]) -> None:
    response = post(client, {"variable": "temperature", "value": 21.5, "unit": "C",
                             "group": "g1", "time": T0, "location": {"lat": 42.5, "lng": -85.25},
                             "metadata": {"color": "red"}})
    assert response.status_code == 200
    assert response.json() == {"status": True, "result": "1 Data Added"}
    (point,) = get(client)
    assert point["variable"] == "temperature"
    assert point["value"] == 21.5
    assert point["unit"] == "C"
    assert point["group"] == "g1"
    assert point["time"] == T0
    assert point["location"] == {"type": "Point", "coordinates": [-85.25, 42.5]}
    assert point["metadata"] == {"color": "red"}
    assert point["device"] == point["origin"] == device[0]
    assert isinstance(point["id"], str) and point["id"]
    assert "created_at" not in point


def test_numbers_round_trip_as_json_numbers(client: httpx.Client) -> None:
    post(client, [{"variable": "a", "value": 20, "time": T0},
                  {"variable": "b", "value": 20.5, "time": T0},
                  {"variable": "c", "value": -0.1, "time": T0}])
    raw = client.get("/data").text
    assert '"value":20,' in raw and '"value":20.5' in raw and '"value":-0.1' in raw


def test_array_shares_one_generated_group(client: httpx.Client) -> None:
    post(client, [{"variable": "a", "value": 1}, {"variable": "b", "value": 2},
                  {"variable": "c", "value": 3, "group": "mine"}])
    points = {p["variable"]: p for p in get(client)}
    assert points["a"]["group"] == points["b"]["group"]
    assert len(points["a"]["group"]) == 24
    assert points["c"]["group"] == "mine"


def test_invalid_batch_stores_nothing_and_names_each_bad_point(client: httpx.Client) -> None:
    response = post(client, [{"variable": "ok", "value": 1}, {"value": 2},
                             {"variable": "x", "value": None}])
    assert response.status_code == 400
    body = response.json()
    assert body["status"] is False
    assert set(body["field_errors"]) == {"1", "2"}
    assert any("variable" in m for m in body["field_errors"]["1"])
    assert any("value" in m for m in body["field_errors"]["2"])
    assert get(client) == []


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b"42", b'"text"', b"null",
                                  b'{"variable": "x", "value": NaN}', b"\xff\xfe"])
def test_malformed_bodies_get_400_json(client: httpx.Client, body: bytes) -> None:
    response = client.post("/data", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] is False
    assert response.json()["message"]


def test_auth_headers_and_denials(api: ApiServer) -> None:
    _device_id, token = api.device("full")
    with api.client() as anon:
        for headers in ({"token": token}, {"device-token": token},
                        {"authorization": token}, {"authorization": f"Bearer {token}"}):
            assert anon.get("/data", headers=headers).status_code == 200, headers
        for headers in ({}, {"token": "nope"}, {"token": "null"}, {"authorization": "Bearer"}):
            response = anon.get("/data", headers=headers)
            assert response.status_code == 401
            assert response.json() == {"status": False, "message": "Authorization denied"}


def test_permissions(api: ApiServer) -> None:
    _, read = api.device("read")
    write_device, write = api.device("write")
    with api.client(read) as reader, api.client(write) as writer:
        assert post(reader, {"variable": "x", "value": 1}).status_code == 401
        assert reader.delete("/data").status_code == 401
        assert reader.get("/data").status_code == 200
        assert post(writer, {"variable": "x", "value": 1}).status_code == 200
        assert writer.get("/data").status_code == 401
        assert writer.get("/info").json()["result"]["id"] == write_device


def test_expired_and_revoked_tokens_are_refused(api: ApiServer) -> None:
    device_id, token = api.device("full")
    api.registry.revoke_token(token)
    expiring = api.registry.create_token(device_id, "full", expires_ns=time.time_ns() + 10**8)
    with api.client() as anon:
        time.sleep(api.settings.token_cache_seconds + 0.2)
        assert anon.get("/data", headers={"token": token}).status_code == 401
        assert anon.get("/data", headers={"token": expiring.token}).status_code == 401


def test_a_device_never_sees_or_touches_another_devices_data(api: ApiServer) -> None:
    _, token_a = api.device()
    _, token_b = api.device()
    with api.client(token_a) as a, api.client(token_b) as b:
        post(a, series(3, "secret"))
        ids = [p["id"] for p in get(a)]
        assert get(b) == []
        assert get(b, {"ids": ids}) == []
        assert get(b, {"query": "count"}) == 0
        assert b.put("/data", json=[{"id": ids[0], "value": 666}]).status_code == 404
        assert b.delete("/data", params={"ids": ids}).json()["result"] == "0 Data Removed"
        assert [p["value"] for p in get(a, {"ordination": "asc"})] == [0, 1, 2]


@pytest.mark.parametrize("query_string", [
    "variables=a&variables=b", "variables[]=a&variables[]=b",
    "variables[0]=a&variables[1]=b", "variable=a&variable=b",
])
def test_every_list_form(client: httpx.Client, query_string: str) -> None:
    post(client, [{"variable": v, "value": 1, "time": T0} for v in ("a", "b", "c")])
    result = get(client, httpx.QueryParams(query_string))
    assert sorted(p["variable"] for p in result) == ["a", "b"]


def test_filters_groups_values_ids(client: httpx.Client) -> None:
    post(client, [{"variable": "v", "value": "on", "group": "g1", "time": T0},
                  {"variable": "v", "value": 7, "group": "g2", "time": "2024-01-02T03:04:06Z"},
                  {"variable": "v", "value": True, "group": "g3",
                   "time": "2024-01-02T03:04:07Z"}])
    assert [p["value"] for p in get(client, {"groups": "g2"})] == [7]
    assert [p["value"] for p in get(client, {"serie": "g1"})] == ["on"]
    assert sorted(map(str, (p["value"] for p in get(client, {"values[]": ["on", "7"]})))) == [
        "7", "on"]
    assert [p["value"] for p in get(client, {"value": "true"})] == [True]
    everything = get(client)
    picked = get(client, {"ids": [everything[0]["id"], everything[2]["id"]]})
    assert [p["id"] for p in picked] == [everything[0]["id"], everything[2]["id"]]


def test_qty_skip_ordination(client: httpx.Client) -> None:
    post(client, series(20))
    assert len(get(client)) == 15
    newest = get(client, {"qty": 3})
    assert [p["value"] for p in newest] == [19, 18, 17]
    assert [p["value"] for p in get(client, {"qty": 3, "skip": 2})] == [17, 16, 15]
    for word in ("ascending", "ASC", "asc", "Ascending"):
        assert [p["value"] for p in get(client, {"qty": 2, "ordination": word})] == [0, 1]
    for word in ("descending", "DESC", "desc"):
        assert [p["value"] for p in get(client, {"qty": 1, "ordination": word})] == [19]


def test_dates_absolute_bare_and_relative(client: httpx.Client) -> None:
    post(client, [{"variable": "d", "value": 1, "time": "2024-01-01T23:59:59.999Z"},
                  {"variable": "d", "value": 2, "time": "2024-01-02T00:00:00Z"},
                  {"variable": "d", "value": 3, "time": "2024-01-02T23:59:59.999Z"},
                  {"variable": "d", "value": 4, "time": "2024-01-03T00:00:00Z"},
                  {"variable": "d", "value": 5}])
    day = get(client, {"start_date": "2024-01-02", "end_date": "2024-01-02"})
    assert sorted(p["value"] for p in day) == [2, 3]
    iso = get(client, {"start_date": "2024-01-02T00:00:00Z", "end_date": "2024-01-03 00:00:00"})
    assert sorted(p["value"] for p in iso) == [2, 3, 4]
    assert [p["value"] for p in get(client, {"start_date": "1 day"})] == [5]
    assert [p["value"] for p in get(client, {"start_date": "30 minutes"})] == [5]
    assert sorted(p["value"] for p in get(client, {"end_date": "2 hours"})) == [1, 2, 3, 4]


def test_details_adds_created_at(client: httpx.Client) -> None:
    post(client, {"variable": "x", "value": 1, "time": T0})
    for flag in ("true", "True", "1"):
        (point,) = get(client, {"details": flag})
        assert point["created_at"].endswith("Z") and point["created_at"] > T0
    (point,) = get(client, {"details": "false"})
    assert "created_at" not in point


def test_last_and_first_queries(client: httpx.Client) -> None:
    post(client, [
        {"variable": "t", "value": 1, "time": "2024-01-01T00:00:00Z",
         "location": {"lat": 1, "lng": 2}},
        {"variable": "t", "value": 2, "time": "2024-01-01T00:01:00Z"},
        {"variable": "t", "time": "2024-01-01T00:02:00Z", "unit": "no value"},
        {"variable": "h", "value": 50, "time": "2024-01-01T00:00:30Z"},
    ])

    def by_var(query: str, **extra: Any) -> dict[str, Any]:
        return {p["variable"]: p for p in get(client, {"query": query, **extra})}

    assert by_var("last_item")["t"]["unit"] == "no value"
    assert by_var("last_value")["t"]["value"] == 2
    assert by_var("last_value")["h"]["value"] == 50
    assert by_var("last_location")["t"]["location"]["coordinates"] == [2, 1]
    assert "h" not in by_var("last_location")
    assert by_var("first_item")["t"]["value"] == 1
    assert by_var("first_value")["t"]["value"] == 1
    assert list(by_var("last_value", variables="h")) == ["h"]


def test_number_queries(client: httpx.Client) -> None:
    post(client, [{"variable": "n", "value": v, "time": f"2024-01-01T00:0{i}:00Z"}
                  for i, v in enumerate([1, 2, 3.5, "text", True])])
    assert get(client, {"query": "count"}) == 5
    assert get(client, {"query": "sum"}) == 6.5
    assert get(client, {"query": "avg"}) == pytest.approx(6.5 / 3)
    assert get(client, {"query": "min"}) == 1
    assert get(client, {"query": "max"}) == 3.5
    assert get(client, {"query": "count", "variables": "nothing"}) == 0
    assert get(client, {"query": "sum", "variables": "nothing"}) == 0


def test_aggregate(client: httpx.Client) -> None:
    post(client, [{"variable": "p", "value": v, "time": f"2024-01-01T{h:02d}:{m:02d}:00Z"}
                  for h, m, v in [(0, 0, 1), (0, 30, 3), (1, 0, 10), (1, 59, 20), (3, 0, 7)]])
    result = get(client, {"query": "aggregate", "function": "avg", "interval": "1 hour",
                          "ordination": "ascending", "start_date": "2024-01-01"})
    assert [(p["time"], p["value"]) for p in result] == [
        ("2024-01-01T00:00:00.000Z", 2), ("2024-01-01T01:00:00.000Z", 15),
        ("2024-01-01T03:00:00.000Z", 7)]
    counts = get(client, {"query": "aggregate", "function": "count", "interval": "2 hours"})
    assert [p["value"] for p in counts] == [1, 4]
    assert all(p["variable"] == "p" for p in counts)


@pytest.mark.parametrize("params, name", [
    ({"qty": "abc"}, "qty"), ({"qty": "10001"}, "qty"), ({"qty": "-1"}, "qty"),
    ({"skip": "x"}, "skip"), ({"ordination": "sideways"}, "ordination"),
    ({"query": "drop"}, "query"), ({"start_date": "yesterday-ish"}, "start_date"),
    ({"end_date": "2024-13-45"}, "end_date"), ({"details": "maybe"}, "details"),
    ({"query": "aggregate", "interval": "1 hour"}, "function"),
    ({"query": "aggregate", "function": "avg"}, "interval"),
    ({"ids": "not-an-id"}, "ids"),
    ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "end_date"),
])
def test_invalid_parameters_get_400_naming_them(
        client: httpx.Client, params: dict[str, str], name: str) -> None:
    response = client.get("/data", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] is False
    assert name in body["field_errors"]


def test_put_edits_only_the_named_point(client: httpx.Client) -> None:
    post(client, [{"variable": "e", "value": 1, "unit": "C", "time": T0},
                  {"variable": "e", "value": 2, "time": "2024-01-02T03:04:06Z"}])
    older, newer = get(client, {"ordination": "asc"})
    response = client.put("/data", json={"id": older["id"], "value": "now text", "unit": "F"})
    assert response.json() == {"status": True, "result": "1 item(s) updated"}
    edited, untouched = get(client, {"ordination": "asc"})
    assert edited["id"] == older["id"]
    assert (edited["value"], edited["unit"]) == ("now text", "F")
    assert untouched == newer
    assert get(client, {"values": "1"}) == []  # the old number is gone, not shadowed
    response = client.put("/data", json=[{"id": newer["id"], "value": 3}])
    assert response.json()["result"] == "1 item(s) updated"


def test_put_rejects_bad_edits(client: httpx.Client) -> None:
    post(client, {"variable": "e", "value": 1, "time": T0})
    (point,) = get(client)
    assert client.put("/data", json=[{"value": 1}]).status_code == 400
    assert client.put("/data", json=[{"id": point["id"], "variable": "x"}]).status_code == 400
    assert client.put("/data", json=[{"id": point["id"], "value": None}]).status_code == 400
    missing = point["id"][:-1] + ("1" if point["id"][-1] == "0" else "0")
    assert client.put("/data", json=[{"id": missing, "value": 5}]).status_code == 404
    assert get(client)[0]["value"] == 1


def test_delete_by_filters_defaults_to_qty_15(client: httpx.Client) -> None:
    post(client, series(20))
    assert client.delete("/data").json() == {"status": True, "result": "15 Data Removed"}
    assert [p["value"] for p in get(client, {"ordination": "asc"})] == [0, 1, 2, 3, 4]
    assert client.delete("/data", params={"query": "last_item"}).json()["result"] == (
        "1 Data Removed")
    assert client.delete("/data", params={"qty": 100}).json()["result"] == "4 Data Removed"
    assert get(client) == []


def test_delete_by_id_removes_exactly_that_point(client: httpx.Client) -> None:
    post(client, [{"variable": "same", "value": 1, "time": T0},
                  {"variable": "same", "value": 2, "time": T0}])
    first, second = sorted(get(client), key=lambda p: p["value"])
    assert client.delete("/data", params={"id": second["id"]}).json()["result"] == (
        "1 Data Removed")
    assert get(client) == [first]
    assert client.delete("/data", params={"query": "count"}).status_code == 400


def test_info(api: ApiServer) -> None:
    device_id, token = api.device("read", name="info-dev")
    with api.client(token) as c:
        info = c.get("/info").json()["result"]
    assert info["id"] == device_id and info["name"] == "info-dev"
    assert info["created_at"].endswith("Z")


def test_info_reports_last_input(client: httpx.Client) -> None:
    assert client.get("/info").json()["result"]["last_input"] is None
    post(client, {"variable": "x", "value": 1})
    assert client.get("/info").json()["result"]["last_input"].endswith("Z")


def test_body_and_point_limits_give_413(make_api: Any) -> None:
    server = make_api(max_body_bytes=2000, max_points=3)
    _, token = server.device()
    with server.client(token) as c:
        assert post(c, [{"variable": "x", "value": 1}] * 3).status_code == 200
        too_many = post(c, [{"variable": "x", "value": 1}] * 4)
        assert too_many.status_code == 413 and too_many.json()["status"] is False
        too_big = post(c, {"variable": "x", "value": "y" * 3000})
        assert too_big.status_code == 413
        assert c.get("/data", params={"query": "count"}).json()["result"] == 3


def test_store_down_gives_503_with_retry_after(make_api: Any) -> None:
    from support.api import free_port

    server = make_api(influx_url=f"http://127.0.0.1:{free_port()}", influx_timeout=2.0,
                      spool_max_bytes=0)
    _, token = server.device()
    with server.client(token) as c:
        response = post(c, {"variable": "x", "value": 1})
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["status"] is False
        assert c.get("/data").status_code == 503
    with server.client() as anon:
        ready = anon.get("/ready")
        assert ready.status_code == 503 and "influxdb" in ready.json()["message"]


def test_a_failing_store_answers_503_in_our_words(make_api: Any, stack_settings: Any) -> None:
    from support.influx_proxy import HoldingProxy

    proxy = HoldingProxy(stack_settings.influx_url)
    try:
        server = make_api(influx_url=proxy.url)
        _, token = server.device()
        proxy.failing_queries = "engine: shard 7: open /var/lib/influxdb/data/secret: EIO"
        with server.client(token) as c:
            response = c.get("/data", params={"variable": "x"})
        assert response.status_code == 503 and response.json()["status"] is False
        message = response.json()["message"]
        assert "temporarily unavailable" in message, message
        assert "shard" not in message and "/var/lib" not in message, message
    finally:
        proxy.close()


def test_health_ready_openapi_and_unknown_routes(api: ApiServer) -> None:
    with api.client() as c:
        assert c.get("/health").json() == {"status": True, "result": "ok"}
        assert c.get("/ready").json()["status"] is True
        assert "/data" in c.get("/openapi.json").json()["paths"]
        missing = c.get("/nope")
        assert missing.status_code == 404 and missing.json()["status"] is False
        assert c.patch("/data").status_code == 405


def test_cors_is_open_for_data(api: ApiServer) -> None:
    with api.client() as c:
        response = c.options("/data", headers={
            "origin": "http://dash.example", "access-control-request-method": "POST",
            "access-control-request-headers": "token, content-type"})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "token" in response.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-origin" not in c.get("/health", headers={
            "origin": "http://dash.example"}).headers


def test_concurrent_posts_share_batches_and_are_all_readable(api: ApiServer) -> None:
    # 16 devices, 4 requests each: within each device's requests in flight (api/fairness.py).
    tokens = [api.device()[1] for _ in range(16)]
    batches_before = api.batcher.batches_written

    def send(i: int) -> int:
        with api.client(tokens[i % 16]) as c:
            return post(c, {"variable": "c", "value": i, "time": i}).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(64)))
    assert codes == [200] * 64
    assert api.batcher.batches_written - batches_before < 64
    for token in tokens:
        with api.client(token) as c:
            assert get(c, {"query": "count"}) == 4


def test_ready_names_an_unreachable_broker(make_api: Any) -> None:
    from support.api import free_port

    server = make_api(mqtt_port=free_port())
    with server.client() as anon:
        ready = anon.get("/ready")
    assert ready.status_code == 503
    assert "broker" in ready.json()["message"]
    assert ready.json()["checks"].keys() == {"broker"}
