"""bridge.model.points: JSON decoding and the SPEC section 2 rules for POST/MQTT and PUT."""

from __future__ import annotations

import calendar
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.errors import PayloadTooLarge, ValidationError
from bridge.model import points as points_module
from bridge.model.points import (
    Point,
    PointUpdate,
    decode_json,
    generated_group,
    new_group_id,
    validate_points,
    validate_update,
)
from bridge.model.timeparse import MAX_NS

DEV = "dev-1"
RECV = 1_800_000_000_123_456_789  # received time, deliberately unlike any input time
GEN = "0123456789abcdef01234567"
T0 = calendar.timegm((2024, 1, 2, 3, 4, 5, 0, 0, 0)) * 1_000_000_000  # 2024-01-02T03:04:05Z
NAN, INF = float("nan"), float("inf")
HOSTILE = 'a "q" \\ b, c=d e\'f\n\r\t😀 ünï'
HOSTILE_JSON = '"a \\"q\\" \\\\ b, c=d e\'f\\n\\r\\t😀 ünï"'  # written by hand, not by orjson
IMMUTABLE = "cannot be changed; delete the point and send it again"


class Counter:
    """A new_group stand-in that counts its calls and returns predictable ids."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"gen-{self.calls}"


def run(
    payload: Any, max_points: int = 100, new_group: Callable[[], str] = lambda: GEN
) -> list[Point]:
    return validate_points(
        payload, device_id=DEV, received_ns=RECV, max_points=max_points, new_group=new_group
    )


def one(**fields: Any) -> Point:
    points = run({"variable": "v", **fields})
    assert len(points) == 1
    return points[0]


def post_errors(payload: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ValidationError) as info:
        run(payload)
    assert info.value.message.startswith("Error on object parse: ")
    first = info.value.errors[0]
    assert f"[{first.index}] {first.field} {first.message}" in info.value.message
    return sorted((e.index, e.field, e.message) for e in info.value.errors)


def put_errors(payload: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ValidationError) as info:
        validate_update(payload, max_points=100)
    assert info.value.message.startswith("Error on object parse: ")
    first = info.value.errors[0]
    assert f"[{first.index}] {first.field} {first.message}" in info.value.message
    return sorted((e.index, e.field, e.message) for e in info.value.errors)


# --- decode_json -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"variable":"t","value":20}', {"variable": "t", "value": 20}),
        ('[{"variable":"t"}]', [{"variable": "t"}]),
        (b'  {"value": 20.0}\n', {"value": 20.0}),
        ('{"v":"😀\\u00e9"}'.encode(), {"v": "😀é"}),
        (b"5", 5),
    ],
)
def test_decode_json_accepts(body: bytes | str, expected: Any) -> None:
    result = decode_json(body)
    assert result == expected
    if isinstance(expected, dict) and "value" in expected:
        assert type(result["value"]) is type(expected["value"])


@pytest.mark.parametrize(
    "body",
    [
        b"NaN",
        b'{"value": NaN}',
        b'{"value": Infinity}',
        b'{"value": -Infinity}',
        '{"value": NaN}',
        b'{"value": 1e400}',
        b"\xff\xfe{}",
        b"{'a': 1}",
        b"[1,]",
        b'{"a": 1} x',
        b'{"a": ',
        "\ud800",
    ],
)
def test_decode_json_rejects_bad_json(body: bytes | str) -> None:
    with pytest.raises(ValidationError) as info:
        decode_json(body)
    assert info.value.message.startswith("Invalid JSON: ")
    assert info.value.message != "Invalid JSON: empty body"
    assert info.value.errors == []


@pytest.mark.parametrize("body", [b"", b"  \r\n\t", ""])
def test_decode_json_rejects_empty_body(body: bytes | str) -> None:
    with pytest.raises(ValidationError) as info:
        decode_json(body)
    assert info.value.message == "Invalid JSON: empty body"


# --- accepted fields ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attr", "expected"),
    [
        ({"value": 20}, "value", 20),
        ({"value": 0}, "value", 0),
        ({"value": -(2**63)}, "value", -(2**63)),
        ({"value": 2**63 - 1}, "value", 2**63 - 1),
        ({"value": 20.5}, "value", 20.5),
        ({"value": 20.0}, "value", 20.0),
        ({"value": 1e308}, "value", 1e308),
        ({"value": True}, "value", True),
        ({"value": False}, "value", False),
        ({"value": "on"}, "value", "on"),
        ({"value": ""}, "value", ""),
        ({"value": "x" * 6000}, "value", "x" * 6000),
        ({"value": HOSTILE}, "value", HOSTILE),
        ({}, "value", None),
        ({"unit": "°C"}, "unit", "°C"),
        ({"unit": "x" * 25}, "unit", "x" * 25),
        ({"unit": HOSTILE[:25]}, "unit", HOSTILE[:25]),
        ({}, "unit", None),
        ({"group": "g1"}, "group", "g1"),
        ({"group": "x" * 100}, "group", "x" * 100),
        ({"group": HOSTILE}, "group", HOSTILE),
        ({"serie": "s1"}, "group", "s1"),
        ({"serie": 7}, "group", "7"),
        ({"serie": 1.5}, "group", "1.5"),
        ({"group": "g", "serie": "s"}, "group", "g"),
        ({"serie": "s", "group": "g"}, "group", "g"),
        ({"group": "", "serie": "s"}, "group", "s"),
        ({"group": ""}, "group", GEN),
        ({"serie": ""}, "group", GEN),
        ({}, "group", GEN),
        ({"metadata": {}}, "metadata", "{}"),
        ({"metadata": {"b": 1, "a": [1, 2.5, "x", None, True]}}, "metadata",
         '{"b":1,"a":[1,2.5,"x",null,true]}'),
        ({"metadata": {"k": HOSTILE}}, "metadata", '{"k":' + HOSTILE_JSON + "}"),
        ({"metadata": {"k": "x" * (10_000 - 8)}}, "metadata", '{"k":"' + "x" * 9992 + '"}'),
        ({"metadata": {"k": "é" * 4996}}, "metadata", '{"k":"' + "é" * 4996 + '"}'),  # 10000 B
        ({}, "metadata", None),
        ({}, "device", DEV),
        ({}, "created_ns", RECV),
    ],
)
def test_field_accepted(fields: dict[str, Any], attr: str, expected: Any) -> None:
    got = getattr(one(**fields), attr)
    assert got == expected
    assert type(got) is type(expected)  # 20 stays int, 20.0 float, True bool


@pytest.mark.parametrize(
    "variable",
    ["t", "x" * 100, "Temp Var!", "Température", HOSTILE.replace("\n", "").replace("\r", "")
     .replace("\t", ""), "a\u00a0b", "👨\u200d👩\u200d👧", "a\u2028b", "CASE"],
)
def test_variable_stored_exactly(variable: str) -> None:
    assert one(variable=variable).variable == variable


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2024-01-02T03:04:05Z", T0),
        ("2024-01-02T03:04:05.123456789Z", T0 + 123_456_789),
        ("2024-01-02T05:04:05+02:00", T0),
        ("2024-01-01T21:34:05-0530", T0),
        ("2024-01-02 03:04:05+00:00", T0),
        ("2024-01-02 03:04:05", T0),
        ("2024-01-02T03:04Z", T0 - 5_000_000_000),
        (1704164645123, T0 + 123_000_000),
        (1704164645123.456, T0 + 123_456_000),
        (1704164645123.5, T0 + 123_500_000),
        (1704164645123.25, T0 + 123_250_000),
        (1.000001, 1_000_001),
        (1e12, 10**18),
        (0, 0),
        (0.0, 0),
        (9_223_372_036_854, 9_223_372_036_854_000_000),
    ],
)
def test_time_accepted(time: Any, expected: int) -> None:
    assert one(time=time).time_ns == expected


def test_time_absent_is_received_time() -> None:
    assert one().time_ns == RECV


@pytest.mark.parametrize(
    ("location", "lat", "lng"),
    [
        ({"lat": 42.2974279, "lng": -85.628292}, 42.2974279, -85.628292),
        ({"lat": 1, "lng": 2}, 1.0, 2.0),
        ({"lat": 90, "lng": 180}, 90.0, 180.0),
        ({"lat": -90.0, "lng": -180.0}, -90.0, -180.0),
        ({"type": "Point", "coordinates": [-85.5, 42.25]}, 42.25, -85.5),
        ({"coordinates": [10, 20]}, 20.0, 10.0),
        ({"type": "point", "coordinates": [10, 20]}, 20.0, 10.0),
        ({"lat": 1, "lng": 2, "extra": "ignored"}, 1.0, 2.0),
    ],
)
def test_location_accepted(location: dict[str, Any], lat: float, lng: float) -> None:
    point = one(location=location)
    assert (point.lat, point.lng) == (lat, lng)
    assert type(point.lat) is float and type(point.lng) is float


def test_full_point_from_sdk_example() -> None:
    body = (
        b'{"variable": "temperature", "value": 21.5, "unit": "C", "group": "g1", '
        b'"time": "2024-01-01T12:00:00Z", "location": {"lat": 42.2974279, "lng": -85.628292}, '
        b'"metadata": {"color": "red"}}'
    )
    assert run(decode_json(body)) == [
        Point(
            device=DEV, variable="temperature", time_ns=T0 - (15 * 3600 + 4 * 60 + 5) * 10**9,
            created_ns=RECV, group="g1", value=21.5, unit="C", lat=42.2974279,
            lng=-85.628292, metadata='{"color":"red"}', slot=0,
        )
    ]


def test_service_owned_and_unknown_keys_are_ignored() -> None:
    point = one(
        id="chosen-id", origin="other-device", device="other-device",
        created_at="2020-01-01T00:00:00Z", serie_number="x", foo={"bar": [1]},
    )
    assert point == Point(device=DEV, variable="v", time_ns=RECV, created_ns=RECV, group=GEN)


# --- rejected fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"variable": None}, "variable", "must not be null"),
        ({"variable": 5}, "variable", "must be a string, not a number"),
        ({"variable": True}, "variable", "must be a string, not a boolean"),
        ({"variable": ["a"]}, "variable", "must be a string, not an array"),
        ({"variable": {"a": 1}}, "variable", "must be a string, not an object"),
        ({"variable": ""}, "variable", "must not be empty"),
        ({"variable": "x" * 101}, "variable", "must be at most 100 characters"),
        ({"variable": "a\nb"}, "variable", "must not contain control characters"),
        ({"variable": "a\rb"}, "variable", "must not contain control characters"),
        ({"variable": "a\tb"}, "variable", "must not contain control characters"),
        ({"variable": "a\x00b"}, "variable", "must not contain control characters"),
        ({"variable": "a\x7fb"}, "variable", "must not contain control characters"),
        ({"variable": "a\x85b"}, "variable", "must not contain control characters"),
        ({"variable": "😀\n"}, "variable", "must not contain control characters"),
        ({"value": None}, "value", "must not be null"),
        ({"value": {}}, "value", "must be a finite number, string or boolean, not an object"),
        ({"value": [1]}, "value", "must be a finite number, string or boolean, not an array"),
        ({"value": NAN}, "value", "must be a finite number, not NaN"),
        ({"value": INF}, "value", "must be a finite number, not infinity"),
        ({"value": -INF}, "value", "must be a finite number, not infinity"),
        ({"value": "x" * 6001}, "value", "must be at most 6000 characters"),
        ({"value": 10**309}, "value", "must be a finite number, not beyond ±1.8e308"),
        ({"value": -(10**309)}, "value", "must be a finite number, not beyond ±1.8e308"),
        ({"unit": None}, "unit", "must not be null"),
        ({"unit": 5}, "unit", "must be a string, not a number"),
        ({"unit": False}, "unit", "must be a string, not a boolean"),
        ({"unit": "x" * 26}, "unit", "must be at most 25 characters"),
        ({"group": None}, "group", "must not be null"),
        ({"group": 5}, "group", "must be a string, not a number"),
        ({"group": ["g"]}, "group", "must be a string, not an array"),
        ({"group": "x" * 101}, "group", "must be at most 100 characters"),
        ({"serie": None}, "serie", "must not be null"),
        ({"serie": True}, "serie", "must be a string or a finite number, not a boolean"),
        ({"serie": {}}, "serie", "must be a string or a finite number, not an object"),
        ({"serie": "x" * 101}, "serie", "must be at most 100 characters"),
        ({"time": None}, "time", "must not be null"),
        ({"time": True}, "time", "must be an ISO 8601 string or epoch milliseconds, not a boolean"),
        ({"time": []}, "time", "must be an ISO 8601 string or epoch milliseconds, not an array"),
        ({"time": {}}, "time", "must be an ISO 8601 string or epoch milliseconds, not an object"),
        ({"time": ""}, "time", "not an ISO 8601 date-time"),
        ({"time": "yesterday"}, "time", "not an ISO 8601 date-time"),
        ({"time": "1704164645123"}, "time", "not an ISO 8601 date-time"),
        ({"time": "2024-02-30T00:00:00Z"}, "time", "not a valid calendar date or time"),
        ({"time": "1969-12-31T23:59:59Z"}, "time", "outside 1970..2262"),
        ({"time": "2300-01-01T00:00:00Z"}, "time", "outside 1970..2262"),
        ({"time": -1}, "time", "outside 1970..2262"),
        ({"time": -0.5}, "time", "outside 1970..2262"),
        ({"time": 9_223_372_036_855}, "time", "outside 1970..2262"),
        ({"time": 10**30}, "time", "outside 1970..2262"),
        ({"time": 1e300}, "time", "outside 1970..2262"),
        ({"time": NAN}, "time", "must be a finite number"),
        ({"time": INF}, "time", "must be a finite number"),
        ({"location": None}, "location", "must not be null"),
        ({"location": "42.1,-85.6"}, "location", "must be an object, not a string"),
        ({"location": [1, 2]}, "location", "must be an object, not an array"),
        ({"location": True}, "location", "must be an object, not a boolean"),
        ({"location": {}}, "location", "must have lat and lng, or GeoJSON coordinates"),
        ({"location": {"lat": 1}}, "location", "must have lat and lng, or GeoJSON coordinates"),
        ({"location": {"lng": 1}}, "location", "must have lat and lng, or GeoJSON coordinates"),
        ({"location": {"lat": "1", "lng": 2}}, "location", "latitude must be a number"),
        ({"location": {"lat": 1, "lng": "2"}}, "location", "longitude must be a number"),
        ({"location": {"lat": True, "lng": 2}}, "location", "latitude must be a number"),
        ({"location": {"lat": 1, "lng": False}}, "location", "longitude must be a number"),
        ({"location": {"lat": None, "lng": 2}}, "location", "latitude must be a number"),
        ({"location": {"lat": 90.0001, "lng": 0}}, "location",
         "latitude must be between -90 and 90"),
        ({"location": {"lat": -91, "lng": 0}}, "location", "latitude must be between -90 and 90"),
        ({"location": {"lat": 0, "lng": 180.5}}, "location",
         "longitude must be between -180 and 180"),
        ({"location": {"lat": 0, "lng": -181}}, "location",
         "longitude must be between -180 and 180"),
        ({"location": {"lat": NAN, "lng": 0}}, "location", "latitude must be between -90 and 90"),
        ({"location": {"lat": 0, "lng": INF}}, "location",
         "longitude must be between -180 and 180"),
        ({"location": {"type": "LineString", "coordinates": [1, 2]}}, "location",
         'type must be "Point"'),
        ({"location": {"type": None, "coordinates": [1, 2]}}, "location", 'type must be "Point"'),
        ({"location": {"type": "Point", "coordinates": [1]}}, "location",
         "coordinates must be [lng, lat]"),
        ({"location": {"type": "Point", "coordinates": [1, 2, 3]}}, "location",
         "coordinates must be [lng, lat]"),
        ({"location": {"type": "Point", "coordinates": "1,2"}}, "location",
         "coordinates must be [lng, lat]"),
        ({"location": {"type": "Point", "coordinates": None}}, "location",
         "coordinates must be [lng, lat]"),
        # GeoJSON order is [lng, lat]: 95 is fine as a longitude, not as a latitude
        ({"location": {"coordinates": [10, 95]}}, "location",
         "latitude must be between -90 and 90"),
        ({"location": {"coordinates": [200, 10]}}, "location",
         "longitude must be between -180 and 180"),
        ({"location": {"coordinates": ["1", 2]}}, "location", "longitude must be a number"),
        ({"metadata": None}, "metadata", "must not be null"),
        ({"metadata": "x"}, "metadata", "must be an object, not a string"),
        ({"metadata": [1]}, "metadata", "must be an object, not an array"),
        ({"metadata": 5}, "metadata", "must be an object, not a number"),
        ({"metadata": True}, "metadata", "must be an object, not a boolean"),
        ({"metadata": {"k": "x" * (10_001 - 8)}}, "metadata",
         "must be at most 10000 bytes as JSON"),
        ({"metadata": {"k": "é" * 4997}}, "metadata", "must be at most 10000 bytes as JSON"),
        ({"metadata": {"k": NAN}}, "metadata", "must not contain NaN or infinity"),
        ({"metadata": {"a": None, "b": [1, {"c": -INF}]}}, "metadata",
         "must not contain NaN or infinity"),
        ({"metadata": {1: "x"}}, "metadata", "must contain only JSON values"),
        ({"metadata": {"k": {1, 2}}}, "metadata", "must contain only JSON values"),
    ],
)
def test_field_rejected(fields: dict[str, Any], field: str, message: str) -> None:
    assert post_errors({"variable": "v", **fields}) == [(0, field, message)]


def test_variable_required() -> None:
    assert post_errors({"value": 1}) == [(0, "variable", "is required")]


def test_error_messages_do_not_echo_values() -> None:
    huge = "Q" * 100_000
    with pytest.raises(ValidationError) as info:
        run({"variable": huge, "value": huge, "unit": huge, "group": huge, "time": huge})
    assert len(info.value.errors) == 5
    assert all("QQ" not in e.message and len(e.message) < 100 for e in info.value.errors)


# --- payload shape, limits, all-or-nothing ----------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [(5, "a number"), (1.5, "a number"), ("text", "a string"), (None, "null"),
     (True, "a boolean")],
)
def test_payload_must_be_object_or_array(payload: Any, kind: str) -> None:
    for validate in (run, lambda p: validate_update(p, max_points=100)):
        with pytest.raises(ValidationError) as info:
            validate(payload)
        assert info.value.message == f"Expected a JSON object or an array of objects, not {kind}"


def test_empty_array_is_no_points() -> None:
    assert run([]) == []
    assert validate_update([], max_points=100) == []


def test_array_items_must_be_objects() -> None:
    payload = [1, "x", None, [], True, {"variable": "ok"}]
    assert post_errors(payload) == [(i, "point", "must be a JSON object") for i in range(5)]
    assert put_errors(payload[:5]) == [(i, "point", "must be a JSON object") for i in range(5)]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_max_points_boundary(count: int) -> None:
    assert len(run([{"variable": "v"}] * count, max_points=3)) == count


@pytest.mark.parametrize("validate", ["post", "put"])
def test_too_many_points_is_payload_too_large_before_validation(validate: str) -> None:
    payload: list[Any] = [{"bad": True}] * 4  # invalid too: the size check comes first
    with pytest.raises(PayloadTooLarge) as info:
        if validate == "post":
            run(payload, max_points=3)
        else:
            validate_update(payload, max_points=3)
    assert "4 points, at most 3 per request" in str(info.value)


def test_all_or_nothing_reports_every_error_by_index() -> None:
    payload = [
        {"variable": "ok", "value": 1},
        {"value": None},
        {"variable": "x" * 101, "unit": 5, "time": "bad", "location": {"lat": 91, "lng": 0}},
        {"variable": "fine"},
        7,
    ]
    with pytest.raises(ValidationError) as info:
        run(payload)
    errors = sorted((e.index, e.field, e.message) for e in info.value.errors)
    assert errors == [
        (1, "value", "must not be null"),
        (1, "variable", "is required"),
        (2, "location", "latitude must be between -90 and 90"),
        (2, "time", "not an ISO 8601 date-time"),
        (2, "unit", "must be a string, not a number"),
        (2, "variable", "must be at most 100 characters"),
        (4, "point", "must be a JSON object"),
    ]
    assert info.value.field_errors()["1"] == ["value: must not be null", "variable: is required"]


def test_error_in_last_point_rejects_the_whole_batch() -> None:
    assert post_errors([{"variable": "a"}] * 5 + [{"variable": "b", "value": NAN}]) == [
        (5, "value", "must be a finite number, not NaN")
    ]


# --- groups and slots --------------------------------------------------------------


def test_groupless_points_of_one_payload_share_one_generated_id() -> None:
    counter = Counter()
    points = run(
        [{"variable": "a"}, {"variable": "b", "group": "mine"}, {"variable": "c"},
         {"variable": "d", "serie": 7}, {"variable": "e", "group": ""}],
        new_group=counter,
    )
    assert [p.group for p in points] == ["gen-1", "mine", "gen-1", "7", "gen-1"]
    assert counter.calls == 1


def test_no_group_generated_when_every_point_has_one() -> None:
    counter = Counter()
    payload = [{"variable": "a", "group": "g"}, {"variable": "b", "serie": "s"}]
    points = run(payload, new_group=counter)
    assert [p.group for p in points] == ["g", "s"]
    assert counter.calls == 0


def test_each_payload_gets_its_own_generated_group() -> None:
    def default(payload: Any) -> list[Point]:
        return validate_points(payload, device_id=DEV, received_ns=RECV, max_points=10)

    def received_later(payload: Any) -> list[Point]:
        return validate_points(payload, device_id=DEV, received_ns=RECV + 1000, max_points=10)

    first = default([{"variable": "a"}, {"variable": "b"}])
    second = received_later({"variable": "a"})
    assert first[0].group == first[1].group != second[0].group
    assert re.fullmatch(r"[0-9a-f]{24}", first[0].group)
    # derived from the receive time (so the schema need not store it)
    assert first[0].group == generated_group(RECV) == f"{RECV // 1000:024x}"


def test_new_group_id_is_24_random_lowercase_hex() -> None:
    ids = {new_group_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)


def test_slots_count_points_sharing_variable_and_time_in_array_order() -> None:
    payload = [
        {"variable": "t", "time": "2024-01-02T03:04:05Z", "value": 1},
        {"variable": "t", "time": 1704164645000, "value": 2},  # same instant as epoch ms
        {"variable": "u", "time": "2024-01-02T03:04:05Z"},
        {"variable": "t", "time": "2024-01-02T03:04:05.001Z"},
        {"variable": "t", "time": "2024-01-02T05:04:05+02:00", "value": 3},  # same instant
        {"variable": "T", "time": "2024-01-02T03:04:05Z"},  # variables are case-sensitive
    ]
    points = run(payload)
    assert [p.slot for p in points] == [0, 1, 0, 0, 2, 0]
    assert [p.value for p in points if p.variable == "t" and p.time_ns == T0] == [1, 2, 3]
    keys = [(p.variable, p.time_ns, p.slot) for p in points]
    assert keys == [(p.variable, p.time_ns, p.slot) for p in run(payload)]  # redelivery
    assert len(set(keys)) == len(keys)


def test_untimed_points_are_a_nanosecond_apart_and_need_no_slot() -> None:
    points = run([{"variable": "a"}, {"variable": "a"}, {"variable": "b"}])
    assert [(p.time_ns, p.slot) for p in points] == [(RECV, 0), (RECV + 1, 0), (RECV + 2, 0)]


def test_max_time_is_accepted_end_to_end() -> None:
    assert one(time="2262-04-11T23:47:16.854775806Z").time_ns == MAX_NS


# --- validate_update -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": "p1", "value": 22, "unit": "F"}, [PointUpdate("p1", {"value": 22, "unit": "F"})]),
        ([{"id": "p1", "value": 22}], [PointUpdate("p1", {"value": 22})]),
        ([{"id": "a", "value": False}, {"id": "b", "value": 1.0}],
         [PointUpdate("a", {"value": False}), PointUpdate("b", {"value": 1.0})]),
        ({"id": "p1", "group": "g"}, [PointUpdate("p1", {"group": "g"})]),
        ({"id": "p1", "serie": 5}, [PointUpdate("p1", {"group": "5"})]),
        ({"id": "p1", "location": {"lat": 1, "lng": 2}},
         [PointUpdate("p1", {"lat": 1.0, "lng": 2.0})]),
        ({"id": "p1", "location": {"coordinates": [2, 1]}},
         [PointUpdate("p1", {"lat": 1.0, "lng": 2.0})]),
        ({"id": "p1", "metadata": {"b": 1, "a": HOSTILE}},
         [PointUpdate("p1", {"metadata": '{"b":1,"a":' + HOSTILE_JSON + "}"})]),
        ({"id": "p1", "unit": "", "origin": "x", "device": "y", "foo": 1},
         [PointUpdate("p1", {"unit": ""})]),
    ],
)
def test_update_accepted(payload: Any, expected: list[PointUpdate]) -> None:
    result = validate_update(payload, max_points=100)
    assert result == expected
    for got, want in zip(result, expected, strict=True):
        assert [type(v) for v in got.changes.values()] == [type(v) for v in want.changes.values()]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"value": 1}, [(0, "id", "is required")]),
        ({"id": None, "value": 1}, [(0, "id", "must not be null")]),
        ({"id": 5, "value": 1}, [(0, "id", "must be a string, not a number")]),
        ({"id": "", "value": 1}, [(0, "id", "must not be empty")]),
        ({"id": "p", "variable": "t", "value": 1}, [(0, "variable", IMMUTABLE)]),
        ({"id": "p", "time": "2024-01-02T03:04:05Z"}, [(0, "time", IMMUTABLE)]),
        ({"id": "p"}, [(0, "point", "has no field to change")]),
        ({"id": "p", "group": ""}, [(0, "point", "has no field to change")]),
        ({"id": "p", "value": None}, [(0, "value", "must not be null")]),
        ({"id": "p", "value": NAN}, [(0, "value", "must be a finite number, not NaN")]),
        ({"id": "p", "unit": "x" * 26}, [(0, "unit", "must be at most 25 characters")]),
        ({"id": "p", "group": "x" * 101}, [(0, "group", "must be at most 100 characters")]),
        ({"id": "p", "location": {"lat": 91, "lng": 0}},
         [(0, "location", "latitude must be between -90 and 90")]),
        ({"id": "p", "metadata": [1]}, [(0, "metadata", "must be an object, not an array")]),
        ({"id": 5, "variable": "t", "time": 1, "unit": 5}, [
            (0, "id", "must be a string, not a number"),
            (0, "time", IMMUTABLE),
            (0, "unit", "must be a string, not a number"),
            (0, "variable", IMMUTABLE),
        ]),
    ],
)
def test_update_rejected(item: dict[str, Any], expected: list[tuple[int, str, str]]) -> None:
    assert put_errors(item) == expected


def test_update_all_or_nothing_by_index() -> None:
    payload = [{"id": "a", "value": 1}, {"id": "b"}, {"id": "c", "unit": 5}]
    assert put_errors(payload) == [
        (1, "point", "has no field to change"),
        (2, "unit", "must be a string, not a number"),
    ]


@pytest.mark.parametrize(
    ("field", "raw"),
    [("value", None), ("value", {}), ("value", INF), ("value", "x" * 6001), ("unit", 5),
     ("unit", "x" * 26), ("group", 1), ("serie", True), ("location", {"lat": 0, "lng": 999}),
     ("location", {"coordinates": [1]}), ("metadata", "x"), ("metadata", {"k": NAN})],
)
def test_post_and_put_share_each_rule(field: str, raw: Any) -> None:
    [(_, post_field, post_message)] = post_errors({"variable": "v", field: raw})
    [(_, put_field, put_message)] = put_errors({"id": "p", field: raw})
    assert (post_field, post_message) == (put_field, put_message) == (field, post_message)


# --- the straight-line path of validate_points against the generic one -----------------


def table_payloads() -> list[Any]:
    """Every payload of the table-driven tests above, rebuilt from their parameter rows."""

    def rows(test: Callable[..., None]) -> list[Any]:
        [mark] = test.pytestmark  # type: ignore[attr-defined]
        return list(mark.args[1])

    def with_v(fields: dict[str, Any]) -> dict[str, Any]:
        return {"variable": "v", **fields}

    return [
        *(expected for _, expected in rows(test_decode_json_accepts)),
        *(with_v(fields) for fields, _, _ in rows(test_field_accepted)),
        *({"variable": variable} for variable in rows(test_variable_stored_exactly)),
        *(with_v({"time": t}) for t, _ in rows(test_time_accepted)),
        *(with_v({"location": location}) for location, _, _ in rows(test_location_accepted)),
        *(with_v(fields) for fields, _, _ in rows(test_field_rejected)),
        *(payload for payload, _ in rows(test_payload_must_be_object_or_array)),
        *([{"variable": "v"}] * count for count in rows(test_max_points_boundary)),
        *(payload for payload, _ in rows(test_update_accepted)),
        *(item for item, _ in rows(test_update_rejected)),
        *(with_v({field: raw}) for field, raw in rows(test_post_and_put_share_each_rule)),
    ]


def iso(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


# (valid, invalid) raw values per key. Few variables and times, several of them the same
# instant written differently (or an untimed point's RECV + index), so keys collide.
POOLS: dict[str, tuple[list[Any], list[Any]]] = {
    "variable": (["t", "temperature_sensor_07", "Température"],
                 [None, "", "x" * 101, "a\nb", 5, True, ["a"]]),
    "value": ([21.437, 0, -5, 2**63 - 1, 2**63, True, False, "on", "", 1.0],
              [None, NAN, INF, 10**309, "x" * 6001, {}, [1]]),
    "unit": (["celsius", "", "x" * 25], [None, 5, "x" * 26]),
    "time": (["2024-01-02T03:04:05Z", "2024-01-02T05:04:05+02:00", 1704164645000,
              "2024-01-02T03:04:05.000Z", 1704164645000.5, iso(RECV), iso(RECV + 1),
              iso(RECV + 2), 0],
             [None, "bad", "2024-02-30T00:00:00Z", "2024-01-02T03:04:60.000Z", -1, NAN,
              True]),
    "group": (["g1", "", "x" * 100], [None, 5, "x" * 101]),
    "serie": (["s1", 7, 1.5, ""], [None, True, NAN]),
    "location": ([{"lat": 1, "lng": 2}, {"coordinates": [10, 20]}],
                 [None, "x", {"lat": 91, "lng": 0}]),
    "metadata": ([{}, {"a": [1, None]}], [None, "x", {"k": NAN}]),
    "id": (["p1"], []), "origin": (["elsewhere"], []), "foo": ([{"bar": 1}], []),
}
OTHER_KEYS = ["group", "serie", "location", "metadata", "id", "origin", "foo"]
NOT_OBJECTS: list[Any] = [1, "x", None, [], True, [{"variable": "t"}]]


def random_item(rng: random.Random) -> Any:
    if rng.random() < 0.03:
        return rng.choice(NOT_OBJECTS)
    names = ["variable"] if rng.random() < 0.95 else []
    names += [name for name in ("value", "unit", "time") if rng.random() < 0.6]
    if rng.random() < 0.25:
        names += rng.sample(OTHER_KEYS, rng.randint(1, 3))
    rng.shuffle(names)  # key order is the order of a point's errors
    bad = rng.random() < 0.25
    item = {}
    for name in names:
        valid, invalid = POOLS[name]
        item[name] = rng.choice(invalid if bad and invalid and rng.random() < 0.4 else valid)
    return item


def generated_payloads(count: int, seed: int) -> list[Any]:
    rng = random.Random(seed)
    return [
        random_item(rng) if rng.random() < 0.2
        else [random_item(rng) for _ in range(rng.randint(0, 12))]  # max_points is 10
        for _ in range(count)
    ]


def outcome(payload: Any, max_points: int) -> tuple[Any, ...]:
    """Everything validate_points lets a caller observe, new_group's calls included."""
    counter = Counter()
    try:
        points = run(payload, max_points, counter)
    except ValidationError as exc:
        return ValidationError, exc.message, exc.errors, counter.calls
    except PayloadTooLarge as exc:
        return PayloadTooLarge, str(exc), counter.calls
    return points, counter.calls


def test_straight_line_path_matches_generic_path(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = [(payload, 100) for payload in table_payloads()]
    corpus += [(payload, 10) for payload in generated_payloads(4000, seed=20261108)]
    straight = [outcome(payload, max_points) for payload, max_points in corpus]
    monkeypatch.setattr(points_module, "_PLAIN_KEYS", frozenset())  # every item generic
    generic = [outcome(payload, max_points) for payload, max_points in corpus]
    for (payload, _), got, expected in zip(corpus, straight, generic, strict=True):
        assert got == expected, payload
    # Not vacuous: acceptance and rejection are both common, and accepted payloads
    # include groupless points sharing variable and time (slot > 0).
    accepted = [got[0] for got in straight if type(got[0]) is list]
    assert 0.2 < len(accepted) / len(corpus) < 0.8
    assert sum(p.group.startswith("gen-") and p.slot > 0 for ps in accepted for p in ps) > 50
