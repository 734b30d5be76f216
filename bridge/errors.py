"""The small exception hierarchy every layer speaks.

Third-party errors (httpx, sqlite3, psycopg, sockets) are converted into these at the
boundary where they occur, so callers never need to know which library failed.
``api.errors`` maps each class onto exactly one HTTP response.
"""

from __future__ import annotations

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

    def field_errors(self) -> dict[str, list[str]]:
        """TagoCore's ``field_errors`` shape: ``{"0": ["value: ..."], "qty": ["..."]}``."""
        out: dict[str, list[str]] = {}
        for err in self.errors:
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
    """InfluxDB answered 4xx: the data or query itself is at fault; retrying will not help."""


class Overloaded(DeviceDataError):
    """Back-pressure: too much is queued; the caller should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RegistryError(DeviceDataError):
    """The device registry (SQLite/PostgreSQL) failed."""


class BrokerError(DeviceDataError):
    """The broker could not be reached, or refused a command that keeps it in step with the
    registry; the next sync tries again."""
