"""The small exception hierarchy every layer speaks.

Third-party errors (httpx, sqlite3, psycopg, sockets) are converted into these at the
boundary where they occur, so callers never need to know which library failed.
``api.errors`` maps each class onto exactly one HTTP response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class DeviceDataError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field; ``index`` is the point's position in its batch."""

    field: str
    message: str
    index: int | None = None

    def describe(self) -> str:
        where = f"[{self.index}] " if self.index is not None else ""
        return f"{where}{self.field} {self.message}"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out


# Errors listed in one answer (HTTP 400 body, MQTT error report). A payload can hold
# tens of thousands of faults; listing them all would build megabytes of JSON per message,
# and an MQTT report over the broker's max_packet_size gets the bridge disconnected.
REPORTED_ERRORS = 100


class ValidationError(DeviceDataError):
    """The input is wrong; nothing was stored. Carries every problem found, not just the first."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        self.errors = errors or []
        if self.errors:
            # Clients such as the TagoIO SDKs show only ``message``, so it names the
            # problems itself instead of pointing elsewhere.
            shown = "; ".join(e.describe() for e in self.errors[:5])
            more = len(self.errors) - 5
            message = f"{message}: {shown}" + (f" (and {more} more)" if more > 0 else "")
        super().__init__(message)
        self.message = message

    def report(self, limit: int = REPORTED_ERRORS) -> dict[str, object]:
        """``errors`` and ``field_errors`` of an answer, listing at most ``limit`` errors
        (the first ones) and, past that, how many were left out (``more_errors``, as in
        an MQTT error report: ``bridge.mqtt.reports``)."""
        shown = self.errors[:limit]
        out: dict[str, object] = {"field_errors": self.field_errors(shown),
                                  "errors": [e.as_dict() for e in shown]}
        if len(self.errors) > limit:
            out["more_errors"] = len(self.errors) - limit
        return out

    def field_errors(self, errors: list[FieldError] | None = None) -> dict[str, list[str]]:
        """TagoCore's ``field_errors`` shape: ``{"0": ["value: ..."], "qty": ["..."]}``."""
        out: dict[str, list[str]] = {}
        for err in self.errors if errors is None else errors:
            key = str(err.index) if err.index is not None else err.field
            text = f"{err.field}: {err.message}" if err.index is not None else err.message
            out.setdefault(key, []).append(text)
        return out


class PayloadTooLarge(DeviceDataError):
    """Body or point count over the configured limit."""


class AuthorizationDenied(DeviceDataError):
    """Missing, unknown, expired, revoked or insufficient token. Never says which."""

    def __init__(self) -> None:
        super().__init__("Authorization denied")


class NotFound(DeviceDataError):
    """A device, token or point that does not exist (or is not the caller's)."""


class Conflict(DeviceDataError):
    """The request contradicts existing state (duplicate name, ambiguous prefix...)."""


class StoreError(DeviceDataError):
    """Base for failures talking to InfluxDB."""


class StoreUnavailable(StoreError):
    """Retry later: connection refused, timeout, 5xx. Nothing is known to be stored."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreRejected(StoreError):
    """InfluxDB answered 4xx: the data or query itself is at fault; retrying will not help.

    ``str()`` is InfluxDB's own text, for logs; ``public`` says the same in our words,
    for clients and devices, which never see InfluxDB's text."""

    def __init__(self, message: str, public: str = "The store refused the request") -> None:
        super().__init__(message)
        self.public = public


class Overloaded(DeviceDataError):
    """Back-pressure: too much is queued; the caller should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRequests(DeviceDataError):
    """A device is over one of its limits: 429, ``Retry-After`` whole seconds. ``hold``:
    how long to wait before answering (a client that ignores Retry-After is slowed)."""

    def __init__(self, retry_after: float, hold: float = 0.0) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        self.hold = hold
        super().__init__(f"Too many requests (Retry-After: {self.retry_after})")  # TagoIO's


class RegistryError(DeviceDataError):
    """The device registry (SQLite/PostgreSQL) failed."""


class BrokerError(DeviceDataError):
    """The broker could not be reached, or refused a command that keeps it in step with the
    registry; the next sync tries again."""
