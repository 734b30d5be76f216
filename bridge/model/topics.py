"""A device's MQTT topics, defined once: the bridge's subscriptions, the topic parsing of
ingest and the broker ACL (``bridge/registry/acl.template``) all come from here.

Under ``devices/{id}/`` a device publishes data in one of the payload formats
(``bridge.model.formats``) and reads its own ``errors``:

| topic filter under ``devices/{id}/`` | payload |
|---|---|
| ``data`` | TagoIO JSON |
| ``data/+`` | one raw value of variable ``+`` (one topic level: no ``/`` in it) |
| ``kv`` | key-value JSON |
| ``senml`` | a SenML JSON pack |
| ``senml/cbor`` | a SenML CBOR pack |

No topic matches two of these filters: overlapping subscriptions would have the broker
deliver a message twice.
"""

from __future__ import annotations

from bridge.model.formats import PayloadFormat, format_for_topic

ROOT = "devices"
# Relative to devices/{id}/: what a device may publish to, what it may read.
DEVICE_PUBLISH_SUFFIXES = ("data", "data/+", "kv", "senml", "senml/cbor")
ERRORS_SUFFIX = "errors"


def data_topic(device_id: str, suffix: str = "data") -> str:
    return f"{ROOT}/{device_id}/{suffix}"


def error_topic(device_id: str) -> str:
    return f"{ROOT}/{device_id}/{ERRORS_SUFFIX}"


def subscriptions(shared_group: str = "") -> tuple[str, ...]:
    """The bridge's topic filters: every device's data topics, under
    ``$share/{group}/`` when bridges share the load."""
    prefix = f"$share/{shared_group}/" if shared_group else ""
    return tuple(f"{prefix}{ROOT}/+/{suffix}" for suffix in DEVICE_PUBLISH_SUFFIXES)


def acl_device_patterns() -> list[str]:
    """``acl_file`` lines for every user, ``%u`` being its name (a device's id): publish
    to its own data topics, read its own error topic, nothing else."""
    return ([f"pattern write {ROOT}/%u/{suffix}" for suffix in DEVICE_PUBLISH_SUFFIXES]
            + [f"pattern read {ROOT}/%u/{ERRORS_SUFFIX}"])


def acl_bridge_topics() -> list[str]:
    """``acl_file`` lines for the bridge's user: read every device's data (through
    ``$share/GROUP/`` too), answer on every device's error topic."""
    return ([f"topic read {ROOT}/+/{suffix}" for suffix in DEVICE_PUBLISH_SUFFIXES]
            + [f"topic write {ROOT}/+/{ERRORS_SUFFIX}"])


def parse(topic: str) -> tuple[str, PayloadFormat | None]:
    """``(device id, payload format)`` of a topic ``devices/{id}/...``; the id is empty
    when the topic is not under ``devices/{id}/``, the format None when the rest names no
    data topic (``errors``, ``kv/x``)."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or parts[0] != ROOT or not parts[1]:
        return "", None
    return parts[1], format_for_topic(parts[2])
