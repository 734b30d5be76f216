"""Schema version 2 (docs/schema.md) against the real InfluxDB: what a line holds now, and
that data written by version 1 (lines from its frozen encoder, tests/support/schema_v1.py,
written straight into InfluxDB) reads, edits and deletes through the API as before."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.influx.schema import encode_point
from bridge.model.ids import point_id
from bridge.model.points import Point
from bridge.model.timeparse import format_iso_ms
from support.api import ApiServer
from support.http import get, post
from support.schema_v1 import encode_point_v1

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
RECV = T0 + 3_600_123_456_789


def write_lines(api: ApiServer, lines: list[str]) -> None:
    response = httpx.post(f"{api.settings.influx_url}/write",
                          params={"db": api.settings.influx_db, "precision": "ns"},
                          content="\n".join(lines).encode())
    assert response.status_code == 204, response.text


def fields_of(api: ApiServer, device_id: str, variable: str) -> set[str]:
    """The fields InfluxDB holds for one series (not the measurement's union)."""
    response = httpx.post(f"{api.settings.influx_url}/query",
                          params={"db": api.settings.influx_db},
                          data={"q": f"SELECT * FROM \"data\" WHERE \"device\" = '{device_id}' "
                                     f"AND \"variable\" = '{variable}'"})
    (series,) = response.json()["results"][0]["series"]
    present = set()
    for row in series["values"]:
        present.update(c for c, v in zip(series["columns"], row, strict=True) if v is not None)
    return present - {"time", "device", "variable", "slot"}


def v1_points(device_id: str) -> list[Point]:
    common: dict[str, Any] = {"device": device_id, "created_ns": RECV}
    return [
        Point(variable="temp", time_ns=T0, value=21.5, unit="C", group="5f0c1b2a3d4e5f6a7b8c9d0e",
              **common),
        Point(variable="temp", time_ns=T0 + 60 * 10**9, value=22, unit="C",
              group="5f0c1b2a3d4e5f6a7b8c9d0e", **common),
        Point(variable="status", time_ns=T0, value="ok", group="a" * 24, **common),
        Point(variable="door", time_ns=T0, value=True, group="mine", metadata='{"k":1}',
              **common),
        Point(variable="pos", time_ns=T0 + 30 * 10**9, lat=52.5, lng=13.4, group="b" * 24,
              **common),
        Point(variable="temp", time_ns=T0 + 60 * 10**9, value=9, slot=1,
              group="5f0c1b2a3d4e5f6a7b8c9d0e", **common),
    ]


def test_a_plain_number_is_one_field(client: httpx.Client, api: ApiServer,
                                     device: tuple[str, str]) -> None:
    assert post(client, {"variable": "plain", "value": 21.5}).status_code == 200
    assert fields_of(api, device[0], "plain") == {"value"}
    assert post(client, {"variable": "timed", "value": 1,
                         "time": "2024-01-01T00:00:00Z"}).status_code == 200
    assert fields_of(api, device[0], "timed") == {"value", "created_us"}


def test_derived_group_and_created_at_round_trip(client: httpx.Client, api: ApiServer,
                                                 device: tuple[str, str]) -> None:
    payload = [{"variable": "a", "value": 1}, {"variable": "b", "value": "x"},
               {"variable": "c", "value": 2, "time": "2024-01-01T00:00:00Z"},
               {"variable": "d", "value": 3, "group": "mine"}]
    assert post(client, payload).status_code == 200
    points = {p["variable"]: p for p in get(client, {"details": "true", "qty": 10})}
    groups = {v: p["group"] for v, p in points.items()}
    generated = groups["a"]
    assert groups == {"a": generated, "b": generated, "c": generated, "d": "mine"}
    assert generated.startswith("00000000")
    # every point of one message shows one created_at, the receive time
    assert len({p["created_at"] for p in points.values()}) == 1
    assert points["a"]["created_at"] == points["a"]["time"]
    assert fields_of(api, device[0], "d") == {"value", "group"}
    # the generated group finds exactly its message's points, whatever their time
    by_group = get(client, {"group": generated, "qty": 10})
    assert sorted(p["variable"] for p in by_group) == ["a", "b", "c"]
    assert get(client, {"group": generated, "query": "count"}) == 3
    assert get(client, {"group": generated, "query": "sum"}) == 3
    assert [p["variable"] for p in get(client, {"group": generated,
                                                "query": "last_value",
                                                "variable": "b"})] == ["b"]
    assert post(client, [{"variable": "a", "value": 5}]).status_code == 200
    assert len(get(client, {"group": generated, "qty": 10})) == 3
    assert client.delete("/data", params={"group": generated}).json()["result"] == (
        "3 Data Removed")
    assert sorted(p["variable"] for p in get(client, {"qty": 10})) == ["a", "d"]


def test_version_1_data_reads_edits_and_deletes_through_the_api(
        client: httpx.Client, api: ApiServer, device: tuple[str, str]) -> None:
    device_id = device[0]
    write_lines(api, [encode_point_v1(p) for p in v1_points(device_id)])
    points = get(client, {"details": "true", "qty": 20, "ordination": "asc"})
    points.sort(key=lambda p: (p["time"], p["variable"], p["id"]))
    assert [(p["variable"], p.get("value")) for p in points] == [
        ("door", True), ("status", "ok"), ("temp", 21.5), ("pos", None), ("temp", 22),
        ("temp", 9)]
    first = points[2]
    assert first == {
        "id": point_id(T0, "temp", 0), "variable": "temp", "value": 21.5, "unit": "C",
        "group": "5f0c1b2a3d4e5f6a7b8c9d0e", "time": "2024-01-01T00:00:00.000Z",
        "device": device_id, "origin": device_id, "created_at": format_iso_ms(RECV)}
    assert points[0]["metadata"] == {"k": 1} and points[0]["group"] == "mine"
    assert points[3]["location"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert points[5]["id"] == point_id(T0 + 60 * 10**9, "temp", 1)
    assert get(client, {"query": "count"}) == 6
    assert get(client, {"query": "count", "variable": "pos"}) == 1
    assert get(client, {"query": "sum", "variable": "temp"}) == 52.5
    assert get(client, {"group": "5f0c1b2a3d4e5f6a7b8c9d0e", "query": "count"}) == 3
    assert get(client, {"ids": first["id"]})[0]["value"] == 21.5
    last = {p["variable"]: p.get("value") for p in get(client, {"query": "last_value"})}
    assert last == {"temp": 22, "status": "ok", "door": True}
    (where,) = get(client, {"query": "last_location"})
    assert where["variable"] == "pos"
    # PUT rewrites a version 1 row as version 2; everything it did not change stays
    response = client.put("/data", json={"id": first["id"], "unit": "K"})
    assert response.json()["result"] == "1 item(s) updated"
    (edited,) = get(client, {"ids": first["id"], "details": "true"})
    assert edited == {**first, "unit": "K"}
    response = client.put("/data", json={"id": first["id"], "value": "now text"})
    (edited,) = get(client, {"ids": first["id"], "details": "true"})
    assert edited == {**first, "unit": "K", "value": "now text"}
    assert get(client, {"query": "count"}) == 6
    assert client.delete("/data", params={"ids": first["id"]}).json()["result"] == (
        "1 Data Removed")
    assert get(client, {"query": "count"}) == 5
    assert get(client, {"query": "count", "variable": "temp"}) == 2


def test_both_versions_count_together(client: httpx.Client, api: ApiServer,
                                      device: tuple[str, str]) -> None:
    write_lines(api, [encode_point_v1(p) for p in v1_points(device[0])])
    post(client, [{"variable": "temp", "value": 1}, {"variable": "note", "value": "n"},
                  {"variable": "flag", "value": False}, {"variable": "bare"},
                  {"variable": "pos", "location": {"lat": 1, "lng": 2}}])
    assert get(client, {"query": "count"}) == 11
    assert get(client, {"query": "count", "variable": "pos"}) == 2
    series = get(client, {"query": "aggregate", "function": "count", "interval": "1000 weeks",
                          "variable": "temp"})
    assert sum(p["value"] for p in series) == 4


def test_v2_lines_are_the_encoder_output(device: tuple[str, str]) -> None:
    point = Point(device=device[0], variable="v", time_ns=T0, created_ns=T0 + 5,
                  group=f"{T0 // 1000:024x}", value=20)
    assert encode_point(point) == f"data,device={device[0]},variable=v value=20.0 {T0}"
