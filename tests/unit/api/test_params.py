"""Query-string list forms and GET/DELETE parameter parsing (pure logic)."""

from __future__ import annotations

import pytest

from api.params import query_lists
from bridge.errors import ValidationError
from bridge.model.query import parse_data_query
from bridge.model.timeparse import parse_duration

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize("qs, expected", [
    ("variables=a&variables=b", {"variables": ["a", "b"]}),
    ("variables%5B%5D=a&variables%5B%5D=b", {"variables": ["a", "b"]}),
    ("variables%5B1%5D=b&variables%5B0%5D=a", {"variables": ["a", "b"]}),
    ("variable=x&qty=3", {"variable": ["x"], "qty": ["3"]}),
    ("details=", {"details": [""]}),
    ("filter%5Bname%5D=x", {"filter[name]": ["x"]}),
])
def test_query_lists(qs: str, expected: dict[str, list[str]]) -> None:
    assert query_lists(qs) == expected


def test_aliases_and_defaults() -> None:
    q = parse_data_query({}, now_ns=NOW)
    assert (q.qty, q.skip, q.ascending, q.kind, q.details) == (15, 0, False, "default", False)
    q = parse_data_query({"variable": ["a"], "serie": ["g"], "id": [], "value": ["1"]},
                         now_ns=NOW)
    assert (q.variables, q.groups, q.values) == (["a"], ["g"], ["1"])
    assert parse_data_query({"series": ["s"]}, now_ns=NOW).groups == ["s"]
    assert parse_data_query({"query": ["defaultQ"]}, now_ns=NOW).kind == "default"


@pytest.mark.parametrize("text, seconds", [
    ("1 day", 86400), ("3 hours", 10800), ("30 minutes", 1800), ("2 weeks", 1209600),
    ("15s", 15), ("1h", 3600), ("1 Hour", 3600), ("2 months", 60 * 86400),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, calendar=True) == seconds * 10**9


def test_relative_dates_are_that_long_ago() -> None:
    q = parse_data_query({"start_date": ["1 day"], "end_date": ["3 hours"]}, now_ns=NOW)
    assert q.start_ns == NOW - 86400 * 10**9
    assert q.end_ns == NOW - 3 * 3600 * 10**9


def test_bare_dates_cover_the_whole_day() -> None:
    q = parse_data_query({"start_date": ["2024-01-02"], "end_date": ["2024-01-02"]}, now_ns=NOW)
    assert q.start_ns == 1704153600 * 10**9
    assert q.end_ns == 1704240000 * 10**9 - 1


def test_every_bad_parameter_is_reported_together() -> None:
    with pytest.raises(ValidationError) as info:
        parse_data_query({"qty": ["x"], "skip": ["-1"], "query": ["nope"]}, now_ns=NOW)
    assert set(info.value.field_errors()) == {"qty", "skip", "query"}
