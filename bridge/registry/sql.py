"""What the SQL registry backends share: name validation, row mapping and every query (the
tables themselves are built in ``tables.py``). A backend (``sqlite.py``, ``postgres.py``) only says
how to reach its database: ``_read`` and ``_write`` hand out a ``Cursor`` outside and
inside a transaction.

The SQL here is the common subset of SQLite and PostgreSQL, written with ``?``
placeholders (the PostgreSQL backend rewrites them). That is why ``touch`` uses a guarded
UPDATE rather than SQLite's two-argument ``max()``, and why inserts that depend on another
row use ``INSERT ... SELECT ... WHERE EXISTS``: one statement, so no other transaction can
slip in between a check and a write, whatever the isolation level.
"""

from __future__ import annotations

import time
import unicodedata
from contextlib import AbstractContextManager
from typing import Self

from bridge.errors import Conflict, FieldError, NotFound, ValidationError
from bridge.registry import tokens
from bridge.registry.current import CurrentValueQueries
from bridge.registry.interface import PERMISSIONS, Device, IssuedToken, Permission, TokenInfo
from bridge.registry.networks import (
    NetworkQueries,
    check_serial,
    normalise_serial,
    refuse_taken,
)
from bridge.registry.tables import Cursor, Row
from bridge.registry.tokens import (
    MIN_PREFIX_LEN,
    PREFIX_LEN,
    hashes_equal,
    mosquitto_hash,
    token_hash,
)
from bridge.registry.versions import DataVersionQueries

MAX_NAME = 100
MAX_TOKEN_LEN = 512
_TOKEN_COLUMNS = ("hash, prefix, device_id, permission, name, created_ns, expires_ns, revoked_ns, "
                  "serial")
_TOKEN_BY_HASH = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?"

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


def _device(row: Row) -> Device:
    return Device(id=row["id"], name=row["name"], created_ns=row["created_ns"],
                  last_input_ns=row["last_input_ns"])


def _token(row: Row) -> TokenInfo:
    return TokenInfo(prefix=row["prefix"], device_id=row["device_id"],
                     permission=row["permission"], created_ns=row["created_ns"],
                     expires_ns=row["expires_ns"], revoked_ns=row["revoked_ns"],
                     name=row["name"], serial=row["serial"])


def _not_found(device_id: str) -> NotFound:
    return NotFound(f"device {device_id!r} not found")


class SQLRegistry(DataVersionQueries, CurrentValueQueries, NetworkQueries):
    """Every ``Registry`` method, on whatever ``_read``/``_write`` connect to."""

    _check_name = staticmethod(check_name)

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write_unsynced(self) -> AbstractContextManager[Cursor]:
        """A transaction that may be lost in a power failure (no fsync at commit): for
        data versions (watch, bump), which need no fsync: a lost bump only lets a kept
        answer live until its max age."""
        return self._write()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # devices

    def create_device(self, name: str) -> Device:
        check_name(name)
        device = Device(id=tokens.new_device_id(), name=name, created_ns=time.time_ns())
        with self._write() as cur:
            cur.run("INSERT INTO devices (id, name, created_ns) VALUES (?, ?, ?)",
                    (device.id, device.name, device.created_ns))
        return device

    def get_device(self, device_id: str) -> Device:
        with self._read() as cur:
            rows = cur.rows("SELECT * FROM devices WHERE id = ?", (device_id,))
        if not rows:
            raise _not_found(device_id)
        return _device(rows[0])

    def list_devices(self) -> list[Device]:
        with self._read() as cur:
            rows = cur.rows("SELECT * FROM devices ORDER BY created_ns, id")
        return [_device(r) for r in rows]

    def rename_device(self, device_id: str, name: str) -> Device:
        check_name(name)
        with self._write() as cur:
            if cur.run("UPDATE devices SET name = ? WHERE id = ?", (name, device_id)) == 0:
                raise _not_found(device_id)
        return self.get_device(device_id)

    def delete_device(self, device_id: str) -> None:
        """Remove the device and (by cascade) all its tokens. Its stored data is the
        caller's business: the registry does not know the store."""
        with self._write() as cur:
            if cur.run("DELETE FROM devices WHERE id = ?", (device_id,)) == 0:
                raise _not_found(device_id)

    def touch(self, device_id: str, at_ns: int) -> None:
        """Record input at ``at_ns``; never moves ``last_input_ns`` backwards. An unknown
        device is ignored: it may have been deleted while its data was in flight."""
        with self._write() as cur:
            cur.run("UPDATE devices SET last_input_ns = ? WHERE id = ? "
                    "AND (last_input_ns IS NULL OR last_input_ns < ?)",
                    (at_ns, device_id, at_ns))

    # tokens

    def create_token(self, device_id: str, permission: Permission,
                     expires_ns: int | None = None, name: str = "",
                     serial: str | None = None) -> IssuedToken:
        """A new token; with ``serial`` (normalised) it carries that serial number, which
        no other unrevoked token may carry, and it must be able to write (uplinks are
        written on its behalf)."""
        if permission not in PERMISSIONS:
            problem = "must be one of " + ", ".join(PERMISSIONS)
            raise ValidationError(f"permission {problem}", [FieldError("permission", problem)])
        check_name(name, allow_empty=True)
        serial = check_serial(serial, permission)
        now = time.time_ns()
        if expires_ns is not None and expires_ns <= now:
            problem = "must be in the future"
            raise ValidationError(f"expires {problem}", [FieldError("expires", problem)])
        token = tokens.new_token()  # via the module, so tests can fix the value
        info = TokenInfo(prefix=tokens.token_prefix(token), device_id=device_id,
                         permission=permission, created_ns=now, expires_ns=expires_ns,
                         name=name, serial=serial)
        # PBKDF2 is deliberately slow-ish: compute it before taking the write lock.
        mqtt = mosquitto_hash(token)
        with self._write() as cur:
            if serial is not None:
                refuse_taken(cur, serial)
            inserted = cur.run(
                f"INSERT INTO tokens ({_TOKEN_COLUMNS}, mqtt_hash) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM devices WHERE id = ?)",
                (token_hash(token), info.prefix, device_id, permission, name, now,
                 expires_ns, None, serial, mqtt, device_id))
            if inserted == 0:
                raise _not_found(device_id)
        return IssuedToken(token=token, info=info)

    def list_tokens(self, device_id: str) -> list[TokenInfo]:
        """Every token of the device, revoked and expired ones included, oldest first."""
        self.get_device(device_id)
        with self._read() as cur:
            rows = cur.rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE device_id = ? "
                            "ORDER BY created_ns, prefix", (device_id,))
        return [_token(r) for r in rows]

    def revoke_token(self, token_or_prefix: str) -> TokenInfo:
        """Revoke by full token, or by a prefix of MIN_PREFIX_LEN..PREFIX_LEN characters.

        A prefix matching several tokens is a ``Conflict`` unless exactly one of them is
        still unrevoked. Revoking a revoked token keeps its original ``revoked_ns``."""
        text = token_or_prefix.strip()
        now = time.time_ns()
        with self._write() as cur:
            rows = cur.rows(_TOKEN_BY_HASH, (token_hash(text),))
            row = rows[0] if rows else None
            # No NUL: PostgreSQL text cannot hold one, and no token contains one.
            if row is None and MIN_PREFIX_LEN <= len(text) <= PREFIX_LEN and "\0" not in text:
                # substr, not LIKE: a user-typed '%' or '_' must not act as a wildcard.
                row = _one_match(text, cur.rows(
                    f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE substr(prefix, 1, ?) = ? "
                    "ORDER BY created_ns", (len(text), text)))
            if row is None:
                raise NotFound("no such token" if len(text) > PREFIX_LEN else
                               f"no token matches {text!r}")
            if row["revoked_ns"] is None:
                # The IS NULL guard keeps the first revocation's time when two race.
                cur.run("UPDATE tokens SET revoked_ns = ? WHERE hash = ? AND revoked_ns IS NULL",
                        (now, row["hash"]))
                row = cur.rows(_TOKEN_BY_HASH, (row["hash"],))[0]
        return _token(row)

    def authenticate(self, token: str, now_ns: int | None = None) -> TokenInfo | None:
        """The token's info if it exists and is neither revoked nor expired, else None."""
        if not token or len(token) > MAX_TOKEN_LEN:
            return None
        wanted = token_hash(token)
        with self._read() as cur:
            rows = cur.rows(_TOKEN_BY_HASH, (wanted,))
        # The indexed look-up by hash is not constant-time, but it can only leak bits of a
        # SHA-256 of a 160-bit secret; the final comparison is constant-time regardless.
        if not rows or not hashes_equal(rows[0]["hash"], wanted):
            return None
        info = _token(rows[0])
        return info if info.active(time.time_ns() if now_ns is None else now_ns) else None

    def token_for_serial(self, serial: str, now_ns: int | None = None) -> TokenInfo | None:
        """The active (unrevoked, unexpired) token carrying ``serial``, else None.
        ``serial`` is normalised first (ValidationError if it cannot be a serial)."""
        wanted = normalise_serial(serial)
        with self._read() as cur:
            rows = cur.rows(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE serial = ? "
                            "AND revoked_ns IS NULL", (wanted,))
        info = _token(rows[0]) if rows else None
        now = time.time_ns() if now_ns is None else now_ns
        return info if info is not None and info.active(now) else None

    def broker_credentials(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """``(device_id, mqtt_hash)`` for every active ``write``/``full`` token, ordered by
        device id, then token creation time (oldest first; ties by hash).

        A device with several such tokens appears once per token. Mosquitto's
        ``password_file`` holds one hash per username, so the caller decides what to do
        with duplicates. Measured on Mosquitto 2.0.11: given several lines for one user, the
        broker silently keeps the LAST, so writing every pair in this order makes a
        device's newest token its MQTT password and the older ones HTTP-only. Tokens with a
        serial number (a LoRaWAN network server's, docs/formats.md) come first: giving a
        device one must not change the password its own MQTT connection uses.
        """
        now = time.time_ns() if now_ns is None else now_ns
        with self._read() as cur:
            rows = cur.rows(
                "SELECT t.device_id, t.mqtt_hash FROM tokens t "
                "JOIN devices d ON d.id = t.device_id "
                "WHERE t.revoked_ns IS NULL AND (t.expires_ns IS NULL OR t.expires_ns > ?) "
                "AND t.permission IN ('write', 'full') "
                "ORDER BY t.device_id, CASE WHEN t.serial IS NULL THEN 1 ELSE 0 END, "
                "t.created_ns, t.mqtt_hash", (now,))
        return [(str(r["device_id"]), str(r["mqtt_hash"])) for r in rows]

    def add_service_user(self, username: str, role: str) -> None:
        """Record one of our own broker users (idempotent; the newest role wins)."""
        check_name(username, field="username")
        with self._write() as cur:
            cur.run("INSERT INTO service_users (username, role, created_ns) VALUES (?, ?, ?) "
                    "ON CONFLICT (username) DO UPDATE SET role = excluded.role",
                    (username, role, time.time_ns()))

    def service_users(self) -> list[tuple[str, str]]:
        """``(username, role)`` of every broker user of ours, by name."""
        with self._read() as cur:
            rows = cur.rows("SELECT username, role FROM service_users ORDER BY username")
        return [(str(r["username"]), str(r["role"])) for r in rows]

    def ping(self) -> None:
        with self._read() as cur:
            cur.rows("SELECT 1 AS one")


def _one_match(text: str, rows: list[Row]) -> Row | None:
    """The token a prefix names: the only match, or the only unrevoked one."""
    unrevoked = [r for r in rows if r["revoked_ns"] is None]
    if len(rows) == 1:
        return rows[0]
    if len(unrevoked) == 1:
        return unrevoked[0]
    if not rows:
        return None
    listed = ", ".join(f"{r['prefix']} (device {r['device_id']})"
                       for r in (unrevoked or rows)[:10])
    raise Conflict(f"token prefix {text!r} matches {len(unrevoked or rows)} tokens: "
                   f"{listed}; give more characters or the full token")
