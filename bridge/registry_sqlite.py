"""The SQLite device registry: the default backend, one file shared by the API, the bridge
and the CLI (WAL mode lets them read while one of them writes). The queries themselves are
in ``registry_sql``, shared with the PostgreSQL backend."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from bridge.errors import RegistryError
from bridge.registry_sql import (
    MIGRATIONS,
    Row,
    SQLRegistry,
    bump_versions,
    check_name,
    migrate,
    read_version,
)

__all__ = ["MIGRATIONS", "SQLiteRegistry", "check_name"]


class _Cursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self._db.execute(sql, params).fetchall()]


class SQLiteRegistry(SQLRegistry):
    """``Registry`` on one SQLite file. Safe to share between threads of one process and
    between processes (each connection waits up to ``busy_timeout`` for a writer)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._versions_lock = threading.Lock()
        self._versions_db: sqlite3.Connection | None = None
        self._versions_wait = True  # whether that connection's busy_timeout is set
        self._db = self._connect(self._busy_timeout_ms)
        try:
            with self._locked():
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a migration and
            # its user_version bump commit together.
            db = sqlite3.connect(str(self.path), check_same_thread=False,
                                 isolation_level=None, timeout=busy_timeout_ms / 1000)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open registry {self.path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise RegistryError(f"registry error: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front, so two
        processes cannot both read-then-write and deadlock on the upgrade."""
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # some errors already rolled back by themselves
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[_Cursor]:
        with self._locked() as db:
            yield _Cursor(db)

    @contextmanager
    def _write(self) -> Iterator[_Cursor]:
        with self._tx() as db:
            yield _Cursor(db)

    # data versions: a connection of their own

    def _versions(self, wait: bool) -> AbstractContextManager[sqlite3.Connection]:
        """The data-version connection, locked. Its commits skip the fsync (WAL with
        ``synchronous = NORMAL``: a power failure may lose a bump, never corrupt the file),
        and with ``wait=False`` nothing waits: a lock held by another thread or another
        process raises BlockingIOError, so the event loop can call this directly and go to
        a thread only when it must."""
        if not self._versions_lock.acquire(blocking=wait):
            raise BlockingIOError("the data-version connection is in use")
        try:
            if self._versions_db is None:
                self._versions_db = self._connect(self._busy_timeout_ms)
                self._versions_db.execute("PRAGMA synchronous = NORMAL")
                self._versions_wait = True
            db = self._versions_db
            if wait != self._versions_wait:
                db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms if wait else 0}")
                self._versions_wait = wait
        except BaseException:
            self._versions_lock.release()
            raise
        return self._held_versions(db)

    @contextmanager
    def _held_versions(self, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            yield db
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise BlockingIOError(str(exc)) from None
            raise RegistryError(f"registry error: {exc}") from exc
        except sqlite3.Error as exc:
            raise RegistryError(f"registry error: {exc}") from exc
        finally:
            self._versions_lock.release()

    def bump_data_versions(self, device_ids: Collection[str], wait: bool = True) -> None:
        if not device_ids:
            return
        with self._versions(wait) as db:
            db.execute("BEGIN IMMEDIATE")
            bump_versions(_Cursor(db), device_ids)
            db.execute("COMMIT")

    def data_version(self, device_id: str, wait: bool = True) -> int | None:
        # A WAL reader never waits for a writer, so only the lock above can block.
        with self._versions(wait) as db:
            return read_version(_Cursor(db), device_id)

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            migrate(_Cursor(db), version,
                    lambda number: db.execute(f"PRAGMA user_version = {number}"),
                    "INTEGER", str(self.path))

    @property
    def schema_version(self) -> int:
        with self._locked() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._versions_lock:
            if self._versions_db is not None:
                self._versions_db.close()
                self._versions_db = None
