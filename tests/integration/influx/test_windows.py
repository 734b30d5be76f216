"""Newest-first reads try recent windows first, and must return exactly what an
unbounded query returns (against the real InfluxDB)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bridge.influx.windows import HINTED_ROWS, WindowHints
from bridge.model.query import DataQuery
from support.api import ApiServer, MakeApi
from support.http import get, post

MIN = 60_000  # ms


@pytest.fixture
def uncached(make_api: MakeApi) -> ApiServer:
    """An API that reads InfluxDB every time: the window hints are what is tested here
    (the answer cache would serve the repeated reads without a query)."""
    return make_api(read_cache_seconds=0)


@pytest.fixture
def history(uncached: ApiServer) -> tuple[Any, str, list[int]]:
    api = uncached
    _device_id, token = api.device()
    now_ms = time.time_ns() // 1_000_000
    times = ([now_ms - i * MIN for i in range(1, 6)]            # the last hour
             + [now_ms - 3 * 1440 * MIN - i for i in range(5)]  # three days ago
             + [now_ms + 10 * MIN])                               # a device clock ahead
    points = [{"variable": "t", "value": i, "time": ms} for i, ms in enumerate(times)]
    points += [{"variable": "old", "value": "x", "time": "2020-01-01T00:00:00Z"},
               {"variable": "older", "value": 1.5, "time": "1999-01-01T00:00:00Z"}]
    with api.client(token) as c:
        assert post(c, points).status_code == 200
    return api, token, times


@pytest.mark.parametrize("qty, skip", [(1, 0), (3, 0), (6, 0), (8, 0), (3, 5), (5, 9), (20, 0),
                                       (4, 11), (0, 0)])
def test_pages_equal_the_unbounded_query(history: Any, qty: int, skip: int) -> None:
    api, token, _ = history
    with api.client(token) as c:
        everything = get(c, {"qty": 100})  # more than exist: the unbounded query answers
        page = get(c, {"qty": qty, "skip": skip})
    assert page == everything[skip:skip + qty]


def test_a_full_recent_page_needs_one_statement(history: Any) -> None:
    api, token, _ = history
    with api.client(token) as c:
        page, statements = api.statements_during(lambda: get(c, {"qty": 3}))
    assert len(page) == 3 and statements == 1


def test_last_value_finds_variables_last_seen_long_ago(history: Any) -> None:
    api, token, times = history
    with api.client(token) as c:
        last = {p["variable"]: p["value"] for p in get(c, {"query": "last_value"})}
        assert last == {"t": len(times) - 1, "old": "x", "older": 1.5}
        only_old = get(c, {"query": "last_item", "variables": "older"})
        assert [p["value"] for p in only_old] == [1.5]
        first = {p["variable"]: p["value"] for p in get(c, {"query": "first_value"})}
        assert first["t"] == 9  # the oldest "t" is the last of the three-days-ago ones


def test_start_date_narrower_than_a_window_is_respected(history: Any) -> None:
    api, token, _times = history
    with api.client(token) as c:
        recent = get(c, {"start_date": "30 minutes", "qty": 50})
        assert sorted(p["value"] for p in recent) == [0, 1, 2, 3, 4, 10]


def test_a_repeated_read_starts_from_where_the_last_answer_began(history: Any) -> None:
    api, token, _ = history
    with api.client(token) as c:
        # 6 points in the last hour, the rest 3 days ago: hour, day, then week.
        first, cold = api.statements_during(lambda: get(c, {"qty": 8}))
        again, warm = api.statements_during(lambda: get(c, {"qty": 8}))
        everything = get(c, {"qty": 100})
    assert first == again == everything[:8]
    assert (cold, warm) == (3, 1)


def test_a_hint_whose_rows_were_deleted_still_gives_the_exact_answer(history: Any) -> None:
    api, token, _ = history
    with api.client(token) as c:
        get(c, {"qty": 8})
        oldest_two = [p["id"] for p in get(c, {"qty": 8})[-2:]]
        removed = c.delete("/data", params=[("ids", i) for i in oldest_two])
        assert removed.json() == {"status": True, "result": "2 Data Removed"}
        page, statements = api.statements_during(lambda: get(c, {"qty": 8}))
        everything = get(c, {"qty": 100})
    assert page == everything[:8]
    assert statements > 1  # the hint window now holds 6 rows: it was widened


def test_last_value_needs_one_request_once_it_knows_where_to_look(history: Any) -> None:
    # An end date sends last_value to InfluxDB (current values answer only without one,
    # bridge/readcache/current.py); this one is far enough not to change the answer.
    api, token, times = history
    params = {"query": "last_value", "end_date": "2200-01-01"}
    with api.client(token) as c:
        _, cold = api.statements_during(lambda: get(c, params))
        last, warm = api.statements_during(lambda: get(c, params))
        newest_t = get(c, {"query": "last_item", "variables": "t"})[0]
        c.delete("/data", params={"ids": newest_t["id"]})
        after_delete = {p["variable"]: p["value"] for p in get(c, params)}
        assert get(c, {"query": "last_value"}) == get(c, params)
    assert cold > 2 and warm == 2  # SHOW TAG VALUES + one window, in one request
    assert {p["variable"]: p["value"] for p in last} == {"t": len(times) - 1, "old": "x",
                                                          "older": 1.5}
    assert after_delete == {"t": 0, "old": "x", "older": 1.5}


def test_window_hints_keep_only_the_most_recently_used() -> None:
    hints = WindowHints(max_entries=2)
    keys = [WindowHints.key(device, DataQuery()) for device in ("a", "b", "c")]
    hints.put(keys[0], 1)
    hints.put(keys[1], 2)
    assert hints.get(keys[0]) == (1, False)  # a is now the most recently used
    hints.put(keys[2], 3, too_full=True)
    assert [hints.get(k) for k in keys] == [(1, False), None, (3, True)]


def test_a_hinted_window_too_full_to_read_whole_falls_back_to_grouped_reads(
        uncached: ApiServer) -> None:
    api = uncached
    _device, token = api.device()
    two_days_ago = time.time_ns() // 1_000_000 - 2 * 1440 * MIN
    busy = [{"variable": "busy", "value": i} for i in range(HINTED_ROWS + 100)]
    with api.client(token) as c:
        assert post(c, [*busy, {"variable": "rare", "value": -1, "time": two_days_ago}]
                    ).status_code == 200
        # (an end date keeps the read on InfluxDB rather than on the current values)
        params = {"query": "last_value", "end_date": "2200-01-01"}
        reads = [api.statements_during(lambda: get(c, params)) for _ in range(3)]
    answers = [{p["variable"]: p["value"] for p in result} for result, _ in reads]
    assert answers == [{"busy": HINTED_ROWS + 99, "rare": -1}] * 3
    # cold: index + hour + day + week; then the hinted window read whole is too full and
    # the week follows; from then on the hinted window is read grouped, in one request.
    assert [n for _, n in reads] == [4, 3, 2]
