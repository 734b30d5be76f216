"""``devicedata stack up|run|down|status``: the whole service on one machine, one command.

Mosquitto and InfluxDB run as plain child processes with our own configs under DATA_DIR
(never the system services); the API (and the bridge, once it exists) run as
``python -m devicedata ...`` children configured through ``DEVICEDATA_*`` variables.
Layout: DATA_DIR/{mosquitto,influxdb}/ server data, logs/*.log, run/*.pid + run/stack.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from bridge import broker_sync
from bridge.registry import Registry, open_registry
from bridge.settings import Settings
from devicedata import procs

SettingsLoader = Callable[[], Settings]
DEMO_DEVICE = "demo"
# Stopped tier by tier: the API and bridge drain into InfluxDB and ack to Mosquitto, so
# both servers must outlive them; the two servers do not depend on each other.
STOP_TIERS = (("bridge", "api"), ("mosquitto", "influxd"))
NAMES = tuple(n for tier in STOP_TIERS for n in tier)
_NEEDLE = {"api": "devicedata", "bridge": "devicedata",
           "mosquitto": "mosquitto", "influxd": "influxd"}


@dataclass
class Layout:
    data_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    def running(self) -> dict[str, int]:
        """name -> pid of every recorded process still alive; stale pid files are removed."""
        out: dict[str, int] = {}
        for name in NAMES:
            pid = procs.read_pid(self.pid_file(name))
            if pid is not None and procs.pid_runs(pid, _NEEDLE[name]):
                out[name] = pid
            else:
                self.pid_file(name).unlink(missing_ok=True)
        return out


@dataclass
class Stack:
    """What ``up`` started; ``stop`` undoes it (also halfway, when ``up`` fails)."""

    layout: Layout
    settings: Settings
    children: dict[str, Any] = field(default_factory=dict)  # name -> Popen
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, proc: Any) -> None:
        self.children[name] = proc
        procs.write_pid(self.layout.pid_file(name), proc.pid)

    def dead(self) -> str | None:
        return next((n for n, p in self.children.items() if p.poll() is not None), None)

    def stop(self, say: Callable[[str], None]) -> None:
        stop_recorded(self.layout, say)
        for proc in self.children.values():
            proc.poll()  # reaped already; this only updates the Popen's returncode
        self.children.clear()


def stop_recorded(layout: Layout, say: Callable[[str], None]) -> list[str]:
    running = layout.running()
    for tier in STOP_TIERS:
        pids = {n: running[n] for n in tier if n in running}
        procs.stop_pids(list(pids.values()), timeout=10.0)
        for name, pid in pids.items():
            say(f"stopped {name} (pid {pid})")
    for name in NAMES:
        layout.pid_file(name).unlink(missing_ok=True)
    layout.state_file.unlink(missing_ok=True)
    return [n for n in NAMES if n in running]


def _fail(message: str) -> NoReturn:
    raise procs.ProcessError(message)


def _check_ports(ports: list[tuple[int, str, str]]) -> None:
    seen: dict[int, str] = {}
    for port, flag, host in ports:
        if port in seen:
            _fail(f"{flag} and {seen[port]} are both {port}; give each server its own port")
        seen[port] = flag
        if not procs.port_free(port, host):
            spare = next((p for p in range(port + 1, port + 200) if p not in seen
                          and procs.port_free(p, host)), None)
            hint = f" (e.g. {flag} {spare})" if spare else ""
            _fail(f"port {port} ({flag}) is already in use; choose another with {flag}{hint}")


def bridge_wanted(args: argparse.Namespace) -> bool:
    if args.no_bridge or os.environ.get("DEVICEDATA_STACK_BRIDGE") == "0":
        return False
    try:
        from devicedata import serve
    except ImportError:
        return False
    return getattr(serve, "BRIDGE_AVAILABLE", False) is True


def _demo_token(registry: Registry) -> tuple[str, str]:
    device = next((d for d in registry.list_devices() if d.name == DEMO_DEVICE), None)
    if device is None:
        device = registry.create_device(DEMO_DEVICE)
    # Tokens are shown once, so every `up` issues a fresh one to print.
    return device.id, registry.create_token(device.id, "full", name="stack up").token


def start(args: argparse.Namespace, base: Settings, say: Callable[[str], None]) -> Stack:
    data_dir = Path(args.data_dir or base.data_dir).expanduser().resolve()
    layout = Layout(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    already = layout.running()
    if already:
        _fail(f"a stack already runs from {data_dir} ({', '.join(already)}); "
              f"stop it with `devicedata stack down --data-dir {data_dir}`")
    for binary, package in (("mosquitto", "mosquitto"), ("influxd", "influxdb")):
        if procs.find_binary(binary) is None:
            _fail(f"`{binary}` not found: install Debian's `{package}` package "
                  f"(apt-get install -y {package}) or run `make run`, which does")
    http_port = args.http_port if args.http_port is not None else base.http_port
    mqtt_port = args.mqtt_port if args.mqtt_port is not None else base.mqtt_port
    _check_ports([(http_port, "--http-port", base.http_host),
                  (mqtt_port, "--mqtt-port", "127.0.0.1"),
                  (args.influx_port, "--influx-port", "127.0.0.1")])
    influx = procs.InfluxServer(data_dir / "influxdb", args.influx_port,
                                log=layout.log("influxd"))
    settings = base.replace(
        data_dir=data_dir, http_port=http_port, influx_url=influx.url, mqtt_host="127.0.0.1",
        mqtt_port=mqtt_port, mosquitto_dir=data_dir / "mosquitto",
        mosquitto_pid_file=layout.pid_file("mosquitto"))
    mosquitto = procs.MosquittoServer(settings.broker_dir, mqtt_port,
                                      pid_file=layout.pid_file("mosquitto"),
                                      bridge_user=settings.mqtt_username,
                                      log=layout.log("mosquitto"))
    stack = Stack(layout, settings)
    registry = open_registry(settings.registry_location)
    try:
        # No broker yet, so nothing to signal: the files only have to exist for its start.
        broker_sync.sync(settings.replace(mosquitto_pid_file=Path("")), registry)
        for server in (influx, mosquitto):
            say(f"starting {server.name} on 127.0.0.1:{server.port} (log: {server.log})")
            server.start()
            assert server.proc is not None
            stack.add(server.name, server.proc)
        influx.create_database(settings.influx_db)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **child_env(settings)}
        api_url = f"http://127.0.0.1:{http_port}"
        say(f"starting the API on {api_url} (log: {layout.log('api')})")
        stack.add("api", procs.spawn([sys.executable, "-m", "devicedata", "api"],
                                     layout.log("api"), env))
        procs.wait_ready(lambda: procs.http_status(f"{api_url}/health") == 200,
                         f"the API on {api_url}", layout.log("api"), 30.0,
                         stack.children["api"])
        if bridge_wanted(args):
            _start_bridge(stack, env, say)
        device_id, token = _demo_token(registry)
        broker_sync.sync(settings, registry)
    except BaseException:
        say("start-up failed; stopping what was started")
        stack.stop(say)
        raise
    finally:
        registry.close()
    stack.info = describe(stack, api_url, device_id, token)
    public = {k: v for k, v in stack.info.items() if k not in ("device_token", "admin_token")}
    layout.state_file.write_text(json.dumps(public, indent=2) + "\n")
    return stack


def child_env(settings: Settings) -> dict[str, str]:
    return {
        "DEVICEDATA_DATA_DIR": str(settings.data_dir),
        "DEVICEDATA_HTTP_PORT": str(settings.http_port),
        "DEVICEDATA_INFLUX_URL": settings.influx_url,
        "DEVICEDATA_INFLUX_DB": settings.influx_db,
        "DEVICEDATA_MQTT_HOST": settings.mqtt_host,
        "DEVICEDATA_MQTT_PORT": str(settings.mqtt_port),
        "DEVICEDATA_MOSQUITTO_DIR": str(settings.broker_dir),
        "DEVICEDATA_MOSQUITTO_PID_FILE": str(settings.mosquitto_pid_file),
    }


def _start_bridge(stack: Stack, env: dict[str, str], say: Callable[[str], None]) -> None:
    layout, settings = stack.layout, stack.settings
    broker_log = layout.log("mosquitto")
    offset = broker_log.stat().st_size if broker_log.exists() else 0
    say(f"starting the bridge (log: {layout.log('bridge')})")
    stack.add("bridge", procs.spawn([sys.executable, "-m", "devicedata", "bridge"],
                                    layout.log("bridge"), env))

    def connected() -> bool:  # the broker's own log is the one readiness signal it gives
        with broker_log.open("rb") as f:
            f.seek(offset)
            return f" as {settings.mqtt_client_id} ".encode() in f.read()

    procs.wait_ready(connected, "the bridge's broker connection", layout.log("bridge"), 30.0,
                     stack.children["bridge"])


def describe(stack: Stack, api_url: str, device_id: str, token: str) -> dict[str, Any]:
    settings, layout = stack.settings, stack.layout
    info: dict[str, Any] = {
        "api_url": api_url, "mqtt_host": settings.mqtt_host, "mqtt_port": settings.mqtt_port,
        "influx_url": settings.influx_url, "influx_db": settings.influx_db,
        "device_id": device_id, "device_name": DEMO_DEVICE, "device_token": token,
        "mqtt_topic": f"devices/{device_id}/data", "bridge": "bridge" in stack.children,
        "data_dir": str(layout.data_dir), "logs_dir": str(layout.logs_dir),
        "pids": {n: p.pid for n, p in stack.children.items()},
    }
    admin_file = layout.data_dir / "admin-token"
    admin = settings.admin_token or (admin_file.read_text().strip()
                                     if admin_file.exists() else "")
    if admin:
        info["admin_token"] = admin
    return info


def friendly(info: dict[str, Any]) -> str:
    api, token, dev = info["api_url"], info["device_token"], info["device_id"]
    body = '{"variable":"temperature","value":21.5,"unit":"C"}'
    mqtt_body = '{"variable":"humidity","value":48,"unit":"%"}'
    lines = [
        f"devicedata is up (data and logs under {info['data_dir']})",
        "",
        f"  API       {api}",
        f"  MQTT      {info['mqtt_host']}:{info['mqtt_port']}  "
        "(username = device id, password = its token)",
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
        f"  mosquitto_pub -h {info['mqtt_host']} -p {info['mqtt_port']} -u {dev} -P \"$TOKEN\" "
        f"-q 1 -t {info['mqtt_topic']} -m '{mqtt_body}'",
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
    for key in ("api_url", "mqtt_port", "influx_url", "device_id"):
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
        p.add_argument("--mqtt-port", type=int, help="Mosquitto port (default 1883)")
        p.add_argument("--influx-port", type=int, default=8086, help="InfluxDB port (default "
                       "8086)")
        p.add_argument("--no-bridge", action="store_true", help="do not start the MQTT bridge")
    command("down", "stop everything `stack up` started", cmd_down)
    status = command("status", "show which stack processes run", cmd_status)
    status.add_argument("--json", action="store_true", help="print one JSON object instead")
