"""bridge.model.formats.kv: flat and ThingsBoard-style key-value objects on devices/{id}/kv."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.errors import PayloadTooLarge, ValidationError
from bridge.model.formats import PayloadFormat, format_for_topic
from bridge.model.formats.kv import MAX_DEPTH
from bridge.model.points import Point, validate_points

RECV = 1_800_000_000_123_456_789
KV = PayloadFormat("kv")
assert format_for_topic("kv") == KV


def convert(payload: Any, max_points: int = 100) -> list[dict[str, Any]]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    result = KV.convert(raw, received_ns=RECV, max_points=max_points).body
    assert isinstance(result, list)
    return result


def store(payload: Any) -> tuple[list[Point], int]:
    """The points and how many group ids were generated for them."""
    calls = []

    def new_group() -> str:
        calls.append(1)
        return f"g{len(calls)}"

    converted = KV.convert(orjson.dumps(payload), received_ns=RECV, max_points=100)
    points = converted.validate(lambda body: validate_points(
        body, device_id="dev", received_ns=RECV, max_points=100, new_group=new_group))
    return points, len(calls)


def errors(payload: Any) -> list[tuple[int | None, str, str]]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(ValidationError) as info:
        KV.convert(raw, received_ns=RECV, max_points=100).validate(
            lambda body: validate_points(body, device_id="dev", received_ns=RECV,
                                         max_points=100))
    assert info.value.message.startswith("Invalid key-value payload")
    return [(e.index, e.field, e.message) for e in info.value.errors]


def test_flat_object_one_point_per_key_in_order() -> None:
    assert convert({"temperature": 21.5, "humidity": 48, "door": "open", "on": True}) == [
        {"variable": "temperature", "value": 21.5},
        {"variable": "humidity", "value": 48},
        {"variable": "door", "value": "open"},
        {"variable": "on", "value": True},
    ]


def test_stored_points_share_one_group_and_the_received_time() -> None:
    points, groups = store({"temperature": 21.5, "humidity": 48, "on": False})
    assert groups == 1
    assert points == [
        Point("dev", "temperature", RECV, RECV, "g1", 21.5),
        Point("dev", "humidity", RECV + 1, RECV, "g1", 48),  # validate_points' 1 ns spread
        Point("dev", "on", RECV + 2, RECV, "g1", False),
    ]
    assert type(points[1].value) is int and type(points[2].value) is bool


def test_nested_objects_flatten_with_underscore() -> None:
    assert convert({"env": {"t": 21, "h": {"rel": 40}}, "ok": 1}) == [
        {"variable": "env_t", "value": 21},
        {"variable": "env_h_rel", "value": 40},
        {"variable": "ok", "value": 1},
    ]


def test_tasmota_shape() -> None:
    tele = {"Time": "2024-01-02T03:04:05", "ENERGY": {"Total": 1.25, "Power": 40},
            "DS18B20": {"Id": "01144A", "Temperature": 21.4}}
    assert [(p["variable"], p["value"]) for p in convert(tele)] == [
        ("Time", "2024-01-02T03:04:05"), ("ENERGY_Total", 1.25), ("ENERGY_Power", 40),
        ("DS18B20_Id", "01144A"), ("DS18B20_Temperature", 21.4),
    ]


def test_thingsboard_ts_values() -> None:
    ms = 1_700_000_000_123
    assert convert({"ts": ms, "values": {"t": 21.5, "env": {"h": 40}}}) == [
        {"variable": "t", "value": 21.5, "time": ms},
        {"variable": "env_h", "value": 40, "time": ms},
    ]
    points, groups = store({"ts": ms, "values": {"t": 21.5}})
    assert groups == 1 and points[0].time_ns == ms * 1_000_000


def test_array_of_readings_shares_one_group() -> None:
    payload = [{"ts": 1_700_000_000_000, "values": {"t": 1}},
               {"ts": 1_700_000_060_000, "values": {"t": 2}},
               {"h": 40}]
    assert convert(payload) == [
        {"variable": "t", "value": 1, "time": 1_700_000_000_000},
        {"variable": "t", "value": 2, "time": 1_700_000_060_000},
        {"variable": "h", "value": 40},
    ]
    points, groups = store(payload)
    assert groups == 1 and {p.group for p in points} == {"g1"}


def test_only_exactly_ts_and_values_is_thingsboards_shape() -> None:
    assert convert({"ts": 5, "temp": 3}) == [
        {"variable": "ts", "value": 5}, {"variable": "temp", "value": 3}]
    assert convert({"ts": 5, "values": {"a": 1}, "x": 2}) == [
        {"variable": "ts", "value": 5}, {"variable": "values_a", "value": 1},
        {"variable": "x", "value": 2}]


def test_nothing_to_store() -> None:
    assert convert({}) == []
    assert convert([]) == []
    assert convert({"env": {}}) == []


def test_names_colliding_after_flattening() -> None:
    assert errors({"a_b": 1, "a": {"b": 2}}) == [
        (None, "a.b", 'and a_b both become variable "a_b" once nested keys are joined with '
                      "'_'; rename one")]
    assert errors([{"x": 1}, {"a": {"b": 1}, "a_b": 2}]) == [
        (1, "a_b", 'and a.b both become variable "a_b" once nested keys are joined with '
                   "'_'; rename one")]


def test_same_key_in_two_readings_is_no_collision() -> None:
    assert len(convert([{"t": 1}, {"t": 2}])) == 2


@pytest.mark.parametrize(("payload", "expected"), [
    ({"a": None}, [(None, "a", "must not be null")]),
    ({"env": {"t": None}}, [(None, "env.t", "must not be null")]),
    ({"a": [1, 2]}, [(None, "a", "must be a finite number, string or boolean, not an array")]),
    ({"a": 1, "b": "x" * 6001}, [(None, "b", "must be at most 6000 characters")]),
    ({"a": 2**63}, [(None, "a", "must fit in a 64-bit signed integer")]),
    ({"ts": 10**17, "values": {"t": 1}}, [(None, "ts", "outside 1970..2262")]),
    ({"ts": True, "values": {"t": 1}},
     [(None, "ts", "must be an ISO 8601 string or epoch milliseconds, not a boolean")]),
    ({"ts": 1, "values": [1]}, [(None, "values", "must be an object, not an array")]),
    ({"": 1}, [(None, '[""]', "must not be empty (as the variable name)")]),
    ({"a.b": {"c\x01": 1}}, [(None, '["a.b"]["c\x01"]',
                              "must not contain control characters (as the variable name)")]),
    ([{"a": 1}, 5, {"b": None}],
     [(1, "item", "must be a JSON object, not a number"), (2, "b", "must not be null")]),
])
def test_errors_name_the_key_path(payload: Any, expected: list[Any]) -> None:
    assert errors(payload) == expected


def test_point_errors_are_relabelled_to_the_reading_not_the_point() -> None:
    # validate_points sees points 0..2; the bad one is the third point but the second item.
    assert errors([{"a": 1, "b": 2}, {"c": [1]}]) == [
        (1, "c", "must be a finite number, string or boolean, not an array")]


def test_long_names_are_cut_short_in_messages() -> None:
    [(_, field, message)] = errors({"k" * 5000: 1})
    assert field == "k" * 40 + "..." or field == '["' + "k" * 40 + '..."]'
    assert message == "must be at most 100 characters (as the variable name)"


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "Invalid key-value payload: invalid JSON: empty body"),
    (b"{", "Invalid key-value payload: invalid JSON: "),
    (b'{"a": NaN}', "Invalid key-value payload: invalid JSON: "),
    (b'{"a": Infinity}', "Invalid key-value payload: invalid JSON: "),
    (b"\xff", "Invalid key-value payload: invalid JSON: "),
    (b"21.5", "Invalid key-value payload: expected a JSON object or an array of objects, "
              "not a number"),
    (b"null", "Invalid key-value payload: expected a JSON object or an array of objects, "
              "not null"),
])
def test_not_a_key_value_payload(payload: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        convert(payload)
    assert info.value.message.startswith(message)


def test_deep_nesting_is_one_error_not_a_crash() -> None:
    ok: Any = 1
    for _ in range(MAX_DEPTH):
        ok = {"a": ok}
    assert convert(ok) == [{"variable": "_".join("a" * MAX_DEPTH), "value": 1}]
    assert errors({"x": ok}) == [
        (None, ".".join("x" + "a" * (MAX_DEPTH - 1)), f"nests objects deeper than {MAX_DEPTH} "
                                                     "levels")]
    hostile = b'{"a":' * 1000 + b"1" + b"}" * 1000  # near orjson's own depth limit
    [(_, field, message)] = errors(hostile)
    assert field == ".".join("a" * MAX_DEPTH) and "deeper" in message
    with pytest.raises(ValidationError, match="invalid JSON"):
        convert(b'{"a":' * 2000 + b"1" + b"}" * 2000)  # past orjson's limit


def test_too_many_keys() -> None:
    assert len(convert({f"k{i}": i for i in range(100)})) == 100
    with pytest.raises(PayloadTooLarge, match="more than 100 keys"):
        convert({f"k{i}": i for i in range(101)})
    with pytest.raises(PayloadTooLarge):
        convert([{"a": 1, "b": 2}] * 51)  # few objects, many keys
