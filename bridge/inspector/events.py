"""Inspector topics and the event shape (see ``bridge/inspector/__init__.py``).

An event, as JSON::

    {"time": "2024-01-02T03:04:05.123Z", "device": "<id>", "source": "mqtt" | "http",
     "outcome": "accepted" | "rejected", "points": 3, "where": "devices/<id>/data",
     "process": "bridge-devicedata-bridge", "payload": "<the first bytes>",
     "payload_bytes": 1234, "truncated": true, "encoding": "utf-8" | "hex",
     "reason": "invalid", "message": "...", "errors": [{"index", "field", "message"}],
     "dropped": 0}

``reason``, ``message`` and ``errors`` only on rejections; ``dropped`` counts the events
of this device this process left out before this one (rate limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bridge.errors import FieldError
from bridge.model.timeparse import format_iso_ms, now_ns

PREFIX = "devicedata/inspect/"
WATCH_PREFIX = PREFIX + "watch/"
EVENTS_PREFIX = PREFIX + "events/"
WATCH_FILTER = WATCH_PREFIX + "+/+"
EVENTS_FILTER = EVENTS_PREFIX + "+"
PAYLOAD_PREVIEW = 1024  # bytes of a payload an event carries
HEX_PREVIEW = 256  # bytes shown (as hex) of a payload that is not UTF-8 text
MAX_ERRORS = 20
MAX_MESSAGE = 500
Event = dict[str, Any]


def watch_topic(device_id: str, watcher: str) -> str:
    return f"{WATCH_PREFIX}{device_id}/{watcher}"


def events_topic(device_id: str) -> str:
    return EVENTS_PREFIX + device_id


def lease_of(topic: str) -> tuple[str, str] | None:
    """(device, watcher) of a lease topic, else None."""
    if not topic.startswith(WATCH_PREFIX):
        return None
    device, sep, watcher = topic[len(WATCH_PREFIX):].partition("/")
    return (device, watcher) if device and sep and watcher and "/" not in watcher else None


def device_of_events(topic: str) -> str | None:
    device = topic[len(EVENTS_PREFIX):] if topic.startswith(EVENTS_PREFIX) else ""
    return device if device and "/" not in device else None


def preview(payload: bytes) -> dict[str, Any]:
    """The payload cut to a length a person reads: UTF-8 text (a cut never splits a
    character), or hex for binary payloads."""
    head = payload[:PAYLOAD_PREVIEW]
    text = _utf8(head, cut=len(head) < len(payload))
    if text is None:
        head = payload[:HEX_PREVIEW]
        text, encoding = head.hex(" "), "hex"
    else:
        encoding = "utf-8"
    return {"payload": text, "payload_bytes": len(payload),
            "truncated": len(head) < len(payload), "encoding": encoding}


def _utf8(head: bytes, cut: bool) -> str | None:
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.reason == "unexpected end of data":
            return head[:exc.start].decode("utf-8")  # the cut split the last character
        return None


def accepted(device_id: str, source: str, where: str, process: str, payload: bytes,
             points: int) -> Event:
    return {"time": format_iso_ms(now_ns()), "device": device_id, "source": source,
            "outcome": "accepted", "points": points, "where": where, "process": process,
            **preview(payload)}


def rejected(device_id: str, source: str, where: str, process: str, payload: bytes | None,
             reason: str, message: str, errors: Sequence[FieldError] = ()) -> Event:
    event: Event = {"time": format_iso_ms(now_ns()), "device": device_id, "source": source,
                    "outcome": "rejected", "points": 0, "where": where, "process": process,
                    "reason": reason, "message": message[:MAX_MESSAGE],
                    "errors": [e.as_dict() for e in errors[:MAX_ERRORS]]}
    if payload is not None:
        event.update(preview(payload))
    return event


def encode(event: Event) -> bytes:
    return orjson.dumps(event)


def decode(payload: bytes) -> Event | None:
    """An event from the broker, or None when it is not one (never trusted blindly: only
    the bridge's broker user can publish here, but a malformed one must not break a page)."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("device"), str):
        return None
    return event
