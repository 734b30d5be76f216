"""The MQTT topics of the device contract (SPEC section 4): where a device publishes its data,
in which payload format, and where it reads why a message was refused. Everything is under
``devices/{device id}/``; the broker lets a device publish to its own topics of this list
and read only its own errors topic. One list, used by the bridge's subscriptions, by
ingest to pick the format, and by the broker's per-device roles.
"""

from __future__ import annotations

PREFIX = "devices"
# Topic suffixes a device may publish to (MQTT filter syntax: "+" is one level).
PUBLISH_SUFFIXES = ("data", "data/+", "kv", "senml", "senml/cbor")
ERRORS_SUFFIX = "errors"


def device_topic(device_id: str, suffix: str) -> str:
    return f"{PREFIX}/{device_id}/{suffix}"


def errors_topic(device_id: str) -> str:
    return device_topic(device_id, ERRORS_SUFFIX)


def data_filters(shared_group: str = "") -> tuple[str, ...]:
    """What the bridge subscribes to: every device's publish topics, optionally in a
    shared group so several bridges split them."""
    filters = tuple(device_topic("+", suffix) for suffix in PUBLISH_SUFFIXES)
    if shared_group:
        return tuple(f"$share/{shared_group}/{f}" for f in filters)
    return filters


def split(topic: str) -> tuple[str, str] | None:
    """``(device id, suffix)`` of a topic under ``devices/{id}/``, else None."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]
