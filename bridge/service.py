"""DataService: the single way into the data, for both faces.

The API calls it for all four verbs, the MQTT bridge for writes. A write enters through
``accept`` (validation, encoding and the accepted-points count, once for every face), then
``write`` (await durability: HTTP) or ``write_later`` (a callback: the bridge, which must
not spend a task per message). Last input is noted once a write is stored. Every operation
is scoped to one device id, taken from the caller's credentials, never from the request
body, so a device only ever sees and changes its own data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from bridge.errors import FieldError, NotFound, ValidationError
from bridge.influx import generated
from bridge.influx.fast import encode_message
from bridge.influx.generated import group_rows, names_generated_group
from bridge.influx.influxql import (
    count_columns,
    delete_device_statement,
    delete_point_statement,
    points_per_device_statement,
    select_exact,
)
from bridge.influx.pages import Cursor
from bridge.influx.reads import Reads, row_is
from bridge.influx.schema import (
    encode_point,
    point_fields,
    row_fields,
    row_to_stored,
)
from bridge.influx.store import InfluxStore
from bridge.metrics import Metrics
from bridge.model.current import Candidates, candidates
from bridge.model.formats import PayloadFormat
from bridge.model.ids import is_point_id, parse_point_id
from bridge.model.points import PointUpdate, decode_json, validate_update
from bridge.model.query import EDGE_KINDS, NUMBER_KINDS, DataQuery
from bridge.model.timeparse import now_ns
from bridge.readcache.answers import Answer, AnswerCache
from bridge.readcache.current import CurrentValues
from bridge.readcache.current import answers as answers_current
from bridge.readcache.variables import DeviceVariables
from bridge.readcache.versions import DataVersions
from bridge.registry.activity import LastInput
from bridge.write.batcher import Batcher, Done

# The faces (LoRaWAN uplinks come in over HTTP from a network server); metric labels come
# from this closed set.
SOURCES = ("http", "mqtt", "lorawan")


@dataclass(slots=True)
class Accepted:
    """One request's or message's points, validated and encoded, not yet stored."""

    device_id: str
    body: bytes
    count: int
    received_ns: int
    current: Candidates | None = None


class DataService:
    def __init__(self, store: InfluxStore, batcher: Batcher, *, max_points: int,
                 versions: DataVersions | None = None, answers: AnswerCache | None = None,
                 metrics: Metrics | None = None, last_input: LastInput | None = None,
                 variables: DeviceVariables | None = None,
                 current: CurrentValues | None = None) -> None:
        """With ``versions`` and ``answers``, a read without a time bound is answered
        from ``answers`` while the device's data version is what it was when the answer
        was read (``bridge/readcache/versions.py``). ``variables``: the per-device limit."""
        self.variables = variables if variables is not None else DeviceVariables(store, 0)
        self.store = store
        self.batcher = batcher
        self.max_points = max_points
        self.reads = Reads(store)
        self.versions = versions
        self.answers = answers
        self.current = current
        self.last_input = last_input if last_input is not None else LastInput()
        self.metrics = metrics if metrics is not None else Metrics()
        # Counted in plain ints on the hot path, moved to Prometheus before each scrape.
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[tuple[str, str]] = Counter()
        self.metrics.before_scrape(self._flush_counts)
        self.metrics.track_last_seen(self.last_input.snapshot)

    # -- writes --------------------------------------------------------------------------

    def accept(self, device_id: str, payload: Any, *, source: str,
               received_ns: int | None = None, fmt: PayloadFormat | None = None) -> Accepted:
        """Validate (all or nothing) and encode; raises ``ValidationError`` naming every
        bad field, or ``PayloadTooLarge``. Untimed points get ``received_ns``.

        ``payload`` is decoded TagoIO JSON; or a ``Converted`` payload of another format
        (a LoRaWAN uplink); or, with ``fmt``, the bytes of a payload in that format
        (``bridge.model.formats``: an MQTT topic's, an HTTP body's), converted here. All
        are validated by the same ``validate_points``, errors named at their places in
        the original (``[3] v``)."""
        received = received_ns or now_ns()
        if fmt is not None:
            if fmt.name == "tagoio":  # already the points' shape: only decoded (hot path)
                payload = decode_json(payload)
            else:
                payload = fmt.convert(payload, received_ns=received, max_points=self.max_points)
        body, count, current, names = encode_message(payload, device_id, received,
                                                     self.max_points)
        self.variables.admit_names(device_id, names)
        self._accepted[source] += count
        return Accepted(device_id, body, count, received,
                        current if count and self.current is not None else None)

    def ready_for(self, device_id: str) -> bool:
        """Whether ``accept`` can check the device's limits from memory; else ``prepare``
        it first, off the hot path, so accepting never waits on InfluxDB."""
        return self.variables.ready(device_id)

    async def prepare(self, device_id: str) -> None:
        """Load what ``accept`` checks for the device (its variable names); never raises."""
        await self.variables.prepare(device_id)

    async def write(self, accepted: Accepted) -> None:
        """Return once the points are durably written (InfluxDB or the spool)."""
        if accepted.count:
            await self.batcher.submit(accepted.body, accepted.count, accepted.device_id,
                                      accepted.current)
            self.last_input.note(accepted.device_id, accepted.received_ns)

    def write_later(self, accepted: Accepted, done: Done) -> None:
        """Queue without waiting: ``done(None)`` once durably written, ``done(exc)`` if not.
        The caller bounds its own intake (the bridge stops reading)."""
        def stored(exc: BaseException | None) -> None:
            if exc is None:
                self.last_input.note(accepted.device_id, accepted.received_ns)
            done(exc)

        self.batcher.enqueue(accepted.body, accepted.count, stored, accepted.device_id,
                             accepted.current)

    async def add(self, device_id: str, payload: Any, *, source: str,
                  received_ns: int | None = None, fmt: PayloadFormat | None = None) -> int:
        """``accept`` then ``write``: the number of points stored."""
        if not self.ready_for(device_id):
            await self.prepare(device_id)
        accepted = self.accept(device_id, payload, source=source, received_ns=received_ns,
                               fmt=fmt)
        await self.write(accepted)
        return accepted.count

    def rejected(self, source: str, reason: str) -> None:
        """Count a refused request or message; ``reason`` comes from a closed set."""
        self._rejected[(source, reason)] += 1

    def _flush_counts(self) -> None:
        accepted, self._accepted = self._accepted, Counter()
        for source, n in accepted.items():
            self.metrics.child(self.metrics.points_accepted, source).inc(n)
        rejected, self._rejected = self._rejected, Counter()
        for (source, reason), n in rejected.items():
            self.metrics.child(self.metrics.points_rejected, source, reason).inc(n)

    # -- reads ---------------------------------------------------------------------------

    async def get(self, device_id: str, q: DataQuery) -> Answer:
        if self.current is not None and answers_current(q):
            return await self.current.read(device_id, q, self._newest)
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
        return await self.reads.read(device_id, q)

    async def _newest(self, device_id: str, kind: str,
                      variables: list[str] | None) -> list[dict[str, Any]]:
        return await self.reads.newest(device_id, kind, variables)

    def export(self, device_id: str, q: DataQuery,
               chunk_size: int = 5000) -> AsyncGenerator[list[dict[str, Any]]]:
        """Every point matching ``q`` (not its qty or skip), oldest first, streamed in lists
        of at most ``chunk_size`` (``Reads.export``)."""
        return self.reads.export(device_id, q, chunk_size)

    async def page(self, device_id: str, q: DataQuery, before: Cursor | None = None
                   ) -> tuple[list[dict[str, Any]], Cursor | None]:
        """``q.qty`` points newest first from cursor ``before``, and the next cursor."""
        return await self.reads.page(device_id, q, before)

    async def delete(self, device_id: str, q: DataQuery) -> int:
        """Delete what the same GET would return (so ``qty`` defaults to 15 here too)."""
        if q.kind in NUMBER_KINDS or q.kind == "aggregate":
            raise ValidationError("Invalid query parameters", [
                FieldError("query", f"query={q.kind} cannot be used to delete data")])
        if names_generated_group(q):
            rows = await group_rows(self.store, device_id, q)
            rows = (generated.edge_rows(rows, q) if q.kind in EDGE_KINDS
                    else generated.list_rows(rows, q))
        elif q.kind in EDGE_KINDS:
            rows = await self.reads.edge_rows(device_id, q)
        else:
            rows = await self.reads.list_rows(device_id, q)
        if rows:
            try:
                await self.store.query([delete_point_statement(device_id, r) for r in rows])
            finally:
                await self.store.changed((device_id,))
                self.variables.forget(device_id)  # a name may be gone now
                if self.current is not None:
                    # The newest point may be gone: its variables' current values are
                    # read again from what InfluxDB still holds.
                    await self.current.deleted(device_id, rows, self._newest)
        return len(rows)

    async def edit(self, device_id: str, payload: Any) -> int:
        """Apply ``{id, ...changes}`` items; all ids must exist, or nothing changes."""
        updates = validate_update(payload, max_points=self.max_points)
        if not updates:
            return 0
        not_ours = [FieldError("id", "is not a data point id", index=i)
                    for i, u in enumerate(updates) if not is_point_id(u.id)]
        if not_ours:
            raise ValidationError("Error on object parse", not_ours)
        statements = [select_exact(device_id, parse_point_id(u.id)[0]) for u in updates]
        results = await self.store.query(statements)
        found: list[tuple[PointUpdate, dict[str, Any]]] = []
        missing = []
        for index, (update, series) in enumerate(zip(updates, results, strict=True)):
            rows = [r for s in series for r in s.rows if row_is(r, update.id)]
            if rows:
                found.append((update, rows[0]))
            else:
                missing.append(FieldError("id", "no such data point", index=index))
        if missing:
            raise NotFound(f"{len(missing)} of {len(updates)} ids were not found: "
                           + ", ".join(str(e.index) for e in missing))
        deletes, lines, points = [], [], []
        for update, row in found:
            point = row_to_stored(row)
            for key, value in update.changes.items():
                setattr(point, key, value)
            if not row_fields(row) <= point_fields(point):
                # A field the rewrite would not overwrite (a number turned string, or a
                # version 1 row's ``created``) would linger, so the point is removed first.
                deletes.append(delete_point_statement(device_id, row))
            lines.append(encode_point(point))
            points.append(point)
        if deletes:  # so that no field of the old point lingers (see above)
            try:
                await self.store.query(deletes)
            finally:
                await self.store.changed((device_id,))
        await self.batcher.submit("\n".join(lines).encode("utf-8"), len(lines), device_id,
                                  candidates(points, encode_point)
                                  if self.current is not None else None)
        return len(found)

    async def delete_device(self, device_id: str) -> None:
        try:
            await delete_device_points(self.store, device_id)
        finally:
            self.variables.forget(device_id)

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless InfluxDB answers."""
        await self.store.ping()

    async def points_per_device(self, seconds: int) -> dict[str, int]:
        """How many points each device stored in the last ``seconds`` (StoreError when
        InfluxDB cannot answer)."""
        (series,) = await self.store.query([points_per_device_statement(seconds)])
        return {s.tags.get("device", ""): count_columns(row) or 0
                for s in series for row in s.rows}


async def delete_device_points(store: InfluxStore, device_id: str) -> None:
    """Remove every stored point of one device (when the device itself is deleted)."""
    try:
        await store.query([delete_device_statement(device_id)])
    finally:
        await store.changed((device_id,))


