"""Every InfluxQL statement devicedata sends, and the quoting that keeps request text inside
string literals.

Request text reaches a statement only through ``quote_string`` (or ``equals``); numbers
are formatted by Python from parsed values. So no parameter can change a statement's
shape, only the literals inside it.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from typing import Any

from bridge.influx.schema import MEASUREMENT, generated_us, variable_tag
from bridge.model.ids import parse_point_id
from bridge.model.query import DataQuery

# TagoIO function name -> InfluxQL function; count counts points, not numeric values.
FUNCTIONS = {"avg": "mean", "sum": "sum", "min": "min", "max": "max", "count": "count"}


def quote_string(text: str) -> str:
    """An InfluxQL string literal; the only way request text reaches a query."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def equals(column: str, text: str, cast: str = "") -> str:
    """``column = 'text'`` in InfluxQL (``cast`` pins a field's type). A carriage return or
    a NUL cannot appear in an InfluxQL string literal (the parser refuses them, escaped or
    not), so such text is matched with an anchored regular expression, which can spell
    them ``\\r`` and ``\\x00``."""
    ident = quote_ident(column) + (f"::{cast}" if cast else "")
    if "\r" not in text and "\x00" not in text:
        return f"{ident} = {quote_string(text)}"
    return f"{ident} =~ /^{_regex_literal(text)}$/"


_REGEX_SPECIAL = set("\\.+*?()|[]{}^$/")


def _regex_literal(text: str) -> str:
    out = []
    for char in text:
        if char == "\r":
            out.append("\\r")
        elif char == "\x00":
            out.append("\\x00")
        elif char == "\n":
            out.append("\\n")
        elif char in _REGEX_SPECIAL:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def float_literal(number: float) -> str:
    """A float as InfluxQL reads it: plain digits, since the parser takes ``1e+300`` for
    a duration. ``repr``'s shortest round-tripping digits, without an exponent."""
    text = format(Decimal(repr(float(number))), "f")
    return text if "." in text else text + ".0"


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _or(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"


def where(device_id: str, q: DataQuery, *, extra: tuple[str, ...] = ()) -> str:
    parts = [f'"device" = {quote_string(device_id)}']
    if q.variables:
        parts.append(_or([f'"variable" = {quote_string(variable_tag(v))}' for v in q.variables]))
    if q.groups:
        conditions = [equals("group", g, "string") for g in q.groups]
        # A generated group is stored only as its message's receive time: see
        # bridge/influx/generated.py, which also finds the untimed points, and drops rows
        # that match here but belong to another group.
        conditions += [f'"created_us"::integer = {us}' for us in map(generated_us, q.groups)
                       if us is not None]
        parts.append(_or(conditions))
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
            conditions.append(f'"value"::float = {float_literal(number)}')
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
    '"value"::float', '"value_str"::string', '"value_bool"::boolean', '"unit"::string',
    '"group"::string', '"lat"::float', '"lng"::float', '"metadata"::string',
    '"created_us"::integer', '"created"::integer', '"value_type"::string',
    '"device"::tag', '"variable"::tag', '"slot"::tag',
])

# Counting points: no field is on every point (schema version 2), but every point has
# exactly one of value / value_str / value_bool / novalue, except version 1 rows, which
# all have ``created`` and, when they hold a value, ``value_type``. So the number of
# points is the sum of these counts minus the last (``count_columns`` adds them up).
COUNTED = (('"value"::float', 1), ('"value_str"::string', 1), ('"value_bool"::boolean', 1),
           ('"novalue"::boolean', 1), ('"created"::integer', 1), ('"value_type"::string', -1))


def _counts(alias: str = "c") -> str:
    return ", ".join(f"count({column}) AS \"{alias}{i}\""
                     for i, (column, _) in enumerate(COUNTED))


def count_points_statement(condition: str) -> str:
    """How many points match ``condition`` (a WHERE clause of ours): one row of
    ``count_columns``."""
    return f"SELECT {_counts()} {_from()} WHERE {condition}"


def count_columns(row: dict[str, Any], alias: str = "c") -> int | None:
    """The number of points in a row of ``_counts`` columns (None: no point counted)."""
    values = [row.get(f"{alias}{i}") for i in range(len(COUNTED))]
    if all(v is None for v in values):
        return None
    return sum(int(v or 0) * sign for v, (_, sign) in zip(values, COUNTED, strict=True))


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


def group_rows_statements(device_id: str, q: DataQuery, limit: int) -> list[str]:
    """For a query naming generated groups: rows by group or receive time, then per
    generated group the rows of its microsecond (untimed points carry no receive time)."""
    statements = [f"SELECT {COLUMNS} {_from()} WHERE {where(device_id, q)} LIMIT {limit}"]
    others = dataclasses.replace(q, groups=[])
    for us in map(generated_us, q.groups):
        if us is not None:
            window = (f"time >= {us * 1000}", f"time <= {us * 1000 + 999}")
            statements.append(f"SELECT {COLUMNS} {_from()} WHERE "
                              f"{where(device_id, others, extra=window)} LIMIT {limit}")
    return statements


def last_location_times_statement(device_id: str, variables: list[str]) -> str:
    """Per series, the time of its newest location: ``last()`` finds it from the index
    of each shard, where a condition on ``lat`` would read the whole history."""
    q = DataQuery(variables=variables)
    return (f'SELECT last("lat"::float) {_from()} WHERE {where(device_id, q)} '
            'GROUP BY "variable", "slot"')


def variables_statement(device_id: str) -> str:
    """Every variable a device has, from InfluxDB's index (no data is read)."""
    return (f'SHOW TAG VALUES {_from()} WITH KEY = "variable" '
            f'WHERE "device" = {quote_string(device_id)}')


def device_series_statement(device_id: str) -> str:
    """Every series (variable and slot) of a device, from InfluxDB's index."""
    return f'SHOW SERIES {_from()} WHERE "device" = {quote_string(device_id)}'


# A row holds a value: one of the three value fields is present (a comparison with a
# missing field is false, so each test below is true exactly when its field is there).
HAS_VALUE = ('("value"::float <= 0 OR "value"::float > 0 OR "value_str"::string =~ /^/ '
             'OR "value_bool"::boolean = true OR "value_bool"::boolean = false)')


def _edge_condition(kind: str) -> tuple[str, ...]:
    if kind.endswith("_value"):
        return (HAS_VALUE,)
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
    """count: the ``_counts`` columns (add them with ``count_columns``); else one column."""
    selected = _counts() if q.kind == "count" else f'{FUNCTIONS[q.kind]}("value"::float)'
    return f"SELECT {selected} {_from()} WHERE {where(device_id, q)}"


def aggregate_statement(device_id: str, q: DataQuery) -> str:
    selected = (_counts() if q.function == "count"
                else f'{FUNCTIONS[q.function]}("value"::float) AS "value"')
    order = "ASC" if q.ascending else "DESC"
    seconds = q.interval_ns // 10**9
    return (f"SELECT {selected} {_from()} "
            f"WHERE {where(device_id, q)} "
            f'GROUP BY time({seconds}s), "variable" fill(none) '
            f"ORDER BY time {order} LIMIT {q.qty} OFFSET {q.skip}")


def delete_point_statement(device_id: str, row: dict[str, Any]) -> str:
    """Remove the one stored point a row was read from (its series and time)."""
    slot = str(row.get("slot") or "")
    return (f"DELETE {_from()} WHERE \"device\" = {quote_string(device_id)}"
            f" AND \"variable\" = {quote_string(row['variable'])}"
            f" AND \"slot\" = {quote_string(slot)} AND time = {int(row['time'])}")


def delete_device_statement(device_id: str) -> str:
    return f"DELETE {_from()} WHERE \"device\" = {quote_string(device_id)}"


def points_per_device_statement(seconds: int) -> str:
    """How many points each device stored in the last ``seconds``, in one statement."""
    return (f"SELECT {_counts()} {_from()} WHERE time > now() - {int(seconds)}s "
            'GROUP BY "device"')


def create_database_statement(name: str) -> str:
    return f"CREATE DATABASE {quote_ident(name)}"


def export_statement(device_id: str, q: DataQuery) -> str:
    """Every row matching the filter (variables, groups, time range), oldest first, no
    limit: an export, read through ``InfluxStore.stream`` in chunks."""
    return f"SELECT {COLUMNS} {_from()} WHERE {where(device_id, q)} ORDER BY time ASC"
