"""bridge.model.formats.senml: SenML JSON packs (RFC 8428) resolved into TagoIO points."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.errors import PayloadTooLarge, ValidationError
from bridge.model.formats import PayloadFormat, format_for_content_type, format_for_topic
from bridge.model.points import Point, validate_points

RECV = 1_800_000_000_123_456_789
RECV_MS = RECV / 1_000_000
SENML = PayloadFormat("senml+json")
assert format_for_topic("senml") == SENML == format_for_content_type("application/senml+json")
URN = "urn:dev:ow:10e2073a01080063"

# RFC 8428's own examples (sections 5.1.1, 5.1.2, 5.1.3).
SINGLE = [{"n": URN, "u": "Cel", "v": 23.1}]
MULTIPLE = [{"bn": f"{URN}:", "n": "voltage", "u": "V", "v": 120.1},
            {"n": "current", "u": "A", "v": 1.2}]
MEASUREMENTS = [
    {"bn": "urn:dev:ow:10e2073a0108006:", "bt": 1.276020076001e09, "bu": "A", "bver": 5,
     "n": "voltage", "u": "V", "v": 120.1},
    {"n": "current", "t": -5, "v": 1.2}, {"n": "current", "t": -4, "v": 1.3},
    {"n": "current", "t": -3, "v": 1.4}, {"n": "current", "t": -2, "v": 1.5},
    {"n": "current", "t": -1, "v": 1.6}, {"n": "current", "v": 1.7},
]
MEASUREMENTS_POINTS = [
    {"variable": "urn:dev:ow:10e2073a0108006:voltage", "value": 120.1, "unit": "V",
     "time": 1_276_020_076_001},
    *({"variable": "urn:dev:ow:10e2073a0108006:current", "value": v, "unit": "A",
       "time": 1_276_020_076_001 + dt * 1000}
      for dt, v in ((-5, 1.2), (-4, 1.3), (-3, 1.4), (-2, 1.5), (-1, 1.6), (0, 1.7))),
]


def convert(pack: Any, max_points: int = 100) -> list[dict[str, Any]]:
    raw = pack if isinstance(pack, bytes) else orjson.dumps(pack)
    converted = SENML.convert(raw, received_ns=RECV, max_points=max_points)
    assert not converted.errors, converted.errors
    return converted.body  # type: ignore[no-any-return]


def store(pack: Any) -> list[Point]:
    converted = SENML.convert(orjson.dumps(pack), received_ns=RECV, max_points=100)
    return converted.validate(lambda body: validate_points(
        body, device_id="dev", received_ns=RECV, max_points=100, new_group=lambda: "g"))


def errors(pack: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ValidationError) as info:
        store(pack)
    assert info.value.message.startswith("Invalid SenML pack: ")
    return [(e.index, e.field, e.message) for e in info.value.errors]


def test_rfc_single_datapoint_is_stored_now() -> None:
    assert convert(SINGLE) == [{"variable": URN, "value": 23.1, "unit": "Cel"}]
    assert store(SINGLE) == [Point("dev", URN, RECV, RECV, "g", 23.1, "Cel")]


def test_rfc_multiple_datapoints_base_name() -> None:
    assert convert(MULTIPLE) == [
        {"variable": f"{URN}:voltage", "value": 120.1, "unit": "V"},
        {"variable": f"{URN}:current", "value": 1.2, "unit": "A"},
    ]


def test_rfc_multiple_measurements_base_time_and_unit() -> None:
    assert convert(MEASUREMENTS) == MEASUREMENTS_POINTS
    points = store(MEASUREMENTS)
    assert [p.time_ns for p in points] == [
        (1_276_020_076_001 + dt * 1000) * 1_000_000 for dt in (0, -5, -4, -3, -2, -1, 0)]
    assert {p.group for p in points} == {"g"}


def test_name_from_base_name_alone() -> None:
    pack = [{"bn": URN, "bt": 1.320067464e09, "bu": "%RH", "v": 21.2}, {"t": 10, "v": 21.3}]
    assert convert(pack) == [
        {"variable": URN, "value": 21.2, "unit": "%RH", "time": 1_320_067_464_000},
        {"variable": URN, "value": 21.3, "unit": "%RH", "time": 1_320_067_474_000},
    ]


def test_base_fields_last_until_replaced() -> None:
    pack = [{"bn": "a:", "bu": "V", "n": "x", "v": 1}, {"n": "y", "v": 2},
            {"bn": "b:", "bu": "A", "n": "x", "v": 3}, {"n": "y", "u": "mA", "v": 4}]
    assert [(p["variable"], p["unit"]) for p in convert(pack)] == [
        ("a:x", "V"), ("a:y", "V"), ("b:x", "A"), ("b:y", "mA")]


@pytest.mark.parametrize(("fields", "expected_ms"), [
    ({"t": -5}, RECV_MS - 5000),  # 5 s before "now", the time received
    ({"t": 10}, RECV_MS + 10_000),  # positive and under 2**28: in the future
    ({"bt": -60, "t": 10}, RECV_MS - 50_000),
    ({"t": -0.25}, RECV_MS - 250),
    ({"t": 2**28}, 2**28 * 1000),  # the smallest absolute time
    ({"t": 2**28 - 1}, RECV_MS + (2**28 - 1) * 1000),
    ({"t": 1_700_000_000.5}, 1_700_000_000_500),
    ({"bt": 1_700_000_000, "t": -0.001}, 1_699_999_999_999),
])
def test_times(fields: dict[str, Any], expected_ms: float) -> None:
    [point] = convert([{"n": "x", "v": 1, **fields}])
    assert point["time"] == pytest.approx(expected_ms, abs=0.001)
    [stored] = store([{"n": "x", "v": 1, **fields}])
    assert abs(stored.time_ns - expected_ms * 1_000_000) < 1000  # within a microsecond


@pytest.mark.parametrize("fields", [{}, {"t": 0}, {"bt": 0}, {"bt": 5, "t": -5}])
def test_time_zero_is_the_received_time(fields: dict[str, Any]) -> None:
    assert "time" not in convert([{"n": "x", "v": 1, **fields}])[0]
    assert store([{"n": "x", "v": 1, **fields}])[0].time_ns == RECV


def test_value_kinds() -> None:
    pack = [{"n": "num", "v": 20}, {"n": "float", "v": 20.5}, {"n": "str", "vs": "on"},
            {"n": "yes", "vb": True}, {"n": "no", "vb": False}, {"n": "data", "vd": "AP8"}]
    assert [(p["variable"], p["value"]) for p in convert(pack)] == [
        ("num", 20), ("float", 20.5), ("str", "on"), ("yes", True), ("no", False),
        ("data", "AP8")]
    points = store(pack)
    assert type(points[0].value) is int and points[3].value is True
    assert points[5].metadata == '{"encoding":"base64url"}'


@pytest.mark.parametrize(("given", "stored"), [
    ("AP8", "AP8"), ("AP8=", "AP8"), ("", ""), ("_-_-", "_-_-"), ("aGVsbG8", "aGVsbG8"),
])
def test_data_values_are_unpadded_base64url(given: str, stored: str) -> None:
    [point] = convert([{"n": "d", "vd": given}])
    assert point == {"variable": "d", "value": stored, "metadata": {"encoding": "base64url"}}


def test_base_value_is_added_to_numbers_only() -> None:
    pack = [{"bn": "m:", "bv": 100, "n": "a", "v": 1}, {"n": "b", "v": -1.5},
            {"n": "c"}, {"n": "d", "vs": "x"}, {"bv": 1.1, "n": "e", "v": 2.2}]
    assert [p["value"] for p in convert(pack)] == [101, 98.5, 100, "x", 3.3]


def test_unknown_labels_and_update_time_are_ignored() -> None:
    assert convert([{"n": "x", "v": 1, "ut": 60, "foo": [1, {"a": None}], "bfoo": 1}]) == [
        {"variable": "x", "value": 1}]


def test_empty_unit_means_none() -> None:
    assert convert([{"bu": "V", "n": "x", "u": "", "v": 1}]) == [{"variable": "x", "value": 1}]


def test_same_name_and_time_twice_both_survive() -> None:
    points = store([{"n": "x", "t": 1.7e9, "v": 1}, {"n": "x", "t": 1.7e9, "v": 2}])
    assert [(p.value, p.slot) for p in points] == [(1, 0), (2, 1)]


def test_empty_pack() -> None:
    assert convert([]) == []


@pytest.mark.parametrize(("pack", "expected"), [
    ([{"n": "x"}], [(0, "v", "is missing: a record needs one of v, vs, vb or vd")]),
    ([{"v": 1}], [(0, "n", "is missing: a record needs a name, from n and/or bn")]),
    ([{"n": "x", "v": 1, "vs": "a"}],
     [(0, "vs", "cannot come with v: a record has exactly one value")]),
    ([{"n": "x", "vb": True, "vd": "AA"}],
     [(0, "vd", "cannot come with vb: a record has exactly one value")]),
    ([{"n": "x", "v": True}], [(0, "v", "must be a number, not a boolean")]),
    ([{"n": "x", "v": "21"}], [(0, "v", "must be a number, not a string")]),
    ([{"n": "x", "v": None}], [(0, "v", "must be a number, not null")]),
    ([{"n": "x", "vb": 1}], [(0, "vb", "must be true or false, not a number")]),
    ([{"n": "x", "vs": 5}], [(0, "vs", "must be a string, not a number")]),
    ([{"n": "x", "vd": 5}], [(0, "vd", "must be a base64url string, not a number")]),
    ([{"n": "x", "vd": "A"}], [(0, "vd", "must be base64url (RFC 4648 section 5), without "
                                         "padding")]),
    ([{"n": "x", "vd": "a+b/"}], [(0, "vd", "must be base64url (RFC 4648 section 5), "
                                            "without padding")]),
    ([{"n": 5, "v": 1}], [(0, "n", "must be a string, not a number")]),
    ([{"bn": 5, "n": "x", "v": 1}], [(0, "bn", "must be a string, not a number")]),
    ([{"n": "x", "u": 5, "v": 1}], [(0, "u", "must be a string, not a number")]),
    ([{"bu": [], "n": "x", "v": 1}], [(0, "bu", "must be a string, not an array")]),
    ([{"bv": "1", "n": "x", "v": 1}], [(0, "bv", "must be a number, not a string")]),
    ([{"n": "x", "v": 1, "t": "now"}], [(0, "t", "must be a number of seconds, not a string")]),
    ([{"bt": True, "n": "x", "v": 1}], [(0, "bt", "must be a number of seconds, not a boolean")]),
    ([{"n": "x", "v": 1, "t": 1e300}], [(0, "t", "is outside 1970..2262")]),
    ([{"n": "x", "v": 1, "t": 1e11}], [(0, "t", "outside 1970..2262")]),  # validate_points'
    ([{"n": "x", "v": 1, "t": -1e10}], [(0, "t", "outside 1970..2262")]),
    ([{"bt": 1e11, "n": "x", "v": 1}], [(0, "bt", "outside 1970..2262")]),
    ([{"n": "x", "v": 1, "s": 5}], [(0, "s", "sums are not stored: send the sum as the value "
                                             "of a record of its own")]),
    ([{"bs": 5, "n": "x", "v": 1}], [(0, "bs", "sums are not stored: send the sum as the "
                                               "value of a record of its own")]),
    ([{"n": "x", "v": 1, "foo_": 1}],
     [(0, "foo_", "is a must-understand extension (its label ends in _) that this service "
                  "does not implement (RFC 8428 section 4.4)")]),
    ([{"bver": 11, "n": "x", "v": 1}],
     [(0, "bver", "is newer than version 10, the one this service understands")]),
    ([{"bver": "10", "n": "x", "v": 1}], [(0, "bver", "must be a positive integer, not a "
                                                      "string")]),
    ([{"bver": 0, "n": "x", "v": 1}], [(0, "bver", "must be a positive integer")]),
    ([{"bver": 10.0, "n": "x", "v": 1}], [(0, "bver", "must be a positive integer, not a "
                                                      "number")]),
    ([{"bver": 10, "n": "x", "v": 1}, {"bver": 9, "n": "y", "v": 1}],
     [(1, "bver", "differs from an earlier record's: a pack has one version")]),
    ([{"n": "x", "v": 1}, [1]], [(1, "record", "must be an object, not an array")]),
    ([{"n": "x", "vs": "x" * 6001}], [(0, "vs", "must be at most 6000 characters")]),
    ([{"n": "x", "vd": "A" * 6004}], [(0, "vd", "must be at most 6000 characters")]),
    ([{"n": "x", "u": "u" * 26, "v": 1}], [(0, "u", "must be at most 25 characters")]),
    ([{"bu": "u" * 26, "n": "x", "v": 1}], [(0, "bu", "must be at most 25 characters")]),
    ([{"n": "x", "v": 2**63}], [(0, "v", "must fit in a 64-bit signed integer")]),
    ([{"n": "x" * 101, "v": 1}],
     [(0, "n", "must be at most 100 characters (as the variable name)")]),
    ([{"bn": "b" * 60, "v": 1}, {"n": "x" * 41, "v": 1}],
     [(1, "n", "must be at most 100 characters (as the variable name)")]),
])
def test_errors_name_the_record_and_label(pack: Any, expected: list[Any]) -> None:
    assert errors(pack) == expected


@pytest.mark.parametrize(("fields", "label"), [
    ({"n": "temp C"}, "n"), ({"n": "-x"}, "n"), ({"n": "_x"}, "n"), ({"n": "x\u00b0"}, "n"),
    ({"n": "a\x01"}, "n"), ({"bn": "dev 1:", "n": "x"}, "n"), ({"bn": "dev 1"}, "bn"),
    ({"bn": ":", "n": "x"}, "n"),
])
def test_names_outside_senml_characters(fields: dict[str, Any], label: str) -> None:
    [(index, field, message)] = errors([{**fields, "v": 1}])
    assert (index, field) == (0, label)
    assert message.startswith("gives a name SenML does not allow")


@pytest.mark.parametrize("name", ["a", "0", "urn:dev:mac:0024befffe804ff1", "2001:db8::3",
                                  "a-b.c/d_e", "Z"])
def test_senml_names(name: str) -> None:
    assert convert([{"n": name, "v": 1}])[0]["variable"] == name


def test_every_bad_record_is_reported_at_once_in_order() -> None:
    pack = [{"n": "ok", "v": 1}, "x", {"n": "y" * 101, "v": 1}, {"n": "z", "v": True},
            {"n": "w", "vs": "x" * 7000}]
    assert errors(pack) == [
        (1, "record", "must be an object, not a string"),
        (2, "n", "must be at most 100 characters (as the variable name)"),
        (3, "v", "must be a number, not a boolean"),
        (4, "vs", "must be at most 6000 characters"),
    ]


def test_the_message_names_places_the_way_tagoio_errors_do() -> None:
    with pytest.raises(ValidationError) as info:
        store([{"n": "a", "v": 1}, {"n": "b", "v": 1}, {"n": "c", "v": 1}, {"n": "d", "v": "x"}])
    assert info.value.message == "Invalid SenML pack: [3] v must be a number, not a string"
    assert info.value.field_errors() == {"3": ["v: must be a number, not a string"]}
    assert info.value.errors[0].as_dict() == {
        "field": "v", "message": "must be a number, not a string", "index": 3}


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "Invalid SenML pack: invalid JSON: empty body"),
    (b"[{", "Invalid SenML pack: invalid JSON: "),
    (b'[{"n":"x","v":NaN}]', "Invalid SenML pack: invalid JSON: "),
    (b'[{"n":"x","v":1e999}]', "Invalid SenML pack: invalid JSON: "),
    (b'{"n":"x","v":1}', "Invalid SenML pack: a pack is a JSON array of records, not an "
                         "object"),
    (b"21.5", "Invalid SenML pack: a pack is a JSON array of records, not a number"),
])
def test_not_a_senml_json_pack(payload: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        SENML.convert(payload, received_ns=RECV, max_points=100)
    assert info.value.message.startswith(message)


def test_too_many_records() -> None:
    assert len(convert([{"n": "x", "v": i} for i in range(100)])) == 100
    with pytest.raises(PayloadTooLarge, match="101 SenML records, at most 100"):
        convert([{"n": "x", "v": i} for i in range(101)])
