"""The console's reads: history pages, charts over a range, sparklines, deleting a point,
the device list's activity mark and /admin/info."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from api.history import CHART_POINTS, chart_interval
from bridge.model.timeparse import format_iso_ms
from support.api import ApiServer, failed, new_device, ok

S = 10**9


def send(api: ApiServer, token: str, points: list[dict[str, Any]]) -> None:
    with api.client(token) as device:
        for i in range(0, len(points), 5000):
            ok(device.post("/data", json=points[i:i + 5000]))


@pytest.fixture
def series(api: ApiServer, admin: httpx.Client) -> tuple[dict[str, Any], int]:
    """A device with 120 points of ``t`` a minute apart (some sharing a time), and others."""
    dev = new_device(admin)
    end = (time.time_ns() // S - 10) * S
    points = [{"variable": "t", "value": i, "time": format_iso_ms(end - (119 - i) * 60 * S)}
              for i in range(120)]
    # Three more at the time of point 100: same variable and time, slots 1..3 in one message.
    points += [{"variable": "t", "value": 1000 + k, "time": points[100]["time"]}
               for k in range(3)]
    points += [{"variable": "other", "value": "x", "time": points[50]["time"]}]
    send(api, dev["token"], points)
    return dev, end


@pytest.mark.parametrize("qty", [1, 2, 3, 7, 200])
def test_history_pages_cover_everything_once_newest_first(
        admin: httpx.Client, series: tuple[dict[str, Any], int], qty: int) -> None:
    dev, _ = series
    url = f"/admin/devices/{dev['id']}/history"
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"variable": "t", "qty": qty}
        if cursor:
            params["before"] = cursor
        page = ok(admin.get(url, params=params))
        seen += page["points"]
        pages += 1
        cursor = page["older"]
        if cursor is None:
            break
        assert len(page["points"]) == qty
    assert pages == -(-123 // qty)
    assert len({p["id"] for p in seen}) == len(seen) == 123
    times = [p["time"] for p in seen]
    assert times == sorted(times, reverse=True)
    assert seen[-1]["value"] == 0 and all(p["variable"] == "t" for p in seen)
    assert [p["value"] for p in seen[18:23]] == [101, 100, 1000, 1001, 1002]  # slot order


def test_history_within_a_range(admin: httpx.Client,
                                series: tuple[dict[str, Any], int]) -> None:
    dev, end = series
    page = ok(admin.get(f"/admin/devices/{dev['id']}/history", params={
        "variable": "t", "start_date": format_iso_ms(end - 10 * 60 * S),
        "end_date": format_iso_ms(end - 5 * 60 * S), "qty": 100}))
    assert [p["value"] for p in page["points"]] == [114, 113, 112, 111, 110, 109]
    assert page["older"] is None


def test_chart_is_raw_when_few_and_means_when_many(api: ApiServer, admin: httpx.Client,
                                                   series: tuple[dict[str, Any], int]) -> None:
    dev, end = series
    url = f"/admin/devices/{dev['id']}/chart"
    raw = ok(admin.get(url, params={"variable": "t", "start_date": "3 hours"}))
    assert raw["interval"] is None and len(raw["points"]) == 123
    many = new_device(admin)
    start = end - 2000 * 10 * S
    send(api, many["token"], [{"variable": "m", "value": i % 7,
                               "time": format_iso_ms(start + i * 10 * S)} for i in range(2000)])
    means = ok(admin.get(f"/admin/devices/{many['id']}/chart", params={
        "variable": "m", "start_date": format_iso_ms(start), "end_date": format_iso_ms(end)}))
    assert means["interval"] == chart_interval(end - start) == 60
    assert 300 <= len(means["points"]) <= CHART_POINTS
    assert all(0 <= p["value"] <= 6 for p in means["points"])
    failed(admin.get(url), 400)
    failed(admin.get(url, params={"variable": "t", "start_date": "2024-01-02",
                                  "end_date": "2024-01-01"}), 400)


def test_chart_interval_keeps_within_the_budget() -> None:
    for span_s in (1, 499, 501, 3600, 86400, 7 * 86400, 100 * 86400, 3000 * 86400):
        seconds = chart_interval(span_s * S)
        assert span_s / seconds <= CHART_POINTS


def test_sparks_give_every_numeric_variable_in_one_read(api: ApiServer,
                                                        admin: httpx.Client) -> None:
    dev = new_device(admin)
    now = time.time_ns()
    send(api, dev["token"], [
        *({"variable": "a", "value": i, "time": format_iso_ms(now - (30 - i) * 60 * S)}
          for i in range(30)),
        {"variable": "b", "value": 2.5}, {"variable": "s", "value": "text"},
        {"variable": "old", "value": 1, "time": format_iso_ms(now - 3 * 3600 * S)}])
    before = api.store.statements_run
    result = ok(admin.get(f"/admin/devices/{dev['id']}/sparks"))
    assert api.store.statements_run - before == 1
    assert sorted(result["series"]) == ["a", "b"]
    assert [p["value"] for p in result["series"]["a"]] == list(range(30))
    assert result["series"]["b"][0]["value"] == 2.5


def test_delete_one_point(api: ApiServer, admin: httpx.Client,
                          series: tuple[dict[str, Any], int]) -> None:
    dev, _ = series
    url = f"/admin/devices/{dev['id']}"
    newest = ok(admin.get(url + "/history", params={"variable": "t", "qty": 2}))["points"]
    assert ok(admin.delete(url + "/data", params={"id": newest[0]["id"]})) == "1 Data Removed"
    after = ok(admin.get(url + "/history", params={"variable": "t", "qty": 1}))["points"]
    assert after == newest[1:]
    failed(admin.delete(url + "/data", params={"id": newest[0]["id"]}), 404)
    failed(admin.delete(url + "/data"), 400)
    failed(admin.delete(url + "/data", params={"id": "nope"}), 400)
    other = new_device(admin)  # another device's point id deletes nothing there
    failed(admin.delete(f"/admin/devices/{other['id']}/data", params={"id": newest[1]["id"]}),
           404)


def test_bad_history_parameters(admin: httpx.Client,
                                series: tuple[dict[str, Any], int]) -> None:
    url = f"/admin/devices/{series[0]['id']}/history"
    failed(admin.get(url), 400)
    for bad in ({"qty": 0}, {"qty": 501}, {"qty": "x"}, {"before": "1"}, {"before": "a.b"},
                {"start_date": "whenever"}):
        failed(admin.get(url, params={"variable": "t", **bad}), 400)
    failed(admin.get(f"/admin/devices/{'0' * 24}/history", params={"variable": "t"}), 404)


def test_activity_mark_and_info(api: ApiServer, admin: httpx.Client) -> None:
    quiet, busy = new_device(admin), new_device(admin)
    send(api, busy["token"], [{"variable": "x", "value": 1}])
    listed = {d["id"]: d for d in ok(admin.get("/admin/devices"))}
    assert listed[busy["id"]]["active"] is True
    assert listed[quiet["id"]]["active"] is False
    info = ok(admin.get("/admin/info"))
    assert info["mqtt_port"] == api.settings.mqtt_port
    assert info["mqtt_tls_port"] is None and info["ca_file"] == ""
    assert info["active_seconds"] == api.settings.active_seconds


def test_info_names_what_devices_dial(make_api: Any) -> None:
    server = make_api(public_mqtt_port=-1, public_mqtt_tls_port=8883,
                      public_ca_file="/srv/dd/tls/ca.crt")
    with httpx.Client(base_url=server.url, headers={"admin-token": server.state.admin_token},
                      timeout=30) as admin:
        info = ok(admin.get("/admin/info"))
    assert (info["mqtt_port"], info["mqtt_tls_port"], info["ca_file"]) == (
        None, 8883, "/srv/dd/tls/ca.crt")


@pytest.mark.parametrize("path", ["/admin/info", "/admin/devices/x/history?variable=t",
                                  "/admin/devices/x/chart?variable=t", "/admin/devices/x/sparks",
                                  "/admin/devices/x/data?id=1"])
def test_admin_token_required(api: ApiServer, path: str) -> None:
    method = "DELETE" if path.endswith("id=1") else "GET"
    failed(httpx.request(method, api.url + path, headers={"admin-token": "nope"}), 401)
