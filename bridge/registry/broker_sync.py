"""Keep the broker in step with the registry: who may log in, and what each may do.

- **Who** is Mosquitto's ``password_file`` (``broker_files``): one line per device (its
  newest write/full token), one per service user of ours (every bridge and API process
  has its own username, since the broker binds a session to it) and the admin user. A
  change is written and the broker gets SIGHUP, which applies it within the second and
  disconnects clients whose password went away.
- **What** is the dynamic-security plugin (``dynsec``): a role per device. Before a
  broker starts, ``prepare`` renders the plugin's whole file; while it runs, ``sync``
  sends the missing or surplus roles and clients over ``$CONTROL`` (``broker_control``),
  since the plugin reads its file only at start.

``BrokerSync`` remembers what it last reconciled, so a periodic caller (the bridge, every
``DEVICEDATA_BROKER_SYNC_SECONDS``) asks the broker again only when the registry changed,
or every ``FULL_EVERY`` seconds in case another process or a broker restart moved it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from pathlib import Path
from typing import Any

from bridge.errors import BrokerError
from bridge.registry import broker_files, dynsec
from bridge.registry.broker_control import BrokerControl
from bridge.registry.interface import Registry
from bridge.settings import Settings

log = logging.getLogger("devicedata.broker")

FULL_EVERY = 60.0  # seconds between reconciliations when nothing seemed to change
ATTEMPTS = 3

# Re-exported for callers that only need the file names and secrets.
bridge_password = broker_files.bridge_password
passwd_path = broker_files.passwd_path
dynsec_path = broker_files.dynsec_path
broker_pid_file = broker_files.broker_pid_file


def services(settings: Settings, registry: Registry | None) -> list[tuple[str, str]]:
    """``(username, role)`` of our own broker users: this process's, and every one the
    registry knows (each bridge or API registers itself when it starts)."""
    found = {settings.mqtt_username: dynsec.BRIDGE_ROLE}
    if registry is not None:
        found.update(registry.service_users())
    return [(u, r) for u, r in sorted(found.items())
            if broker_files.safe_username(u) and u != settings.mqtt_admin_username]


def _passwd(settings: Settings, registry: Registry | None, existing: str) -> str:
    shared = broker_files.bridge_password(settings)
    users = {u: shared for u, _ in services(settings, registry)}
    users[settings.mqtt_admin_username] = broker_files.admin_password(settings)
    devices = registry.broker_credentials() if registry is not None else []
    return broker_files.render_passwd(users, devices, existing)


def _write_passwd(settings: Settings, registry: Registry | None) -> str:
    path = broker_files.passwd_path(settings.broker_dir)
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    content = _passwd(settings, registry, existing)
    broker_files.write_if_changed(path, content, 0o600)
    return content


def prepare(settings: Settings, registry: Registry | None) -> None:
    """For a broker that is about to start: both files, complete. Never while it runs:
    the plugin would ignore its file and overwrite it at its next change."""
    broker_dir = settings.broker_dir
    with broker_files.locked(broker_dir):
        _write_passwd(settings, registry)
        devices = [d.id for d in registry.list_devices()] if registry is not None else []
        broker_files.write_if_changed(
            broker_files.dynsec_path(broker_dir),
            dynsec.render(devices, services(settings, registry), settings.mqtt_admin_username),
            0o640)


def write_initial(broker_dir: Path, bridge_user: str, admin_user: str) -> None:
    """The files a broker needs to start before any sync, where missing: an empty password
    file and access rules for our own users only (a sync then adds everything else)."""
    with broker_files.locked(broker_dir):
        passwd = broker_files.passwd_path(broker_dir)
        if not passwd.exists():
            broker_files.write_if_changed(passwd, "", 0o600)
        access = broker_files.dynsec_path(broker_dir)
        if not access.exists():
            broker_files.write_if_changed(
                access, dynsec.render([], [(bridge_user, dynsec.BRIDGE_ROLE)], admin_user), 0o640)


def sync(settings: Settings, registry: Registry) -> None:
    """One full pass: the password file (SIGHUP when it changed) and the running broker's
    roles. Raises ``BrokerError`` when the broker cannot be reached or refuses."""
    BrokerSync(settings).sync(registry, force=True)


class BrokerSync:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._reconciled = ""  # digest of the registry state the broker last agreed with
        self._reconciled_at = -FULL_EVERY
        self.commands_sent = 0

    def sync(self, registry: Registry, force: bool = False) -> None:
        settings = self.settings
        # One process at a time talks to the broker as its admin: the broker binds a
        # session to the user name, so two admin sessions at once would cut each other off.
        with broker_files.locked(settings.broker_dir):
            path = broker_files.passwd_path(settings.broker_dir)
            before = path.read_bytes() if path.exists() else b""
            content = _write_passwd(settings, registry)
            broker_files.reload_broker(settings, settings.broker_dir, _digest(content))
            fresh = content.encode("utf-8") != before
            devices = [d.id for d in registry.list_devices()]
            users = services(settings, registry)
            state = _digest("\n".join(sorted(devices)) + "\0" + repr(users))
            now = time.monotonic()
            if (not force and state == self._reconciled
                    and now - self._reconciled_at < FULL_EVERY):
                return
            self._reconcile_retrying(devices, users, fresh)
        self._reconciled, self._reconciled_at = state, now

    def _reconcile_retrying(self, devices: list[str], users: list[tuple[str, str]],
                            fresh: bool) -> None:
        """Two waits are worth a retry: a process on another host (no shared lock) holds
        the admin session, so the broker closes ours; or the password file was just
        rewritten and the broker has not re-read it yet (in compose a watcher sends the
        SIGHUP, every second), so it refuses the admin."""
        for attempt in range(ATTEMPTS):
            try:
                self.reconcile(devices, users)
                return
            except BrokerError as exc:
                kicked = "closed the connection" in str(exc)
                refused = fresh and "refused" in str(exc)
                if attempt == ATTEMPTS - 1 or not (kicked or refused):
                    raise
                time.sleep(random.uniform(0.5, 1.0) if refused else random.uniform(0.05, 0.3))

    def reconcile(self, devices: list[str], users: list[tuple[str, str]]) -> None:
        settings = self.settings
        with BrokerControl(settings.mqtt_host, settings.mqtt_port,
                           settings.mqtt_admin_username,
                           broker_files.admin_password(settings)) as control:
            listed = control.run([{"command": "listClients"}, {"command": "listRoles"}])
            clients = _names(listed[0], "clients")
            roles = _names(listed[1], "roles")
            commands = dynsec.plan(devices, users, clients, roles)
            if not commands:
                return
            errors = [e for e in map(dynsec.failed, control.run(commands)) if e]
        self.commands_sent += len(commands)
        log.info("event=broker_roles_synced commands=%d refused=%d", len(commands), len(errors))
        if errors:
            raise BrokerError(f"the broker refused {len(errors)} of {len(commands)} "
                              f"access-rule changes, first: {errors[0]}")


def _names(response: dict[str, Any], key: str) -> list[str]:
    error = dynsec.failed(response)
    if error:
        raise BrokerError(f"the broker's access rules cannot be read: {error}")
    data = response.get("data")
    names = data.get(key, []) if isinstance(data, dict) else []
    return [str(n) for n in names]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
