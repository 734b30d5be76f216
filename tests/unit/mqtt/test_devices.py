"""KnownDevices in front of a real SQLite registry: a publisher of unknown ids costs the
registry one look-up per id per TTL, however often and however concurrently it sends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bridge.mqtt.devices import KnownDevices
from bridge.registry.sqlite import SQLiteRegistry


async def test_a_miss_is_remembered_for_the_ttl(tmp_path: Path) -> None:
    registry = SQLiteRegistry(tmp_path / "r.sqlite3")
    try:
        devices = KnownDevices(registry, ttl=0.5)
        assert devices.known("0" * 24) is None
        assert await devices.lookup("0" * 24) is False
        for _ in range(1000):
            assert devices.known("0" * 24) is False  # from memory
        assert devices.lookups == 1
        created = registry.create_device("late")
        assert devices.known(created.id) is None
        assert await devices.lookup(created.id) is True
        assert devices.known(created.id) is True and devices.lookups == 2
        time.sleep(0.5)
        assert devices.known("0" * 24) is None  # the miss expired: asked again
    finally:
        registry.close()


async def test_concurrent_messages_of_one_unknown_id_share_one_lookup(tmp_path: Path) -> None:
    registry = SQLiteRegistry(tmp_path / "r.sqlite3")
    try:
        devices = KnownDevices(registry, ttl=60)
        answers = await asyncio.gather(*(devices.lookup("f" * 24) for _ in range(200)))
        assert answers == [False] * 200 and devices.lookups == 1
        ids = [f"{i:024x}" for i in range(50)]
        assert await asyncio.gather(*(devices.lookup(i) for i in ids)) == [False] * 50
        assert devices.lookups == 51  # one per id
    finally:
        registry.close()
