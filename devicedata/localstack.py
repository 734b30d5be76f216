"""The local stack's processes: where they live under DATA_DIR, starting them in order
with readiness checks, and stopping them (also halfway through a failed start).

Layout: DATA_DIR/{mosquitto,influxdb}/ server data and configs, DATA_DIR/tls/ the local CA
and broker certificate (unless the operator gives one), DATA_DIR/logs/*.log,
DATA_DIR/run/*.pid and DATA_DIR/run/stack.json (what ``stack status`` shows).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from bridge.registry import Registry, broker_sync, open_registry
from bridge.settings import STACK_ENV, Settings, configured
from devicedata import broker_tls, procs, servers

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
        # Our own unreaped children are certain, pid files or not (someone may have
        # deleted DATA_DIR under a running stack).
        own = {n: p.pid for n, p in self.children.items() if p.poll() is None}
        stop_recorded(self.layout, say, own)
        for proc in self.children.values():
            proc.poll()  # reaped already; this only updates the Popen's returncode
        self.children.clear()


def stop_recorded(layout: Layout, say: Callable[[str], None],
                  also: dict[str, int] | None = None) -> list[str]:
    running = {**layout.running(), **(also or {})}
    for tier in STOP_TIERS:
        pids = {n: running[n] for n in tier if n in running}
        procs.stop_pids(list(pids.values()), timeout=10.0)
        for name, pid in pids.items():
            say(f"stopped {name} (pid {pid})")
    for name in NAMES:
        with contextlib.suppress(OSError):
            layout.pid_file(name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        layout.state_file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (layout.data_dir / STACK_ENV).unlink(missing_ok=True)
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
    return not (args.no_bridge or os.environ.get("DEVICEDATA_STACK_BRIDGE") == "0")


def _demo_token(registry: Registry) -> tuple[str, str]:
    device = next((d for d in registry.list_devices() if d.name == DEMO_DEVICE), None)
    if device is None:
        device = registry.create_device(DEMO_DEVICE)
    # Tokens are shown once, so every `up` issues a fresh one to print.
    return device.id, registry.create_token(device.id, "full", name="stack up").token


def start(args: argparse.Namespace, base: Settings, say: Callable[[str], None]) -> Stack:
    data_dir = Path(args.data_dir or base.data_dir).expanduser().resolve()
    layout = Layout(data_dir)
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
    plain = base.broker_plain_listener and not args.no_plain_mqtt
    listen = args.mqtt_listen or base.broker_listen_address
    ports = [(http_port, "--http-port", base.http_host),
             (args.mqtt_tls_port, "--mqtt-tls-port", listen),
             (args.influx_port, "--influx-port", "127.0.0.1")]
    _check_ports([(mqtt_port, "--mqtt-port", listen), *ports] if plain else ports)
    data_dir.mkdir(parents=True, exist_ok=True)
    tls, ca_file = broker_tls.for_stack(args, base, data_dir, say)
    influx = servers.InfluxServer(data_dir / "influxdb", args.influx_port,
                                log=layout.log("influxd"))
    settings = base.replace(
        data_dir=data_dir, http_port=http_port, influx_url=influx.url,
        mqtt_host=procs.dial_address(listen),
        mqtt_port=mqtt_port, mosquitto_dir=data_dir / "mosquitto",
        mosquitto_pid_file=layout.pid_file("mosquitto"), mqtt_tls=False,
        # What the console tells devices to dial: this run's own listeners (a killed
        # stack's stack.env, which Settings.from_env reads, must not name the last run's).
        public_mqtt_port=mqtt_port if plain else -1, public_mqtt_tls_port=tls.port,
        public_ca_file=str(ca_file) if ca_file is not None else "")
    if not plain:  # the bridge too must use TLS, and check the certificate's name
        settings = settings.replace(
            mqtt_port=tls.port, mqtt_tls=True,
            mqtt_tls_ca_file=configured(base.mqtt_tls_ca_file) or ca_file or Path(""),
            mqtt_tls_server_name=base.mqtt_tls_server_name or broker_tls.tls_host(tls.cert))
    mosquitto = servers.MosquittoServer(settings.broker_dir, mqtt_port,
                                      pid_file=layout.pid_file("mosquitto"),
                                      bridge_user=settings.mqtt_username,
                                      admin_user=settings.mqtt_admin_username,
                                      log=layout.log("mosquitto"), tls=tls, plain=plain,
                                      listen=listen)
    stack = Stack(layout, settings)
    registry = open_registry(settings.registry_location)
    try:
        # No broker yet: render its files whole (its access-rule plugin reads them only now).
        broker_sync.prepare(settings, registry)
        broker_tls.check_readable(settings.broker_dir, tls)
        for server, where in ((influx, f"127.0.0.1:{influx.port}"),
                              (mosquitto, f"{listen or '0.0.0.0'}:{_ports(mosquitto)}")):
            say(f"starting {server.name} on {where} (log: {server.log})")
            server.start()
            assert server.proc is not None
            stack.add(server.name, server.proc)
        if mosquitto.note:
            say(f"note: {mosquitto.note}")
        influx.create_database(settings.influx_db)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **child_env(settings)}
        host = settings.http_host
        https = configured(settings.http_tls_cert_file) is not None
        api_url = (f"{'https' if https else 'http'}://"
                   f"{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{http_port}")
        say(f"starting the API on {api_url} (log: {layout.log('api')})")
        stack.add("api", procs.spawn([sys.executable, "-m", "devicedata", "api"],
                                     layout.log("api"), env))
        # Is our own child up? Over HTTPS its certificate may name another host than the
        # loopback address probed here, and the probe sends no secret: not verified.
        procs.wait_ready(lambda: procs.http_status(f"{api_url}/health", verify=False) == 200,
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
    stack.info.update(mqtt_port=mqtt_port if plain else None, mqtt_tls_port=tls.port,
                      mqtt_tls_host=broker_tls.tls_host(tls.cert),
                      ca_file=str(ca_file) if ca_file is not None else "")
    public = {k: v for k, v in stack.info.items() if k not in ("device_token", "admin_token")}
    layout.state_file.write_text(json.dumps(public, indent=2) + "\n")
    # So that `devicedata device ...` run beside this stack reaches its InfluxDB and
    # broker without the user exporting anything (Settings.from_env reads this file).
    env_lines = [f"{key}={value}" for key, value in child_env(settings).items()]
    (data_dir / STACK_ENV).write_text("# written by `devicedata stack`; removed by `stack "
                                      "down`\n" + "\n".join(env_lines) + "\n")
    return stack


def _ports(broker: servers.MosquittoServer) -> str:
    tls = f"{broker.tls_port} (TLS)"
    return f"{broker.port} and {tls}" if broker.plain else f"{tls} only"


def child_env(settings: Settings) -> dict[str, str]:
    return {
        "DEVICEDATA_DATA_DIR": str(settings.data_dir),
        "DEVICEDATA_HTTP_PORT": str(settings.http_port),
        "DEVICEDATA_INFLUX_URL": settings.influx_url,
        "DEVICEDATA_INFLUX_DB": settings.influx_db,
        "DEVICEDATA_MQTT_HOST": settings.mqtt_host,
        "DEVICEDATA_MQTT_PORT": str(settings.mqtt_port),
        "DEVICEDATA_MQTT_TLS": "true" if settings.mqtt_tls else "false",
        "DEVICEDATA_MQTT_TLS_CA_FILE": str(configured(settings.mqtt_tls_ca_file) or ""),
        "DEVICEDATA_MQTT_TLS_SERVER_NAME": settings.mqtt_tls_server_name,
        "DEVICEDATA_MOSQUITTO_DIR": str(settings.broker_dir),
        "DEVICEDATA_MOSQUITTO_PID_FILE": str(settings.mosquitto_pid_file),
        "DEVICEDATA_PUBLIC_MQTT_PORT": str(settings.public_mqtt_port),
        "DEVICEDATA_PUBLIC_MQTT_TLS_PORT": str(settings.public_mqtt_tls_port),
        "DEVICEDATA_PUBLIC_CA_FILE": settings.public_ca_file,
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
            return f"u'{settings.mqtt_username}')".encode() in f.read()

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
