"""SenML CBOR packs (RFC 8428 section 6): the JSON pack's twin with integer labels.

Decoding is cbor2's. Before it runs, one pass over the item heads (no values decoded)
enforces what a SenML pack can need and nothing more, because a decoder's defaults are
made for trusted data:

- the pack is one definite-length array of at most ``max_points`` records, with nothing
  after it; nesting at most ``MAX_DEPTH`` deep; no indefinite lengths (section 6 wants
  definite ones, and they are what lets a length be checked against the bytes left);
- a map has at most ``MAX_LABELS`` entries: Python hashes an integer to itself, so a
  map of integer keys chosen to collide costs quadratic time to build, minutes for a
  1 MiB payload (measured: 16,000 such keys, 200 kB, 2 s) before any of our code sees it;
- the only tags are bignums (2, 3) and decimal fractions (4, which section 6 allows for
  numbers), plus the self-describe tag (55799) in front of the pack: the decoder's other
  tags build datetimes, regular expressions, MIME messages or shared (even cyclic)
  references, none of which a SenML value can be.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import cbor2

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.model.formats.converted import Converted, kind_of
from bridge.model.formats.senml import TITLE, resolve

# Section 6's table, which it declares conclusive: later labels are text strings.
LABELS = {
    -1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
    0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd",
}
MAX_DEPTH = 8  # pack > record > tag 4 > [exponent, tag 2 > mantissa] is 5
MAX_LABELS = 64  # a record has at most 15 labels of the RFC's own
ALLOWED_TAGS = frozenset((2, 3, 4))
_SELF_DESCRIBE = b"\xd9\xd9\xf7"
_MAJOR = ("an unsigned integer", "a negative integer", "a byte string", "a text string",
          "an array", "a map", "a tag", "a simple value or float")
_FLOAT_SIZES = {25: 2, 26: 4, 27: 8}


def convert_senml_cbor(payload: bytes, *, received_ns: int, max_points: int) -> Converted:
    """Points of a SenML CBOR pack (``application/senml+cbor``), as the JSON pack's.

    Raises ValidationError when the payload is no acceptable CBOR array (see above),
    PayloadTooLarge past ``max_points`` records; a faulty record is a ``Converted.errors``."""
    if payload.startswith(_SELF_DESCRIBE):
        # Dropped here rather than decoded: cbor2 makes a tagged array's maps immutable.
        payload = payload[len(_SELF_DESCRIBE):]
    _check_structure(payload, max_points)
    try:
        pack = cbor2.loads(payload, max_depth=MAX_DEPTH, allow_indefinite=False,
                           allow_duplicate_keys=False)
    except Exception as exc:  # whatever the decoder refuses is the payload's fault, not ours
        raise ValidationError(f"{TITLE}: invalid CBOR: {exc}") from None
    return resolve(pack, _record, binary=True, received_ns=received_ns, max_points=max_points)


def _record(record: Any, index: int, errors: list[FieldError]) -> dict[str, Any] | None:
    """A CBOR record keyed by the JSON labels; numbers made int or float."""
    if type(record) is not dict:
        errors.append(FieldError("record", f"must be a map, not {kind_of(record)}", index))
        return None
    out: dict[str, Any] = {}
    for key, value in record.items():
        # type() and not isinstance: True == 1 as a dict key, but a boolean is no label.
        if type(key) is int:
            label = LABELS.get(key)
            if label is None:
                continue  # unknown labels are ignored (section 4.4); only text ones can be _
        elif type(key) is str:
            label = key
        else:
            errors.append(FieldError("record", f"has a label that is {kind_of(key)}, not an "
                                               "integer or a text string", index))
            continue
        if label in out:
            errors.append(FieldError(label, "is given twice (as an integer and a text label)",
                                     index))
            continue
        out[label] = _number(value) if type(value) is Decimal else value
    return out


def _number(value: Decimal) -> Any:
    """A decimal fraction (tag 4) as the double section 6 says it stands for."""
    try:
        return float(value)  # out of range becomes infinity, which validation refuses
    except (ValueError, OverflowError):
        return value  # left for the type checks to refuse


def _fail(message: str) -> ValidationError:
    return ValidationError(f"{TITLE}: {message}")


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, argument, position after the head) of the item at ``pos``."""
    if pos >= len(data):
        raise _fail("invalid CBOR: the payload ends in the middle of an item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info == 31:
        raise _fail("indefinite-length CBOR items are not allowed in a SenML pack "
                    "(RFC 8428 section 6 wants definite lengths)")
    if info > 27:
        raise _fail(f"invalid CBOR: reserved additional information {info}")
    size = 1 << (info - 24)
    if pos + size > len(data):
        raise _fail("invalid CBOR: the payload ends in the middle of an item")
    if major == 7 and info in _FLOAT_SIZES:
        return major, 0, pos + size  # a float: its bytes are its value, not a length
    return major, int.from_bytes(data[pos:pos + size], "big"), pos + size


def _check_structure(data: bytes, max_points: int) -> None:
    """Walk the item heads of ``data``, refusing what no SenML pack needs (see above)."""
    major, count, pos = _head(data, 0)
    if major != 4:
        raise _fail(f"a pack is a CBOR array of records, not {_MAJOR[major]}")
    if count > max_points:
        raise PayloadTooLarge(f"Too many data points: {count} SenML records, at most "
                              f"{max_points} per message")
    if count > len(data) - pos:  # every item takes at least one byte
        raise _fail("invalid CBOR: the pack runs past the end of the payload")
    left = [count]  # items still to read in each open container, outermost first
    while left:
        if not left[-1]:
            left.pop()
            continue
        left[-1] -= 1
        major, arg, pos = _head(data, pos)
        if major in (2, 3):
            pos += arg
            if pos > len(data):
                raise _fail("invalid CBOR: a string runs past the end of the payload")
            continue
        if major == 6:
            if arg not in ALLOWED_TAGS:
                raise _fail(f"CBOR tag {arg} is not allowed in a SenML pack (only numbers, "
                            "strings, booleans and byte strings are)")
            items = 1
        elif major == 5:
            if arg > MAX_LABELS:
                raise _fail(f"a map has {arg} entries, more than the {MAX_LABELS} allowed")
            items = 2 * arg
        elif major == 4:
            items = arg
        else:
            continue  # integers, simple values and floats: the head was the whole item
        if items > len(data) - pos:  # every item takes at least one byte
            raise _fail("invalid CBOR: a container runs past the end of the payload")
        if len(left) >= MAX_DEPTH:
            raise _fail(f"items are nested more than {MAX_DEPTH} deep")
        left.append(items)
    if pos != len(data):
        raise _fail(f"invalid CBOR: {len(data) - pos} bytes follow the pack")
