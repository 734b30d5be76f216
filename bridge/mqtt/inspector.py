"""An API process's broker connection for the inspector (``bridge.inspector.link.Link``):
it hears the leases (so this process's ``Tap`` knows whom to publish HTTP events for) and
the events (for its own ``Feed``), and publishes both. The bridge needs no such
connection: it subscribes to the leases on its own (``bridge.mqtt.runner``).

It logs in as the bridge's broker user (the only user the ACL lets near
``devicedata/inspect/#``) with a client id of its own and a session that ends with the
connection. Without a broker the API works as before; the live view says it is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from bridge.inspector import events
from bridge.inspector.feed import Feed
from bridge.inspector.tap import Tap, lease_until
from bridge.mqtt.connection import ConnectionOptions, MqttConnection
from bridge.registry import broker_sync
from bridge.settings import Settings

log = logging.getLogger("devicedata.inspector")

CHORE_SECONDS = 2.0
STALE_LEASE_SECONDS = 600.0  # another watcher's lease this long over is cleared for good


class InspectorLink:
    def __init__(self, settings: Settings, process: str) -> None:
        self.settings = settings
        self.watcher = f"{process}-{os.urandom(4).hex()}"
        self.tap = Tap(process)
        self.feed = Feed(self.watcher)
        self.conn: MqttConnection | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()

    @property
    def online(self) -> bool:
        return self.conn is not None and self.conn.connected.is_set()

    def confirmed(self, device_id: str) -> bool:
        """This process's lease came back from the broker: every process has it too."""
        return self.tap.watching(device_id)

    async def start(self) -> None:
        password = await asyncio.to_thread(broker_sync.bridge_password, self.settings)
        options = ConnectionOptions(
            host=self.settings.mqtt_host, port=self.settings.mqtt_port,
            client_id=f"devicedata-{self.watcher}", username=self.settings.mqtt_username,
            password=password, subscriptions=(events.WATCH_FILTER, events.EVENTS_FILTER),
            receive_maximum=100, session_expiry=0)
        conn = self.conn = MqttConnection(options, self._on_message)
        self.tap.publish = lambda topic, payload: conn.publish(topic, payload, qos=0)
        self.feed.publish_retained = lambda topic, payload: conn.publish(
            topic, payload, qos=1, retain=True)
        self._tasks = [asyncio.create_task(conn.run(self._stopping)),
                       asyncio.create_task(self._chores())]

    async def close(self) -> None:
        for device_id in self.feed.watched():
            self.feed.unwatch(device_id)  # clear our leases while still connected
        self._stopping.set()
        if self.conn is not None:
            await self.conn.disconnect()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_message(self, message: Any) -> None:
        topic: str = message.topic
        payload: bytes = message.payload
        device_id = events.device_of_events(topic)
        if device_id is not None:
            event = events.decode(payload)
            if event is not None and event["device"] == device_id:
                self.feed.add(device_id, event)
        elif self.tap.take(topic, payload):
            self._clear_if_stale(topic, payload)
        if message.qos and self.conn is not None:
            self.conn.ack(message.mid, message.qos, self.conn.generation)

    def _clear_if_stale(self, topic: str, payload: bytes) -> None:
        """A watcher that died keeps its retained lease on the broker; any API process
        that sees it long run out clears it."""
        until = lease_until(payload)
        if until is not None and until < time.time() - STALE_LEASE_SECONDS and self.conn:
            self.conn.publish(topic, b"", qos=1, retain=True)

    async def _chores(self) -> None:
        generation = 0
        while True:
            await asyncio.sleep(CHORE_SECONDS)
            self.feed.expire()
            conn = self.conn
            if conn is not None and conn.connected.is_set() and conn.generation != generation:
                generation = conn.generation
                self.feed.renew()
