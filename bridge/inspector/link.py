"""What a face needs from its process's broker connection for the inspector. The API
holds one through this interface only; ``bridge.mqtt.inspector.InspectorLink`` is the
implementation, handed to ``api.app.create_app`` by whoever starts the API (the HTTP face
does not import the MQTT package)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bridge.inspector.feed import Feed
from bridge.inspector.tap import Tap
from bridge.registry.interface import Registry
from bridge.settings import Settings


class Link(Protocol):
    tap: Tap  # whom to publish for, and publishing
    feed: Feed  # what this process's watchers see
    watcher: str  # this process's name in lease topics

    @property
    def online(self) -> bool:
        """Connected to the broker."""

    def confirmed(self, device_id: str) -> bool:
        """This process's watch of the device has come back from the broker."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...


# (settings, process name, the registry it registers its broker user in) -> a link
LinkFactory = Callable[[Settings, str, Registry], Link]
