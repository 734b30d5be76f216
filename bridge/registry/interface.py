"""What the registry holds and the interface every backend implements. Times are integer
nanoseconds since the epoch, UTC, like everywhere else in ``bridge``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Permission = Literal["read", "write", "full"]
PERMISSIONS: tuple[Permission, ...] = ("read", "write", "full")


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str
    created_ns: int
    last_input_ns: int | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is kept about a token: never the token itself."""

    prefix: str  # first characters of the token, shown in listings to tell tokens apart
    device_id: str
    permission: Permission
    created_ns: int
    expires_ns: int | None = None
    revoked_ns: int | None = None
    name: str = ""
    serial: str | None = None  # TagoIO's serie_number, normalised (networks.normalise_serial)

    def allows(self, needed: Permission) -> bool:
        return self.permission == "full" or self.permission == needed

    def active(self, now_ns: int) -> bool:
        return self.revoked_ns is None and (self.expires_ns is None or now_ns < self.expires_ns)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token: the only moment its plain text exists."""

    token: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """What is kept about a network credential (a LoRaWAN network server's token): never
    the token itself. It can resolve serial numbers and post uplinks, nothing else."""

    prefix: str
    name: str
    created_ns: int
    revoked_ns: int | None = None

    def active(self, now_ns: int) -> bool:
        return self.revoked_ns is None


@dataclass(frozen=True, slots=True)
class IssuedNetwork:
    """A freshly created network token: the only moment its plain text exists."""

    token: str
    info: NetworkInfo


class Registry(Protocol):
    def create_device(self, name: str) -> Device: ...
    def get_device(self, device_id: str) -> Device: ...
    def list_devices(self) -> list[Device]: ...
    def rename_device(self, device_id: str, name: str) -> Device: ...
    def delete_device(self, device_id: str) -> None: ...
    def create_token(self, device_id: str, permission: Permission,
                     expires_ns: int | None = None, name: str = "",
                     serial: str | None = None) -> IssuedToken: ...
    def list_tokens(self, device_id: str) -> list[TokenInfo]: ...
    def revoke_token(self, token_or_prefix: str) -> TokenInfo: ...
    def authenticate(self, token: str, now_ns: int | None = None) -> TokenInfo | None: ...
    def token_for_serial(self, serial: str, now_ns: int | None = None) -> TokenInfo | None: ...
    def create_network(self, name: str) -> IssuedNetwork: ...
    def list_networks(self) -> list[NetworkInfo]: ...
    def revoke_network(self, token_or_prefix: str) -> NetworkInfo: ...
    def authenticate_network(self, token: str,
                             now_ns: int | None = None) -> NetworkInfo | None: ...
    def touch(self, device_id: str, at_ns: int) -> None: ...
    def data_version(self, device_id: str, wait: bool = True) -> int | None: ...
    def watch_data_version(self, device_id: str, wait: bool = True) -> int | None: ...
    def watched_devices(self, device_ids: Collection[str], wait: bool = True) -> set[str]: ...
    def bump_data_versions(self, device_ids: Collection[str], wait: bool = True) -> None: ...
    def record_writes(self, rows: Sequence[tuple[Any, ...]],  # registry.current.CurrentRow
                      device_ids: Collection[str], wait: bool = True) -> None: ...
    def current_values(self, device_id: str, kind: str | None,
                       wait: bool = True) -> tuple[bool, list[str]]: ...
    def forget_current(self, device_id: str, variables: Collection[str] | None,
                       wait: bool = True) -> None: ...
    def set_current_ready(self, device_id: str, wait: bool = True) -> None: ...
    def checkpoint(self) -> None: ...
    def broker_credentials(self, now_ns: int | None = None) -> list[tuple[str, str]]: ...
    def add_service_user(self, username: str, role: str) -> None: ...
    def service_users(self) -> list[tuple[str, str]]: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...
