"""GET/DELETE /data parameters (TagoIO's names and aliases) and the InfluxQL they become.

Every piece of request text reaches InfluxQL only through ``schema.quote_string``; numbers
are formatted by Python from parsed values. So no parameter can change the statement's
shape, only the literals inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.errors import FieldError, ValidationError
from bridge.schema import (
    MEASUREMENT,
    equals,
    parse_point_id,
    quote_ident,
    quote_string,
    variable_tag,
)
from bridge.timeparse import parse_date_only, parse_duration, parse_iso

MAX_QTY = 10_000
LIST_KINDS = ("default",)
EDGE_KINDS = ("last_item", "last_value", "last_location",
              "first_item", "first_value", "first_location")
NUMBER_KINDS = ("count", "sum", "avg", "min", "max")
KINDS = (*LIST_KINDS, *EDGE_KINDS, *NUMBER_KINDS, "aggregate")
# TagoIO function name -> InfluxQL function; count counts points, not numeric values.
FUNCTIONS = {"avg": "mean", "sum": "sum", "min": "min", "max": "max", "count": "count"}

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


def _or(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"


def where(device_id: str, q: DataQuery, *, extra: tuple[str, ...] = ()) -> str:
    parts = [f'"device" = {quote_string(device_id)}']
    if q.variables:
        parts.append(_or([f'"variable" = {quote_string(variable_tag(v))}' for v in q.variables]))
    if q.groups:
        parts.append(_or([equals("group", g, "string") for g in q.groups]))
    if q.values:
        parts.append(_or([c for v in q.values for c in _value_conditions(v)]))
    if q.start_ns is not None:
        parts.append(f"time >= {q.start_ns}")
    if q.end_ns is not None:
        parts.append(f"time <= {q.end_ns}")
    parts.extend(extra)
    return " AND ".join(parts)


def _value_conditions(text: str) -> list[str]:
    conditions = [equals("value_str", text, "string")]
    try:
        number = float(text)
        if math.isfinite(number):
            conditions.append(f'"value"::float = {number!r}')
    except ValueError:
        pass
    if text.lower() in ("true", "false"):
        conditions.append(f'"value_bool"::boolean = {text.lower()}')
    return conditions


def _from() -> str:
    return f"FROM {quote_ident(MEASUREMENT)}"


# Every column with its type spelled out: a field that some outside writer gave another
# type in one shard would otherwise make InfluxDB return nulls for ours in every shard.
COLUMNS = ", ".join([
    '"created"::integer', '"value"::float', '"value_str"::string', '"value_bool"::boolean',
    '"value_type"::string', '"unit"::string', '"group"::string', '"lat"::float',
    '"lng"::float', '"metadata"::string', '"device"::tag', '"variable"::tag', '"slot"::tag',
])


def select_exact(device_id: str, time_ns: int) -> str:
    """The rows of one device at one instant: what a lookup by id reads."""
    return (f"SELECT {COLUMNS} {_from()} WHERE \"device\" = {quote_string(device_id)} "
            f"AND time = {time_ns}")


def list_statements(device_id: str, q: DataQuery) -> list[str]:
    """Statements for kind=default; with ids, one exact-time statement per id."""
    order = "ASC" if q.ascending else "DESC"
    if q.ids:
        return [f"SELECT {COLUMNS} {_from()} WHERE "
                f"{where(device_id, q, extra=(f'time = {parse_point_id(i)[0]}',))}"
                for i in q.ids]
    return [f"SELECT {COLUMNS} {_from()} WHERE {where(device_id, q)} "
            f"ORDER BY time {order} LIMIT {q.qty} OFFSET {q.skip}"]


def variables_statement(device_id: str) -> str:
    """Every variable a device has, from InfluxDB's index (no data is read)."""
    return (f'SHOW TAG VALUES {_from()} WITH KEY = "variable" '
            f'WHERE "device" = {quote_string(device_id)}')


def _edge_condition(kind: str) -> tuple[str, ...]:
    if kind.endswith("_value"):
        return ("\"value_type\"::string != ''",)
    if kind.endswith("_location"):
        return ('"lat"::float >= -90',)
    return ()


def edge_statement(device_id: str, q: DataQuery) -> str:
    """One row per variable: newest (last_*) or oldest (first_*) matching the kind."""
    order = "DESC" if q.kind.startswith("last") else "ASC"
    return (f"SELECT {COLUMNS} {_from()} WHERE "
            f"{where(device_id, q, extra=_edge_condition(q.kind))} "
            f'GROUP BY "variable" ORDER BY time {order} LIMIT 1')


def newest_matching_statement(device_id: str, q: DataQuery, limit: int) -> str:
    """Every row matching a last_* kind, newest first, at most ``limit``: in a narrow
    window InfluxDB answers this much sooner than the per-variable ``GROUP BY``."""
    return (f"SELECT {COLUMNS} {_from()} WHERE "
            f"{where(device_id, q, extra=_edge_condition(q.kind))} "
            f"ORDER BY time DESC LIMIT {limit}")


def number_statement(device_id: str, q: DataQuery) -> str:
    function = FUNCTIONS[q.kind]
    column = '"created"::integer' if q.kind == "count" else '"value"::float'
    extra = () if q.kind == "count" else ("\"value_type\"::string = 'number'",)
    return f"SELECT {function}({column}) {_from()} WHERE {where(device_id, q, extra=extra)}"


def aggregate_statement(device_id: str, q: DataQuery) -> str:
    function = FUNCTIONS[q.function]
    column = '"created"::integer' if q.function == "count" else '"value"::float'
    extra = () if q.function == "count" else ("\"value_type\"::string = 'number'",)
    order = "ASC" if q.ascending else "DESC"
    seconds = q.interval_ns // 10**9
    return (f"SELECT {function}({column}) AS \"value\" {_from()} "
            f"WHERE {where(device_id, q, extra=extra)} "
            f'GROUP BY time({seconds}s), "variable" fill(none) '
            f"ORDER BY time {order} LIMIT {q.qty} OFFSET {q.skip}")


def export_statement(device_id: str, q: DataQuery) -> str:
    """Every row matching the filter (variables, groups, time range), oldest first, no
    limit: an export, read through ``InfluxStore.stream`` in chunks."""
    return f"SELECT {COLUMNS} {_from()} WHERE {where(device_id, q)} ORDER BY time ASC"
