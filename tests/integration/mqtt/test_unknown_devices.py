"""Messages under ids the registry does not know, on a PostgreSQL registry: looking them up
must never make the other devices wait. The broker here lets anyone publish under any id
(as a misconfigured or clustered broker might), so a flood of random ids reaches the bridge.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bridge.registry import open_registry
from bridge.settings import Settings
from devicedata import procs
from devicedata.servers import InfluxServer
from support import postgres
from support.api import count_stored
from support.mqtt import BridgeProcess, DeviceClient, OpenBroker, wait_until


def stored(influx: InfluxServer, settings: Settings, device_id: str) -> int:
    """Counted by InfluxDB itself: the API would ask the (locked) registry first."""
    return count_stored(influx, settings.influx_db, device_id)


@pytest.fixture
def open_broker(tmp_path: Path) -> Iterator[OpenBroker]:
    broker = procs.start_on_free_port(lambda port: OpenBroker(tmp_path / "broker", port,
                                                              new_session=False))
    yield broker
    broker.stop()


def test_unknown_ids_do_not_stall_known_devices(
        stack_settings: Settings, influx: InfluxServer, open_broker: OpenBroker,
        tmp_path: Path) -> None:
    with postgres.scratch_database() as url:
        registry = open_registry(url)
        try:
            known = registry.create_device("known").id
        finally:
            registry.close()
        settings = stack_settings.replace(
            registry_url=url, mqtt_port=open_broker.port, broker_sync_seconds=0.0,
            mqtt_client_id=f"unknown-{secrets.token_hex(4)}")
        bridge = BridgeProcess(settings, tmp_path / "bridge.log").start()
        publisher = DeviceClient(settings, None, None)
        locker = psycopg.connect(url)
        try:
            assert publisher.accepted
            publisher.publish(f"devices/{known}/data", json.dumps({"variable": "t", "value": 0}))
            wait_until(lambda: stored(influx, settings, known) == 1, what="the first point")
            # Every registry query now waits until the lock goes: a look-up on the event
            # loop would stop the bridge altogether.
            locker.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
            for _ in range(200):
                publisher.publish(f"devices/{secrets.token_hex(12)}/data",
                                  json.dumps({"variable": "t", "value": 1}), qos=0)
            for i in range(1, 21):
                publisher.publish(f"devices/{known}/data",
                                  json.dumps({"variable": "t", "value": i}), qos=0)
            wait_until(lambda: stored(influx, settings, known) == 21, timeout=15,
                       what="the known device's points while the registry is locked")
            locker.close()  # releases the lock: the look-ups finish, the ids are refused
            wait_until(lambda: "unknown_device" in bridge.text() or "unknown device"
                       in bridge.text(), what="the unknown ids to be refused")
        finally:
            locker.close()
            publisher.close()
            code = bridge.stop()
        assert code == 0
