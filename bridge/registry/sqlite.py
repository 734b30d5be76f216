"""The SQLite device registry: the default backend, one file shared by the API, the bridge
and the CLI (WAL mode lets them read while one of them writes). The queries themselves are
in ``registry_sql``, shared with the PostgreSQL backend."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.errors import RegistryError
from bridge.registry.sql import SQLRegistry, check_name
from bridge.registry.tables import MIGRATIONS, Row, migrate

__all__ = ["MIGRATIONS", "SQLiteRegistry", "check_name"]


class _Cursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self._db.execute(sql, params).fetchall()]

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, params)


class SQLiteRegistry(SQLRegistry):
    """``Registry`` on one SQLite file. Safe to share between threads of one process and
    between processes (each connection waits up to ``busy_timeout`` for a writer)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._versions_lock = threading.Lock()
        self._versions_db: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self._writer_db: sqlite3.Connection | None = None
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
    def _tx(self, synchronous: str = "FULL") -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front, so two
        processes cannot both read-then-write and deadlock on the upgrade. In WAL mode
        ``synchronous = NORMAL`` skips the commit's fsync: a power failure may lose the
        transaction, never corrupt the file."""
        with self._locked() as db:
            if synchronous != "FULL":
                db.execute(f"PRAGMA synchronous = {synchronous}")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:  # some errors already rolled back by themselves
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if synchronous != "FULL":
                    db.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def _read(self) -> Iterator[_Cursor]:
        with self._locked() as db:
            yield _Cursor(db)

    @contextmanager
    def _write(self) -> Iterator[_Cursor]:
        with self._tx() as db:
            yield _Cursor(db)

    # data versions

    @contextmanager
    def _write_unsynced(self) -> Iterator[_Cursor]:
        with self._tx(synchronous="NORMAL") as db:
            yield _Cursor(db)

    @contextmanager
    def _versions_read(self, wait: bool) -> Iterator[_Cursor]:
        """``wait=False`` reads on a connection of their own that never waits (a WAL
        reader does not wait for writers; in the rare case it must, BlockingIOError sends
        the caller to a thread), so the event loop can read a version in about 20 µs."""
        if wait:
            with self._read() as cur:
                yield cur
            return
        if not self._versions_lock.acquire(blocking=False):
            raise BlockingIOError("the data-version connection is in use")
        try:
            if self._versions_db is None:
                self._versions_db = self._connect(busy_timeout_ms=0)
            yield _Cursor(self._versions_db)
        except sqlite3.OperationalError as exc:
            raise BlockingIOError(str(exc)) from None
        except sqlite3.Error as exc:
            raise RegistryError(f"registry error: {exc}") from exc
        finally:
            self._versions_lock.release()

    @contextmanager
    def _versions_write(self, wait: bool) -> Iterator[_Cursor]:
        """``wait=False`` writes on a connection of its own that never waits for a lock
        (BlockingIOError sends the caller to a thread) and never checkpoints the WAL
        (``checkpoint`` does, from a thread): what is left is appending a few pages to
        the WAL without fsync, which the event loop can afford (current values are
        recorded once per write batch)."""
        if wait:
            with self._write_unsynced() as cur:
                yield cur
            return
        if not self._writer_lock.acquire(blocking=False):
            raise BlockingIOError("the loop's writing connection is in use")
        try:
            if self._writer_db is None:
                self._writer_db = self._connect(busy_timeout_ms=0)
                self._writer_db.execute("PRAGMA busy_timeout = 0")
                self._writer_db.execute("PRAGMA synchronous = NORMAL")
                self._writer_db.execute("PRAGMA wal_autocheckpoint = 0")
                # Its statements check that the device exists themselves (in the same
                # statement, under the write lock); deletes cascade on other connections.
                self._writer_db.execute("PRAGMA foreign_keys = OFF")
            db = self._writer_db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise BlockingIOError(str(exc)) from None
            try:
                yield _Cursor(db)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise RegistryError(f"registry error: {exc}") from exc
        finally:
            self._writer_lock.release()

    def checkpoint(self) -> None:
        """Move the WAL into the database file (the loop's writer never does)."""
        with self._locked() as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
        with self._writer_lock:
            if self._writer_db is not None:
                self._writer_db.close()
                self._writer_db = None
