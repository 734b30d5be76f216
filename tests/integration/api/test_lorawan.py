"""LoRaWAN network servers through the real API into the real InfluxDB: the documented
ChirpStack and The Things Stack payloads (tests/fixtures/lorawan) posted with a network
token, read back with the official TagoIO SDK and the device's own token."""

from __future__ import annotations

import copy
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tagoio_sdk import Device

from bridge.limits import Gate
from devicedata.servers import InfluxServer
from support.api import ApiServer, stored_points
from support.metrics import samples, value
from support.mqtt import wait_until

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lorawan"
RADIO = {"rssi", "snr", "fcnt", "fport", "frequency", "spreading_factor", "gateway_count"}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


@dataclass
class Sensor:
    """A device whose write token carries a fresh DevEUI, and a full token to read."""

    device_id: str
    token: str
    eui: str
    serial_token: str
    sdk: Device


@pytest.fixture
def network(api: ApiServer) -> str:
    return api.registry.create_network(f"net-{secrets.token_hex(3)}").token


@pytest.fixture
def sensor(api: ApiServer) -> Sensor:
    device_id, token = api.device("full")
    eui = secrets.token_hex(8)
    serial_token = api.registry.create_token(device_id, "write", serial=eui.upper()).token
    sdk = Device({"token": token, "region": {"api": api.url, "sse": api.url}})
    return Sensor(device_id, token, eui, serial_token, sdk)


@pytest.fixture
def hooks(api: ApiServer, network: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30, headers={"token": network}) as client:
        yield client


def chirpstack(eui: str, name: str = "chirpstack-up-codec.json", **changes: Any) -> dict[str, Any]:
    body = fixture(name)
    body["deviceInfo"]["devEui"] = eui
    body.update(changes)
    return body


def ttn(eui: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture("ttn-uplink.json"))
    body["end_device_ids"]["dev_eui"] = eui.upper()  # as The Things Stack writes it
    body["uplink_message"].update(changes)
    return body


def answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] is (status == 200)
    return body["result"] if status == 200 else body["message"]


def times(points: dict[str, dict[str, Any]]) -> set[datetime]:
    """The points' times as the SDK parses them (naive UTC datetimes)."""
    return {p["time"].replace(tzinfo=None) for p in points.values()}


def by_variable(points: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {p["variable"]: p for p in points}
    assert len(found) == len(points)
    return found


def test_chirpstack_uplink_read_back_with_the_sdk(hooks: httpx.Client, sensor: Sensor) -> None:
    assert answer(hooks.post("/integrations/chirpstack", params={"event": "up"},
                             json=chirpstack(sensor.eui))) == "8 Data Added"
    points = by_variable(sensor.sdk.getData({"qty": 100}))
    assert set(points) == {"temp"} | RADIO
    assert points["temp"]["value"] == 22.5
    assert {n: (points[n]["value"], points[n].get("unit")) for n in RADIO} == {
        "rssi": (-36, "dBm"), "snr": (10.5, "dB"), "fcnt": (0, None), "fport": (1, None),
        "frequency": (867100000, "Hz"), "spreading_factor": (11, None),
        "gateway_count": (1, None)}
    assert all(points[n]["metadata"] == {"gateway_id": "0016c001f153a14c"} for n in RADIO)
    assert "metadata" not in points["temp"]
    assert times(points) == {datetime(2022, 7, 18, 9, 34, 15, 775000)}
    assert len({p["group"] for p in points.values()}) == 1
    assert all(p["device"] == sensor.device_id for p in points.values())


def test_ttn_uplink_read_back_with_the_sdk(api: ApiServer, network: str,
                                           sensor: Sensor) -> None:
    response = httpx.post(f"{api.url}/integrations/ttn", json=ttn(sensor.eui),
                          headers={"authorization": f"Bearer {network}"})
    assert answer(response) == "9 Data Added"
    points = by_variable(sensor.sdk.getData({"qty": 100}))
    assert {n: points[n]["value"] for n in points} == {
        "temperature": 1.0, "luminosity": 0.64, "rssi": -35, "snr": 5, "fcnt": 1,
        "fport": 0, "frequency": 868300000, "spreading_factor": 7, "gateway_count": 1}
    assert points["rssi"]["metadata"] == {"gateway_id": "gtw1"}
    assert times(points) == {datetime(2020, 2, 12, 15, 15, 45, 789000)}
    assert len({p["group"] for p in points.values()}) == 1


def test_decoded_location_and_raw_payload(hooks: httpx.Client, sensor: Sensor) -> None:
    located = chirpstack(sensor.eui, object={"gps": {"latitude": 45.5, "longitude": -73.6},
                                             "battery": 3.6}, fCnt=7)
    assert answer(hooks.post("/integrations/chirpstack?event=up", json=located)) \
        == "8 Data Added"
    points = by_variable(sensor.sdk.getData({"qty": 100}))
    assert "gps_latitude" not in points and points["battery"]["value"] == 3.6
    assert {json.dumps(p["location"]) for p in points.values()} == {
        json.dumps({"type": "Point", "coordinates": [-73.6, 45.5]})}
    (last,) = sensor.sdk.getData({"variables": ["battery"], "query": "last_location"})
    assert last["location"]["coordinates"] == [-73.6, 45.5]

    raw = chirpstack(sensor.eui, name="chirpstack-up.json", fCnt=8,
                     time="2022-07-18T09:40:00Z")
    assert answer(hooks.post("/integrations/chirpstack?event=up", json=raw)) == "8 Data Added"
    (payload,) = sensor.sdk.getData({"variables": ["payload"]})
    assert payload["value"] == "aa" and "location" not in payload


def test_redelivery_stores_nothing_twice(hooks: httpx.Client, sensor: Sensor) -> None:
    body = chirpstack(sensor.eui)
    for _ in range(3):
        answer(hooks.post("/integrations/chirpstack?event=up", json=body))
    (count,) = sensor.sdk.getData({"query": "count"})
    assert count["value"] == 8


def test_chirpstack_status_is_stored_and_other_events_are_not(
        api: ApiServer, influx: InfluxServer, hooks: httpx.Client, sensor: Sensor) -> None:
    for event, name in (("join", "chirpstack-join.json"), ("log", "chirpstack-join.json"),
                        ("weird<>", "chirpstack-join.json")):
        result = answer(hooks.post(f"/integrations/chirpstack?event={event}",
                                   json=chirpstack(sensor.eui, name=name)))
        assert "is not stored" in result and "<" not in result
    accept = fixture("ttn-join-accept.json")
    accept["end_device_ids"]["dev_eui"] = sensor.eui
    assert "join_accept is not stored" in answer(hooks.post("/integrations/ttn", json=accept))
    assert stored_points(influx, api, sensor.device_id) == 0

    status = chirpstack(sensor.eui, name="chirpstack-status.json")
    assert answer(hooks.post("/integrations/chirpstack?event=status", json=status)) \
        == "3 Data Added"
    points = by_variable(sensor.sdk.getData({"qty": 100}))
    assert {n: (p["value"], p.get("unit")) for n, p in points.items()} == {
        "margin": (10, "dB"), "battery_level": (88.3, "%"),
        "external_power_source": (False, None)}


def test_resolve(api: ApiServer, hooks: httpx.Client, sensor: Sensor) -> None:
    spelled = "-".join(sensor.eui[i:i + 2].upper() for i in range(0, 16, 2))
    result = answer(hooks.get(f"/integration/network/resolve/{spelled}"))
    assert result == {"device": sensor.device_id, "serie_number": sensor.eui,
                      "token_prefix": sensor.serial_token[:8], "permission": "write"}
    assert sensor.serial_token not in json.dumps(result)
    unknown = secrets.token_hex(8)
    assert unknown in answer(hooks.get(f"/integration/network/resolve/{unknown}"), 404)
    assert "serie_number" in answer(hooks.get("/integration/network/resolve/a%20b"), 400)
    for headers in ({}, {"token": sensor.token}, {"token": sensor.serial_token},
                    {"authorization": "Bearer net_" + "0" * 40}):
        response = httpx.get(f"{api.url}/integration/network/resolve/{sensor.eui}",
                             headers=headers)
        assert answer(response, 401) == "Authorization denied"


def test_a_revoked_network_token_is_refused(api: ApiServer, influx: InfluxServer,
                                            network: str, sensor: Sensor) -> None:
    with httpx.Client(base_url=api.url, headers={"admin-token": api.state.admin_token}) as admin:
        answer(admin.delete(f"/admin/networks/{network[:12]}"))
    for headers in ({"token": network}, {"authorization": network}):
        for path, body in (("/integrations/chirpstack?event=up", chirpstack(sensor.eui)),
                           ("/integrations/ttn", ttn(sensor.eui))):
            response = httpx.post(api.url + path, json=body, headers=headers)
            assert answer(response, 401) == "Authorization denied"
        response = httpx.get(f"{api.url}/integration/network/resolve/{sensor.eui}",
                             headers=headers)
        assert answer(response, 401) == "Authorization denied"
    assert stored_points(influx, api, sensor.device_id) == 0


def test_device_tokens_cannot_post_uplinks_and_network_tokens_cannot_use_data(
        api: ApiServer, influx: InfluxServer, network: str, sensor: Sensor) -> None:
    for token in (sensor.token, sensor.serial_token, api.state.admin_token):
        response = httpx.post(f"{api.url}/integrations/chirpstack?event=up",
                              json=chirpstack(sensor.eui), headers={"token": token})
        assert answer(response, 401) == "Authorization denied"
    with api.client(network) as as_device:
        assert answer(as_device.post("/data", json={"variable": "t", "value": 1}), 401)
        assert answer(as_device.get("/data"), 401)
        assert answer(as_device.delete("/data"), 401)
    assert stored_points(influx, api, sensor.device_id) == 0


def test_unknown_eui_is_404_counted_and_logged_once_a_minute(
        api: ApiServer, influx: InfluxServer, hooks: httpx.Client,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(api.state, "unknown_euis", Gate(every=60.0, clock=lambda: now[0]))
    monkeypatch.setattr(api.state, "unknown_eui_lines",
                        Gate(every=6.0, burst=10, clock=lambda: now[0]))
    points_before = all_points(influx, api)
    before = samples(hooks.get("/metrics").text)
    eui, other = secrets.token_hex(8), secrets.token_hex(8)
    caplog.set_level(logging.WARNING, logger="devicedata.api")
    for target, times in ((eui, 3), (other, 1)):
        for _ in range(times):
            message = answer(hooks.post("/integrations/ttn", json=ttn(target)), 404)
            assert target in message and "--serial" in message
    now[0] += 61
    answer(hooks.post("/integrations/chirpstack?event=up", json=chirpstack(eui)), 404)
    lines = [r.getMessage() for r in caplog.records if "lorawan_unknown_device" in r.message]
    assert [line.split("dev_eui=")[1].split()[0] for line in lines] == [eui, other, eui]
    assert lines[-1].endswith("held_back=2")
    after = samples(hooks.get("/metrics").text)
    name = "devicedata_lorawan_uplinks_total"
    for net, expected in (("ttn", 4), ("chirpstack", 1)):
        assert value(after, name, network=net, outcome="unknown_device") \
            - value(before, name, network=net, outcome="unknown_device") == expected
    labels = {dict(k[1]).get("outcome") for k in after if k[0] == name}
    assert labels <= {"stored", "ignored", "unknown_device", "invalid", "too_large",
                      "unauthorized", "unavailable", "failed"}
    assert not any(eui in k[0] or any(eui in v for _, v in k[1]) for k in after)
    assert all_points(influx, api) == points_before

    # However many DevEUIs a network token makes up, at most ten lines a minute.
    caplog.clear()
    now[0] += 61
    for _ in range(30):
        answer(hooks.post("/integrations/ttn", json=ttn(secrets.token_hex(8))), 404)
    assert sum("lorawan_unknown_device" in r.message for r in caplog.records) == 10


def all_points(influx: InfluxServer, api: ApiServer) -> int:
    result = influx.query('SELECT count("created") FROM "data"', db=api.settings.influx_db)
    series = result["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def test_a_device_without_a_serial_is_unreachable(
        api: ApiServer, influx: InfluxServer, hooks: httpx.Client, sensor: Sensor) -> None:
    plain_id, plain_token = api.device("full")
    # Its device id, its token, or anything else in the EUI field: never a way in.
    for eui in (plain_id, plain_token, plain_token[:16]):
        response = hooks.post("/integrations/chirpstack?event=up", json=chirpstack(eui))
        assert response.status_code in (400, 404), response.text
    answer(hooks.post("/integrations/chirpstack?event=up", json=chirpstack(sensor.eui)))
    assert stored_points(influx, api, plain_id) == 0
    assert stored_points(influx, api, sensor.device_id) == 8
    # A revoked or expired serial token opens nothing either (revoked through the admin
    # API, which makes this process forget the serial at once, not after its cache's TTL).
    httpx.delete(f"{api.url}/admin/tokens/{sensor.serial_token}",
                 headers={"admin-token": api.state.admin_token}).raise_for_status()
    message = answer(hooks.post("/integrations/chirpstack?event=up",
                                json=chirpstack(sensor.eui, fCnt=99)), 404)
    assert sensor.eui in message
    assert stored_points(influx, api, sensor.device_id) == 8


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/integrations/chirpstack?event=up", {"deviceInfo": {}}, "deviceInfo.devEui"),
    ("/integrations/chirpstack?event=up", {"deviceInfo": {"devEui": "zz"}}, "deviceInfo.devEui"),
    ("/integrations/chirpstack?event=up", [1], "body"),
    ("/integrations/chirpstack", {}, "event"),
    ("/integrations/ttn", {"uplink_message": {}}, "end_device_ids"),
    ("/integrations/ttn", {"end_device_ids": {}, "uplink_message": {}}, "end_device_ids.dev_eui"),
])
def test_malformed_bodies_are_400_naming_the_field(hooks: httpx.Client, path: str,
                                                   body: Any, field: str) -> None:
    response = hooks.post(path, json=body)
    message = answer(response, 400)
    assert field in message
    assert any(e["field"] == field for e in response.json()["errors"])


def test_hostile_decoded_payloads_store_nothing(
        api: ApiServer, influx: InfluxServer, hooks: httpx.Client, sensor: Sensor) -> None:
    for decoded in ({"ok": 1, "new\nline": 2}, {"ok": 1, "v": None}, {"x" * 500: 1},
                    {"a": {"b": 1}, "a_b": 2}):
        response = hooks.post("/integrations/ttn", json=ttn(sensor.eui,
                                                             decoded_payload=decoded))
        assert "uplink_message.decoded_payload" in answer(response, 400)
    message = answer(hooks.post("/integrations/chirpstack?event=up", content=b"\x08\x01",
                                headers={"content-type": "application/octet-stream"}), 400)
    assert "JSON" in message
    answer(hooks.post("/integrations/chirpstack?event=up", content=b"{" * 200), 400)
    wide = {f"k{i}": i for i in range(api.settings.max_points + 1)}
    answer(hooks.post("/integrations/ttn", json=ttn(sensor.eui, decoded_payload=wide)), 413)
    huge = ttn(sensor.eui, decoded_payload={"v": "x" * api.settings.max_body_bytes})
    answer(hooks.post("/integrations/ttn", json=huge), 413)
    assert stored_points(influx, api, sensor.device_id) == 0


def test_uplinks_are_spooled_while_influxdb_is_down(
        api: ApiServer, influx: InfluxServer, hooks: httpx.Client, sensor: Sensor) -> None:
    influx.stop()
    try:
        response = hooks.post("/integrations/chirpstack", params={"event": "up"},
                              json=chirpstack(sensor.eui))
        assert answer(response) == "8 Data Added"  # durable: in the spool, fsynced
        assert api.sink.spool.records > 0
    finally:
        influx.start()
    sink = api.sink
    wait_until(lambda: sink.spool.empty and not sink.spooling, timeout=30, what="the drain")
    points = by_variable(sensor.sdk.getData({"qty": 100}))
    assert set(points) == {"temp"} | RADIO and points["temp"]["value"] == 22.5


def test_a_chatty_device_spends_its_own_allowance(make_api: Any) -> None:
    server = make_api(http_requests_per_second=0.001, http_requests_burst=3)
    network = server.registry.create_network("n").token
    euis = []
    for _ in range(2):
        device_id, _ = server.device("full")
        euis.append(secrets.token_hex(8))
        server.registry.create_token(device_id, "write", serial=euis[-1])
    with httpx.Client(base_url=server.url, timeout=30, headers={"token": network}) as client:
        def post(eui: str) -> httpx.Response:
            return client.post("/integrations/chirpstack", params={"event": "up"},
                               json=chirpstack(eui))

        assert [post(euis[0]).status_code for _ in range(5)] == [200, 200, 200, 429, 429]
        refused = post(euis[0])
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert post(euis[1]).status_code == 200  # another device behind the same network
