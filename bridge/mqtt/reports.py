"""What the bridge tells a device, and the log, about a message it refused, without letting a
device that keeps sending bad messages cost the broker, the bridge or the log without bound.

Error reports go out at QoS 0: the broker queues nothing at QoS 0 for a session that is
offline (``queue_qos0_messages false``), so a device that subscribes with a persistent
session and goes away cannot pile reports up in the broker; a device that is connected
receives them as they happen. Each device gets at most a burst of ``REPORT_BURST`` reports,
then one per ``REPORT_EVERY`` seconds; the next report says how many were left out. A report
lists at most ``MAX_FIELD_ERRORS`` field errors. Log lines: one per device per minute.
Both gates remember a bounded number of devices (least recently seen go first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from bridge.errors import FieldError, ValidationError
from bridge.limits import Gate
from bridge.model.timeparse import format_iso_ms, now_ns

log = logging.getLogger("devicedata.bridge")

REPORT_BURST = 5
REPORT_EVERY = 1.0  # seconds per report once the burst is spent
LOG_EVERY = 60.0  # seconds between log lines about one device's refused messages
MAX_FIELD_ERRORS = 100
MAX_MESSAGE = 1000  # characters of the message text


class Reports:
    def __init__(self, publish: Callable[[str, bytes], None]) -> None:
        """``publish(topic, payload)`` sends at QoS 0 (the connection's)."""
        self._publish = publish
        self.reports = Gate(REPORT_EVERY, REPORT_BURST)
        self.lines = Gate(LOG_EVERY)
        self.sent = 0
        self.held_back = 0

    def refused(self, device_id: str, topic: str, reason: str, message: str,
                errors: list[FieldError]) -> None:
        if device_id:
            held = self.reports.passes(device_id)
            if held is None:
                self.held_back += 1
            else:
                self._publish(f"devices/{device_id}/errors",
                              report(topic, message, errors, held))
                self.sent += 1
        held = self.lines.passes(device_id or "-")
        if held is not None:
            log.warning("event=message_rejected device=%s reason=%s suppressed=%d detail=%s",
                        device_id or "-", reason, held, message[:200].replace("\n", " "))


def report(topic: str, message: str, errors: list[FieldError], left_out: int = 0) -> bytes:
    """The JSON a device reads on its errors topic."""
    shown = errors[:MAX_FIELD_ERRORS]
    body: dict[str, Any] = {"status": False, "message": message[:MAX_MESSAGE],
                            "errors": [e.as_dict() for e in shown], "topic": topic,
                            "time": format_iso_ms(now_ns())}
    if shown:
        body["field_errors"] = ValidationError("", shown).field_errors()
    if len(errors) > len(shown):
        body["more_errors"] = len(errors) - len(shown)
    if left_out:
        body["reports_left_out"] = left_out  # refusals since the last report, not reported
    return orjson.dumps(body)
