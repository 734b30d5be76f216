"""bridge.model.formats.senml_cbor: SenML CBOR packs (RFC 8428 section 6), hostile ones too."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import cbor2
import pytest

from bridge.errors import PayloadTooLarge, ValidationError
from bridge.model.formats import PayloadFormat, format_for_content_type, format_for_topic
from bridge.model.formats.senml_cbor import MAX_DEPTH, MAX_LABELS
from bridge.model.points import Point, validate_points

RECV = 1_800_000_000_123_456_789
CBOR = PayloadFormat("senml+cbor")
assert format_for_topic("senml/cbor") == CBOR == format_for_content_type("application/senml+cbor")

# RFC 8428 section 6's example: the CBOR form of the "multiple measurements" pack.
RFC_EXAMPLE = bytes.fromhex(
    "87a721781b75726e3a6465763a6f773a31306532303733613031303830303"
    "63a22fb41d303a15b00106223614120050067766f6c74616765016156"
    "02fb405e066666666666a3006763757272656e74062402fb3ff333333333"
    "3333a3006763757272656e74062302fb3ff4cccccccccccda30067637572"
    "72656e74062202fb3ff6666666666666a3006763757272656e74062102f9"
    "3e00a3006763757272656e74062002fb3ff999999999999aa30067637572"
    "72656e74060002fb3ffb333333333333")


def convert(payload: bytes, max_points: int = 100) -> list[dict[str, Any]]:
    converted = CBOR.convert(payload, received_ns=RECV, max_points=max_points)
    assert not converted.errors, converted.errors
    return converted.body  # type: ignore[no-any-return]


def store(payload: bytes) -> list[Point]:
    return CBOR.convert(payload, received_ns=RECV, max_points=100).validate(
        lambda body: validate_points(body, device_id="dev", received_ns=RECV,
                                     max_points=100, new_group=lambda: "g"))


def errors(pack: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ValidationError) as info:
        store(cbor2.dumps(pack))
    assert info.value.message.startswith("Invalid SenML pack: ")
    return [(e.index, e.field, e.message) for e in info.value.errors]


def refused(payload: bytes, max_points: int = 100) -> str:
    with pytest.raises(ValidationError) as info:
        CBOR.convert(payload, received_ns=RECV, max_points=max_points)
    assert info.value.message.startswith("Invalid SenML pack: ")
    return info.value.message


def test_rfc_example_gives_the_json_packs_points() -> None:
    # the RFC's own bytes; its diagnostic notation has these labels and values
    assert cbor2.loads(RFC_EXAMPLE)[0][-2] == "urn:dev:ow:10e2073a0108006:"
    base = 1_276_020_076_001
    assert convert(RFC_EXAMPLE) == [
        {"variable": "urn:dev:ow:10e2073a0108006:voltage", "value": 120.1, "unit": "V",
         "time": base},
        *({"variable": "urn:dev:ow:10e2073a0108006:current", "value": v, "unit": "A",
           "time": base + dt * 1000}
          for dt, v in ((-5, 1.2), (-4, 1.3), (-3, 1.4), (-2, 1.5), (-1, 1.6), (0, 1.7))),
    ]
    assert len(store(RFC_EXAMPLE)) == 7


def test_every_integer_label() -> None:
    pack = [{-1: 10, -2: "dev:", -3: 1_700_000_000, -4: "V", -5: 1, 0: "a", 2: 1.5, 6: 2,
             7: 60},
            {0: "b", 1: "mA", 3: "on"}, {0: "c", 4: False}, {0: "d", 8: b"\x00\xff"},
            {0: "e"}]
    assert convert(cbor2.dumps(pack)) == [
        {"variable": "dev:a", "value": 2.5, "unit": "V", "time": 1_700_000_002_000},
        {"variable": "dev:b", "value": "on", "unit": "mA", "time": 1_700_000_000_000},
        {"variable": "dev:c", "value": False, "unit": "V", "time": 1_700_000_000_000},
        {"variable": "dev:d", "value": "AP8", "unit": "V", "time": 1_700_000_000_000,
         "metadata": {"encoding": "base64url"}},
        {"variable": "dev:e", "value": 1, "unit": "V", "time": 1_700_000_000_000},
    ]


def test_text_labels_too_and_unknown_integer_labels_ignored() -> None:
    assert convert(cbor2.dumps([{"n": "x", "v": 1, 99: "?", "ext": 1}])) == [
        {"variable": "x", "value": 1}]


def test_json_and_cbor_store_the_same_data_value() -> None:
    assert convert(cbor2.dumps([{0: "d", 8: b"hello"}]))[0]["value"] == "aGVsbG8"


def test_number_encodings() -> None:
    pack = [{0: "dec", 2: cbor2.CBORTag(4, [-1, 215])},  # decimal fraction 21.5
            {0: "half", 2: 0.5}, {0: "int", 2: 20}, {0: "neg", 2: -7}]
    values = [p["value"] for p in convert(cbor2.dumps(pack))]
    assert values == [21.5, 0.5, 20, -7] and type(values[2]) is int
    assert convert(bytes.fromhex("81a200617802f93e00"))[0]["value"] == 1.5  # float16


def test_self_described_cbor() -> None:
    assert convert(b"\xd9\xd9\xf7" + cbor2.dumps([{0: "x", 2: 1}])) == [
        {"variable": "x", "value": 1}]
    assert "tag 55799 is not allowed" in refused(
        cbor2.dumps([{0: "x", 2: cbor2.CBORTag(55799, 1)}]))


@pytest.mark.parametrize(("pack", "expected"), [
    ([{0: "x", 2: float("nan")}], [(0, "v", "must be a finite number, not NaN")]),
    ([{0: "x", 2: float("inf")}], [(0, "v", "must be a finite number, not infinity")]),
    ([{0: "x", 2: 1, 6: float("nan")}], [(0, "t", "must be a finite number")]),
    ([{0: "x", 2: 1, -3: float("-inf")}], [(0, "bt", "must be a finite number")]),
    ([{0: "x", 2: 2**70}], [(0, "v", "must fit in a 64-bit signed integer")]),
    ([{0: "x", 2: -(2**70)}], [(0, "v", "must fit in a 64-bit signed integer")]),
    ([{-5: 0.5, 0: "x", 2: 2**70}], [(0, "v", "must fit in a 64-bit signed integer")]),
    ([{0: "x", 2: 1, 6: 2**4000}], [(0, "t", "is outside 1970..2262")]),
    ([{0: "x", 2: Decimal("1e400")}], [(0, "v", "must be a finite number, not infinity")]),
    ([{0: "x", 2: True}], [(0, "v", "must be a number, not a boolean")]),
    ([{0: "x", 2: [1]}], [(0, "v", "must be a number, not an array")]),
    ([{0: "x", 2: {}}], [(0, "v", "must be a number, not an object")]),
    ([{0: "x", 2: b"1"}], [(0, "v", "must be a number, not a byte string")]),
    ([{0: "x", 8: "AP8"}], [(0, "vd", "must be a byte string, not a string")]),
    ([{0: b"x", 2: 1}], [(0, "n", "must be a string, not a byte string")]),
    ([{-1: -1, 0: "x", 2: 1}], [(0, "bver", "must be a positive integer")]),
    ([{-1: 11, 0: "x", 2: 1}],
     [(0, "bver", "is newer than version 10, the one this service understands")]),
    ([{0: "x", 2: 1, 5: 10}], [(0, "s", "sums are not stored: send the sum as the value of "
                                        "a record of its own")]),
    ([{0: "x", 2: 1, "x_": 1}],
     [(0, "x_", "is a must-understand extension (its label ends in _) that this service "
                "does not implement (RFC 8428 section 4.4)")]),
    ([{0: "x", "n": "y", 2: 1}], [(0, "n", "is given twice (as an integer and a text label)")]),
    ([{True: "x", 0: "y", 2: 1}],
     [(0, "record", "has a label that is a boolean, not an integer or a text string")]),
    ([{1.0: "V", 0: "y", 2: 1}],
     [(0, "record", "has a label that is a number, not an integer or a text string")]),
    ([{0: "x", 2: 1}, 5], [(1, "record", "must be a map, not a number")]),
    ([{0: "x" * 101, 2: 1}], [(0, "n", "must be at most 100 characters (as the variable "
                                       "name)")]),
    ([{0: "x", 8: b"\x00" * 4501}], [(0, "vd", "must be at most 6000 characters")]),
])
def test_errors_name_the_record_and_label(pack: Any, expected: list[Any]) -> None:
    assert errors(pack) == expected


def test_data_value_limit_is_4500_bytes() -> None:
    assert len(store(cbor2.dumps([{0: "x", 8: b"\x00" * 4500}]))[0].value) == 6000  # type: ignore[arg-type]


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "the payload ends in the middle of an item"),
    (b"\x82\x01", "the pack runs past the end of the payload"),
    (b"\x82\x01\x18", "the payload ends in the middle of an item"),
    (b"\x81\xa1\x00\x78", "the payload ends in the middle of an item"),
    (b"\x81\xa1\x00\x65ab", "a string runs past the end of the payload"),
    (b"\x81\xa1\x00\x7b" + b"\xff" * 8, "a string runs past the end of the payload"),
    (b"\x80\x00", "1 bytes follow the pack"),
    (cbor2.dumps([]) + cbor2.dumps([{0: "x", 2: 1}]), "bytes follow the pack"),
    (b"\xa1\x00\x01", "a pack is a CBOR array of records, not a map"),
    (b"\x61x", "a pack is a CBOR array of records, not a text string"),
    (b"\xfb" + b"\x00" * 8, "a pack is a CBOR array of records, not a simple value or float"),
    (b"\x9f\xff", "indefinite-length CBOR items are not allowed"),
    (b"\x81\xbf\x00\x61x\xff", "indefinite-length CBOR items are not allowed"),
    (b"\x81\xa1\x00\x7f\x61x\xff", "indefinite-length CBOR items are not allowed"),
    (b"\x81\xa1\x00\x1c", "reserved additional information 28"),
    (b"\x81\xa1\x00\x62\xff\xfe", "invalid CBOR"),  # text that is not UTF-8
    (b"\x81\xa2\x00\x61x\x00\x61y", "invalid CBOR"),  # the same label twice
    (b"\x81\xa1\x02\xc4\x82\x01\x61x", "invalid CBOR"),  # a decimal fraction of a string
    (b"\x81\xa1\x02\xc1\x1a\x65\x00\x00\x00", "CBOR tag 1 is not allowed"),  # a datetime
    (b"\x81\xd8\x1c\x81\xd8\x1d\x00", "CBOR tag 28 is not allowed"),  # a cyclic reference
    (b"\x81\xa1\x02\xd8\x23\x61x", "CBOR tag 35 is not allowed"),  # a regular expression
    (b"\x81\xa1\x02\xd9\x01\x02\x80", "CBOR tag 258 is not allowed"),  # a set
    (b"\x81\xa1\x02\xc5\x82\x01\x01", "CBOR tag 5 is not allowed"),  # a bigfloat
    (b"\x81\xa1\x02\xda\xff\xff\xff\xff\x00", "CBOR tag 4294967295 is not allowed"),
    (b"\x81\xa1\x00\x9b" + b"\x00\x00\x00\x01\x00\x00\x00\x00", "a container runs past"),
])
def test_malformed_or_refused_cbor(payload: bytes, message: str) -> None:
    assert message in refused(payload)


def test_nesting_limit() -> None:
    ok: Any = 1
    for _ in range(MAX_DEPTH - 2):  # in a record in the pack: MAX_DEPTH containers deep
        ok = [ok]
    assert errors([{0: "x", 2: ok}])[0][2] == "must be a number, not an array"
    assert "nested more than" in refused(cbor2.dumps([{0: "x", 2: [ok]}]))
    assert "nested more than" in refused(b"\x81" * 100_000 + b"\x00")


def test_map_size_limit() -> None:
    record: dict[Any, Any] = {0: "x", 2: 1}
    record.update({f"e{i}": i for i in range(MAX_LABELS - 2)})
    assert convert(cbor2.dumps([record])) == [{"variable": "x", "value": 1}]
    record["one_more"] = 1
    assert f"more than the {MAX_LABELS} allowed" in refused(cbor2.dumps([record]))


def test_colliding_integer_keys_are_refused_before_decoding() -> None:
    # Python hashes an int to itself modulo 2**61 - 1: these keys all land in one bucket.
    keys = [i * (2**61 - 1) for i in range(1, 8)] + [-(i * (2**61 - 1)) for i in range(1, 8)]
    body = b"".join(cbor2.dumps(k) + b"\x00" for k in keys * 3000)
    payload = b"\x81\xba" + (len(keys) * 3000).to_bytes(4, "big") + body
    start = time.perf_counter()
    assert "more than the" in refused(payload)
    assert time.perf_counter() - start < 0.5


def test_declared_sizes_cost_nothing() -> None:
    with pytest.raises(PayloadTooLarge, match="at most 100 per message"):
        convert(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff")
    assert "the pack runs past" in refused(b"\x9a\x00\x00\x00\x64", max_points=100)
    with pytest.raises(PayloadTooLarge, match="101 SenML records, at most 100"):
        convert(cbor2.dumps([{0: "x", 2: i} for i in range(101)]))
    assert len(convert(cbor2.dumps([{0: "x", 2: i} for i in range(100)]))) == 100


def test_a_relative_time_resolves_against_the_received_time() -> None:
    [point] = store(cbor2.dumps([{0: "x", 2: 1, 6: -10}]))
    assert abs(point.time_ns - (RECV - 10_000_000_000)) < 1000
