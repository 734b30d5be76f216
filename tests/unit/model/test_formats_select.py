"""bridge.model.formats: choosing a format, TagoIO JSON unchanged, relabelling, and that no
input at all makes a converter raise anything but our own errors."""

from __future__ import annotations

import random
from typing import Any

import cbor2
import orjson
import pytest

from bridge.errors import DeviceDataError, FieldError, PayloadTooLarge, ValidationError
from bridge.model.formats import (
    FORMAT_NAMES,
    Converted,
    Origin,
    PayloadFormat,
    format_for_content_type,
    format_for_topic,
)
from bridge.model.points import decode_json, validate_points

RECV = 1_800_000_000_123_456_789


def check(body: Any) -> Any:
    return validate_points(body, device_id="dev", received_ns=RECV, max_points=50,
                           new_group=lambda: "g")


@pytest.mark.parametrize(("suffix", "name", "variable"), [
    ("data", "tagoio", None), ("data/temp", "raw", "temp"), ("data/a/b", "raw", "a/b"),
    ("data/", "raw", ""), ("kv", "kv", None), ("senml", "senml+json", None),
    ("senml/cbor", "senml+cbor", None),
])
def test_topics(suffix: str, name: str, variable: str | None) -> None:
    assert format_for_topic(suffix) == PayloadFormat(name, variable)


@pytest.mark.parametrize("suffix", ["", "errors", "datax", "Data", "kv/x", "senml/xml",
                                    "senml/", "senml/cbor/x", "cbor"])
def test_not_data_topics(suffix: str) -> None:
    assert format_for_topic(suffix) is None


@pytest.mark.parametrize(("content_type", "name"), [
    ("application/senml+json", "senml+json"),
    ("application/senml+json; charset=utf-8", "senml+json"),
    ("Application/SenML+CBOR", "senml+cbor"),
    (" application/senml+cbor ;x=y", "senml+cbor"),
    ("application/json", "tagoio"), ("application/json; charset=utf-8", "tagoio"),
    (None, "tagoio"), ("", "tagoio"), ("text/plain", "tagoio"),
    ("application/x-www-form-urlencoded", "tagoio"),  # curl -d's default
    ("application/cbor", "tagoio"),
])
def test_content_types(content_type: str | None, name: str) -> None:
    assert format_for_content_type(content_type).name == name


def test_names_are_a_closed_set() -> None:
    formats = [format_for_topic(s) for s in ("data", "data/x", "kv", "senml", "senml/cbor")]
    assert sorted(f.name for f in formats if f) == sorted(FORMAT_NAMES)


TAGOIO = PayloadFormat("tagoio")
assert format_for_topic("data") == TAGOIO


@pytest.mark.parametrize("body", [
    {"variable": "t", "value": 1}, [{"variable": "t", "value": 1}, {"variable": "u"}], [],
])
def test_tagoio_json_is_unchanged(body: Any) -> None:
    converted = TAGOIO.convert(orjson.dumps(body), received_ns=RECV, max_points=50)
    assert converted.body == body and converted.origins is None
    assert converted.validate(check) == check(body)


@pytest.mark.parametrize("payload", [b"", b"  ", b"{", b"[1,", b"NaN", b"\xff"])
def test_tagoio_json_errors_are_decode_jsons(payload: bytes) -> None:
    with pytest.raises(ValidationError) as ours:
        TAGOIO.convert(payload, received_ns=RECV, max_points=50)
    with pytest.raises(ValidationError) as theirs:
        decode_json(payload)
    assert ours.value.message == theirs.value.message


def test_tagoio_point_errors_are_left_as_they_are() -> None:
    converted = TAGOIO.convert(b'[{"variable":"a"},{"variable":"b","value":null}]',
                               received_ns=RECV, max_points=50)
    with pytest.raises(ValidationError) as info:
        converted.validate(check)
    assert info.value.message == "Error on object parse: [1] value must not be null"


def test_relabel_maps_each_point_to_its_origin() -> None:
    converted = Converted(
        [{"variable": "a", "value": 1}, {"variable": "b" * 101, "value": None}],
        [Origin(0, {"variable": "n", "value": "v"}), Origin(7, {"value": "vs"}, "record")],
        "Invalid thing")
    with pytest.raises(ValidationError) as info:
        converted.validate(check)
    assert [(e.index, e.field, e.message) for e in info.value.errors] == [
        (7, "record", "must be at most 100 characters (as the variable name)"),
        (7, "vs", "must not be null"),
    ]
    assert info.value.message.startswith("Invalid thing: [7] record must be at most 100")
    assert isinstance(info.value.__cause__, ValidationError)  # the original, for logs


def test_converter_errors_block_direct_use_of_the_body() -> None:
    converted = Converted([{"variable": "a", "value": 1}], [Origin(0, {})], "Invalid thing",
                          [FieldError("record", "must be an object", 1)])
    with pytest.raises(ValidationError, match=r"Invalid thing: \[1\] record must be an object"):
        converted.payload  # noqa: B018 - the property raising is the point
    with pytest.raises(ValidationError) as info:
        converted.validate(check)  # the good point validates; the bad item still fails all
    assert [e.index for e in info.value.errors] == [1]


# --- no input makes a converter raise anything else ------------------------------------

SAMPLES: dict[str, list[bytes]] = {
    "data/t": [b"21.5", b"true", b"text", b"-1e5", b"\xc3\xa9"],
    "kv": [orjson.dumps(x) for x in (
        {"a": 1, "b": {"c": "x", "d": True}}, [{"ts": 1_700_000_000_000, "values": {"t": 1}}],
        {"a_b": 1, "a": {"b": 2}})],
    "senml": [orjson.dumps(x) for x in (
        [{"bn": "d:", "bt": 1.7e9, "bu": "V", "bv": 1, "bver": 10, "n": "a", "v": 1,
          "t": -5}, {"n": "b", "vs": "x"}, {"n": "c", "vb": True}, {"n": "d", "vd": "AP8"}],
        [{"n": "x", "v": 1, "ut": 5}])],
    "senml/cbor": [cbor2.dumps(x) for x in (
        [{-2: "d:", -3: 1.7e9, -4: "V", -5: 1, -1: 10, 0: "a", 2: 1, 6: -5},
         {0: "b", 3: "x"}, {0: "c", 4: True}, {0: "d", 8: b"\x00"},
         {0: "e", 2: cbor2.CBORTag(4, [-2, 12345])}, {0: "f", 2: 2**70}],
        [{0: "x", 2: 1.5, 7: 5}])],
}


def mutations(sample: bytes, rng: random.Random) -> bytes:
    data = bytearray(sample)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))
        elif op == 2:
            del data[pos:pos + rng.randint(1, 5)]
        else:
            data = data[:pos]
    return bytes(data)


@pytest.mark.parametrize("suffix", list(SAMPLES))
def test_no_payload_raises_anything_but_our_errors(suffix: str) -> None:
    fmt = format_for_topic(suffix)
    assert fmt is not None
    rng = random.Random(f"formats-{suffix}")
    payloads = [mutations(s, rng) for s in SAMPLES[suffix] for _ in range(1500)]
    payloads += [rng.randbytes(rng.randint(0, 40)) for _ in range(1000)]
    outcomes = {"stored": 0, "refused": 0}
    for payload in [*SAMPLES[suffix], *payloads]:
        try:
            fmt.convert(payload, received_ns=RECV, max_points=50).validate(check)
            outcomes["stored"] += 1
        except (ValidationError, PayloadTooLarge) as exc:
            assert isinstance(exc, DeviceDataError)
            assert exc.args and str(exc)
            outcomes["refused"] += 1
    assert outcomes["stored"] and outcomes["refused"]
