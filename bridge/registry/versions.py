"""The data-version queries of the SQL registries (``bridge/readcache/versions.py`` says how they
are used). Like the rest of ``sql.py``, one SQL text serves SQLite and PostgreSQL;
a backend only says how ``_versions_read`` / ``_versions_write`` reach its database."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager

from bridge.registry.tables import Cursor

_IDS_PER_STATEMENT = 500  # below SQLite's oldest bound-parameter limit (999)


class DataVersionQueries:
    """Mixed into ``SQLRegistry``, which provides ``_read`` and ``_write_unsynced``."""

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write_unsynced(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _versions_read(self, wait: bool) -> AbstractContextManager[Cursor]:
        """With ``wait=False``, raise BlockingIOError rather than wait for a lock or a
        server, so the caller can try on its event loop and go to a thread only if it
        must. Here always: a network round trip is a wait."""
        if not wait:
            raise BlockingIOError("this registry is reached over the network")
        return self._read()

    def _versions_write(self, wait: bool) -> AbstractContextManager[Cursor]:
        if not wait:
            raise BlockingIOError("this registry is reached over the network")
        return self._write_unsynced()

    def data_version(self, device_id: str, wait: bool = True) -> int | None:
        """How many changes the device's data has seen (that anyone was watching); None
        for an unknown device."""
        with self._versions_read(wait) as cur:
            rows = cur.rows("SELECT data_version FROM devices WHERE id = ?", (device_id,))
        return int(rows[0]["data_version"]) if rows else None

    def watch_data_version(self, device_id: str, wait: bool = True) -> int | None:
        """Mark the device watched and return its version: from now on the next write to
        it bumps the version."""
        with self._versions_write(wait) as cur:
            cur.run("UPDATE devices SET data_watched = 1 WHERE id = ? AND data_watched = 0",
                    (device_id,))
            rows = cur.rows("SELECT data_version FROM devices WHERE id = ?", (device_id,))
        return int(rows[0]["data_version"]) if rows else None

    def watched_devices(self, device_ids: Collection[str], wait: bool = True) -> set[str]:
        """Which of these devices are watched (unknown ids are not)."""
        ids = list(device_ids)
        found: set[str] = set()
        with self._versions_read(wait) as cur:
            for chunk in _chunks(ids):
                found.update(str(r["id"]) for r in cur.rows(
                    f"SELECT id FROM devices WHERE data_watched = 1 AND id IN ({_marks(chunk)})",
                    chunk))
        return found

    def bump_data_versions(self, device_ids: Collection[str], wait: bool = True) -> None:
        """Count one more change to each watched device's data and unwatch it (until a
        reader watches again, further writes need no bump). Unknown ids are ignored."""
        ids = sorted(device_ids)  # one lock order, so two bumpers cannot deadlock
        with self._versions_write(wait) as cur:
            for chunk in _chunks(ids):
                cur.run("UPDATE devices SET data_version = data_version + 1, data_watched = 0 "
                        f"WHERE data_watched = 1 AND id IN ({_marks(chunk)})", chunk)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + _IDS_PER_STATEMENT] for i in range(0, len(ids), _IDS_PER_STATEMENT)]


def _marks(chunk: list[str]) -> str:
    return ", ".join("?" * len(chunk))
