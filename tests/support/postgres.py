"""Throwaway PostgreSQL databases for tests: each gets a unique name, is created on the
server named by ``TEST_POSTGRES_URL`` (default: the local one, user postgres, trust auth)
and is dropped afterwards, so a test never touches anybody else's database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def url_for(database: str) -> str:
    """``ADMIN_URL`` pointing at another database on the same server."""
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + database))


def admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {urlsplit(ADMIN_URL).netloc} ({exc}); "
                    "start one or point TEST_POSTGRES_URL at one", pytrace=False)


def database_name(prefix: str = "devicedata_test") -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


@contextmanager
def scratch_database(prefix: str = "devicedata_test") -> Iterator[str]:
    """A new empty database for the duration of the block; yields its URL."""
    name = database_name(prefix)
    with admin() as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_for(name)
    finally:
        with admin() as db:
            # FORCE: connections a killed child process left behind must not keep it alive.
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)
