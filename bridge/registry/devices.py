"""Device and token administration: the one implementation behind both operator faces,
``devicedata device|token ...`` (devicedata/registry_cli.py) and ``/admin/...`` (api/admin.py).

Each operation changes the registry and then pushes the credential set to the broker, so
a new token can publish at once and a revoked token or deleted device is refused at once.
The JSON shapes both faces print live here too, so the CLI's ``--json`` and the API agree.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge import keyfile
from bridge.errors import DeviceDataError, FieldError, ValidationError
from bridge.model.timeparse import format_iso_ms, parse_duration
from bridge.registry import broker_sync
from bridge.registry.interface import (
    Device,
    IssuedToken,
    NetworkInfo,
    Permission,
    Registry,
    TokenInfo,
)
from bridge.settings import Settings

log = logging.getLogger("devicedata.devices")

ADMIN_TOKEN_NAME = "admin-token"
ADMIN_TOKEN_BYTES = 32  # 256 bits; the admin token guards every device at once

SyncHook = Callable[[Settings, Registry], None]
SyncErrorHook = Callable[[Exception], None]
DataDeleter = Callable[[str], None]


def iso(ns: int | None) -> str | None:
    """ISO 8601 UTC with milliseconds and ``Z``, as the data API prints times."""
    return None if ns is None else format_iso_ms(ns)


def topic(device_id: str) -> str:
    return f"devices/{device_id}/data"


def token_status(info: TokenInfo, now_ns: int) -> str:
    if info.revoked_ns is not None:
        return "revoked"
    return "active" if info.active(now_ns) else "expired"


def device_json(device: Device, last_input_ns: int | None = None) -> dict[str, Any]:
    """``last_input_ns`` may be fresher than the registry's (the API keeps recent input
    in memory and saves it every few seconds)."""
    last = device.last_input_ns if last_input_ns is None else last_input_ns
    return {"id": device.id, "name": device.name, "created_at": iso(device.created_ns),
            "last_input": iso(last)}


def token_json(info: TokenInfo, now_ns: int) -> dict[str, Any]:
    """Everything about a token except the token: listings show its prefix only."""
    return {"prefix": info.prefix, "device_id": info.device_id,
            "permission": info.permission, "name": info.name,
            "created_at": iso(info.created_ns), "expires_at": iso(info.expires_ns),
            "revoked_at": iso(info.revoked_ns), "status": token_status(info, now_ns),
            "serie_number": info.serial}


def network_json(info: NetworkInfo) -> dict[str, Any]:
    """Everything about a network credential except its token."""
    return {"prefix": info.prefix, "name": info.name, "created_at": iso(info.created_ns),
            "revoked_at": iso(info.revoked_ns),
            "status": "revoked" if info.revoked_ns is not None else "active"}


@dataclass(frozen=True, slots=True)
class NewDevice:
    device: Device
    issued: IssuedToken

    def as_json(self) -> dict[str, Any]:
        """What a new device needs to start sending, over HTTP or MQTT."""
        return {"id": self.device.id, "name": self.device.name, "token": self.issued.token,
                "mqtt_username": self.device.id, "mqtt_password": self.issued.token,
                "topic": topic(self.device.id), "created_at": iso(self.device.created_ns)}


def parse_expires(text: str | None, now_ns: int | None = None) -> int | None:
    """A token lifetime such as ``30d`` or ``12 hours`` as an absolute expiry time."""
    if text is None or text == "":
        return None
    try:
        lifetime = parse_duration(text)
    except ValueError as exc:
        raise ValidationError("Invalid token", [FieldError("expires", str(exc))]) from None
    return (time.time_ns() if now_ns is None else now_ns) + lifetime


class DeviceAdmin:
    """Registry changes followed by a broker sync. Synchronous (file I/O, SQLite, a
    signal): the API runs each call in a worker thread.

    A failed sync does not fail the operation: the registry change is committed already,
    and reporting failure would make a caller believe it did not happen (and lose a token
    shown only once). ``on_sync_error`` hears about it instead; the bridge's periodic sync
    repairs the broker's files later.
    """

    def __init__(self, settings: Settings, registry: Registry, *,
                 sync: SyncHook = broker_sync.sync,
                 on_sync_error: SyncErrorHook | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self._sync_hook = sync
        self._on_sync_error = on_sync_error or _log_sync_error

    def sync(self) -> None:
        try:
            self._sync_hook(self.settings, self.registry)
        except (DeviceDataError, OSError) as exc:
            self._on_sync_error(exc)

    def create_device(self, name: str) -> NewDevice:
        """A device and its first token (``full``, so it can both send and read back)."""
        device = self.registry.create_device(name)
        try:
            issued = self.registry.create_token(device.id, "full", name="default")
        except BaseException:
            # A device nobody holds a token for would only be clutter.
            with contextlib.suppress(DeviceDataError):
                self.registry.delete_device(device.id)
            raise
        self.sync()
        return NewDevice(device, issued)

    def rename_device(self, device_id: str, name: str) -> Device:
        return self.registry.rename_device(device_id, name)

    def delete_device(self, device_id: str, delete_data: DataDeleter | None) -> Device:
        """Its stored data, then the device and its tokens, then its broker credentials.

        Data first: if that fails the device (and so the means to retry) is still there.
        """
        device = self.registry.get_device(device_id)  # NotFound before touching any data
        if delete_data is not None:
            delete_data(device.id)
        self.registry.delete_device(device.id)
        self.sync()
        return device

    def create_token(self, device_id: str, permission: Permission,
                     expires_ns: int | None = None, name: str = "",
                     serial: str | None = None) -> IssuedToken:
        issued = self.registry.create_token(device_id, permission, expires_ns, name, serial)
        self.sync()
        return issued

    def revoke_token(self, token_or_prefix: str) -> TokenInfo:
        info = self.registry.revoke_token(token_or_prefix)
        self.sync()
        return info


def _log_sync_error(exc: Exception) -> None:
    log.warning("event=broker_sync_failed reason=%s", exc)


def admin_token(settings: Settings) -> str:
    """The admin API token: the configured one, else one generated on first use and kept
    in ``DATA_DIR/admin-token`` (mode 0600), so it survives restarts and ``devicedata
    stack`` can print it."""
    if settings.admin_token:
        return settings.admin_token
    return keyfile.read_or_create(settings.data_dir / ADMIN_TOKEN_NAME, ADMIN_TOKEN_BYTES)
