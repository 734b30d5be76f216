"""What only the PostgreSQL registry has: migrations recorded in ``schema_version`` under an
advisory lock, a connection pool, connection failures as ``RegistryError`` with the
password kept out. The behaviour every backend shares is in test_registry.py."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from bridge.errors import RegistryError
from bridge.registry import open_registry
from bridge.registry.postgres import PostgresRegistry
from bridge.registry.tables import MIGRATIONS
from support import postgres


@pytest.fixture
def url() -> Iterator[str]:
    with postgres.scratch_database() as url:
        yield url


def _applied(url: str) -> list[int]:
    with postgres.connect(url) as db:
        return [int(str(r[0])) for r in db.execute(
            "SELECT version FROM schema_version ORDER BY version").fetchall()]


def test_instances_starting_together_migrate_once(url: str) -> None:
    opened: list[PostgresRegistry] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresRegistry(url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [r.schema_version for r in opened] == [len(MIGRATIONS)] * 6
        assert _applied(url) == list(range(1, len(MIGRATIONS) + 1))
        dev = opened[0].create_device("d")
        assert opened[5].get_device(dev.id) == dev
    finally:
        for reg in opened:
            reg.close()


def test_reopening_keeps_data_and_version(url: str) -> None:
    with PostgresRegistry(url) as reg:
        dev = reg.create_device("d")
        issued = reg.create_token(dev.id, "full")
    for _ in range(2):
        with PostgresRegistry(url) as reg:
            assert reg.schema_version == len(MIGRATIONS)
            assert reg.get_device(dev.id) == dev
            assert reg.authenticate(issued.token) is not None
    assert _applied(url) == list(range(1, len(MIGRATIONS) + 1))


def test_refuses_a_newer_schema(url: str) -> None:
    PostgresRegistry(url).close()
    with postgres.connect(url) as db:
        db.execute("INSERT INTO schema_version VALUES (%s, 0)", (len(MIGRATIONS) + 1,))
    with pytest.raises(RegistryError, match="newer"):
        PostgresRegistry(url)


def test_stores_only_hashes(url: str) -> None:
    with PostgresRegistry(url) as reg:
        dev = reg.create_device("d")
        issued = [reg.create_token(dev.id, p) for p in ("read", "write", "full")]
        reg.revoke_token(issued[0].token)
    with postgres.connect(url) as db:
        dump = repr(db.execute("SELECT * FROM tokens").fetchall())
    for item in issued:
        assert item.token not in dump and item.token[:12] not in dump
        assert item.info.prefix in dump


def test_closed_registry_refuses(url: str) -> None:
    reg = PostgresRegistry(url)
    reg.close()
    with pytest.raises(RegistryError, match="closed"):
        reg.ping()


def test_more_threads_than_connections(url: str) -> None:
    with PostgresRegistry(url, pool_size=2) as reg:
        dev = reg.create_device("d")
        issued = reg.create_token(dev.id, "write")
        results: list[bool] = []

        def work() -> None:
            for _ in range(20):
                results.append(reg.authenticate(issued.token) is not None)

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 200
        assert len(reg._idle) <= 2


def test_recovers_when_the_server_drops_its_connections(url: str) -> None:
    with PostgresRegistry(url) as reg:
        dev = reg.create_device("d")
        with postgres.admin() as db:
            killed = db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = 'devicedata'",
                (url.rsplit("/", 1)[1],)).fetchall()
        assert killed
        with contextlib.suppress(RegistryError):  # the first call may meet a dead connection
            reg.get_device(dev.id)
        # ...but not the second: the pool dropped all its idle connections after the first.
        assert reg.get_device(dev.id) == dev


@pytest.mark.parametrize("bad", [
    "postgresql://postgres:s3cret@127.0.0.1:1/db",
    "postgresql://postgres:s3cr%65t@127.0.0.1:5432/devicedata_no_such_database",
    "postgresql://postgres@127.0.0.1:1/db?password=s3cret",
    "postgresql://postgres:s3cret@127.0.0.1:5432/db?no_such_option=1",
])
def test_connection_failures_never_show_the_password(bad: str) -> None:
    with pytest.raises((RegistryError, ValueError)) as err:
        open_registry(bad)
    assert "s3cret" not in str(err.value) and "s3cr%65t" not in str(err.value)
    assert err.value.__cause__ is None  # nothing chained that could carry the URL


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_open_registry_spellings(url: str, scheme: str) -> None:
    reg = open_registry(scheme + url.removeprefix("postgresql"))
    try:
        assert isinstance(reg, PostgresRegistry)
        assert "@" in reg.where and reg.where.endswith(url.rsplit("/", 1)[1])
        reg.ping()
    finally:
        reg.close()
