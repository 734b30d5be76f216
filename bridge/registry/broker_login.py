"""Who a client of the broker is, for brokers that ask over HTTP (``broker_auth`` holds what
each may do). Answers come from caches that live at most ``ttl`` seconds (5 at most), so a
revoked token or a deleted device is refused within that time without a registry query per
question.

- A **device** logs in with its id as user name and **any** of its active ``write`` or
  ``full`` tokens as password (Mosquitto's password file can hold only one per device).
- **Our own users** (bridges and APIs, ``Registry.service_users``) log in with the shared
  password (``DEVICEDATA_MQTT_PASSWORD``), the broker admin with its own.

A log-in never tells whether a device id exists: the password is looked up as a token
(by its hash, the same query and cache whatever the user name), and only then compared,
in constant time, with the user name. An unknown id and a wrong token take the same path
and get the same answer.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from bridge.errors import DeviceDataError
from bridge.registry.broker_auth import DEVICE_ROLE, Identity, client_id_allowed
from bridge.registry.dynsec import ADMIN_ROLE, SERVICE_ROLES, is_device
from bridge.registry.interface import Registry
from bridge.registry.token_cache import TokenCache

MAX_TTL = 5.0  # the spec's bound on how late a revocation may reach the broker
MAX_PASSWORD = 512  # tokens are 40 characters; anything longer is not one
MAX_DEVICES = 10_000  # devices whose "still active" answer is kept


class BrokerLogin:
    def __init__(self, registry: Registry, *, shared_password: str, admin_username: str,
                 admin_password: str, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._ttl = max(0.0, min(ttl, MAX_TTL))
        self._clock = clock
        self.tokens = TokenCache(registry, self._ttl, clock=clock)
        self._shared = shared_password.encode("utf-8")
        self._admin = admin_username
        self._admin_password = admin_password.encode("utf-8")
        self._lock = threading.Lock()
        self._services: tuple[float, dict[str, str]] = (-MAX_TTL - 1, {})
        self._active: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def authenticate(self, username: str, password: str,
                     client_id: str | None = None) -> Identity | None:
        """The identity a CONNECT proves, or None. Blocking (the registry): call it from a
        worker thread."""
        if len(password) > MAX_PASSWORD:
            password = ""
        info = self.tokens.lookup(password) if password else None
        given = password.encode("utf-8")
        device_match = info is not None and hmac.compare_digest(
            info.device_id.encode("utf-8"), username.encode("utf-8"))
        shared_match = hmac.compare_digest(given, self._shared)
        admin_match = hmac.compare_digest(given, self._admin_password)
        identity: Identity | None = None
        if device_match and info is not None and info.allows("write") and is_device(username):
            identity = Identity(username, DEVICE_ROLE)
        elif username == self._admin and admin_match and self._admin_password:
            identity = Identity(username, ADMIN_ROLE)
        elif shared_match and self._shared and not is_device(username):
            role = self._service_roles().get(username)
            if role in SERVICE_ROLES:
                identity = Identity(username, role)
        if identity is None or not client_id_allowed(identity, client_id):
            return None
        return identity

    def identity(self, username: str) -> Identity | None:
        """Who a client that already logged in is, for an authorisation question: a device
        while it still exists and holds an active write/full token, our own users while
        the registry lists them. Blocking: call it from a worker thread."""
        if is_device(username):
            return Identity(username, DEVICE_ROLE) if self._still_active(username) else None
        if username == self._admin and self._admin_password:
            return Identity(username, ADMIN_ROLE)
        role = self._service_roles().get(username)
        return Identity(username, role) if role in SERVICE_ROLES else None

    def _service_roles(self) -> dict[str, str]:
        now = self._clock()
        with self._lock:
            at, roles = self._services
            if now - at < self._ttl:
                return roles
        roles = dict(self._registry.service_users())
        with self._lock:
            self._services = (now, roles)
        return roles

    def _still_active(self, device_id: str) -> bool:
        now = self._clock()
        with self._lock:
            entry = self._active.get(device_id)
            if entry is not None and now - entry[0] < self._ttl:
                return entry[1]
        try:
            tokens = self._registry.list_tokens(device_id)
        except DeviceDataError:
            tokens = []  # deleted (NotFound); a registry outage also refuses
        wall = time.time_ns()
        active = any(t.active(wall) and t.allows("write") for t in tokens)
        with self._lock:
            self._active[device_id] = (now, active)
            self._active.move_to_end(device_id)
            while len(self._active) > MAX_DEVICES:
                self._active.popitem(last=False)
        return active
