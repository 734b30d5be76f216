"""``devicedata device|token|network ...``: manage the registry from a shell.

The operations themselves (and their JSON shapes) are ``bridge.registry.devices``, shared with the
admin API; this module only parses arguments and prints. Plain tokens are printed only by
the commands that create them; listings show prefixes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bridge.errors import DeviceDataError
from bridge.model.timeparse import parse_duration
from bridge.registry import PERMISSIONS, Registry, broker_sync, open_registry
from bridge.registry.devices import (
    DeviceAdmin,
    device_json,
    iso,
    network_json,
    token_json,
    token_status,
    topic,
)
from bridge.settings import Settings

SettingsLoader = Callable[[], Settings]
DeviceDeletedHook = Callable[[Settings, str], None]
_Command = Callable[[argparse.Namespace, Settings, Registry], int]


def on_credentials_changed(settings: Settings, registry: Registry) -> None:
    """Push credential changes to the broker (a seam the tests replace)."""
    broker_sync.sync(settings, registry)


def _warn_sync_failed(exc: Exception) -> None:
    print(f"warning: broker credentials not updated: {exc}", file=sys.stderr)


def _admin(settings: Settings, registry: Registry) -> DeviceAdmin:
    # Looked up at call time, so tests can replace ``on_credentials_changed``.
    return DeviceAdmin(settings, registry,
                       sync=lambda s, r: on_credentials_changed(s, r),
                       on_sync_error=_warn_sync_failed)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _labels(pairs: list[tuple[str, str]], width: int = 10) -> None:
    for key, value in pairs:
        print(f"  {key.ljust(width)}  {value}")


def _json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _device_create(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    new = _admin(settings, registry).create_device(args.name)
    if args.json:
        _json(new.as_json())
        return 0
    device, token = new.device, new.issued.token
    print("Device created. The token is shown only now: store it.")
    _labels([("id", device.id), ("name", device.name), ("token", token),
             ("permission", "full")])
    print("MQTT")
    _labels([("username", device.id), ("password", token), ("topic", topic(device.id))])
    return 0


def _device_list(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    devices = registry.list_devices()
    if args.json:
        _json([device_json(d) for d in devices])
        return 0
    _table(["ID", "NAME", "CREATED", "LAST INPUT"],
           [[d.id, d.name, iso(d.created_ns) or "", iso(d.last_input_ns) or "-"]
            for d in devices])
    return 0


def _device_rename(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    device = _admin(settings, registry).rename_device(args.id, args.name)
    print(f"Renamed device {device.id} to {device.name}")
    return 0


def _device_delete(args: argparse.Namespace, settings: Settings, registry: Registry,
                   hook: DeviceDeletedHook | None) -> int:
    delete_data = None if hook is None else (lambda device_id: hook(settings, device_id))
    device = _admin(settings, registry).delete_device(args.id, delete_data)
    print(f"Deleted device {device.id} ({device.name}) and its tokens")
    return 0


def _token_create(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    expires = None if args.expires is None else time.time_ns() + args.expires
    issued = _admin(settings, registry).create_token(args.device_id, args.permission,
                                                     expires, args.name, args.serial)
    info = issued.info
    if args.json:
        _json({"token": issued.token, **token_json(info, info.created_ns)})
        return 0
    print("Token created. It is shown only now: store it.")
    _labels([("token", issued.token), ("prefix", info.prefix), ("device", info.device_id),
             ("permission", info.permission), ("name", info.name or "-"),
             ("expires", iso(info.expires_ns) or "never"), ("serial", info.serial or "-")])
    return 0


def _token_list(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    tokens = registry.list_tokens(args.device_id)
    now = time.time_ns()
    if args.json:
        _json([token_json(t, now) for t in tokens])
        return 0
    _table(["PREFIX", "PERMISSION", "STATUS", "NAME", "CREATED", "EXPIRES", "SERIAL"],
           [[t.prefix, t.permission, token_status(t, now), t.name or "-",
             iso(t.created_ns) or "", iso(t.expires_ns) or "never", t.serial or "-"]
            for t in tokens])
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    info = _admin(settings, registry).revoke_token(args.token_or_prefix)
    print(f"Revoked token {info.prefix}... of device {info.device_id}")
    return 0


def _network_create(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    issued = registry.create_network(args.name)
    if args.json:
        _json({"token": issued.token, **network_json(issued.info)})
        return 0
    print("Network token created. It is shown only now: store it.")
    _labels([("token", issued.token), ("prefix", issued.info.prefix),
             ("name", issued.info.name)])
    print("Give it to the network server as the `token` header of its webhook; it can post")
    print("uplinks for devices whose token carries their DevEUI (token create --serial).")
    return 0


def _network_list(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    networks = registry.list_networks()
    if args.json:
        _json([network_json(n) for n in networks])
        return 0
    _table(["PREFIX", "STATUS", "NAME", "CREATED"],
           [[n.prefix, network_json(n)["status"], n.name, iso(n.created_ns) or ""]
            for n in networks])
    return 0


def _network_revoke(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    info = registry.revoke_network(args.token_or_prefix)
    print(f"Revoked network token {info.prefix}... ({info.name})")
    return 0


def _runner(command: _Command, settings_loader: SettingsLoader
            ) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            settings = settings_loader()
            registry = open_registry(settings.registry_location)
            try:
                return command(args, settings, registry)
            finally:
                registry.close()
        except (DeviceDataError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return run


def add_commands(subparsers: Any, settings_loader: SettingsLoader,
                 on_device_deleted: DeviceDeletedHook | None = None) -> None:
    """Add ``device`` and ``token`` to an ``ArgumentParser.add_subparsers()`` object.

    ``on_device_deleted(settings, device_id)`` runs before a device leaves the registry
    (it removes the device's stored data)."""
    def leaf(group: Any, name: str, command: _Command, help_text: str) -> Any:
        parser = group.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(func=_runner(command, settings_loader))
        return parser

    def device_delete(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
        return _device_delete(args, settings, registry, on_device_deleted)

    device = subparsers.add_parser("device", help="create, list, rename and delete devices")
    dev = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    p = leaf(dev, "create", _device_create, "create a device and its first (full) token")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = leaf(dev, "list", _device_list, "list devices")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p = leaf(dev, "rename", _device_rename, "rename a device")
    p.add_argument("id")
    p.add_argument("name")
    p = leaf(dev, "delete", device_delete, "delete a device, its tokens and its data")
    p.add_argument("id")

    token = subparsers.add_parser("token", help="create, list and revoke device tokens")
    tok = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = leaf(tok, "create", _token_create, "create a token for a device")
    p.add_argument("device_id")
    p.add_argument("--permission", required=True, choices=PERMISSIONS)
    p.add_argument("--expires", type=_duration, metavar="DURATION",
                   help="lifetime such as 30d, 12h, 90m, 2w (default: never expires)")
    p.add_argument("--name", default="", help="a label shown in listings")
    p.add_argument("--serial", metavar="DEVEUI",
                   help="serial number (TagoIO's serie_number; a LoRaWAN DevEUI) that "
                        "network tokens resolve to this device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = leaf(tok, "list", _token_list, "list a device's tokens (prefixes only)")
    p.add_argument("device_id")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p = leaf(tok, "revoke", _token_revoke, "revoke a token, by full token or prefix")
    p.add_argument("token_or_prefix", metavar="TOKEN_OR_PREFIX")

    network = subparsers.add_parser(
        "network", help="create, list and revoke network tokens (LoRaWAN network servers)")
    net = network.add_subparsers(dest="network_command", required=True, metavar="ACTION")
    p = leaf(net, "create", _network_create, "create a network token (shown once)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p = leaf(net, "list", _network_list, "list network tokens (prefixes only)")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p = leaf(net, "revoke", _network_revoke, "revoke a network token, by full token or prefix")
    p.add_argument("token_or_prefix", metavar="TOKEN_OR_PREFIX")
