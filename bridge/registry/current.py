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
from typing import Any

from bridge.model.current import KINDS
from bridge.registry.tables import Cursor
from bridge.registry.versions import _chunks, _marks

# device_id, variable, then time, slot and line of each of KINDS (None: no candidate)
CurrentRow = tuple[Any, ...]


def _newer(kind: str) -> str:
    """Whether the candidate of ``kind`` replaces what the row holds (SET expressions see
    the row as it was, so every column of a kind is decided by the same test)."""
    new, old = f"excluded.{kind}", f"current_values.{kind}"
    return (f"{new}_time IS NOT NULL AND ({old}_time IS NULL OR {new}_time > {old}_time "
            f"OR ({new}_time = {old}_time AND {new}_slot >= {old}_slot))")


_COLUMNS = [f"{kind}_{part}" for kind in KINDS for part in ("time", "slot", "line")]
_UPSERT = (
    f"INSERT INTO current_values (device_id, variable, {', '.join(_COLUMNS)}) "
    f"SELECT ?, ?, {', '.join('?' * len(_COLUMNS))} "
    "WHERE EXISTS (SELECT 1 FROM devices WHERE id = ?) "
    "ON CONFLICT (device_id, variable) DO UPDATE SET "
    + ", ".join(f"{kind}_{part} = CASE WHEN {_newer(kind)} THEN excluded.{kind}_{part} "
                f"ELSE current_values.{kind}_{part} END"
                for kind in KINDS for part in ("time", "slot", "line")))


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
                cur.run_many(_UPSERT, [(*row, row[0]) for row in rows])  # row[0]: device
            for chunk in _chunks(sorted(device_ids)):
                cur.run("UPDATE devices SET data_version = data_version + 1, "
                        f"data_watched = 0 WHERE data_watched = 1 AND id IN ({_marks(chunk)})",
                        chunk)

    def current_values(self, device_id: str, kind: str | None,
                       wait: bool = True) -> tuple[bool, list[str]]:
        """(whether the device's current values are complete, the lines of ``kind``,
        of every kind when None)."""
        kinds = KINDS if kind is None else (KINDS[KINDS.index(kind)],)  # one of ours
        with self._versions_read(wait) as cur:
            ready = cur.rows("SELECT current_ready FROM devices WHERE id = ?", (device_id,))
            rows = cur.rows(f"SELECT {', '.join(f'{k}_line' for k in kinds)} "
                            "FROM current_values WHERE device_id = ?", (device_id,))
        lines = [str(r[f"{k}_line"]) for r in rows for k in kinds
                 if r[f"{k}_line"] is not None]
        return bool(ready and ready[0]["current_ready"]), lines

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

    def checkpoint(self) -> None:
        """SQLite moves its WAL into the database file here; nothing elsewhere."""

    def set_current_ready(self, device_id: str, wait: bool = True) -> None:
        with self._versions_write(wait) as cur:
            cur.run("UPDATE devices SET current_ready = 1 WHERE id = ?", (device_id,))
