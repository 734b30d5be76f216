"""ChirpStack and The Things Stack uplinks into points (bridge.model.formats.lorawan and
its two readers), from the network servers' own documented examples (tests/fixtures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import PayloadTooLarge, ValidationError
from bridge.model.formats.chirpstack import parse_chirpstack
from bridge.model.formats.lorawan import Uplink
from bridge.model.formats.ttn import message_type, parse_ttn
from bridge.model.points import Point, validate_points
from bridge.model.timeparse import parse_iso

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lorawan"
RECV = 1_800_000_000_123_456_789


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def store(uplink: Uplink, max_points: int = 100) -> dict[str, Point]:
    """The uplink's points by variable (each variable once)."""
    converted = uplink.convert(received_ns=RECV, max_points=max_points)
    points = converted.validate(lambda body: validate_points(
        body, device_id="dev", received_ns=RECV, max_points=max_points))
    by_name = {p.variable: p for p in points}
    assert len(by_name) == len(points), [p.variable for p in points]
    return by_name


def refused(uplink: Uplink) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        store(uplink)
    return err.value


def up(**changes: Any) -> dict[str, Any]:
    body = fixture("chirpstack-up-codec.json")
    body.update(changes)
    return body


def test_chirpstack_documented_uplink_without_codec() -> None:
    uplink = parse_chirpstack("up", fixture("chirpstack-up.json"))
    assert uplink.eui == "0101010101010101"
    points = store(uplink)
    values = {name: (p.value, p.unit) for name, p in points.items()}
    assert values == {
        "payload": ("aa", None),  # "qg==" is the one byte 0xaa
        "rssi": (-36, "dBm"), "snr": (10.5, "dB"), "fcnt": (0, None), "fport": (1, None),
        "frequency": (867100000, "Hz"), "spreading_factor": (11, None),
        "gateway_count": (1, None),
    }
    time_ns = parse_iso("2022-07-18T09:34:15.775023242+00:00")
    assert {p.time_ns for p in points.values()} == {time_ns}
    assert len({p.group for p in points.values()}) == 1
    group = points["rssi"].group
    assert len(group) == 24 and int(group, 16) >= 0
    radio = {n for n in values if n != "payload"}
    assert all(points[n].metadata == '{"gateway_id":"0016c001f153a14c"}' for n in radio)
    assert points["payload"].metadata is None
    assert all(p.lat is None for p in points.values())


def test_chirpstack_decoded_object_replaces_the_raw_payload() -> None:
    points = store(parse_chirpstack("up", fixture("chirpstack-up-codec.json")))
    assert points["temp"].value == 22.5 and "payload" not in points
    assert points["temp"].metadata is None and points["fport"].value == 1


def test_ttn_documented_uplink() -> None:
    uplink = parse_ttn(fixture("ttn-uplink.json"))
    assert uplink.eui == "0004a30b001c0530"
    points = store(uplink)
    values = {name: (p.value, p.unit) for name, p in points.items()}
    assert values == {
        "temperature": (1.0, None), "luminosity": (0.64, None),
        "rssi": (-35, "dBm"), "snr": (5, "dB"), "fcnt": (1, None),
        "fport": (0, None),  # the example leaves f_port out, which means 0
        "frequency": (868300000, "Hz"), "spreading_factor": (7, None),
        "gateway_count": (1, None),
    }
    # The Network Server's receive time, not the Application Server's (top level).
    time_ns = parse_iso("2020-02-12T15:15:45.789585559Z")
    assert {p.time_ns for p in points.values()} == {time_ns}
    assert points["snr"].metadata == '{"gateway_id":"gtw1"}'
    # The registry location (uplink_message.locations.user) is the device's, not a reading.
    assert all(p.lat is None for p in points.values())


def test_ttn_message_types() -> None:
    assert message_type(fixture("ttn-uplink.json")) == "uplink_message"
    assert message_type(fixture("ttn-join-accept.json")) == "join_accept"
    assert message_type({"end_device_ids": {}}) is None
    assert message_type([1]) is None


def test_chirpstack_status_event() -> None:
    points = store(parse_chirpstack("status", fixture("chirpstack-status.json")))
    values = {name: (p.value, p.unit) for name, p in points.items()}
    assert values == {"margin": (10, "dB"), "battery_level": (88.3, "%"),
                      "external_power_source": (False, None)}
    body = fixture("chirpstack-status.json") | {"externalPowerSource": True}
    body.pop("batteryLevel")
    points = store(parse_chirpstack("status", body))
    assert "battery_level" not in points and points["external_power_source"].value is True


@pytest.mark.parametrize(("decoded", "lat", "lng", "variables"), [
    ({"latitude": 45.5, "longitude": -73.5, "temp": 3}, 45.5, -73.5, {"temp"}),
    ({"Latitude": 45.5, "Longitude": 7, "Bat": 3.6}, 45.5, 7.0, {"Bat"}),
    ({"gps": {"lat": 1.5, "lng": 2.5, "alt": 30}, "t": 1}, 1.5, 2.5, {"gps_alt", "t"}),
    ({"position": {"lat": -1, "lon": 179.9}}, -1.0, 179.9, set()),
])
def test_decoded_location_becomes_the_location_of_every_point(
        decoded: dict[str, Any], lat: float, lng: float, variables: set[str]) -> None:
    points = store(parse_chirpstack("up", up(object=decoded)))
    assert {n for n in points if n not in RADIO} == variables
    assert all((p.lat, p.lng) == (lat, lng) for p in points.values())


RADIO = {"rssi", "snr", "fcnt", "fport", "frequency", "spreading_factor", "gateway_count"}


def test_text_coordinates_are_plain_variables() -> None:
    points = store(parse_chirpstack("up", up(object={"lat": "45.5", "lng": "7"})))
    assert points["lat"].value == "45.5" and points["lat"].lat is None


@pytest.mark.parametrize(("decoded", "where"), [
    ({"latitude": 91, "longitude": 0}, "object.latitude / longitude"),
    ({"gps": {"lat": 0, "lng": -181}}, "object.gps.lat / lng"),
])
def test_decoded_location_out_of_range(decoded: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_chirpstack("up", up(object=decoded)).convert(received_ns=RECV, max_points=100)
    assert [e.field for e in err.value.errors] == [where]


@pytest.mark.parametrize(("decoded", "field", "words"), [
    ({"ok": 1, "bad\x07key": 2}, 'object["bad\x07key"]', "control"),
    ({"x" * 101: 1}, 'object["' + "x" * 40 + '..."]', "100 characters (as the variable"),
    ({"a_b": 1, "a": {"b": 2}}, "object.a.b", "both become"),
    ({"v": None}, "object.v", "must not be null"),
    ({"v": [1, 2]}, "object.v", "not an array"),
    ({"v": "x" * 6001}, "object.v", "6000"),
])
def test_hostile_decoded_payloads_are_refused_at_their_key(
        decoded: dict[str, Any], field: str, words: str) -> None:
    err = refused(parse_chirpstack("up", up(object=decoded)))
    assert err.message.startswith("Invalid ChirpStack uplink")
    assert any(e.field == field and words in e.message for e in err.errors), err.errors


def test_deep_and_wide_decoded_payloads() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(40):
        deep = {"n": deep}
    err = refused(parse_chirpstack("up", up(object=deep)))
    assert "deeper than" in err.message
    with pytest.raises(PayloadTooLarge):
        store(parse_chirpstack("up", up(object={f"k{i}": i for i in range(101)})))
    with pytest.raises(PayloadTooLarge):  # 95 decoded + 7 radio variables
        store(parse_chirpstack("up", up(object={f"k{i}": i for i in range(95)})))


def test_a_decoded_field_wins_over_a_radio_variable() -> None:
    points = store(parse_chirpstack("up", up(object={"rssi": 1, "fcnt": "x"})))
    assert points["rssi"].value == 1 and points["rssi"].metadata is None
    assert points["fcnt"].value == "x" and points["snr"].value == 10.5


def test_best_gateway_and_gateway_count() -> None:
    body = up(rxInfo=[
        {"gatewayId": "a", "rssi": -100, "snr": 2},
        {"gatewayId": "b", "rssi": -110, "snr": 7.5},
        {"gatewayId": "c", "rssi": -90, "snr": 7.5},  # same SNR, better RSSI: best
        {"gatewayId": "c", "rssi": -95, "snr": 1},  # a second antenna of c
        {"rssi": -120},  # no id, no SNR on a LoRa uplink: 0
    ])
    points = store(parse_chirpstack("up", body))
    assert (points["rssi"].value, points["snr"].value) == (-90, 7.5)
    assert points["gateway_count"].value == 4
    assert points["fport"].metadata == '{"gateway_id":"c"}'
    points = store(parse_chirpstack("up", up(rxInfo=[])))
    assert "rssi" not in points and "snr" not in points
    assert points["gateway_count"].value == 0 and points["fcnt"].metadata is None


def test_the_group_is_the_same_for_a_redelivered_uplink() -> None:
    first = store(parse_chirpstack("up", up()))
    again = store(parse_chirpstack("up", up()))
    assert first["temp"].group == again["temp"].group
    other = store(parse_chirpstack("up", up(fCnt=2)))
    assert other["temp"].group != first["temp"].group
    assert other["fcnt"].value == 2


def test_missing_time_is_the_receive_time_to_the_nanosecond() -> None:
    body = up()
    del body["time"]
    points = store(parse_chirpstack("up", body))
    assert {p.time_ns for p in points.values()} == {RECV}


def test_omitted_fields_are_zero_and_optional_parts_may_be_absent() -> None:
    body = {"deviceInfo": {"devEui": "0101010101010101"}, "time": "2024-01-01T00:00:00Z"}
    points = store(parse_chirpstack("up", body))
    assert {n: p.value for n, p in points.items()} == {"fcnt": 0, "fport": 0,
                                                         "gateway_count": 0}


@pytest.mark.parametrize(("change", "field"), [
    ({"deviceInfo": None}, "deviceInfo"),
    ({"deviceInfo": "x"}, "deviceInfo"),
    ({"deviceInfo": {"devEui": None}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": "01010101010101"}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": "010101010101010g"}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": "01-01-01-01-01-01-01-01"}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": "0101010101010101\n"}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": 101010101010101}}, "deviceInfo.devEui"),
    ({"deviceInfo": {"devEui": "٠١٠١٠١٠١٠١٠١٠١٠١"}}, "deviceInfo.devEui"),
    ({"time": "yesterday"}, "time"),
    ({"time": 1700000000000}, "time"),
    ({"time": "1969-12-31T23:59:59Z"}, "time"),
    ({"fCnt": -1}, "fCnt"),
    ({"fCnt": 2**32}, "fCnt"),
    ({"fCnt": True}, "fCnt"),
    ({"fCnt": "1e9"}, "fCnt"),
    ({"fPort": 256}, "fPort"),
    ({"data": "not base64!"}, "data"),
    ({"data": 5}, "data"),
    ({"object": [1, 2]}, "object"),
    ({"object": "temp=1"}, "object"),
    ({"rxInfo": {"gatewayId": "a"}}, "rxInfo"),
    ({"rxInfo": [{"rssi": -1}, 5]}, "rxInfo[1]"),
    ({"rxInfo": [{"rssi": "-1"}]}, "rxInfo[0].rssi"),
    ({"rxInfo": [{"snr": False}]}, "rxInfo[0].snr"),
    ({"rxInfo": [{"gatewayId": "g" * 101}]}, "rxInfo[0].gatewayId"),
    ({"rxInfo": [{"gatewayId": 7}]}, "rxInfo[0].gatewayId"),
    ({"txInfo": {"frequency": 8.681e8}}, "txInfo.frequency"),
    ({"txInfo": {"modulation": {"lora": {"spreadingFactor": 13}}}},
     "txInfo.modulation.lora.spreadingFactor"),
    ({"txInfo": []}, "txInfo"),
])
def test_malformed_chirpstack_bodies_name_the_field(change: dict[str, Any], field: str) -> None:
    body = up(**change)
    with pytest.raises(ValidationError) as err:
        parse_chirpstack("up", body).convert(received_ns=RECV, max_points=100)
    assert [e.field for e in err.value.errors] == [field]
    assert err.value.message.startswith(f"Invalid ChirpStack uplink: {field} ")


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_a_body_that_is_no_object(body: Any) -> None:
    with pytest.raises(ValidationError, match="body"):
        parse_chirpstack("up", body)
    with pytest.raises(ValidationError, match="body"):
        parse_ttn(body)


def _ttn(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(fixture("ttn-uplink.json"))
    body["uplink_message"].update(changes)
    return body


@pytest.mark.parametrize(("body", "field"), [
    ({"uplink_message": {}}, "end_device_ids"),
    ({"end_device_ids": {"device_id": "d"}, "uplink_message": {}}, "end_device_ids.dev_eui"),
    (_ttn(received_at="2020-13-01T00:00:00Z"), "uplink_message.received_at"),
    (_ttn(f_cnt="one"), "uplink_message.f_cnt"),
    (_ttn(decoded_payload=[]), "uplink_message.decoded_payload"),
    (_ttn(frm_payload="@@@"), "uplink_message.frm_payload"),
    (_ttn(settings={"frequency": "868.3"}), "uplink_message.settings.frequency"),
    (_ttn(rx_metadata=[{"gateway_ids": {"gateway_id": ""}}]),
     "uplink_message.rx_metadata[0].gateway_ids.gateway_id"),
    (_ttn(rx_metadata=[{"gateway_ids": []}]), "uplink_message.rx_metadata[0].gateway_ids"),
])
def test_malformed_ttn_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_ttn(body).convert(received_ns=RECV, max_points=100)
    assert [e.field for e in err.value.errors] == [field]


def test_ttn_without_decoded_payload_and_with_top_level_time_only() -> None:
    body = _ttn()
    del body["uplink_message"]["decoded_payload"], body["uplink_message"]["received_at"]
    points = store(parse_ttn(body))
    assert points["payload"].value == "8241de"  # "gkHe"
    assert points["payload"].time_ns == parse_iso("2020-02-12T15:15:46.014773143Z")


def test_ttn_decoded_errors_are_named_under_decoded_payload() -> None:
    err = refused(parse_ttn(_ttn(decoded_payload={"bad": None})))
    assert [e.field for e in err.errors] == ["uplink_message.decoded_payload.bad"]
    assert err.message.startswith("Invalid The Things Stack uplink")
