"""Current values in the registry: per device and variable, the newest point, the newest
with a value and the newest with a location, as the API returns them
(``bridge/readcache/current.py`` says who writes and reads them, and why here).

A row is replaced only by a point at least as new (time, then slot), in one statement,
so writers in several processes, in any order, leave the newest: a backfilled point
never becomes current. Rows go with their device (ON DELETE CASCADE), and a write for a
device deleted meanwhile records nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager

from bridge.registry.tables import Cursor
from bridge.registry.versions import _chunks, _marks

# (device_id, variable, kind, time_ns, slot, the point's line of line protocol)
CurrentRow = tuple[str, str, str, int, int, str]

_UPSERT = (
    "INSERT INTO current_values (device_id, variable, kind, time_ns, slot, line) "
    "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?) "
    "ON CONFLICT (device_id, variable, kind) DO UPDATE SET time_ns = excluded.time_ns, "
    "slot = excluded.slot, line = excluded.line "
    "WHERE excluded.time_ns > current_values.time_ns OR (excluded.time_ns = "
    "current_values.time_ns AND excluded.slot >= current_values.slot)")


class CurrentValueQueries:
    """Mixed into ``SQLRegistry`` (next to ``DataVersionQueries``)."""

    def _versions_read(self, wait: bool) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _versions_write(self, wait: bool) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def record_writes(self, rows: Sequence[CurrentRow], device_ids: Collection[str],
                      wait: bool = True) -> None:
        """After a write reached InfluxDB: its candidates for current values, and one
        more change to each of its watched devices (``bump_data_versions``), in one
        transaction."""
        with self._versions_write(wait) as cur:
            if rows:
                cur.run_many(_UPSERT, [(*row, row[0]) for row in rows])
            for chunk in _chunks(sorted(device_ids)):
                cur.run("UPDATE devices SET data_version = data_version + 1, "
                        f"data_watched = 0 WHERE data_watched = 1 AND id IN ({_marks(chunk)})",
                        chunk)

    def current_values(self, device_id: str, kind: str | None,
                       wait: bool = True) -> tuple[bool, list[str]]:
        """(whether the device's current values are complete, the lines of ``kind``,
        of every kind when None)."""
        with self._versions_read(wait) as cur:
            ready = cur.rows("SELECT current_ready FROM devices WHERE id = ?", (device_id,))
            if kind is None:
                rows = cur.rows("SELECT line FROM current_values WHERE device_id = ?",
                                (device_id,))
            else:
                rows = cur.rows("SELECT line FROM current_values WHERE device_id = ? "
                                "AND kind = ?", (device_id, kind))
        return bool(ready and ready[0]["current_ready"]), [str(r["line"]) for r in rows]

    def forget_current(self, device_id: str, variables: Collection[str] | None,
                       wait: bool = True) -> None:
        """Drop the rows of these variables (all: None), and when all, mark the device
        not ready, so that the next read rebuilds them from InfluxDB."""
        with self._versions_write(wait) as cur:
            if variables is None:
                cur.run("UPDATE devices SET current_ready = 0 WHERE id = ?", (device_id,))
                cur.run("DELETE FROM current_values WHERE device_id = ?", (device_id,))
                return
            for chunk in _chunks(sorted(variables)):
                cur.run(f"DELETE FROM current_values WHERE device_id = ? AND variable IN "
                        f"({_marks(chunk)})", [device_id, *chunk])

    def set_current_ready(self, device_id: str, wait: bool = True) -> None:
        with self._versions_write(wait) as cur:
            cur.run("UPDATE devices SET current_ready = 1 WHERE id = ?", (device_id,))
