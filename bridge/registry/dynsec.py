"""The broker's access rules as Mosquitto's dynamic-security plugin holds them: one role per
device, one per kind of service user, and the commands that bring a running broker in step
with the registry. Pure: no I/O here (``broker_control`` talks to the broker).

Why this shape (measured on Debian's Mosquitto 2.0.11, mosquitto/README.md): ``acl_file``
grants every SUBSCRIBE, so any device could join the bridges' shared subscription and
swallow other devices' messages; the plugin refuses what its rules do not allow, but in
2.0.x it does not substitute ``%u``, hence a role per device. Clients carry no password:
the plugin then hands authentication on to ``password_file``, which holds the tokens'
hashes. A device known to the password file but not (yet) to the plugin may log in and do
nothing: the set-up fails closed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any

from bridge.inspector.events import EVENTS_PREFIX, PREFIX, WATCH_PREFIX
from bridge.model.topics import PUBLISH_SUFFIXES, device_topic, errors_topic

ADMIN_ROLE = "dynsec-admin"
BRIDGE_ROLE = "bridge"
API_ROLE = "api"
SERVICE_ROLES = (BRIDGE_ROLE, API_ROLE)
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
_DEVICE_ID = re.compile(r"^[0-9a-f]{24}$")  # what the registry issues; nothing else is ours
_ROLE_PREFIX = "device:"
DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False,
                  "subscribe": False, "unsubscribe": True}

Command = dict[str, Any]


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def device_role_name(device_id: str) -> str:
    return _ROLE_PREFIX + device_id


def is_device(username: str) -> bool:
    return bool(_DEVICE_ID.match(username))


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """Publish to its own topics of the contract; read and subscribe to its own errors."""
    acls = [_acl("publishClientSend", device_topic(device_id, s)) for s in PUBLISH_SUFFIXES]
    return [*acls, _acl("publishClientReceive", errors_topic(device_id)),
            _acl("subscribeLiteral", errors_topic(device_id))]


def service_roles() -> list[dict[str, Any]]:
    """The roles of our own users: the broker admin, bridges and API processes."""
    control = "$CONTROL/dynamic-security/#"
    return [
        {"rolename": ADMIN_ROLE, "acls": [_acl("publishClientSend", control),
                                          _acl("publishClientReceive", control),
                                          _acl("subscribePattern", control)]},
        {"rolename": BRIDGE_ROLE, "acls": [
            # Any group name: the configured one is an operator's choice, not a secret.
            _acl("subscribePattern", "$share/+/devices/#"),
            _acl("subscribePattern", "devices/#"),
            _acl("publishClientReceive", "devices/#"),
            _acl("publishClientSend", "devices/+/errors"),
            # The live inspector (bridge/inspector): hear who watches, tell what came in.
            _acl("subscribePattern", WATCH_PREFIX + "#"),
            _acl("publishClientReceive", WATCH_PREFIX + "#"),
            _acl("publishClientSend", EVENTS_PREFIX + "#")]},
        # API processes: the inspector's leases (published and heard) and events (for
        # their watchers, and their own HTTP requests').
        {"rolename": API_ROLE, "acls": [_acl("subscribePattern", PREFIX + "#"),
                                        _acl("publishClientReceive", PREFIX + "#"),
                                        _acl("publishClientSend", PREFIX + "#")]},
    ]


def _client(username: str, role: str) -> dict[str, Any]:
    return {"username": username, "roles": [{"rolename": role}]}


def render(devices: Iterable[str], services: Collection[tuple[str, str]], admin: str) -> str:
    """The plugin's whole file, for a broker about to start: every device, our service
    users as ``(username, role)``, and the admin user that sends commands."""
    ids = sorted({d for d in devices if is_device(d)})
    document = {
        "defaultACLAccess": DEFAULT_ACCESS,
        "roles": [*service_roles(),
                  *({"rolename": device_role_name(d), "acls": device_acls(d)} for d in ids)],
        "clients": [_client(admin, ADMIN_ROLE),
                    *(_client(u, r) for u, r in sorted(set(services)) if u != admin),
                    *(_client(d, device_role_name(d)) for d in ids)],
    }
    return json.dumps(document, indent=1) + "\n"


def plan(devices: Collection[str], services: Collection[tuple[str, str]],
         clients: Collection[str], roles: Collection[str]) -> list[Command]:
    """Commands that make a broker whose plugin knows ``clients`` and ``roles`` agree with
    the registry: missing devices and service users are created, devices the registry no
    longer has are removed. Names that are not device ids are never removed, and a role
    is always created before the client that names it."""
    wanted = {d for d in devices if is_device(d)}
    have_clients, have_roles = set(clients), set(roles)
    commands: list[Command] = [
        {"command": "createRole", "rolename": role["rolename"], "acls": role["acls"]}
        for role in service_roles() if role["rolename"] not in have_roles]
    for device_id in sorted(wanted):
        role = device_role_name(device_id)
        if role not in have_roles:
            commands.append({"command": "createRole", "rolename": role,
                             "acls": device_acls(device_id)})
            if device_id in have_clients:  # a client left without its role
                commands.append({"command": "addClientRole", "username": device_id,
                                 "rolename": role})
        if device_id not in have_clients:
            commands.append({"command": "createClient", "username": device_id,
                             "roles": [{"rolename": role}]})
    for username, role in sorted(set(services)):
        if username not in have_clients and not is_device(username):
            commands.append({"command": "createClient", "username": username,
                             "roles": [{"rolename": role}]})
    for username in sorted(have_clients - wanted):
        if is_device(username):
            commands.append({"command": "deleteClient", "username": username})
    for role in sorted(have_roles):
        if role.startswith(_ROLE_PREFIX) and role[len(_ROLE_PREFIX):] not in wanted:
            commands.append({"command": "deleteRole", "rolename": role})
    return commands


def failed(response: dict[str, Any]) -> str | None:
    """The error of one command's response, unless it says the broker is already where the
    command wanted it (another process got there first)."""
    error = str(response.get("error") or "")
    command = str(response.get("command", ""))
    if (not error or (command.startswith("create") and "already exists" in error.lower())
            or (command.startswith("delete") and "not found" in error.lower())
            or (command == "addClientRole" and "already" in error.lower())):
        return None
    return error
