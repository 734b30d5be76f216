"""SenML packs (RFC 8428) -> TagoIO points: the resolution rules shared by JSON and CBOR.

A pack is an array of records. Base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bver``)
apply to their record and every later one until replaced; each record then resolves
(section 4.6) to one point:

- variable = ``bn`` + ``n``, which must be a SenML name (section 4.5.1);
- value = ``v`` (plus ``bv``), ``vs``, ``vb``, or ``vd``; exactly one of them, or ``bv``
  alone (section 4.5.4 counts a missing value as zero); ``vd`` is stored as unpadded
  base64url text with metadata ``{"encoding": "base64url"}``, since a TagoIO value has no
  binary type and text keeps a JSON pack and its CBOR twin storing the same thing;
- unit = ``u``, else ``bu``;
- time = ``bt`` + ``t`` seconds; under 2**28 it is relative to now (section 4.5.3), so it
  is resolved against the time received; a resolved 0 (no time at all) is "now" and the
  point gets the received time exactly like an untimed TagoIO point.

Refused, with the record and label named: sums (``s``, ``bs``: a sum is another quantity
than the value, in unit x seconds, and has no place in a TagoIO point; send it as the
value of a record of its own), versions above 10 or differing within a pack (section
4.4: a reader MUST NOT use a pack of a version it does not know), labels ending in ``_``
(must-understand extensions we do not implement). Other unknown labels are ignored, as
the RFC requires, and so is ``ut``.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.model.formats.converted import Converted, Origin, kind_of, load_json

TITLE = "Invalid SenML pack"
VERSION = 10  # RFC 8428's; older drafts' packs (5..9) have the same fields
VALUE_LABELS = ("v", "vs", "vb", "vd")
RELATIVE_LIMIT = 2**28  # section 4.5.3: smaller (bt + t) values are seconds from now
# Seconds far beyond InfluxDB's 2262 either way: keeps a bignum time from costing
# anything before it is refused.
_MAX_SECONDS = 10**13
_INT64 = 2**63
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*")
_BASE64URL = re.compile(r"[A-Za-z0-9_\-]*={0,2}")
# Exact sums of two doubles (33 digits cover any sum a double can round to) and no traps:
# a hostile operand becomes Infinity, which validation refuses, never an exception.
_DECIMAL = Context(prec=34, traps=[])

Number = int | float
Normalise = Callable[[Any, int, list[FieldError]], dict[str, Any] | None]


@dataclass(slots=True)
class _Base:
    """The base fields in force at the current record."""

    name: str = ""
    time: Decimal | None = None
    unit: str | None = None
    value: Number | None = None
    version: int | None = None


def convert_senml_json(payload: bytes, *, received_ns: int, max_points: int) -> Converted:
    """Points of a SenML JSON pack (``application/senml+json``), labelled by record.

    Raises ValidationError when the payload is no JSON array, PayloadTooLarge past
    ``max_points`` records; a faulty record is one of ``Converted.errors``."""
    pack = load_json(payload, TITLE)
    if not isinstance(pack, list):
        raise ValidationError(f"{TITLE}: a pack is a JSON array of records, not {kind_of(pack)}")
    return resolve(pack, _json_record, binary=False, received_ns=received_ns,
                   max_points=max_points)


def _json_record(record: Any, index: int, errors: list[FieldError]) -> dict[str, Any] | None:
    if type(record) is not dict:
        errors.append(FieldError("record", f"must be an object, not {kind_of(record)}", index))
        return None
    return record


def resolve(
    records: list[Any], normalise: Normalise, *, binary: bool, received_ns: int,
    max_points: int,
) -> Converted:
    """Resolve ``records`` into points. ``normalise`` turns one record into a dict keyed
    by the JSON labels (or reports why it cannot); ``binary`` says ``vd`` is a byte
    string (CBOR) rather than base64url text (JSON)."""
    if len(records) > max_points:
        raise PayloadTooLarge(f"Too many data points: {len(records)} SenML records, at most "
                              f"{max_points} per message")
    errors: list[FieldError] = []
    points: list[dict[str, Any]] = []
    origins: list[Origin] = []
    base = _Base()
    for index, raw in enumerate(records):
        record = normalise(raw, index, errors)
        if record is None:
            continue
        before = len(errors)

        def fail(label: str, message: str, index: int = index) -> None:
            errors.append(FieldError(label, message, index))

        _apply_base(record, base, fail)
        for label in record:
            if label.endswith("_"):
                fail(label, "is a must-understand extension (its label ends in _) that this "
                            "service does not implement (RFC 8428 section 4.4)")
        if "s" in record:
            fail("s", "sums are not stored: send the sum as the value of a record of its own")
        point, labels = _point(record, base, binary, received_ns, fail)
        if len(errors) == before:
            points.append(point)
            origins.append(Origin(index, labels, "record"))
    return Converted(points, origins, TITLE, errors)


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float  # not bool, a subclass of int


def _apply_base(record: dict[str, Any], base: _Base, fail: Callable[[str, str], None]) -> None:
    """Update the base fields in force from ``record``'s own."""
    if "bver" in record:
        version = record["bver"]
        if type(version) is not int:
            fail("bver", f"must be a positive integer, not {kind_of(version)}")
        elif version < 1:
            fail("bver", "must be a positive integer")
        elif version > VERSION:
            fail("bver", f"is newer than version {VERSION}, the one this service understands")
        elif base.version is not None and version != base.version:
            fail("bver", "differs from an earlier record's: a pack has one version")
        else:
            base.version = version
    if "bn" in record:
        if type(record["bn"]) is str:
            base.name = record["bn"]
        else:
            fail("bn", f"must be a string, not {kind_of(record['bn'])}")
    if "bt" in record:
        base.time = _seconds(record["bt"], "bt", fail)
    if "bu" in record:
        if type(record["bu"]) is str:
            base.unit = record["bu"] or None
        else:
            fail("bu", f"must be a string, not {kind_of(record['bu'])}")
    if "bv" in record:
        if _is_number(record["bv"]):
            base.value = record["bv"]
        else:
            fail("bv", f"must be a number, not {kind_of(record['bv'])}")
    if "bs" in record:
        fail("bs", "sums are not stored: send the sum as the value of a record of its own")


def _seconds(value: Any, label: str, fail: Callable[[str, str], None]) -> Decimal | None:
    if not _is_number(value):
        fail(label, f"must be a number of seconds, not {kind_of(value)}")
        return None
    if type(value) is float and not math.isfinite(value):
        fail(label, "must be a finite number")
        return None
    if not -_MAX_SECONDS <= value <= _MAX_SECONDS:
        fail(label, "is outside 1970..2262")
        return None
    return Decimal(value) if type(value) is int else Decimal(repr(value))


def _point(
    record: dict[str, Any], base: _Base, binary: bool, received_ns: int,
    fail: Callable[[str, str], None],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The TagoIO point of one record, and the label behind each of its fields."""
    name_label = "n" if "n" in record else "bn"
    n = record.get("n", "")
    name = base.name + n if type(n) is str else ""
    if type(n) is not str:
        fail("n", f"must be a string, not {kind_of(n)}")
    elif not name:
        fail("n", "is missing: a record needs a name, from n and/or bn")
    elif not _NAME.fullmatch(name):
        fail(name_label, 'gives a name SenML does not allow: bn + n must start with a letter '
                         'or digit and hold only letters, digits and - : . / _ '
                         "(RFC 8428 section 4.5.1)")
    point: dict[str, Any] = {"variable": name}
    labels = {"variable": name_label}

    given = [label for label in VALUE_LABELS if label in record]
    if len(given) > 1:
        fail(given[1], f"cannot come with {given[0]}: a record has exactly one value")
    elif given:
        label = labels["value"] = given[0]
        point["value"] = _value(label, record[label], base, binary, fail)
        if label == "vd":
            point["metadata"] = {"encoding": "base64url"}
            labels["metadata"] = "vd"
    elif base.value is not None:
        point["value"], labels["value"] = base.value, "bv"
    else:
        fail("v", "is missing: a record needs one of v, vs, vb or vd")

    if "u" in record:
        unit = record["u"]
        if type(unit) is not str:
            fail("u", f"must be a string, not {kind_of(unit)}")
        elif unit:
            point["unit"], labels["unit"] = unit, "u"
    elif base.unit is not None:
        point["unit"], labels["unit"] = base.unit, "bu"

    seconds = _seconds(record["t"], "t", fail) if "t" in record else None
    if base.time is not None or seconds is not None:
        total = _DECIMAL.add(base.time or Decimal(0), seconds or Decimal(0))
        if total:  # 0 is "now": left to the received time, as for an untimed TagoIO point
            if total < RELATIVE_LIMIT:
                total = _DECIMAL.add(total, Decimal(received_ns).scaleb(-9))
            point["time"] = _milliseconds(total)
            labels["time"] = "t" if "t" in record else "bt"
    return point, labels


def _value(
    label: str, value: Any, base: _Base, binary: bool, fail: Callable[[str, str], None]
) -> Any:
    """The TagoIO value of ``label``: type-checked here, range-checked by validation."""
    if label == "v":
        if not _is_number(value):
            fail("v", f"must be a number, not {kind_of(value)}")
            return None
        return value if base.value is None else _add(base.value, value)
    if label == "vs":
        if type(value) is not str:
            fail("vs", f"must be a string, not {kind_of(value)}")
        return value
    if label == "vb":
        if type(value) is not bool:
            fail("vb", f"must be true or false, not {kind_of(value)}")
        return value
    return _data(value, binary, fail)


def _add(a: Number, b: Number) -> Number:
    """``bv`` + ``v`` as the sender would write it: 1.1 + 2.2 is 3.3, not 3.3000000000000003."""
    if type(a) is int and type(b) is int:
        return a + b
    for x in (a, b):
        if type(x) is int and not -_INT64 <= x < _INT64:
            return x  # out of int64 range: left for validation to refuse
    total = _DECIMAL.add(_decimal(a), _decimal(b))
    return float(total)


def _decimal(x: Number) -> Decimal:
    return Decimal(x) if type(x) is int else Decimal(repr(x))


def _milliseconds(seconds: Decimal) -> int | float:
    ms = seconds.scaleb(3)
    integral = ms.to_integral_value()
    return int(integral) if ms == integral else float(ms)


def _data(value: Any, binary: bool, fail: Callable[[str, str], None]) -> str | None:
    """``vd`` as unpadded base64url text, whichever way it came."""
    if binary:
        if type(value) is not bytes:
            fail("vd", f"must be a byte string, not {kind_of(value)}")
            return None
        data = value
    else:
        if type(value) is not str:
            fail("vd", f"must be a base64url string, not {kind_of(value)}")
            return None
        if not _BASE64URL.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
            fail("vd", "must be base64url (RFC 4648 section 5), without padding")
            return None
        data = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
