"""GET/DELETE /data parameters: TagoIO's names, aliases and list forms, parsed into a
``DataQuery`` with every bad parameter reported at once. ``bridge.influx.influxql`` turns a
``DataQuery`` into statements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.errors import FieldError, ValidationError
from bridge.model.ids import parse_point_id
from bridge.model.timeparse import parse_date_only, parse_duration, parse_iso

MAX_QTY = 10_000
LIST_KINDS = ("default",)
EDGE_KINDS = ("last_item", "last_value", "last_location",
              "first_item", "first_value", "first_location")
NUMBER_KINDS = ("count", "sum", "avg", "min", "max")
KINDS = (*LIST_KINDS, *EDGE_KINDS, *NUMBER_KINDS, "aggregate")
FUNCTIONS = ("avg", "sum", "min", "max", "count")  # of query=aggregate

_ALIASES = {
    "variables": ("variables", "variable"),
    "groups": ("groups", "group", "series", "serie"),
    "ids": ("ids", "id"),
    "values": ("values", "value"),
}

@dataclass(slots=True)
class DataQuery:
    variables: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    qty: int = 15
    skip: int = 0
    ascending: bool = False
    start_ns: int | None = None
    end_ns: int | None = None
    kind: str = "default"
    function: str = ""
    interval_ns: int = 0
    details: bool = False


def parse_query_date(text: str, *, end: bool, now_ns: int) -> int:
    """ISO date-time, bare date (whole day, UTC) or relative ("1 day": that long ago)."""
    day = parse_date_only(text)
    if day is not None:
        return day[1] if end else day[0]
    try:
        return parse_iso(text)
    except ValueError:
        pass
    try:
        return now_ns - parse_duration(text, calendar=True)
    except ValueError:
        raise ValueError("expected an ISO 8601 date-time, a date (YYYY-MM-DD) or a "
                         "relative time such as '1 day'") from None


def parse_data_query(params: Mapping[str, list[str]], *, now_ns: int) -> DataQuery:
    """Build a DataQuery from query-string values, reporting every bad parameter at once."""
    q = DataQuery()
    errors: list[FieldError] = []

    def one(name: str, *aliases: str) -> str | None:
        for key in (name, *aliases):
            if params.get(key):
                return params[key][-1]
        return None

    def bad(name: str, message: str) -> None:
        errors.append(FieldError(name, message))

    for attr, names in _ALIASES.items():
        for name in names:
            if name in params:
                setattr(q, attr, [v for v in params[name] if v != ""])
                break
    for name, low, high in (("qty", 0, MAX_QTY), ("skip", 0, None)):
        raw = one(name)
        if raw is None:
            continue
        try:
            number = int(raw)
            if number < low or (high is not None and number > high):
                raise ValueError("too short")
            setattr(q, name, number)
        except ValueError:
            bad(name, f"must be an integer from {low}" + (f" to {high}" if high else " up"))
    raw = one("ordination")
    if raw is not None:
        if raw.lower() in ("descending", "desc"):
            q.ascending = False
        elif raw.lower() in ("ascending", "asc"):
            q.ascending = True
        else:
            bad("ordination", "must be 'ascending' or 'descending' (or ASC/DESC)")
    raw = one("details", "detail")
    if raw is not None:
        if raw.lower() in ("true", "1", "yes"):
            q.details = True
        elif raw.lower() not in ("false", "0", "no", ""):
            bad("details", "must be true or false")
    for name, is_end in (("start_date", False), ("end_date", True)):
        raw = one(name)
        if raw is None:
            continue
        try:
            setattr(q, "end_ns" if is_end else "start_ns",
                    parse_query_date(raw, end=is_end, now_ns=now_ns))
        except ValueError as exc:
            bad(name, str(exc))
    if q.start_ns is not None and q.end_ns is not None and q.start_ns > q.end_ns:
        bad("end_date", "must not be before start_date")
    raw = one("query")
    if raw is not None and raw != "":
        if raw in ("defaultQ", "default"):
            q.kind = "default"
        elif raw in KINDS:
            q.kind = raw
        else:
            bad("query", f"must be one of {', '.join(KINDS)}")
    if q.kind == "aggregate":
        function = one("function")
        if function not in FUNCTIONS:
            bad("function", "query=aggregate needs function=avg, sum, min, max or count")
        else:
            q.function = function
        interval = one("interval")
        try:
            q.interval_ns = parse_duration(interval or "")
            if q.interval_ns < 10**9:
                raise ValueError("too short")
        except ValueError:
            bad("interval", "query=aggregate needs an interval of at least 1 second, "
                "such as '1 hour' or '15 minutes'")
    for point_id_text in q.ids:
        try:
            parse_point_id(point_id_text)
        except ValueError:
            bad("ids", f"{point_id_text[:40]!r} is not a data point id")
    if q.ids and q.kind != "default":
        bad("ids", f"cannot be combined with query={q.kind}")
    if errors:
        raise ValidationError("Invalid query parameters", errors)
    return q
