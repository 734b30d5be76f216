"""bridge.model.formats.raw: one raw value on devices/{id}/data/{variable}."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.errors import FieldError, ValidationError
from bridge.model.formats import format_for_topic
from bridge.model.points import Point, validate_points

RECV = 1_800_000_000_123_456_789


def convert(payload: bytes, variable: str = "temp") -> list[dict[str, Any]]:
    fmt = format_for_topic(f"data/{variable}")
    assert fmt is not None and fmt.name == "raw"
    converted = fmt.convert(payload, received_ns=RECV, max_points=10)
    assert isinstance(converted.body, list)
    return converted.body


def store(payload: bytes, variable: str = "temp") -> list[Point]:
    fmt = format_for_topic(f"data/{variable}")
    assert fmt is not None
    converted = fmt.convert(payload, received_ns=RECV, max_points=10)
    return converted.validate(lambda body: validate_points(
        body, device_id="dev", received_ns=RECV, max_points=10, new_group=lambda: "g"))


def errors(payload: bytes, variable: str = "temp") -> list[FieldError]:
    with pytest.raises(ValidationError) as info:
        store(payload, variable)
    assert info.value.message.startswith("Invalid raw value: ")
    return info.value.errors


@pytest.mark.parametrize(("payload", "value"), [
    (b"21.5", 21.5),
    (b"20", 20),
    (b"-3", -3),
    (b"0", 0),
    (b"1e3", 1000.0),
    (b"-2.5E-2", -0.025),
    (b"9223372036854775807", 2**63 - 1),
    (b" 21.5\r\n", 21.5),  # firmware that prints its reading with a line end
    (b"true", True),
    (b"false", False),
    (b"\ttrue\n", True),
])
def test_numbers_and_booleans(payload: bytes, value: Any) -> None:
    [point] = convert(payload)
    assert point == {"variable": "temp", "value": value}
    assert type(point["value"]) is type(value)  # 20 stays an int, true a bool, not 1


@pytest.mark.parametrize("payload", [
    b"hello", b"hello\n", b"NaN", b"Infinity", b"0x1F", b"+5", b".5", b"5.", b"007",
    b"True", b"TRUE", b"null", b'"quoted"', b"21,5", b"1 2", b" ", "21.5 \u00b0C".encode(),
    "\u00fcn\u00efcode \U0001f600".encode(),
])
def test_anything_else_is_the_text_exactly(payload: bytes) -> None:
    assert convert(payload) == [{"variable": "temp", "value": payload.decode()}]


def test_the_stored_point() -> None:
    [point] = store(b"21.5")
    assert point == Point("dev", "temp", RECV, RECV, "g", 21.5)  # received time, no unit


def test_empty_payload_is_a_retained_clear_not_a_reading() -> None:
    assert convert(b"") == []
    assert store(b"") == []


def test_the_variable_is_the_rest_of_the_topic() -> None:
    fmt = format_for_topic("data/room/1")
    assert fmt is not None and fmt.variable == "room/1"
    assert store(b"1", "Temp Room")[0].variable == "Temp Room"  # exactly as given


def test_invalid_utf8_is_named() -> None:
    [err] = errors(b"ok\xff\xfe")
    assert err.field == "payload" and err.index is None
    assert "UTF-8" in err.message and "offset 2" in err.message


@pytest.mark.parametrize(("payload", "message"), [
    (b"1e999", "must be a finite number, not infinity"),
    (b"-1e400", "must be a finite number, not infinity"),
    (b"9223372036854775808", "must fit in a 64-bit signed integer"),
    (b"1" * 30, "must fit in a 64-bit signed integer"),
    (b"9" * 5000, "must fit in a 64-bit signed integer"),  # past int()'s digit limit
    (b"x" * 6001, "must be at most 6000 characters"),
])
def test_values_refused_by_the_point_rules(payload: bytes, message: str) -> None:
    assert [(e.field, e.message, e.index) for e in errors(payload)] == [
        ("payload", message, None)]


@pytest.mark.parametrize(("variable", "message"), [
    ("v" * 101, "must be at most 100 characters"),
    ("a\x01b", "must not contain control characters"),
    ("a\nb", "must not contain control characters"),
    ("", "must not be empty"),
])
def test_a_topic_variable_is_held_to_the_json_rules(variable: str, message: str) -> None:
    [err] = errors(b"1", variable)
    assert (err.field, err.message, err.index) == (
        "topic", message + " (as the variable name)", None)
    assert store(b"1", "v" * 100)[0].variable == "v" * 100
