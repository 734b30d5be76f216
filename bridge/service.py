"""The /data operations, independent of HTTP: add, read, edit and delete a device's points.

Both faces go through here: the API for all four verbs, the MQTT bridge for ``add``. Every
operation is scoped to one device id, taken from the caller's credentials, never from the
request body, so a device only ever sees and changes its own data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

from bridge.answers import Answer, AnswerCache
from bridge.batcher import Batcher
from bridge.errors import FieldError, NotFound, ValidationError
from bridge.points import Point, PointUpdate, validate_points, validate_update
from bridge.query import (
    EDGE_KINDS,
    MAX_QTY,
    NUMBER_KINDS,
    DataQuery,
    aggregate_statement,
    edge_statement,
    export_statement,
    list_statements,
    number_statement,
    select_exact,
)
from bridge.recent import WindowHints, newest_per_variable, newest_rows
from bridge.schema import (
    MEASUREMENT,
    encode_point,
    encode_points,
    id_matches,
    parse_point_id,
    quote_ident,
    quote_string,
    row_to_point,
    row_to_stored,
    variable_from_tag,
)
from bridge.store import InfluxStore, Series
from bridge.timeparse import format_iso_ms, now_ns
from bridge.versions import DataVersions


class DataService:
    def __init__(self, store: InfluxStore, batcher: Batcher, *, max_points: int,
                 versions: DataVersions | None = None,
                 answers: AnswerCache | None = None) -> None:
        """With ``versions`` and ``answers``, a read without a time bound is answered
        from ``answers`` while the device's data version is what it was when the answer
        was read (``bridge/versions.py``)."""
        self.store = store
        self.batcher = batcher
        self.max_points = max_points
        self.hints = WindowHints()
        self.versions = versions
        self.answers = answers

    def prepare(self, device_id: str, payload: Any, received_ns: int | None = None) -> list[Point]:
        return validate_points(payload, device_id=device_id,
                               received_ns=received_ns or now_ns(), max_points=self.max_points)

    async def add(self, device_id: str, payload: Any, received_ns: int | None = None) -> int:
        """Validate (all or nothing) and return once every point is durably written."""
        points = self.prepare(device_id, payload, received_ns)
        if points:
            await self.batcher.submit(encode_points(points), len(points), device_id)
        return len(points)

    async def get(self, device_id: str, q: DataQuery) -> Answer:
        # A relative bound ("1 day") moves with the clock, so only unbounded reads are kept.
        if (self.answers is None or self.versions is None
                or q.start_ns is not None or q.end_ns is not None):
            return await self._read(device_id, q)
        key = repr(q)
        answer = await self.answers.lookup(device_id, key, self.versions.current)
        if answer is not None:
            return answer
        version = await self.versions.watch(device_id)  # before the query: see versions.py
        answer = await self._read(device_id, q)
        if version is not None:
            self.answers.put(device_id, key, version, answer)
        return answer

    async def _read(self, device_id: str, q: DataQuery) -> Answer:
        if q.kind in NUMBER_KINDS:
            (series,) = await self.store.query([number_statement(device_id, q)])
            return _single_number(series)
        if q.kind in EDGE_KINDS:
            rows = await self._edge_rows(device_id, q)
            rows.sort(key=lambda r: (r["time"], r["variable"]), reverse=not q.ascending)
            return [row_to_point(r, details=q.details) for r in rows]
        if q.kind == "aggregate":
            (series,) = await self.store.query([aggregate_statement(device_id, q)])
            return _aggregate_points(series, device_id, q)
        return [row_to_point(r, details=q.details) for r in await self._list_rows(device_id, q)]

    async def _edge_rows(self, device_id: str, q: DataQuery) -> list[dict[str, Any]]:
        if q.kind.startswith("last"):
            return await newest_per_variable(self.store, device_id, q, self.hints)
        (series,) = await self.store.query([edge_statement(device_id, q)])
        return [row for s in series for row in s.rows]

    async def _list_rows(self, device_id: str, q: DataQuery) -> list[dict[str, Any]]:
        if not q.ids and not q.ascending:
            return await newest_rows(self.store, device_id, q, self.hints)
        results = await self.store.query(list_statements(device_id, q))
        if not q.ids:
            return [row for s in results[0] for row in s.rows]
        rows: list[dict[str, Any]] = []
        for point_id, series in zip(q.ids, results, strict=True):
            rows.extend(r for s in series for r in s.rows if _row_is(r, point_id))
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

    async def page(self, device_id: str, q: DataQuery, before: tuple[int, int] | None = None
                   ) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
        """``q.qty`` points newest first (ties in time by variable and slot), and the
        cursor for the next page, None at the end. A cursor ``(t, k)`` continues with the
        points at exactly ``t`` from the k-th on (k > 0 only when a page ended inside such
        a group), then the older ones. Unlike ``skip``, a page costs the same however
        deep it lies."""
        q = dataclasses.replace(q, kind="default", ascending=False, ids=[], skip=0)
        rows: list[dict[str, Any]] = []
        if before is not None and (q.end_ns is None or before[0] <= q.end_ns):
            at, shown = before
            if shown:
                ties = await self._ties(device_id, q, at)
                rows = ties[shown:shown + q.qty]
                if len(ties) > shown + q.qty:
                    return _points(rows), (at, shown + q.qty)
            q.end_ns = at - 1
        need = q.qty - len(rows)
        older = await self._list_rows(device_id, dataclasses.replace(q, qty=need + 1))
        if need == 0:
            return _points(rows), (rows[-1]["time"], 0) if older else None
        if len(older) <= need:
            return _points(rows + sorted(older, key=_order)), None
        last = int(older[need - 1]["time"])
        rows += sorted(older[:need], key=_order)
        if int(older[need]["time"]) != last:
            return _points(rows), (last, 0)
        # The page ends inside a group sharing one time, which InfluxDB returns in no
        # fixed order: end it with a prefix of the whole group, in our order.
        taken = sum(1 for r in rows if int(r["time"]) == last)
        rows = [r for r in rows if int(r["time"]) != last]
        rows += (await self._ties(device_id, q, last))[:taken]
        return _points(rows), (last, taken)

    async def _ties(self, device_id: str, q: DataQuery, at: int) -> list[dict[str, Any]]:
        exact = dataclasses.replace(q, start_ns=at, end_ns=at, qty=MAX_QTY)
        (series,) = await self.store.query(list_statements(device_id, exact))
        return sorted((r for s in series for r in s.rows), key=_order)

    async def delete(self, device_id: str, q: DataQuery) -> int:
        """Delete what the same GET would return (so ``qty`` defaults to 15 here too)."""
        if q.kind in NUMBER_KINDS or q.kind == "aggregate":
            raise ValidationError("Invalid query parameters", [
                FieldError("query", f"query={q.kind} cannot be used to delete data")])
        if q.kind in EDGE_KINDS:
            rows = await self._edge_rows(device_id, q)
        else:
            rows = await self._list_rows(device_id, q)
        if rows:
            try:
                await self.store.query([_delete_statement(device_id, r) for r in rows])
            finally:
                await self.store.changed((device_id,))
        return len(rows)

    async def edit(self, device_id: str, payload: Any) -> int:
        """Apply ``{id, ...changes}`` items; all ids must exist, or nothing changes."""
        updates = validate_update(payload, max_points=self.max_points)
        if not updates:
            return 0
        statements = [select_exact(device_id, parse_point_id(u.id)[0]) for u in updates]
        results = await self.store.query(statements)
        found: list[tuple[PointUpdate, dict[str, Any]]] = []
        missing = []
        for index, (update, series) in enumerate(zip(updates, results, strict=True)):
            rows = [r for s in series for r in s.rows if _row_is(r, update.id)]
            if rows:
                found.append((update, rows[0]))
            else:
                missing.append(FieldError("id", "no such data point", index=index))
        if missing:
            raise NotFound(f"{len(missing)} of {len(updates)} ids were not found: "
                           + ", ".join(str(e.index) for e in missing))
        deletes, lines = [], []
        for update, row in found:
            point = row_to_stored(row)
            before = _field_set(point)
            for key, value in update.changes.items():
                setattr(point, key, value)
            if not before <= _field_set(point):
                deletes.append(_delete_statement(device_id, row))
            lines.append(encode_point(point))
        if deletes:
            # A field that disappears (a number turned string) would linger if merely
            # overwritten, so those points are removed before they are written again.
            try:
                await self.store.query(deletes)
            finally:
                await self.store.changed((device_id,))
        await self.batcher.submit("\n".join(lines).encode("utf-8"), len(lines), device_id)
        return len(found)

    async def delete_device(self, device_id: str) -> None:
        await delete_device_points(self.store, device_id)


async def delete_device_points(store: InfluxStore, device_id: str) -> None:
    """Remove every stored point of one device (when the device itself is deleted)."""
    try:
        await store.query([f"DELETE FROM {quote_ident(MEASUREMENT)} "
                           f"WHERE \"device\" = {quote_string(device_id)}"])
    finally:
        await store.changed((device_id,))


def _order(row: dict[str, Any]) -> tuple[int, str, int]:
    """Newest first; points sharing a time by variable, then slot."""
    return -int(row["time"]), row["variable"], int(row.get("slot") or 0)


def _points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row_to_point(r) for r in rows]


def _row_is(row: dict[str, Any], point_id: str) -> bool:
    return id_matches(point_id, variable_from_tag(row["variable"]), int(row.get("slot") or 0))


def _delete_statement(device_id: str, row: dict[str, Any]) -> str:
    slot = str(row.get("slot") or "")
    return (f"DELETE FROM {quote_ident(MEASUREMENT)} WHERE \"device\" = {quote_string(device_id)}"
            f" AND \"variable\" = {quote_string(row['variable'])}"
            f" AND \"slot\" = {quote_string(slot)} AND time = {int(row['time'])}")


def _field_set(point: Point) -> set[str]:
    fields = {"value_type"} if point.value is not None else set()
    for name in ("value", "unit", "lat", "lng", "metadata"):
        if getattr(point, name) is not None:
            fields.add(name if name != "value" else f"value:{type(point.value).__name__}")
    return fields


def _single_number(series: list[Series]) -> float | int:
    for s in series:
        for row in s.rows:
            for key, value in row.items():
                if key != "time" and isinstance(value, int | float):
                    return int(value) if float(value).is_integer() else value
    return 0


def _aggregate_points(series: list[Series], device_id: str, q: DataQuery) -> list[dict[str, Any]]:
    points = []
    for s in series:
        variable = variable_from_tag(s.tags.get("variable", ""))
        for row in s.rows:
            value = row.get("value")
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            points.append({"variable": variable, "value": value,
                           "time": format_iso_ms(int(row["time"])),
                           "device": device_id, "origin": device_id})
    points.sort(key=lambda p: (p["time"], p["variable"]), reverse=not q.ascending)
    return points
