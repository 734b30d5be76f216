"""/admin/devices/{id}/export: CSV and JSON lines, filters, signed links, errors."""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
import pytest

from devicedata.procs import free_port
from support.api import ApiServer, MakeApi, failed, new_device, ok

HOSTILE = "<img src=x onerror=alert(1)>\"'; DROP TABLE devices;-- ü 🌡️"
POINTS: list[dict[str, Any]] = [
    {"variable": "temperature", "value": 20, "unit": "°C", "time": "2024-03-01T00:00:00Z"},
    {"variable": "temperature", "value": 20.5, "unit": "°C", "time": "2024-03-01T00:01:00Z",
     "group": "g1"},
    {"variable": "state", "value": "a, \"quoted\"\nline", "time": "2024-03-01T00:02:00Z"},
    {"variable": HOSTILE, "value": True, "time": "2024-03-01T00:03:00Z",
     "metadata": {"k": "v, \"x\"", "n": [1, 2]}},
    {"variable": "where", "location": {"lat": 52.5, "lng": 13.25},
     "time": "2024-03-01T00:04:00Z"},
    {"variable": "temperature", "value": -3, "time": "2024-03-02T00:00:00Z"},
]


@pytest.fixture
def filled(api: ApiServer, admin: httpx.Client) -> dict[str, Any]:
    dev = new_device(admin)
    with api.client(dev["token"]) as device:
        ok(device.post("/data", json=POINTS))
    return dev


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_every_point_oldest_first(admin: httpx.Client,
                                          filled: dict[str, Any]) -> None:
    response = admin.get(f"/admin/devices/{filled['id']}/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = rows(response.text)
    assert table[0] == ["time", "variable", "value", "unit", "group", "lat", "lng", "metadata"]
    body = table[1:]
    assert [r[0] for r in body] == sorted(p["time"].replace("Z", ".000Z") for p in POINTS)
    assert body[0][1:5] == ["temperature", "20", "°C", body[0][4]]  # a generated group
    assert body[1][1:5] == ["temperature", "20.5", "°C", "g1"]
    assert body[2][2] == "a, \"quoted\"\nline"
    assert body[3][1:3] == [HOSTILE, "true"]
    assert orjson.loads(body[3][7]) == {"k": "v, \"x\"", "n": [1, 2]}
    assert body[4][1:3] == ["where", ""] and body[4][5:7] == ["52.5", "13.25"]
    assert body[5][2] == "-3"


def test_jsonl_lines_are_the_points_get_returns(api: ApiServer, admin: httpx.Client,
                                                filled: dict[str, Any]) -> None:
    response = admin.get(f"/admin/devices/{filled['id']}/export", params={"format": "jsonl"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    with api.client(filled["token"]) as device:
        got = ok(device.get("/data", params={"qty": 100, "ordination": "asc"}))
    assert lines == got


def test_filters_time_range_and_variables(admin: httpx.Client,
                                          filled: dict[str, Any]) -> None:
    url = f"/admin/devices/{filled['id']}/export"
    day = rows(admin.get(url, params={"start_date": "2024-03-01",
                                      "end_date": "2024-03-01"}).text)[1:]
    assert len(day) == 5
    chosen = rows(admin.get(url + "?variable=temperature&variable=where").text)[1:]
    assert [r[1] for r in chosen] == ["temperature", "temperature", "where", "temperature"]
    one = rows(admin.get(url, params={"variables[]": "state",
                                      "start_date": "2024-03-01T00:01:30Z"}).text)[1:]
    assert len(one) == 1 and one[0][1] == "state"
    assert rows(admin.get(url, params={"start_date": "2030-01-01"}).text) == [
        ["time", "variable", "value", "unit", "group", "lat", "lng", "metadata"]]
    assert admin.get(url, params={"format": "jsonl", "variable": "nothing"}).text == ""


def test_bad_requests(api: ApiServer, admin: httpx.Client,
                      filled: dict[str, Any]) -> None:
    url = f"/admin/devices/{filled['id']}/export"
    assert "format" in failed(admin.get(url, params={"format": "xml"}), 400)
    failed(admin.get(url, params={"start_date": "soon"}), 400)
    failed(admin.get(f"/admin/devices/{'0' * 24}/export"), 404)
    failed(httpx.get(api.url + url), 401)
    failed(httpx.get(api.url + url, headers={"token": filled["token"]}), 401)
    failed(httpx.post(api.url + url + "-link"), 401)


def test_signed_link_works_without_a_header_and_only_as_signed(
        api: ApiServer, admin: httpx.Client, filled: dict[str, Any]) -> None:
    link = ok(admin.post(f"/admin/devices/{filled['id']}/export-link",
                         params={"format": "jsonl", "variable": "temperature"}))
    assert link["url"].startswith(f"/admin/devices/{filled['id']}/export?")
    response = httpx.get(api.url + link["url"])
    assert response.status_code == 200
    assert len(response.text.splitlines()) == 3

    path, query = urlsplit(link["url"])[2:4]
    params = dict(parse_qsl(query))
    tampered = [{**params, "variable": "state"}, {**params, "expires": str(int(time.time()) + 60)},
                {**params, "signature": "0" * 64}, {k: v for k, v in params.items()
                                                    if k != "signature"}]
    other = new_device(admin)
    for changed in tampered:
        failed(httpx.get(f"{api.url}{path}?{urlencode(changed)}"), 401)
    failed(httpx.get(f"{api.url}/admin/devices/{other['id']}/export?{query}"), 401)
    failed(admin.post(f"/admin/devices/{filled['id']}/export-link",
                      params={"format": "pdf"}), 400)


def test_an_unreachable_influxdb_is_a_503_before_the_download_starts(
        make_api: MakeApi) -> None:
    other = make_api(influx_url=f"http://127.0.0.1:{free_port()}", influx_timeout=2.0)
    device = other.registry.create_device("offline")
    response = httpx.get(f"{other.url}/admin/devices/{device.id}/export",
                         headers={"admin-token": other.state.admin_token})
    assert response.status_code == 503 and response.json()["status"] is False
