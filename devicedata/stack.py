"""``devicedata stack up|run|down|status``: the whole service on one machine, one command.

Mosquitto and InfluxDB run as plain child processes with our own configs under DATA_DIR
(never the system services); the API (and the bridge, once ``devicedata.serve`` has one)
run as ``python -m devicedata ...`` children configured through ``DEVICEDATA_*`` variables.
The process handling is in ``devicedata.localstack``; this module is the command line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.settings import Settings
from devicedata import procs
from devicedata.localstack import NAMES, Layout, start, stop_recorded

SettingsLoader = Callable[[], Settings]

STACK_MQTT_PORT = 18830
STACK_MQTT_TLS_PORT = 18883
STACK_INFLUX_PORT = 18086


def friendly(info: dict[str, Any]) -> str:
    api, token, dev = info["api_url"], info["device_token"], info["device_id"]
    body = '{"variable":"temperature","value":21.5,"unit":"C"}'
    mqtt_body = '{"variable":"humidity","value":48,"unit":"%"}'
    plain, ca_file = info["mqtt_port"] is not None, info["ca_file"]
    tls_host = info["mqtt_tls_host"]
    trust = f"--cafile {ca_file}" if ca_file else "--capath /etc/ssl/certs"
    lines = [
        f"devicedata is up (data and logs under {info['data_dir']})",
        "",
        f"  API       {api}",
        *([f"  MQTT      {info['mqtt_host']}:{info['mqtt_port']}  "
           "(username = device id, password = its token)"] if plain else []),
        f"  MQTT/TLS  {tls_host}:{info['mqtt_tls_port']}  "
        + (f"(devices trust the CA {ca_file})" if ca_file else "(your certificate)"),
        f"  InfluxDB  {info['influx_url']}  (database {info['influx_db']})",
        "",
        f'Demo device "{info["device_name"]}"',
        f"  id     {dev}",
        f"  token  {token}   (shown once; a new one on every start)",
        "",
        "Try it:",
        f"  API={api}",
        f"  TOKEN={token}",
        f"  curl -s -X POST $API/data -H \"token: $TOKEN\" -H 'content-type: application/json' "
        f"-d '{body}'",
        '  curl -s "$API/data?variable=temperature&qty=5" -H "token: $TOKEN"',
        *([f"  mosquitto_pub -h {info['mqtt_host']} -p {info['mqtt_port']} -u {dev} "
           f"-P \"$TOKEN\" -q 1 -t {info['mqtt_topic']} -m '{mqtt_body}'"] if plain else []),
        f"  mosquitto_pub -h {tls_host} -p {info['mqtt_tls_port']} {trust} -u {dev} "
        f"-P \"$TOKEN\" -q 1 -t {info['mqtt_topic']}/temperature -m 21.5",
    ]
    if not info["bridge"]:
        lines.append("  (the MQTT bridge is not running, so MQTT messages are not stored yet)")
    if "admin_token" in info:
        lines += ["", f"Admin token (for /admin/...): {info['admin_token']}"]
    return "\n".join(lines)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    stack = start(args, settings, _say)
    if args.json:
        print(json.dumps(stack.info))
    else:
        print(friendly(stack.info))
        print(f"\nStop it with: devicedata stack down --data-dir {stack.layout.data_dir}")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    # SIGTERM takes the same clean path as Ctrl-C, during start-up too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack = start(args, settings, _say)
    except KeyboardInterrupt:
        return 0
    print(json.dumps(stack.info) if args.json else friendly(stack.info), flush=True)
    if not args.json:
        print("\nPress Ctrl-C to stop everything.", flush=True)
    try:
        while (died := stack.dead()) is None:
            time.sleep(0.2)
    except KeyboardInterrupt:
        # A second Ctrl-C must not abandon the servers halfway through stopping them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _say("stopping...")
        stack.stop(_say)
        return 0
    proc = stack.children[died]
    log = stack.layout.log(died)
    _say(f"error: {died} (pid {proc.pid}) exited unexpectedly with code {proc.returncode}; "
         f"last lines of {log}:\n{procs.tail(log)}")
    stack.stop(_say)
    return 1


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    layout = Layout(Path(args.data_dir or settings.data_dir).expanduser().resolve())
    if not stop_recorded(layout, print):
        print(f"nothing runs from {layout.data_dir}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    layout = Layout(Path(args.data_dir or settings.data_dir).expanduser().resolve())
    running = layout.running()
    try:
        state: dict[str, Any] = json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        state = {}
    if args.json:
        print(json.dumps({"data_dir": str(layout.data_dir), "running": running, **{
            k: v for k, v in state.items() if k != "pids"}}))
        return 0
    if not running:
        print(f"nothing runs from {layout.data_dir}")
        return 0
    for name in NAMES:
        print(f"  {name:<10} {f'running (pid {running[name]})' if name in running else '-'}")
    for key in ("api_url", "mqtt_port", "mqtt_tls_port", "ca_file", "influx_url", "device_id"):
        if key in state:
            print(f"  {key:<10} {state[key]}")
    return 0


def add_commands(subparsers: Any, settings_loader: SettingsLoader) -> None:
    stack = subparsers.add_parser(
        "stack", help="run Mosquitto, InfluxDB, the API and the bridge locally",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")

    def command(name: str, help: str, func: Callable[[argparse.Namespace, Settings], int]
                ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        p.add_argument("--data-dir", help="where data, logs and pids live (default: .data, "
                       "or DEVICEDATA_DATA_DIR)")
        p.set_defaults(func=lambda args: func(args, settings_loader()))
        return p

    for name, func, help in (
            ("up", cmd_up, "start the stack in the background and print how to use it"),
            ("run", cmd_run, "start the stack in the foreground; Ctrl-C stops it")):
        p = command(name, help, func)
        p.add_argument("--json", action="store_true", help="print one JSON object instead")
        p.add_argument("--http-port", type=int, help="API port (default 8888)")
        # Not 1883/8086: Debian's packages start system services there on most machines,
        # and this stack must run beside them.
        p.add_argument("--mqtt-port", type=int, default=STACK_MQTT_PORT,
                       help=f"Mosquitto port (default {STACK_MQTT_PORT})")
        p.add_argument("--mqtt-tls-port", type=int, default=STACK_MQTT_TLS_PORT,
                       help=f"Mosquitto's TLS port (default {STACK_MQTT_TLS_PORT})")
        p.add_argument("--tls-cert", type=Path, help="certificate (PEM, with its chain) for "
                       "the TLS listener instead of one from the local CA made in "
                       "DATA_DIR/tls (DEVICEDATA_BROKER_TLS_CERT_FILE)")
        p.add_argument("--tls-key", type=Path, help="its private key "
                       "(DEVICEDATA_BROKER_TLS_KEY_FILE)")
        p.add_argument("--no-plain-mqtt", action="store_true", help="TLS only: no plain MQTT "
                       "listener (DEVICEDATA_BROKER_PLAIN_LISTENER=false)")
        p.add_argument("--mqtt-listen", metavar="ADDRESS", help="address Mosquitto listens "
                       "on (default 127.0.0.1; 0.0.0.0 for devices on other machines; "
                       "DEVICEDATA_BROKER_LISTEN_ADDRESS)")
        p.add_argument("--influx-port", type=int, default=STACK_INFLUX_PORT,
                       help=f"InfluxDB port (default {STACK_INFLUX_PORT})")
        p.add_argument("--no-bridge", action="store_true", help="do not start the MQTT bridge")
    command("down", "stop everything `stack up` started", cmd_down)
    status = command("status", "show which stack processes run", cmd_status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead")
