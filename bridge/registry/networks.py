"""Serial numbers and network credentials (TagoIO's Network integrations).

A device token may carry a serial number (``serie_number``; for LoRaWAN, the DevEUI). A
network credential is a token of its own kind, kept in its own table and hashed like a
device token: it can resolve a serial to the device whose token carries it and post that
device's uplinks, never read data, never act as a device token, never log in to the broker.
"""

from __future__ import annotations

import re
import secrets
import time
from contextlib import AbstractContextManager

from bridge.errors import Conflict, FieldError, NotFound, ValidationError
from bridge.registry.interface import IssuedNetwork, NetworkInfo
from bridge.registry.tables import Cursor, Row
from bridge.registry.tokens import TOKEN_BYTES, hashes_equal, token_hash

MAX_SERIAL = 64
NETWORK_TOKEN_MARK = "net_"  # tells a network token from a device token at a glance
NETWORK_PREFIX_LEN = len(NETWORK_TOKEN_MARK) + 8
MIN_NETWORK_PREFIX_LEN = len(NETWORK_TOKEN_MARK) + 6
MAX_NETWORK_TOKEN_LEN = 512
SERIAL_FIELD = "serie_number"

# An EUI-64 as people write it: 16 hex digits, bare or in pairs split by '-' or ':'.
_EUI64 = re.compile(r"[0-9A-Fa-f]{2}(?:[-:]?[0-9A-Fa-f]{2}){7}", re.ASCII)
# Any other serial: letters, digits and . _ : - (a serial lands in URLs and log lines).
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*", re.ASCII)
_COLUMNS = "hash, prefix, name, created_ns, revoked_ns"
_BY_HASH = f"SELECT {_COLUMNS} FROM network_tokens WHERE hash = ?"


def normalise_serial(text: object, *, field: str = SERIAL_FIELD) -> str:
    """The stored form of a serial number: compared case-insensitively, so lowercased; an
    EUI-64 in any usual spelling (``70-B3-D5-7E-D0-00-00-00``) becomes 16 hex digits.

    Raises ValidationError naming ``field`` for anything else than 1..64 letters, digits
    and ``. _ : -`` (starting with a letter or digit)."""
    problem = None
    if not isinstance(text, str):
        problem = "must be a string"
    else:
        serial = text.strip()
        if _EUI64.fullmatch(serial):
            return serial.replace("-", "").replace(":", "").lower()
        if not serial:
            problem = "must not be empty"
        elif len(serial) > MAX_SERIAL:
            problem = f"must be at most {MAX_SERIAL} characters"
        elif not _SERIAL.fullmatch(serial):
            problem = ("must be a DevEUI (16 hex digits) or letters, digits and . _ : - "
                       "starting with a letter or digit")
        else:
            return serial.lower()
    raise ValidationError(f"{field} {problem}", [FieldError(field, problem)])


def check_serial(serial: str | None, permission: str) -> str | None:
    """``serial`` normalised, for a new token of ``permission``: a token carrying a serial
    must be able to write, since uplinks are written on its behalf."""
    if serial is None:
        return None
    serial = normalise_serial(serial)
    if permission == "read":
        problem = "needs a write or full token: uplinks are written on its behalf"
        raise ValidationError(f"{SERIAL_FIELD} {problem}", [FieldError(SERIAL_FIELD, problem)])
    return serial


def refuse_taken(cur: Cursor, serial: str) -> None:
    """Conflict when an unrevoked token carries ``serial`` (inside the inserting
    transaction; the unique index ``tokens_serial`` settles a race between two)."""
    rows = cur.rows("SELECT prefix, device_id FROM tokens WHERE serial = ? "
                    "AND revoked_ns IS NULL", (serial,))
    if rows:
        raise Conflict(f"{SERIAL_FIELD} {serial} is carried by token {rows[0]['prefix']} of "
                       f"device {rows[0]['device_id']}; revoke that token first")


def new_network_token() -> str:
    """``net_`` and 40 hex characters (160 random bits)."""
    return NETWORK_TOKEN_MARK + secrets.token_hex(TOKEN_BYTES)


def _network(row: Row) -> NetworkInfo:
    return NetworkInfo(prefix=row["prefix"], name=row["name"], created_ns=row["created_ns"],
                       revoked_ns=row["revoked_ns"])


class NetworkQueries:
    """Mixed into ``SQLRegistry``, which provides ``_read`` and ``_write``."""

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _check_name(self, name: str) -> str:
        raise NotImplementedError

    def create_network(self, name: str) -> IssuedNetwork:
        self._check_name(name)
        token = new_network_token()
        info = NetworkInfo(prefix=token[:NETWORK_PREFIX_LEN], name=name,
                           created_ns=time.time_ns())
        with self._write() as cur:
            cur.run(f"INSERT INTO network_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    (token_hash(token), info.prefix, name, info.created_ns, None))
        return IssuedNetwork(token, info)

    def list_networks(self) -> list[NetworkInfo]:
        """Every network credential, revoked ones included, oldest first."""
        with self._read() as cur:
            rows = cur.rows(f"SELECT {_COLUMNS} FROM network_tokens "
                            "ORDER BY created_ns, prefix")
        return [_network(r) for r in rows]

    def revoke_network(self, token_or_prefix: str) -> NetworkInfo:
        """Revoke by full token or by a prefix of 10..12 characters (``net_`` and 6..8
        more); a prefix matching several credentials is a Conflict unless exactly one of
        them is unrevoked. Revoking twice keeps the first revocation's time."""
        text = token_or_prefix.strip()
        with self._write() as cur:
            rows = cur.rows(_BY_HASH, (token_hash(text),))
            if (not rows and MIN_NETWORK_PREFIX_LEN <= len(text) <= NETWORK_PREFIX_LEN
                    and "\0" not in text):
                matches = cur.rows(f"SELECT {_COLUMNS} FROM network_tokens "
                                   "WHERE substr(prefix, 1, ?) = ? ORDER BY created_ns",
                                   (len(text), text))
                unrevoked = [r for r in matches if r["revoked_ns"] is None]
                rows = matches if len(matches) == 1 else unrevoked
                if len(rows) > 1 or (not rows and matches):
                    listed = ", ".join(f"{r['prefix']} ({r['name']})"
                                       for r in (unrevoked or matches)[:10])
                    raise Conflict(f"network token prefix {text!r} matches "
                                   f"{len(unrevoked or matches)} tokens: {listed}; give "
                                   "more characters or the full token")
            if not rows:
                raise NotFound("no such network token" if len(text) > NETWORK_PREFIX_LEN
                               else f"no network token matches {text!r}")
            row = rows[0]
            if row["revoked_ns"] is None:
                cur.run("UPDATE network_tokens SET revoked_ns = ? "
                        "WHERE hash = ? AND revoked_ns IS NULL", (time.time_ns(), row["hash"]))
                row = cur.rows(_BY_HASH, (row["hash"],))[0]
        return _network(row)

    def authenticate_network(self, token: str,
                             now_ns: int | None = None) -> NetworkInfo | None:
        """The credential's info if the token is a network token and not revoked."""
        if not token.startswith(NETWORK_TOKEN_MARK) or len(token) > MAX_NETWORK_TOKEN_LEN:
            return None
        wanted = token_hash(token)
        with self._read() as cur:
            rows = cur.rows(_BY_HASH, (wanted,))
        if not rows or not hashes_equal(rows[0]["hash"], wanted):
            return None
        info = _network(rows[0])
        return info if info.active(time.time_ns() if now_ns is None else now_ns) else None
