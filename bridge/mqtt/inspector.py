"""An API process's broker connection for the inspector (``bridge.inspector.link.Link``):
it hears the leases (so this process's ``Tap`` knows whom to publish HTTP events for) and
the events (for its own ``Feed``), and publishes both. The bridge needs no such
connection: it subscribes to the leases on its own (``bridge.mqtt.runner``).

It logs in as a broker user of its own (the broker binds a session to its user name),
``devicedata-api-PORT-HOST``, registered in the registry with the ``api`` role, whose rules
(``bridge/registry/dynsec.py``) are what lets it near ``devicedata/inspect/#``; the session
ends with the connection. Without a broker the API works as before; the live view says the
broker is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

from bridge.errors import DeviceDataError
from bridge.inspector import events
from bridge.inspector.feed import Feed
from bridge.inspector.tap import Tap, lease_until
from bridge.mqtt.connection import MqttConnection
from bridge.mqtt.session import ConnectionOptions
from bridge.registry import broker_sync, dynsec
from bridge.registry.interface import Registry
from bridge.settings import Settings

log = logging.getLogger("devicedata.inspector")

CHORE_SECONDS = 2.0
STALE_LEASE_SECONDS = 600.0  # another watcher's lease this long over is cleared for good


class InspectorLink:
    def __init__(self, settings: Settings, process: str, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.username = f"devicedata-{process}-{socket.gethostname()[:40]}"
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
        """Returns at once: registering the user and connecting go on in the background
        (the API must not wait for the broker to start)."""
        self._tasks = [asyncio.create_task(self._connect(), name="inspector-link"),
                       asyncio.create_task(self._chores(), name="inspector-chores")]

    async def _connect(self) -> None:
        password = await asyncio.to_thread(self._register)
        options = ConnectionOptions(
            host=self.settings.mqtt_host, port=self.settings.mqtt_port,
            client_id=self.username, username=self.username, password=password,
            subscriptions=(events.WATCH_FILTER, events.EVENTS_FILTER),
            receive_maximum=100, session_expiry=0)
        conn = self.conn = MqttConnection(options, self._on_message)
        self.tap.publish = lambda topic, payload: conn.publish(topic, payload, qos=0)
        self.feed.publish_retained = lambda topic, payload: conn.publish(
            topic, payload, qos=1, retain=True)
        await conn.run(self._stopping)

    def _register(self) -> str:
        """This process's broker user: in the registry (role ``api``), then on the broker
        (the password file and the plugin's clients); its password, the one all our
        service users share."""
        try:
            self.registry.add_service_user(self.username, dynsec.API_ROLE)
            broker_sync.sync(self.settings, self.registry)
        except (DeviceDataError, OSError) as exc:  # a later sync (the bridge's) catches up
            log.warning("event=inspector_user_not_synced user=%s reason=%s", self.username,
                        exc)
        return broker_sync.bridge_password(self.settings)

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
