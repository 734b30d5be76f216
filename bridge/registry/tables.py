"""The SQL registry's tables: the migrations that build them, the cursor every query runs
on, and the one function that applies migrations. SQLite and PostgreSQL share this text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bridge.errors import RegistryError

# Append-only: entry N brings a registry from schema version N to N+1. Never edit a
# released entry; add a new one, so existing registries upgrade in place. ``{int}`` is the
# 64-bit integer type (nanosecond times overflow PostgreSQL's 32-bit INTEGER); SQLite's
# INTEGER is already 64-bit, and keeping that word there keeps its released text unchanged.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE devices (
            id            TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            created_ns    {int} NOT NULL,
            last_input_ns {int}
        )""",
        """CREATE TABLE tokens (
            hash       TEXT PRIMARY KEY,
            prefix     TEXT NOT NULL,
            device_id  TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            permission TEXT NOT NULL CHECK (permission IN ('read', 'write', 'full')),
            name       TEXT NOT NULL DEFAULT '',
            created_ns {int} NOT NULL,
            expires_ns {int},
            revoked_ns {int},
            mqtt_hash  TEXT NOT NULL
        )""",
        "CREATE INDEX tokens_device ON tokens(device_id)",
        "CREATE INDEX tokens_prefix ON tokens(prefix)",
    ),
    (
        # Bumped by every writer once its data is visible in InfluxDB; readers compare it
        # with the version a kept answer was read at (bridge/readcache/versions.py).
        "ALTER TABLE devices ADD COLUMN data_version {int} NOT NULL DEFAULT 0",
    ),
    (
        # 1 while some process keeps an answer read at the current version.
        "ALTER TABLE devices ADD COLUMN data_watched {int} NOT NULL DEFAULT 0",
    ),
    (
        # Our own broker users (each bridge and API process has one: the broker binds a
        # session to its username), so every process renders every one of them.
        """CREATE TABLE service_users (
            username   TEXT PRIMARY KEY,
            role       TEXT NOT NULL,
            created_ns {int} NOT NULL
        )""",
    ),
    (
        # TagoIO's serie_number on a device token (a LoRaWAN DevEUI, normalised): a network
        # server's uplinks reach the device whose unrevoked token carries it. The partial
        # index makes a serial name one token at a time, whatever the race.
        "ALTER TABLE tokens ADD COLUMN serial TEXT",
        "CREATE UNIQUE INDEX tokens_serial ON tokens(serial) "
        "WHERE serial IS NOT NULL AND revoked_ns IS NULL",
        # Network credentials: hashed like device tokens, in a table of their own so that
        # neither kind of token can ever be taken for the other.
        """CREATE TABLE network_tokens (
            hash       TEXT PRIMARY KEY,
            prefix     TEXT NOT NULL,
            name       TEXT NOT NULL,
            created_ns {int} NOT NULL,
            revoked_ns {int}
        )""",
        "CREATE INDEX network_tokens_prefix ON network_tokens(prefix)",
    ),
    (
        # Current values (bridge/registry/current.py): per device and variable the newest
        # point, the newest with a value and the newest with a location (time, slot and
        # its line of line protocol each), kept by every writer.
        """CREATE TABLE current_values (
            device_id     TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            variable      TEXT NOT NULL,
            item_time     {int},
            item_slot     {int},
            item_line     TEXT,
            value_time    {int},
            value_slot    {int},
            value_line    TEXT,
            location_time {int},
            location_slot {int},
            location_line TEXT,
            PRIMARY KEY (device_id, variable)
        )""",
        # 1 once the rows hold every variable's current values (built from InfluxDB
        # at the first read: data written before this table existed).
        "ALTER TABLE devices ADD COLUMN current_ready {int} NOT NULL DEFAULT 0",
    ),
]

Row = dict[str, Any]


class Cursor(Protocol):
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute a query; its rows by column name."""

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Execute once per parameter set (one call: the driver loops)."""


def migrate(cur: Cursor, current: int, record: Callable[[int], object], int_type: str,
            where: str) -> None:
    """Apply the migrations after ``current``, calling ``record`` after each; the caller
    holds the transaction (and whatever lock keeps other processes out meanwhile)."""
    if current > len(MIGRATIONS):
        raise RegistryError(
            f"registry {where} has schema version {current}, newer than this program "
            f"knows ({len(MIGRATIONS)}); upgrade devicedata")
    for number, statements in enumerate(MIGRATIONS[current:], start=current + 1):
        for statement in statements:
            cur.run(statement.format(int=int_type))
        record(number)
