"""The PostgreSQL device registry: one database shared by every API and bridge instance,
chosen by ``DEVICEDATA_REGISTRY_URL=postgresql://...``. The queries are ``registry_sql``'s,
the same as SQLite's; this module only manages connections, transactions and migrations.

Registry methods are called from many threads (the API's thread pool, the bridge's
``to_thread`` calls), so connections come from a small pool: each call borrows one for a
single statement or transaction and gives it back. A psycopg connection is thread-safe
but serialises its users, so sharing one would queue every request behind the slowest.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from bridge.errors import RegistryError
from bridge.registry.sql import SQLRegistry
from bridge.registry.tables import Row, migrate

POOL_SIZE = 8
POOL_WAIT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5
# Any fixed 64-bit number; only other users of advisory locks in the same database could
# collide with it, and they would merely wait for each other.
MIGRATION_LOCK_KEY = 0x64657669636564  # "deviced"

Connection = psycopg.Connection[DictRow]


class _Cursor:
    def __init__(self, cur: psycopg.Cursor[DictRow]) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        # The shared SQL is written with '?' and never has one in a literal.
        self._cur.execute(sql.replace("?", "%s"), params)
        return self._cur.rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(sql.replace("?", "%s"), params)
        return self._cur.fetchall()

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(sql.replace("?", "%s"), params)


class PostgresRegistry(SQLRegistry):
    """``Registry`` on a PostgreSQL database (psycopg 3). The database must exist; its
    tables are created, and later upgraded, by the first instance that starts."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        scheme, _, rest = url.partition("://")
        # SQLAlchemy spells the driver into the scheme (postgresql+psycopg://); libpq does not.
        self._url = scheme.split("+", 1)[0] + "://" + rest
        self._secrets = _secrets(self._url)
        try:
            params = conninfo_to_dict(self._url)
        except psycopg.Error as exc:
            raise ValueError("DEVICEDATA_REGISTRY_URL: not a PostgreSQL URL "
                             f"({self._scrub(str(exc))})") from None
        self.where = "postgresql://{}@{}:{}/{}".format(
            params.get("user", ""), params.get("host", ""), params.get("port", "5432"),
            params.get("dbname", ""))
        self._idle: list[Connection] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # connections

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, exc: psycopg.Error) -> RegistryError:
        return RegistryError(f"PostgreSQL registry {self.where}: {self._scrub(str(exc)).strip()}")

    def _connect(self) -> Connection:
        return psycopg.connect(self._url, autocommit=True, row_factory=dict_row,
                               connect_timeout=CONNECT_TIMEOUT_SECONDS,
                               application_name="devicedata")

    def _checkout(self) -> Connection:
        with self._lock:
            if self._closed:
                raise RegistryError(f"PostgreSQL registry {self.where} is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _checkin(self, conn: Connection) -> None:
        usable = (not conn.closed and not conn.broken
                  and conn.info.transaction_status == TransactionStatus.IDLE)
        with self._lock:
            if usable and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def _drop_idle(self) -> None:
        """After a lost connection the others are most likely dead too (a server restart):
        drop them, so the next calls connect afresh instead of failing one by one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if not self._slots.acquire(timeout=POOL_WAIT_SECONDS):
            raise RegistryError(f"PostgreSQL registry {self.where}: no free connection after "
                                f"{POOL_WAIT_SECONDS:.0f} s")
        try:
            conn = self._checkout()
            try:
                yield conn
            finally:
                self._checkin(conn)
        except psycopg.OperationalError as exc:
            self._drop_idle()
            # from None: the original message may quote the URL, password and all.
            raise self._error(exc) from None
        except psycopg.Error as exc:
            raise self._error(exc) from None
        finally:
            self._slots.release()

    @contextmanager
    def _read(self) -> Iterator[_Cursor]:
        with self._connection() as conn, conn.cursor() as cur:
            yield _Cursor(cur)

    @contextmanager
    def _write(self) -> Iterator[_Cursor]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _Cursor(cur)

    @contextmanager
    def _write_unsynced(self) -> Iterator[_Cursor]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            # The commit returns before its WAL record is flushed to disk.
            cur.execute("SET LOCAL synchronous_commit = off")
            yield _Cursor(cur)

    # schema

    def _migrate(self) -> None:
        """Versioned migrations, recorded in ``schema_version``. The transaction-scoped
        advisory lock makes instances that start together take turns: the first applies
        what is missing, the others then find nothing left to do."""
        with self._write() as cur:
            cur.run(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            cur.run("CREATE TABLE IF NOT EXISTS schema_version ("
                    "version INTEGER PRIMARY KEY, applied_ns BIGINT NOT NULL)")
            current = self._version(cur)
            migrate(cur, current,
                    lambda number: cur.run("INSERT INTO schema_version (version, applied_ns) "
                                           "VALUES (?, ?)", (number, time.time_ns())),
                    "BIGINT", self.where)

    @staticmethod
    def _version(cur: _Cursor) -> int:
        return int(cur.rows("SELECT coalesce(max(version), 0) AS v FROM schema_version")[0]["v"])

    @property
    def schema_version(self) -> int:
        with self._read() as cur:
            return self._version(cur)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_idle()


def _secrets(url: str) -> list[str]:
    """The password (from the user part or a ``password=`` parameter) as written in the
    URL and decoded, longest first, to blank out of messages. Read with urllib, not libpq,
    so it is known even when libpq rejects the URL."""
    parts = urlsplit(url)
    given = parse_qs(parts.query).get("password", [])
    with contextlib.suppress(ValueError):
        given.append(parts.password or "")
    found = {p for raw in given for p in (raw, unquote(raw)) if p}
    return sorted(found, key=len, reverse=True)
