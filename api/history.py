"""What the console reads beyond current values: a variable's history in pages, its chart
over a time range, a sparkline of every numeric variable, and deleting single points.

All reads go through ``DataService`` with the same ``DataQuery`` kinds ``GET /data``
serves (a chart over more points than it can draw is the ``aggregate`` query).
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import authorized, existing_device
from api.params import query_lists
from api.responses import success
from api.state import AppState
from bridge.errors import FieldError, NotFound, ValidationError
from bridge.model.query import DataQuery, parse_data_query
from bridge.model.timeparse import format_iso_ms, now_ns

PAGE_MAX = 500
CHART_POINTS = 500  # more than this in the range: one mean per interval instead
SPARK_SPAN_NS = 3600 * 10**9
# Chart intervals, seconds: the smallest that keeps a range within CHART_POINTS buckets.
NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                21600, 43200, 86400, 172800, 604800)
_CURSOR = re.compile(r"^(\d{1,20})\.(\d{1,9})$")
_RANGE = ("start_date", "end_date")


def _bad(name: str, message: str) -> ValidationError:
    return ValidationError("Invalid query parameters", [FieldError(name, message)])


def _variable(params: dict[str, list[str]]) -> str:
    variable = (params.get("variable") or [""])[-1]
    if not variable:
        raise _bad("variable", "is required")
    return variable


def _range(params: dict[str, list[str]], default_span_ns: int) -> tuple[int, int]:
    """start_date/end_date as GET /data reads them; by default the last ``default_span_ns``."""
    now = now_ns()
    q = parse_data_query({k: v for k, v in params.items() if k in _RANGE}, now_ns=now)
    end = now if q.end_ns is None else q.end_ns
    start = end - default_span_ns if q.start_ns is None else q.start_ns
    if start >= end:
        raise _bad("end_date", "must be after start_date")
    return start, end


async def _device(request: Request) -> tuple[AppState, str, dict[str, list[str]]]:
    state = authorized(request)
    device_id = request.path_params["device_id"]
    params = query_lists(request.url.query)
    await existing_device(state, device_id)
    return state, device_id, params


async def history(request: Request) -> Response:
    """One page of a variable's points, newest first: ``variable``, ``start_date``,
    ``end_date``, ``qty`` (default 50), and ``before``, the cursor the previous page
    answered with (``older``); ``older`` is null on the last page."""
    state = authorized(request)
    params = query_lists(request.url.query)
    variable = _variable(params)
    try:
        qty = int((params.get("qty") or ["50"])[-1])
        if not 1 <= qty <= PAGE_MAX:
            raise ValueError(qty)
    except ValueError:
        raise _bad("qty", f"must be an integer from 1 to {PAGE_MAX}") from None
    before = None
    if params.get("before"):
        match = _CURSOR.match(params["before"][-1])
        if match is None:
            raise _bad("before", "must be a cursor from a previous page")
        before = (int(match[1]), int(match[2]))
    q = parse_data_query({k: v for k, v in params.items() if k in _RANGE}, now_ns=now_ns())
    q.variables, q.qty = [variable], qty
    device_id = request.path_params["device_id"]
    await existing_device(state, device_id)
    points, cursor = await state.service.page(device_id, q, before)
    return success({"variable": variable, "points": points,
                    "older": None if cursor is None else f"{cursor[0]}.{cursor[1]}"})


def chart_interval(span_ns: int, budget: int = CHART_POINTS) -> int:
    """The bucket width, seconds, for at most ``budget`` buckets over ``span_ns``."""
    wanted = span_ns / budget / 10**9
    for seconds in NICE_SECONDS:
        if seconds >= wanted:
            return seconds
    return math.ceil(wanted / 86400) * 86400


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"time": p["time"], "value": p["value"]} for p in points
            if _is_number(p.get("value"))]


async def chart(request: Request) -> Response:
    """A variable's numeric values over ``start_date``..``end_date`` (default the last
    day): every point when there are at most CHART_POINTS, else the mean of each
    interval (``interval``, seconds), chosen so the chart gets at most that many."""
    state, device_id, params = await _device(request)
    variable = _variable(params)
    start, end = _range(params, 86400 * 10**9)
    q = DataQuery(variables=[variable], start_ns=start, end_ns=end, ascending=True,
                  qty=CHART_POINTS + 1)
    points = await state.service.get(device_id, q)
    assert isinstance(points, list)
    interval = None
    if len(points) > CHART_POINTS:
        interval = chart_interval(end - start)
        q.kind, q.function, q.interval_ns = "aggregate", "avg", interval * 10**9
        q.qty = (end - start) // q.interval_ns + 2
        points = await state.service.get(device_id, q)
        assert isinstance(points, list)
    return success({"variable": variable, "start": format_iso_ms(start),
                    "end": format_iso_ms(end), "interval": interval,
                    "points": _numeric(points)})


async def sparks(request: Request) -> Response:
    """The last hour of every numeric variable in one read: one mean per minute each."""
    state, device_id, _ = await _device(request)
    start = now_ns() - SPARK_SPAN_NS
    points = await state.service.get(device_id, DataQuery(
        kind="aggregate", function="avg", interval_ns=60 * 10**9, start_ns=start,
        ascending=True, qty=61))
    assert isinstance(points, list)
    series: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if _is_number(p.get("value")):
            series.setdefault(p["variable"], []).append({"time": p["time"],
                                                         "value": p["value"]})
    return success({"start": format_iso_ms(start), "interval": 60, "series": series})


async def delete_points(request: Request) -> Response:
    """``DELETE .../data?id=...``: the points with these ids (from the history)."""
    state, device_id, params = await _device(request)
    ids = params.get("id") or params.get("ids") or []
    if not ids:
        raise _bad("id", "is required: the id of each point to delete")
    q = parse_data_query({"ids": ids}, now_ns=now_ns())
    q.qty = len(ids)
    removed = await state.service.delete(device_id, q)
    if not removed:
        raise NotFound("No such data point")
    return success(f"{removed} Data Removed")


routes = [
    Route("/admin/devices/{device_id}/history", history, methods=["GET"]),
    Route("/admin/devices/{device_id}/chart", chart, methods=["GET"]),
    Route("/admin/devices/{device_id}/sparks", sparks, methods=["GET"]),
    Route("/admin/devices/{device_id}/data", delete_points, methods=["DELETE"]),
]
