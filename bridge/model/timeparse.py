"""Time parsing and formatting on integer nanoseconds since the Unix epoch, UTC.

Integers end to end because InfluxDB stores nanoseconds and a float cannot hold a
nanosecond timestamp (2**53 ns is only about 104 days), so ``datetime`` is used for the
calendar only, never for the sub-second part.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from datetime import date, datetime

# InfluxDB reserves int64's maximum, so its last valid time is 2**63 - 2 ns; the spec
# narrows the lower end from InfluxDB's 1677 to the epoch.
MIN_NS = 0
MAX_NS = 9_223_372_036_854_775_806  # 2262-04-11T23:47:16.854775806Z

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# re.ASCII: \d must not match other scripts' digits, which int() would happily accept.
# The first group (date, hours, minutes) goes to datetime.fromisoformat, which checks
# the calendar in C; seconds are split off so a fraction cannot follow bare minutes.
_ISO_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_HEAD_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2})?", re.ASCII)
_EPOCH = datetime(1970, 1, 1)

_NOT_ISO = "not an ISO 8601 date-time"
_OUT_OF_RANGE = "outside 1970..2262"


def now_ns() -> int:
    return time.time_ns()


@functools.lru_cache(maxsize=4096)
def _epoch_seconds(text: str) -> int:
    """Whole seconds since the epoch of a zone-less ``YYYY-MM-DD[T ]HH:MM`` (or a date).
    Cached: a stream of readings shares few distinct minutes, and this is the costly part."""
    # Only that shape: fromisoformat also takes "2024-01-02T03-04" (03:00 at UTC-04:00),
    # "T03.04" (03:00, the minutes dropped) and week dates.
    parsed = None
    if _HEAD_RE.fullmatch(text):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text)
    if parsed is None or parsed.tzinfo is not None:
        raise ValueError("not a valid calendar date or time")
    delta = parsed - _EPOCH
    return delta.days * 86_400 + delta.seconds


def parse_iso(text: str) -> int:
    """Parse an ISO 8601 / RFC 3339 date-time to ns since the epoch.

    A date-time without a zone is read as UTC (not the server's zone, unlike TagoCore),
    so the same payload means the same instant wherever the service runs.
    """
    if (len(text) == 24 and text[10] == "T" and text[16] == ":" and text[19] == "."
            and text[23] == "Z" and text.isascii() and text[17:19].isdigit()
            and text[20:23].isdigit()):
        # The shape most devices and both SDKs send (2024-01-02T03:04:05.123Z): skip the
        # regular expression; the cached head still checks the calendar.
        ns = (_epoch_seconds(text[:16]) + int(text[17:19])) * _NS_PER_S \
            + int(text[20:23]) * 1_000_000
        if text[17:19] > "59" or ns < MIN_NS or ns > MAX_NS:
            raise ValueError(_OUT_OF_RANGE if text[17:19] <= "59"
                             else "not a valid calendar date or time")
        return ns
    m = _ISO_RE.fullmatch(text)
    if m is None:
        raise ValueError(_NOT_ISO)
    head, ss, frac, sign, oh, om = m.groups()
    seconds = _epoch_seconds(head)
    if ss:
        if ss > "59":  # a leap second cannot be stored
            raise ValueError("not a valid calendar date or time")
        seconds += int(ss)
    if sign:
        off_h, off_m = int(oh), int(om) if om else 0
        if off_h > 23 or off_m > 59:
            raise ValueError("not a valid UTC offset")
        # Local time = UTC + offset, so UTC = local - offset.
        offset = off_h * 3600 + off_m * 60
        seconds = seconds - offset if sign == "+" else seconds + offset
    ns = seconds * _NS_PER_S
    if frac:
        ns += int(frac.ljust(9, "0"))
    if ns < MIN_NS or ns > MAX_NS:
        raise ValueError(_OUT_OF_RANGE)
    return ns


def parse_date_only(text: str) -> tuple[int, int] | None:
    """``YYYY-MM-DD`` -> (first ns of that UTC day, last ns of it); None for other forms.

    The end is clamped to MAX_NS so the last representable day is still usable as a filter.
    Raises ValueError for an impossible date or a day that starts outside the range.
    """
    if _DATE_RE.fullmatch(text) is None:
        return None
    start = _epoch_seconds(text) * _NS_PER_S
    if start < MIN_NS or start > MAX_NS:
        raise ValueError(_OUT_OF_RANGE)
    return start, min(start + _NS_PER_DAY - 1, MAX_NS)


def format_iso_ms(ns: int) -> str:
    """``2024-01-02T03:04:05.123Z``: milliseconds truncated, as TagoIO returns times."""
    days, rem = divmod(ns, _NS_PER_DAY)
    d = date.fromordinal(_EPOCH_ORDINAL + days)
    secs, sub = divmod(rem, _NS_PER_S)
    hour, secs = divmod(secs, 3600)
    minute, second = divmod(secs, 60)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"
        f"{hour:02d}:{minute:02d}:{second:02d}.{sub // 1_000_000:03d}Z"
    )


_SECOND = 10**9
_DURATION_UNITS = {
    "ms": 10**6, "msec": 10**6, "millisecond": 10**6, "milliseconds": 10**6,
    "s": _SECOND, "sec": _SECOND, "secs": _SECOND, "second": _SECOND, "seconds": _SECOND,
    "m": 60 * _SECOND, "min": 60 * _SECOND, "mins": 60 * _SECOND,
    "minute": 60 * _SECOND, "minutes": 60 * _SECOND,
    "h": 3600 * _SECOND, "hr": 3600 * _SECOND, "hrs": 3600 * _SECOND,
    "hour": 3600 * _SECOND, "hours": 3600 * _SECOND,
    "d": 86400 * _SECOND, "day": 86400 * _SECOND, "days": 86400 * _SECOND,
    "w": 7 * 86400 * _SECOND, "week": 7 * 86400 * _SECOND, "weeks": 7 * 86400 * _SECOND,
}
# Months and years have no fixed length; they are accepted only where TagoIO accepts them
# (relative query dates such as "1 month"), read as 30 and 365 days.
_CALENDAR_UNITS = {
    "month": 30 * 86400 * _SECOND, "months": 30 * 86400 * _SECOND,
    "y": 365 * 86400 * _SECOND, "year": 365 * 86400 * _SECOND, "years": 365 * 86400 * _SECOND,
}
_DURATION = re.compile(r"\s*(\d{1,9})\s*([a-z]+)\s*", re.ASCII)


def parse_duration(text: str, *, calendar: bool = False) -> int:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``, ``1 day``, ``3 hours`` -> nanoseconds;
    with ``calendar`` also ``2 months`` and ``1 year``. ValueError otherwise."""
    match = _DURATION.fullmatch(text.lower())
    unit = None
    if match is not None:
        unit = _DURATION_UNITS.get(match[2]) or (
            _CALENDAR_UNITS.get(match[2]) if calendar else None)
    if match is None or unit is None:
        raise ValueError(f"cannot read {text[:40]!r} as a duration "
                         "(examples: 30d, 12h, 90m, '3 hours', '15 minutes')")
    amount = int(match[1])
    if amount <= 0:
        raise ValueError(f"duration {text[:40]!r} must be positive")
    return amount * unit
