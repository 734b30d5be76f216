"""Session-wide real servers for the whole suite: our own InfluxDB and Mosquitto.

Fixtures (all session-scoped; each starts once per test run, on free ports, in a private
temporary directory, and is stopped at the end even when tests fail):

- ``influx``: ``devicedata.servers.InfluxServer`` with ``.url``, ``.port``, ``.pid``,
  ``.query(q, db=None) -> dict``, ``.create_database(name)``, ``.stop()``, ``.start()``
  (restarts on the same port and data, for outage tests) and ``.kill()`` (SIGKILL).
- ``mosquitto``: ``devicedata.servers.MosquittoServer`` with ``.host``, ``.port``, ``.dir``
  (its password and ACL files), ``.pid_file``, ``.pid``, ``.hup()``, ``.stop()``,
  ``.start()`` (same port, persistence kept) and ``.kill()``.
- ``stack_settings``: a ``Settings`` pointing at both, with a fresh data dir (registry),
  its own InfluxDB database, ``mosquitto_dir``/``mosquitto_pid_file`` set so
  ``bridge.registry.broker_sync.sync`` reaches the test broker, the bridge's broker user in place,
  and a free ``http_port``. Share it; create your own devices and topics per test.

The servers run in pytest's process group (not a new session), so killing the test run's
group takes them along too.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from bridge.registry import broker_sync, open_registry
from bridge.settings import Settings
from devicedata import procs, servers
from support.mqtt import BridgeProcess

# The API fixtures (``api``, ``client``, ``make_api``...) live in their own module.
pytest_plugins = ["support.api"]

S = TypeVar("S", bound=servers.Server)
_started: list[servers.Server] = []


def _stop_all() -> None:
    for server in _started:
        server.terminate()  # all at once: each takes 1-2 s to shut down cleanly
    for server in _started:
        server.wait(10.0)


atexit.register(_stop_all)  # covers an interrupted run whose finalizers did not get to run


def _start(make: Callable[[int], S], binary: str, package: str) -> S:
    if procs.find_binary(binary) is None:
        pytest.fail(f"`{binary}` is not installed: apt-get install -y {package} "
                    "(or run the suite with `make test`, which does)", pytrace=False)
    return procs.start_on_free_port(make, made=_started.append)


@pytest.fixture(scope="session", autouse=True)
def no_bridge_left_behind() -> Iterator[None]:
    yield
    BridgeProcess.kill_leftovers()


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    # Not tmp_path_factory: its 0700 parents would keep Mosquitto, which drops to user
    # `mosquitto` when started as root, away from its own password file.
    path = Path(tempfile.mkdtemp(prefix="devicedata-test-"))
    path.chmod(0o755)
    yield path
    _stop_all()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def influx(servers_dir: Path) -> Iterator[servers.InfluxServer]:
    server = _start(lambda port: servers.InfluxServer(servers_dir / "influxdb", port,
                                                    new_session=False),
                    "influxd", "influxdb")
    yield server
    server.terminate()  # waited for by servers_dir, together with the others


@pytest.fixture(scope="session")
def mosquitto(servers_dir: Path) -> Iterator[servers.MosquittoServer]:
    server = _start(lambda port: servers.MosquittoServer(servers_dir / "mosquitto", port,
                                                       new_session=False),
                    "mosquitto", "mosquitto")
    yield server
    server.terminate()


@pytest.fixture(scope="session")
def stack_settings(influx: servers.InfluxServer, mosquitto: servers.MosquittoServer,
                   servers_dir: Path) -> Settings:
    data_dir = servers_dir / "data"
    data_dir.mkdir()
    # Built directly, not from_env: a developer's DEVICEDATA_* variables must not leak in.
    settings = Settings(
        data_dir=data_dir,
        http_port=procs.free_port(),
        influx_url=influx.url,
        influx_db=f"devicedata_test_{uuid.uuid4().hex[:12]}",
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
        mosquitto_dir=mosquitto.dir,
        mosquitto_pid_file=mosquitto.pid_file,
        bridge_metrics_port=0,  # many bridges run at once in tests; one test sets its own
    )
    influx.create_database(settings.influx_db)
    registry = open_registry(settings.registry_location)
    try:
        broker_sync.sync(settings, registry)
    finally:
        registry.close()
    return settings
