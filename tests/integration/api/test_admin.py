"""/admin/... over real HTTP against the session's API, InfluxDB and Mosquitto."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from bridge.model.timeparse import format_iso_ms
from bridge.registry.devices import ADMIN_TOKEN_NAME
from bridge.registry.sqlite import SQLiteRegistry
from devicedata.procs import free_port
from devicedata.servers import InfluxServer
from support.api import ApiServer, failed, new_device, ok, start_api, stored_points
from support.mqtt import connect_when_allowed, wait_refused

HOSTILE = "<img src=x onerror=alert(1)>\"'; DROP TABLE devices;-- ü 🌡️"


def test_admin_token_is_generated_once_and_private(api: ApiServer) -> None:
    path = api.settings.data_dir / ADMIN_TOKEN_NAME
    assert path.read_text().strip() == api.state.admin_token
    assert len(api.state.admin_token) >= 43  # 32 random bytes, URL-safe base64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


ENDPOINTS = [
    ("GET", "/admin/devices"), ("POST", "/admin/devices"),
    ("PATCH", "/admin/devices/x"), ("DELETE", "/admin/devices/x"),
    ("GET", "/admin/devices/x/tokens"), ("POST", "/admin/devices/x/tokens"),
    ("GET", "/admin/devices/x/variables"), ("GET", "/admin/devices/x/series?variable=t"),
    ("DELETE", "/admin/tokens/abcdef12"),
    ("GET", "/admin/networks"), ("POST", "/admin/networks"),
    ("DELETE", "/admin/networks/net_abcdef12"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_a_wrong_or_missing_token(api: ApiServer, method: str,
                                                         path: str) -> None:
    _, device_token = api.device()
    real = api.state.admin_token
    for headers in ({}, {"admin-token": "wrong"}, {"authorization": "Bearer wrong"},
                    {"admin-token": real[:-1]}, {"authorization": real},
                    {"token": device_token}, {"authorization": f"Bearer {device_token}"}):
        response = httpx.request(method, api.url + path, headers=headers, json={"name": "x"})
        assert failed(response, 401) == "Authorization denied", headers


def test_both_header_forms_are_accepted(api: ApiServer) -> None:
    for headers in ({"admin-token": api.state.admin_token},
                    {"authorization": f"Bearer {api.state.admin_token}"},
                    {"authorization": f"bearer {api.state.admin_token}"}):
        assert isinstance(ok(httpx.get(api.url + "/admin/devices", headers=headers)), list)


def test_admin_routes_are_not_cross_origin(api: ApiServer) -> None:
    response = httpx.options(api.url + "/admin/devices", headers={
        "origin": "https://evil.example", "access-control-request-method": "GET"})
    assert "access-control-allow-origin" not in response.headers


def test_create_list_rename_with_a_hostile_name(api: ApiServer, admin: httpx.Client) -> None:
    created = new_device(admin, HOSTILE)
    assert created["name"] == HOSTILE
    assert created["mqtt_username"] == created["id"]
    assert created["mqtt_password"] == created["token"]
    assert created["topic"] == f"devices/{created['id']}/data"
    listed = {d["id"]: d for d in ok(admin.get("/admin/devices"))}
    assert listed[created["id"]] == {"id": created["id"], "name": HOSTILE,
                                     "created_at": created["created_at"], "last_input": None,
                                     "points_last_hour": 0, "active": False}
    renamed = ok(admin.patch(f"/admin/devices/{created['id']}", json={"name": HOSTILE + "2"}))
    assert renamed["name"] == HOSTILE + "2"
    listed = {d["id"]: d for d in ok(admin.get("/admin/devices"))}
    assert listed[created["id"]]["name"] == HOSTILE + "2"
    assert api.registry.get_device(created["id"]).name == HOSTILE + "2"


def test_the_new_device_can_send_and_is_counted(api: ApiServer, admin: httpx.Client) -> None:
    created = new_device(admin)
    with api.client(created["token"]) as device:
        ok(device.post("/data", json=[{"variable": "t", "value": i} for i in range(7)]))
        ok(device.post("/data", json={"variable": "old", "value": 1,
                                      "time": "2020-01-01T00:00:00Z"}))
    others = [new_device(admin) for _ in range(2)]
    before = api.store.statements_run
    listed = {d["id"]: d for d in ok(admin.get("/admin/devices"))}
    assert api.store.statements_run - before == 1  # one query for every device
    assert listed[created["id"]]["points_last_hour"] == 7
    assert listed[created["id"]]["last_input"] is not None
    assert all(listed[o["id"]]["points_last_hour"] == 0 for o in others)


def test_bad_requests(api: ApiServer, admin: httpx.Client) -> None:
    missing = "0" * 24
    failed(admin.post("/admin/devices", json={}), 400)
    failed(admin.post("/admin/devices", json={"name": 5}), 400)
    failed(admin.post("/admin/devices", json={"name": "a\nb"}), 400)
    failed(admin.post("/admin/devices", json={"name": "x" * 101}), 400)
    failed(admin.post("/admin/devices", json=["x"]), 400)
    failed(admin.post("/admin/devices", content=b"{nope", headers={"content-type": "x"}), 400)
    failed(admin.post("/admin/devices", content=b"x" * 100_000), 413)
    failed(admin.patch(f"/admin/devices/{missing}", json={"name": "x"}), 404)
    failed(admin.delete(f"/admin/devices/{missing}"), 404)
    failed(admin.get(f"/admin/devices/{missing}/tokens"), 404)
    failed(admin.post(f"/admin/devices/{missing}/tokens", json={"permission": "read"}), 404)
    failed(admin.get(f"/admin/devices/{missing}/variables"), 404)
    failed(admin.get(f"/admin/devices/{missing}/series", params={"variable": "t"}), 404)
    failed(admin.delete("/admin/tokens/zzzzzzzz"), 404)
    dev = new_device(admin)
    failed(admin.get(f"/admin/devices/{dev['id']}/series"), 400)
    for body in ({"permission": "admin"}, {}, {"permission": "read", "expires": "soon"},
                 {"permission": "read", "expires": 30}, {"permission": "read", "name": 1}):
        failed(admin.post(f"/admin/devices/{dev['id']}/tokens", json=body), 400)


def test_tokens_create_list_revoke(api: ApiServer, admin: httpx.Client) -> None:
    dev = new_device(admin)
    before = time.time_ns()
    made = ok(admin.post(f"/admin/devices/{dev['id']}/tokens",
                         json={"permission": "read", "expires": "30d", "name": HOSTILE}))
    token = made["token"]
    assert made["prefix"] == token[:8] and made["permission"] == "read"
    assert made["name"] == HOSTILE and made["status"] == "active"
    info = api.registry.authenticate(token)
    assert info is not None and info.expires_ns is not None
    assert before + 30 * 86400 * 10**9 <= info.expires_ns <= time.time_ns() + 30 * 86400 * 10**9
    listed = ok(admin.get(f"/admin/devices/{dev['id']}/tokens"))
    assert [t["prefix"] for t in listed] == [dev["token"][:8], token[:8]]
    assert all("token" not in t for t in listed)
    assert token not in admin.get(f"/admin/devices/{dev['id']}/tokens").text

    with api.client(token) as reader:
        ok(reader.get("/data"))
        failed(reader.post("/data", json={"variable": "t", "value": 1}), 401)
        revoked = ok(admin.delete(f"/admin/tokens/{token[:6]}"))
        assert revoked["status"] == "revoked" and revoked["revoked_at"]
        failed(reader.get("/data"), 401)  # at once: the API dropped its token cache
    ok(admin.delete(f"/admin/tokens/{dev['token']}"))  # by full token
    listed = ok(admin.get(f"/admin/devices/{dev['id']}/tokens"))
    statuses = {t["prefix"]: t["status"] for t in listed}
    assert statuses == {dev["token"][:8]: "revoked", token[:8]: "revoked"}


def test_an_expired_token_is_listed_as_expired_and_refused(
        api: ApiServer, admin: httpx.Client) -> None:
    dev = new_device(admin)
    issued = api.registry.create_token(dev["id"], "full", expires_ns=time.time_ns() + 10**9)
    with api.client(issued.token) as device:
        ok(device.get("/data"))
        time.sleep(1.1)
        failed(device.get("/data"), 401)  # at its expiry, not at the cache's TTL
    listed = ok(admin.get(f"/admin/devices/{dev['id']}/tokens"))
    statuses = {t["prefix"]: t["status"] for t in listed}
    assert statuses == {dev["token"][:8]: "active", issued.token[:8]: "expired"}


def test_tokens_with_a_serial(api: ApiServer, admin: httpx.Client) -> None:
    dev, other = new_device(admin), new_device(admin)
    made = ok(admin.post(f"/admin/devices/{dev['id']}/tokens",
                         json={"permission": "write", "serie_number": "70B3D57ED0000A01"}))
    assert made["serie_number"] == "70b3d57ed0000a01"
    listed = ok(admin.get(f"/admin/devices/{dev['id']}/tokens"))
    assert {t["prefix"]: t["serie_number"] for t in listed} == {
        dev["token"][:8]: None, made["token"][:8]: "70b3d57ed0000a01"}
    message = failed(admin.post(f"/admin/devices/{other['id']}/tokens", json={
        "permission": "full", "serie_number": "70-b3-d5-7e-d0-00-0a-01"}), 409)
    assert made["token"][:8] in message and dev["id"] in message
    for body in ({"permission": "write", "serie_number": 5},
                 {"permission": "write", "serie_number": "no spaces allowed"},
                 {"permission": "write", "serie_number": ""},
                 {"permission": "read", "serie_number": "70b3d57ed0000a02"}):
        assert "serie_number" in failed(
            admin.post(f"/admin/devices/{other['id']}/tokens", json=body), 400)
    assert len(ok(admin.get(f"/admin/devices/{other['id']}/tokens"))) == 1


def test_network_tokens_create_list_revoke(api: ApiServer, admin: httpx.Client) -> None:
    made = ok(admin.post("/admin/networks", json={"name": HOSTILE}))
    token = made["token"]
    assert token.startswith("net_") and made["prefix"] == token[:12]
    assert made["name"] == HOSTILE and made["status"] == "active"
    listed = ok(admin.get("/admin/networks"))
    assert made["prefix"] in [n["prefix"] for n in listed]
    assert all("token" not in n for n in listed) and token not in admin.get(
        "/admin/networks").text
    # A network token opens neither the admin API nor the device API.
    for headers in ({"admin-token": token}, {"authorization": f"Bearer {token}"}):
        failed(httpx.get(api.url + "/admin/networks", headers=headers), 401)
    with api.client(token) as as_device:
        failed(as_device.get("/data"), 401)
        failed(as_device.post("/data", json={"variable": "t", "value": 1}), 401)
        failed(as_device.get("/info"), 401)
    revoked = ok(admin.delete(f"/admin/networks/{token[:12]}"))
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert api.registry.authenticate_network(token) is None
    failed(admin.delete("/admin/networks/net_zzzzzz"), 404)
    for body in ({}, {"name": ""}, {"name": 7}, {"name": "x" * 101}):
        failed(admin.post("/admin/networks", json=body), 400)


def test_revoking_reaches_the_broker(api: ApiServer, admin: httpx.Client) -> None:
    dev = new_device(admin)
    connect_when_allowed(api.settings, dev["id"], dev["token"]).close()
    newer = ok(admin.post(f"/admin/devices/{dev['id']}/tokens",
                          json={"permission": "write"}))["token"]
    connect_when_allowed(api.settings, dev["id"], newer).close()
    ok(admin.delete(f"/admin/tokens/{newer}"))
    wait_refused(api.settings, dev["id"], newer)
    # The device's older token is its broker password again.
    connect_when_allowed(api.settings, dev["id"], dev["token"]).close()


def test_delete_removes_data_tokens_and_broker_credentials(
        api: ApiServer, admin: httpx.Client, influx: InfluxServer) -> None:
    dev = new_device(admin)
    other = new_device(admin)
    for created in (dev, other):
        with api.client(created["token"]) as device:
            ok(device.post("/data", json=[{"variable": "t", "value": 1},
                                          {"variable": "t", "value": 2,
                                           "time": "2021-05-01T00:00:00Z"}]))
    assert stored_points(influx, api, dev["id"]) == 2
    connect_when_allowed(api.settings, dev["id"], dev["token"]).close()

    deleted = ok(admin.delete(f"/admin/devices/{dev['id']}"))
    assert deleted["id"] == dev["id"]
    assert stored_points(influx, api, dev["id"]) == 0
    assert stored_points(influx, api, other["id"]) == 2
    with api.client(dev["token"]) as device:
        failed(device.get("/data"), 401)
    failed(admin.get(f"/admin/devices/{dev['id']}/tokens"), 404)
    assert dev["id"] not in {d["id"] for d in ok(admin.get("/admin/devices"))}
    wait_refused(api.settings, dev["id"], dev["token"])
    failed(admin.delete(f"/admin/devices/{dev['id']}"), 404)


def test_variables_show_the_newest_point_of_each(api: ApiServer, admin: httpx.Client) -> None:
    dev = new_device(admin)
    with api.client(dev["token"]) as device:
        ok(device.post("/data", json=[
            {"variable": "temperature", "value": 20, "unit": "°C",
             "time": "2024-01-01T00:00:00Z"},
            {"variable": "temperature", "value": 21.5, "unit": "°C"},
            {"variable": HOSTILE, "value": "<b>bold</b>", "unit": "<i>"},
            {"variable": "on", "value": True},
        ]))
    points = ok(admin.get(f"/admin/devices/{dev['id']}/variables"))
    by_name = {p["variable"]: p for p in points}
    assert sorted(by_name) == sorted(["temperature", HOSTILE, "on"])
    assert [p["variable"] for p in points] == sorted(by_name)
    assert by_name["temperature"]["value"] == 21.5 and by_name["temperature"]["unit"] == "°C"
    assert by_name[HOSTILE]["value"] == "<b>bold</b>" and by_name[HOSTILE]["unit"] == "<i>"
    assert by_name["on"]["value"] is True
    assert all(p["time"].endswith("Z") for p in points)


def test_series_is_raw_when_short_and_minute_means_when_long(
        api: ApiServer, admin: httpx.Client) -> None:
    dev = new_device(admin)
    now = time.time_ns()
    few = [{"variable": "few", "value": i, "time": format_iso_ms(now - (5 - i) * 60 * 10**9)}
           for i in range(5)]
    many = [{"variable": "many", "value": i % 10,
             "time": format_iso_ms(now - (150 - i) * 20 * 10**9)} for i in range(150)]
    words = [{"variable": "word", "value": "x"}]
    stale = [{"variable": "few", "value": 99, "time": format_iso_ms(now - 2 * 3600 * 10**9)}]
    with api.client(dev["token"]) as device:
        ok(device.post("/data", json=few + many + words + stale))
    base = f"/admin/devices/{dev['id']}/series"
    raw = ok(admin.get(base, params={"variable": "few"}))
    assert raw["interval"] is None and raw["variable"] == "few"
    assert [p["value"] for p in raw["points"]] == [0, 1, 2, 3, 4]
    assert [p["time"] for p in raw["points"]] == [p["time"] for p in few]
    means = ok(admin.get(base, params={"variable": "many"}))
    assert means["interval"] == "1 minute"
    assert 45 <= len(means["points"]) <= 61
    times = [p["time"] for p in means["points"]]
    assert times == sorted(times)
    assert all(0 <= p["value"] <= 9 for p in means["points"])
    assert ok(admin.get(base, params={"variable": "word"}))["points"] == []
    assert ok(admin.get(base, params={"variable": "nothing"}))["points"] == []


def test_no_point_is_stored_after_a_deletion_is_answered(
        api: ApiServer, admin: httpx.Client, influx: InfluxServer) -> None:
    """A second API process still has the device's token cached when the first deletes
    the device; it keeps accepting writes until its cache expires. None of them may stay."""
    other = start_api(api.settings.replace(http_port=free_port()),
                      SQLiteRegistry(Path(api.settings.registry_location.removeprefix(
                          "sqlite:///"))))
    dev = new_device(admin)
    accepted_at: list[float] = []
    stop = threading.Event()

    def write() -> None:
        with other.client(dev["token"]) as device:
            i = 0
            while not stop.is_set():
                i += 1
                if device.post("/data", json={"variable": "t", "value": i}).status_code == 200:
                    accepted_at.append(time.monotonic())

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(accepted_at) < 20:  # the other API has the token cached and writes go in
            time.sleep(0.01)
        ok(admin.delete(f"/admin/devices/{dev['id']}"))
        answered = time.monotonic()
        assert stored_points(influx, api, dev["id"]) == 0
        time.sleep(other.settings.token_cache_seconds + 0.5)  # the other cache has expired
    finally:
        stop.set()
        writer.join()
        other.stop()
        other.registry.close()
    assert stored_points(influx, api, dev["id"]) == 0
    assert not [t for t in accepted_at if t > answered]
