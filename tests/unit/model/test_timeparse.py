"""bridge.model.timeparse: ISO 8601 in, integer nanoseconds out, ISO with milliseconds back."""

from __future__ import annotations

import calendar
import time

import pytest

from bridge.model.timeparse import MAX_NS, MIN_NS, format_iso_ms, now_ns, parse_date_only, parse_iso

S = 1_000_000_000
DAY = 86_400 * S


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ns: int = 0) -> int:
    """Expected values come from the stdlib's timegm, independent of the code under test."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * S + ns


BASE = utc(2024, 1, 2, 3, 4, 5)  # 2024-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", BASE),
        ("2024-01-02T03:04:05z", BASE),
        ("2024-01-02t03:04:05Z", BASE),
        # every fraction length keeps its exact nanoseconds
        ("2024-01-02T03:04:05.1Z", BASE + 100_000_000),
        ("2024-01-02T03:04:05.12Z", BASE + 120_000_000),
        ("2024-01-02T03:04:05.123Z", BASE + 123_000_000),
        ("2024-01-02T03:04:05.1234Z", BASE + 123_400_000),
        ("2024-01-02T03:04:05.12345Z", BASE + 123_450_000),
        ("2024-01-02T03:04:05.123456Z", BASE + 123_456_000),
        ("2024-01-02T03:04:05.1234567Z", BASE + 123_456_700),
        ("2024-01-02T03:04:05.12345678Z", BASE + 123_456_780),
        ("2024-01-02T03:04:05.123456789Z", BASE + 123_456_789),
        ("2024-01-02T03:04:05.000000001Z", BASE + 1),
        ("2024-01-02T03:04:05.999999999Z", BASE + 999_999_999),
        ("2024-01-02T03:04:05,5Z", BASE + 500_000_000),
        # offsets: local = UTC + offset
        ("2024-01-02T05:04:05+02:00", BASE),
        ("2024-01-02T05:04:05+0200", BASE),
        ("2024-01-02T05:04:05+02", BASE),
        ("2024-01-01T21:34:05-05:30", BASE),
        ("2024-01-01T21:34:05-0530", BASE),
        ("2024-01-02T03:04:05+00:00", BASE),
        ("2024-01-02T03:04:05-00:00", BASE),
        ("2024-01-02T08:49:05.123456789+05:45", BASE + 123_456_789),
        ("2024-01-03T02:04:05+23:00", BASE),
        # the Python SDK's str(datetime) form, with and without zone
        ("2024-01-02 03:04:05+00:00", BASE),
        ("2024-01-02 03:04:05.5+00:00", BASE + 500_000_000),
        ("2024-01-02 03:04:05", BASE),
        # zone-less is UTC
        ("2024-01-02T03:04:05", BASE),
        ("2024-01-02T03:04:05.123456789", BASE + 123_456_789),
        # seconds optional
        ("2024-01-02T03:04Z", BASE - 5 * S),
        ("2024-01-02T03:04", BASE - 5 * S),
        ("2024-01-02T04:04+01:00", BASE - 5 * S),
        # calendar edges
        ("2024-02-29T00:00:00Z", utc(2024, 2, 29)),
        ("2000-02-29T12:00:00Z", utc(2000, 2, 29, 12)),
        ("1999-12-31T23:59:59.999999999Z", utc(1999, 12, 31, 23, 59, 59, 999_999_999)),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1969-12-31T23:00:00-01:00", 0),
        ("2262-04-11T23:47:16.854775806Z", MAX_NS),
    ],
)
def test_parse_iso_accepts(text: str, expected: int) -> None:
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an ISO 8601 date-time"),
        ("garbage", "not an ISO 8601 date-time"),
        ("2024-01-02", "not an ISO 8601 date-time"),  # date only is a query form, not a time
        ("1704164645000", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05.1234567890Z", "not an ISO 8601 date-time"),  # 10 digits
        ("2024-01-02T03:04:05.Z", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04.5Z", "not an ISO 8601 date-time"),  # fraction without seconds
        ("2024-1-2T03:04:05Z", "not an ISO 8601 date-time"),
        ("2024-01-02T3:04:05Z", "not an ISO 8601 date-time"),
        ("2024-01-02X03:04:05Z", "not an ISO 8601 date-time"),
        ("2024-01-02  03:04:05Z", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05 Z", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05+2:00", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05+02:0", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05ZZ", "not an ISO 8601 date-time"),
        (" 2024-01-02T03:04:05Z", "not an ISO 8601 date-time"),
        ("2024-01-02T03:04:05Z\n", "not an ISO 8601 date-time"),
        ("２０２４-01-02T03:04:05Z", "not an ISO 8601 date-time"),  # fullwidth digits
        ("2024-01-02T03:04:05 UTC", "not an ISO 8601 date-time"),
        ("2024-02-30T00:00:00Z", "not a valid calendar date or time"),
        ("2023-02-29T00:00:00Z", "not a valid calendar date or time"),
        ("2024-13-01T00:00:00Z", "not a valid calendar date or time"),
        ("2024-00-01T00:00:00Z", "not a valid calendar date or time"),
        ("0000-01-01T00:00:00Z", "not a valid calendar date or time"),
        ("2024-01-02T24:00:00Z", "not a valid calendar date or time"),
        ("2024-01-02T03:60:00Z", "not a valid calendar date or time"),
        ("2024-01-02T03:04:60Z", "not a valid calendar date or time"),
        # the shapes Python's fromisoformat reads as something else
        ("2024-01-02T03-04:05.123Z", "not a valid calendar date or time"),  # a zone
        ("2024-01-02T03.04:05.123Z", "not a valid calendar date or time"),  # minutes lost
        ("2024-01-02T03,59:05.123Z", "not a valid calendar date or time"),
        ("2024-W01-1T03:04:05.123Z", "not a valid calendar date or time"),  # a week date
        ("2024-01-02T03:04:05+24:00", "not a valid UTC offset"),
        ("2024-01-02T03:04:05+01:60", "not a valid UTC offset"),
        ("1969-12-31T23:59:59.999999999Z", "outside 1970..2262"),
        ("1969-07-20T20:17:00Z", "outside 1970..2262"),
        ("1970-01-01T00:30:00+01:00", "outside 1970..2262"),
        ("2262-04-11T23:47:16.854775807Z", "outside 1970..2262"),
        ("2300-01-01T00:00:00Z", "outside 1970..2262"),
        ("9999-12-31T23:59:59Z", "outside 1970..2262"),
    ],
)
def test_parse_iso_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_iso(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", (utc(2024, 1, 2), utc(2024, 1, 3) - 1)),
        ("2024-02-29", (utc(2024, 2, 29), utc(2024, 3, 1) - 1)),
        ("1970-01-01", (0, DAY - 1)),
        ("2262-04-11", (utc(2262, 4, 11), MAX_NS)),  # last day clamped to InfluxDB's end
        ("2024-01-02T00:00:00Z", None),
        ("2024-01-02 ", None),
        ("2024-1-2", None),
        ("20240102", None),
        ("1 day", None),
        ("", None),
    ],
)
def test_parse_date_only(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_date_only(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-02-30", "not a valid calendar date or time"),
        ("2023-02-29", "not a valid calendar date or time"),
        ("1969-12-31", "outside 1970..2262"),
        ("2262-04-12", "outside 1970..2262"),
    ],
)
def test_parse_date_only_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_date_only(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (BASE, "2024-01-02T03:04:05.000Z"),
        (BASE + 123_456_789, "2024-01-02T03:04:05.123Z"),
        (BASE + 999_999_999, "2024-01-02T03:04:05.999Z"),  # truncated, not rounded up
        (BASE + 999_999, "2024-01-02T03:04:05.000Z"),
        (BASE + 1_000_000, "2024-01-02T03:04:05.001Z"),
        (utc(2000, 2, 29, 23, 59, 59), "2000-02-29T23:59:59.000Z"),
        (utc(1999, 12, 31, 23, 59, 59, 999_999_999), "1999-12-31T23:59:59.999Z"),
        (MAX_NS, "2262-04-11T23:47:16.854Z"),
    ],
)
def test_format_iso_ms(ns: int, expected: str) -> None:
    assert format_iso_ms(ns) == expected


@pytest.mark.parametrize("ns", [MIN_NS, BASE + 123_456_789, utc(2100, 12, 31, 1, 2, 3), MAX_NS])
def test_format_then_parse_loses_only_sub_millisecond(ns: int) -> None:
    assert parse_iso(format_iso_ms(ns)) == ns - ns % 1_000_000


def test_now_ns_is_wall_clock_nanoseconds() -> None:
    before = time.time_ns()
    now = now_ns()
    after = time.time_ns()
    assert isinstance(now, int)
    assert before <= now <= after
