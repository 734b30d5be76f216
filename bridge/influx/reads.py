"""The reads of the data as InfluxDB answers them: every GET kind, the rows a PUT or
DELETE acts on, the console's history pages and streamed export. ``DataService`` keeps
the read cache and current values in front of these; here is what asks InfluxDB."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from bridge.influx import generated
from bridge.influx.generated import group_rows, names_generated_group
from bridge.influx.influxql import (
    aggregate_statement,
    count_columns,
    edge_statement,
    export_statement,
    list_statements,
    number_statement,
)
from bridge.influx.pages import Cursor, page_rows
from bridge.influx.schema import (
    aggregate_points,
    number_from_series,
    row_to_point,
    variable_from_tag,
)
from bridge.influx.store import InfluxStore
from bridge.influx.windows import WindowHints, newest_locations, newest_per_variable, newest_rows
from bridge.model.ids import id_matches
from bridge.model.query import EDGE_KINDS, NUMBER_KINDS, DataQuery

Rows = list[dict[str, Any]]
Answer = list[dict[str, Any]] | float | int


class Reads:
    def __init__(self, store: InfluxStore) -> None:
        self.store = store
        self.hints = WindowHints()

    async def read(self, device_id: str, q: DataQuery) -> Answer:
        if names_generated_group(q):
            return generated.answer(await group_rows(self.store, device_id, q), q, device_id)
        if q.kind in NUMBER_KINDS:
            (series,) = await self.store.query([number_statement(device_id, q)])
            if q.kind == "count":
                return sum(count_columns(row) or 0 for s in series for row in s.rows)
            return number_from_series(series)
        if q.kind in EDGE_KINDS:
            rows = await self.edge_rows(device_id, q)
            rows.sort(key=lambda r: (r["time"], r["variable"]), reverse=not q.ascending)
            return [row_to_point(r, details=q.details) for r in rows]
        if q.kind == "aggregate":
            (series,) = await self.store.query([aggregate_statement(device_id, q)])
            return aggregate_points(series, device_id, q.ascending,
                                    count_columns if q.function == "count" else None)
        return [row_to_point(r, details=q.details) for r in await self.list_rows(device_id, q)]

    async def newest(self, device_id: str, kind: str,
                      variables: list[str] | None) -> list[dict[str, Any]]:
        """The newest row per variable of a last_* kind, from InfluxDB."""
        if kind == "last_location":
            return await newest_locations(self.store, device_id, variables)
        q = DataQuery(kind=kind, variables=variables or [])
        return await newest_per_variable(self.store, device_id, q, self.hints)

    async def edge_rows(self, device_id: str, q: DataQuery) -> list[dict[str, Any]]:
        if q.kind.startswith("last"):
            return await newest_per_variable(self.store, device_id, q, self.hints)
        (series,) = await self.store.query([edge_statement(device_id, q)])
        return [row for s in series for row in s.rows]

    async def list_rows(self, device_id: str, q: DataQuery) -> list[dict[str, Any]]:
        if not q.ids and not q.ascending:
            return await newest_rows(self.store, device_id, q, self.hints)
        results = await self.store.query(list_statements(device_id, q))
        if not q.ids:
            return [row for s in results[0] for row in s.rows]
        rows: list[dict[str, Any]] = []
        for point_id, series in zip(q.ids, results, strict=True):
            rows.extend(r for s in series for r in s.rows if row_is(r, point_id))
        rows.sort(key=lambda r: r["time"], reverse=not q.ascending)
        return rows[q.skip: q.skip + q.qty]

    async def export(self, device_id: str, q: DataQuery,
                     chunk_size: int = 5000) -> AsyncGenerator[list[dict[str, Any]]]:
        """Every point matching ``q``'s variables, groups and time range (not its qty or
        skip), oldest first, as TagoIO points in lists of at most ``chunk_size``: streamed
        from InfluxDB as it answers, so memory stays flat whatever the size."""
        async for series in self.store.stream(export_statement(device_id, q), chunk_size):
            points = [row_to_point(r) for s in series for r in s.rows]
            if points:
                yield points

    async def page(self, device_id: str, q: DataQuery, before: Cursor | None = None
                   ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """``q.qty`` points newest first from cursor ``before``, and the next page's
        cursor (None at the end); a page costs the same however deep it lies
        (``bridge/influx/pages.py``)."""
        rows, cursor = await page_rows(self.store, device_id, q, before, self.hints)
        return [row_to_point(r) for r in rows], cursor


def row_is(row: dict[str, Any], point_id: str) -> bool:
    """Whether a row read by an id's time is the point that id names."""
    return id_matches(point_id, variable_from_tag(row["variable"]), int(row.get("slot") or 0))
