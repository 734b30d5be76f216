"""The SQLite device registry: the default backend, one file shared by the API, the bridge
and the CLI (WAL mode lets them read while one of them writes)."""

from __future__ import annotations

import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge import tokens
from bridge.errors import Conflict, FieldError, NotFound, RegistryError, ValidationError
from bridge.registry import PERMISSIONS, Device, IssuedToken, Permission, TokenInfo
from bridge.tokens import (
    MIN_PREFIX_LEN,
    PREFIX_LEN,
    hashes_equal,
    mosquitto_hash,
    token_hash,
    token_prefix,
)

# Append-only: entry N brings a database from user_version N to N+1. Never edit a
# released entry; add a new one, so existing registries upgrade in place.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE devices (
            id            TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            created_ns    INTEGER NOT NULL,
            last_input_ns INTEGER
        )""",
        """CREATE TABLE tokens (
            hash       TEXT PRIMARY KEY,
            prefix     TEXT NOT NULL,
            device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            permission TEXT NOT NULL CHECK (permission IN ('read', 'write', 'full')),
            name       TEXT NOT NULL DEFAULT '',
            created_ns INTEGER NOT NULL,
            expires_ns INTEGER,
            revoked_ns INTEGER,
            mqtt_hash  TEXT NOT NULL
        )""",
        "CREATE INDEX tokens_device ON tokens(device_id)",
        "CREATE INDEX tokens_prefix ON tokens(prefix)",
    ),
]

MAX_NAME = 100
_TOKEN_COLUMNS = "hash, prefix, device_id, permission, name, created_ns, expires_ns, revoked_ns"


def check_name(name: str, *, field: str = "name", allow_empty: bool = False) -> str:
    """1..100 characters (0 allowed for optional names), no control characters."""
    problem = None
    if not isinstance(name, str):
        problem = "must be a string"
    elif not name.strip() and not (allow_empty and name == ""):
        problem = "must not be empty"
    elif len(name) > MAX_NAME:
        problem = f"must be at most {MAX_NAME} characters"
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        problem = "must not contain control characters"
    if problem:
        raise ValidationError(f"{field} {problem}", [FieldError(field, problem)])
    return name


def _device(row: sqlite3.Row) -> Device:
    return Device(id=row["id"], name=row["name"], created_ns=row["created_ns"],
                  last_input_ns=row["last_input_ns"])


def _token(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(prefix=row["prefix"], device_id=row["device_id"],
                     permission=row["permission"], created_ns=row["created_ns"],
                     expires_ns=row["expires_ns"], revoked_ns=row["revoked_ns"],
                     name=row["name"])


class SQLiteRegistry:
    """``Registry`` on one SQLite file. Safe to share between threads of one process and
    between processes (each connection waits up to ``busy_timeout`` for a writer)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a migration and
            # its user_version bump commit together.
            self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                       isolation_level=None,
                                       timeout=busy_timeout_ms / 1000)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open registry {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            with self._locked():
                self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

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

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RegistryError(
                    f"registry {self.path} has schema version {version}, newer than this "
                    f"program knows ({len(MIGRATIONS)}); upgrade devicedata")
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        with self._locked() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # devices

    def create_device(self, name: str) -> Device:
        check_name(name)
        device = Device(id=tokens.new_device_id(), name=name, created_ns=time.time_ns())
        with self._tx() as db:
            db.execute("INSERT INTO devices (id, name, created_ns) VALUES (?, ?, ?)",
                       (device.id, device.name, device.created_ns))
        return device

    def get_device(self, device_id: str) -> Device:
        with self._locked() as db:
            row = db.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None:
            raise NotFound(f"device {device_id!r} not found")
        return _device(row)

    def list_devices(self) -> list[Device]:
        with self._locked() as db:
            rows = db.execute("SELECT * FROM devices ORDER BY created_ns, id").fetchall()
        return [_device(r) for r in rows]

    def rename_device(self, device_id: str, name: str) -> Device:
        check_name(name)
        with self._tx() as db:
            if db.execute("UPDATE devices SET name = ? WHERE id = ?",
                          (name, device_id)).rowcount == 0:
                raise NotFound(f"device {device_id!r} not found")
        return self.get_device(device_id)

    def delete_device(self, device_id: str) -> None:
        """Remove the device and (by cascade) all its tokens. Its stored data is the
        caller's business: the registry does not know the store."""
        with self._tx() as db:
            if db.execute("DELETE FROM devices WHERE id = ?", (device_id,)).rowcount == 0:
                raise NotFound(f"device {device_id!r} not found")

    def touch(self, device_id: str, at_ns: int) -> None:
        """Record input at ``at_ns``; never moves ``last_input_ns`` backwards. An unknown
        device is ignored: it may have been deleted while its data was in flight."""
        with self._tx() as db:
            db.execute("UPDATE devices SET last_input_ns = max(coalesce(last_input_ns, ?), ?)"
                       " WHERE id = ?", (at_ns, at_ns, device_id))

    # tokens

    def create_token(self, device_id: str, permission: Permission,
                     expires_ns: int | None = None, name: str = "") -> IssuedToken:
        if permission not in PERMISSIONS:
            problem = "must be one of " + ", ".join(PERMISSIONS)
            raise ValidationError(f"permission {problem}", [FieldError("permission", problem)])
        check_name(name, allow_empty=True)
        now = time.time_ns()
        if expires_ns is not None and expires_ns <= now:
            problem = "must be in the future"
            raise ValidationError(f"expires {problem}", [FieldError("expires", problem)])
        token = tokens.new_token()  # via the module, so tests can fix the value
        info = TokenInfo(prefix=token_prefix(token), device_id=device_id,
                         permission=permission, created_ns=now, expires_ns=expires_ns,
                         name=name)
        # PBKDF2 is deliberately slow-ish: compute it before taking the write lock.
        mqtt = mosquitto_hash(token)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is None:
                raise NotFound(f"device {device_id!r} not found")
            db.execute(f"INSERT INTO tokens ({_TOKEN_COLUMNS}, mqtt_hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (token_hash(token), info.prefix, device_id, permission, name, now,
                        expires_ns, None, mqtt))
        return IssuedToken(token=token, info=info)

    def list_tokens(self, device_id: str) -> list[TokenInfo]:
        """Every token of the device, revoked and expired ones included, oldest first."""
        self.get_device(device_id)
        with self._locked() as db:
            rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE device_id = ? "
                              "ORDER BY created_ns, prefix", (device_id,)).fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_or_prefix: str) -> TokenInfo:
        """Revoke by full token, or by a prefix of MIN_PREFIX_LEN..PREFIX_LEN characters.

        A prefix matching several tokens is a ``Conflict`` unless exactly one of them is
        still unrevoked. Revoking a revoked token keeps its original ``revoked_ns``."""
        text = token_or_prefix.strip()
        now = time.time_ns()
        with self._tx() as db:
            row = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?",
                             (token_hash(text),)).fetchone()
            if row is None and MIN_PREFIX_LEN <= len(text) <= PREFIX_LEN:
                # substr, not LIKE: a user-typed '%' or '_' must not act as a wildcard.
                rows = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens "
                                  "WHERE substr(prefix, 1, ?) = ? ORDER BY created_ns",
                                  (len(text), text)).fetchall()
                unrevoked = [r for r in rows if r["revoked_ns"] is None]
                if len(rows) == 1:
                    row = rows[0]
                elif len(unrevoked) == 1:
                    row = unrevoked[0]
                elif rows:
                    listed = ", ".join(f"{r['prefix']} (device {r['device_id']})"
                                       for r in (unrevoked or rows)[:10])
                    raise Conflict(f"token prefix {text!r} matches {len(unrevoked or rows)} "
                                   f"tokens: {listed}; give more characters or the full "
                                   "token")
            if row is None:
                raise NotFound("no such token" if len(text) > PREFIX_LEN else
                               f"no token matches {text!r}")
            if row["revoked_ns"] is None:
                db.execute("UPDATE tokens SET revoked_ns = ? WHERE hash = ?", (now, row["hash"]))
                row = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?",
                                 (row["hash"],)).fetchone()
        return _token(row)

    def authenticate(self, token: str, now_ns: int | None = None) -> TokenInfo | None:
        """The token's info if it exists and is neither revoked nor expired, else None."""
        if not token or len(token) > 512:
            return None
        wanted = token_hash(token)
        with self._locked() as db:
            row = db.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?",
                             (wanted,)).fetchone()
        # The indexed look-up by hash is not constant-time, but it can only leak bits of a
        # SHA-256 of a 160-bit secret; the final comparison is constant-time regardless.
        if row is None or not hashes_equal(row["hash"], wanted):
            return None
        info = _token(row)
        return info if info.active(time.time_ns() if now_ns is None else now_ns) else None

    def broker_credentials(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """``(device_id, mqtt_hash)`` for every active ``write``/``full`` token, ordered by
        device id, then token creation time (oldest first; ties by hash).

        A device with several such tokens appears once per token. Mosquitto's
        ``password_file`` holds one hash per username, so the caller decides what to do
        with duplicates. Measured on Mosquitto 2.0.11: given several lines for one user, the
        broker silently keeps the LAST, so writing every pair in this order makes a
        device's newest token its MQTT password and the older ones HTTP-only.
        """
        now = time.time_ns() if now_ns is None else now_ns
        with self._locked() as db:
            rows = db.execute(
                "SELECT t.device_id, t.mqtt_hash FROM tokens t "
                "JOIN devices d ON d.id = t.device_id "
                "WHERE t.revoked_ns IS NULL AND (t.expires_ns IS NULL OR t.expires_ns > ?) "
                "AND t.permission IN ('write', 'full') "
                "ORDER BY t.device_id, t.created_ns, t.mqtt_hash", (now,)).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def ping(self) -> None:
        with self._locked() as db:
            db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteRegistry:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
