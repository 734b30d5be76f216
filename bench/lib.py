"""Shared plumbing for the benchmarks: our own servers (``devicedata.servers``), devices
with credentials in a registry synced to the broker as the stack does, the C publisher and
subscriber, ``devicedata bridge`` / ``devicedata api`` as child processes, InfluxDB count
polling, peak RSS, and result files.

Everything listens on and loads 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import httpx  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from bridge.registry import broker_sync, open_registry  # noqa: E402
from bridge.settings import Settings  # noqa: E402
from devicedata import procs, servers  # noqa: E402
from support.mqtt import BridgeProcess, wait_until  # noqa: E402

WORK = BENCH / "work"          # gitignored: servers' data, logs, raw outputs
RESULTS = BENCH / "results"    # committed: one small JSON per figure, plus the plots
BIN = BENCH / "bin"
PY = sys.executable
DB = "devicedata"
RETRIES: list[dict[str, Any]] = []  # runs that failed once and were repeated


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setup() -> None:
    subprocess.run([str(BENCH / "setup.sh")], check=True, stdout=subprocess.DEVNULL)


# -- a shared machine: wait for a quiet moment ---------------------------------------------

def machine_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (from /proc/stat), 0..1."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


QUIET: list[dict[str, float]] = []  # per repetition: busy share seen and seconds waited


def wait_quiet(threshold: float = 0.25, max_wait: float = 150.0) -> dict[str, float]:
    """Between repetitions nothing of ours runs but idle servers, so CPU use above
    ``threshold`` is someone else's work on the shared machine: wait (up to ``max_wait``)
    until it drops, and record what was seen."""
    t0 = time.monotonic()
    busy = machine_busy()
    while busy > threshold and time.monotonic() - t0 < max_wait:
        time.sleep(4)
        busy = machine_busy()
    seen = {"busy_share": round(busy, 3), "waited_s": round(time.monotonic() - t0, 1)}
    if seen["waited_s"] > 2:
        log(f"waited {seen['waited_s']:.0f} s for a quiet machine (busy {busy:.0%})")
    QUIET.append(seen)
    return seen


# -- statistics ------------------------------------------------------------------------

def summary(values: list[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def percentile(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


# -- machine and versions ---------------------------------------------------------------

def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()

    def pkg(name: str) -> str:
        return _cmd(["dpkg-query", "-W", "-f=${Version}", name])

    import orjson
    import starlette
    import uvicorn
    nr = "?"
    with contextlib.suppress(OSError, ValueError):
        nr = json.loads((BENCH / "nodered/node_modules/node-red/package.json").read_text())[
            "version"]
    nri = "?"
    with contextlib.suppress(OSError, ValueError):
        nri = json.loads((BENCH / "nodered/node_modules/node-red-contrib-influxdb/"
                          "package.json").read_text())["version"]
    return {
        "nproc": os.cpu_count(), "cpu": model, "memory": mem, "kernel": platform.release(),
        "python": platform.python_version(), "mosquitto": pkg("mosquitto"),
        "libmosquitto": pkg("libmosquitto1"), "influxdb": pkg("influxdb"), "wrk": pkg("wrk"),
        "node": _cmd(["node", "--version"]), "node-red": nr, "node-red-contrib-influxdb": nri,
        "paho-mqtt": paho.__version__ if hasattr(paho, "__version__") else _pip("paho-mqtt"),
        "httpx": httpx.__version__, "orjson": orjson.__version__,
        "starlette": starlette.__version__, "uvicorn": uvicorn.__version__,
        "loadavg_at_save": os.getloadavg(),
    }


def code_state() -> dict[str, Any]:
    """The commit measured, and which of the measured files differed from it (the work
    tree is shared: say exactly what ran)."""
    head = _cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bridge", "api",
                  "devicedata"])
    diff = subprocess.run(["git", "-C", str(ROOT), "diff", "--", "bridge", "api", "devicedata"],
                          capture_output=True).stdout
    import hashlib
    return {"head": head, "dirty": [line for line in dirty.splitlines() if line],
            "diff_sha1": hashlib.sha1(diff).hexdigest()[:12] if diff else ""}


CODE_AT_START = code_state()


def _pip(name: str) -> str:
    from importlib.metadata import version
    try:
        return version(name)
    except Exception:
        return "?"


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"figure": name, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(["python", "bench/bench.py", *sys.argv[1:]]),
            "code": code_state(), "code_at_start": CODE_AT_START, "machine": machine(),
            "retried_runs": list(RETRIES), "quiet_before_reps": list(QUIET),
            **data}
    RETRIES.clear()
    QUIET.clear()
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")
    return path


# -- processes -------------------------------------------------------------------------

def peak_rss_mb(pid: int | None) -> float | None:
    """VmHWM: the process's peak resident set so far, in MB."""
    if pid is None:
        return None
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of a process so far."""
    with contextlib.suppress(OSError):
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def stop_proc(proc: subprocess.Popen[Any] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the environment: InfluxDB, Mosquitto, registry, devices ------------------------------

@dataclass
class Device:
    id: str
    token: str


@dataclass
class Env:
    """Our InfluxDB and Mosquitto (auth on: our template, passwd and ACL), a registry with
    ``devices`` devices, each with a full token that is also its broker password."""

    name: str
    ndevices: int = 10
    keep: bool = False  # keep the directory (the 10M-point store)
    influx: servers.InfluxServer | None = None
    mosquitto: servers.MosquittoServer | None = None
    settings: Settings | None = None
    devices: list[Device] = field(default_factory=list)
    creds_file: Path | None = None
    bridge_password: str = ""
    with_mosquitto: bool = True

    @property
    def dir(self) -> Path:
        # Per process, so two bench runs on the shared machine never share a directory;
        # only the kept 10M-point store has a fixed place.
        return WORK / (self.name if self.keep else f"{self.name}-{os.getpid()}")

    def start(self) -> Env:
        # Idempotent: ``with Env(...).start() as env`` calls start twice (here and in
        # __enter__). A second start once left the first servers running, orphaned, with
        # two brokers autosaving into one persistence file (they raced and one aborted).
        if self.influx is not None:
            return self
        if not self.keep and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        WORK.chmod(0o755)
        self.influx = procs.start_on_free_port(lambda p: servers.InfluxServer(
            self.dir / "influxdb", p, new_session=False))
        data_dir = self.dir / "data"
        data_dir.mkdir(exist_ok=True)
        if self.with_mosquitto:
            self.mosquitto = procs.start_on_free_port(lambda p: servers.MosquittoServer(
                self.dir / "mosquitto", p, new_session=False))
            mq_host, mq_port = self.mosquitto.host, self.mosquitto.port
            mq_dir, mq_pid = self.mosquitto.dir, self.mosquitto.pid_file
        else:
            mq_host, mq_port, mq_dir, mq_pid = "127.0.0.1", 1, data_dir / "mq", Path("")
        self.settings = Settings(
            data_dir=data_dir, http_port=procs.free_port(), influx_url=self.influx.url,
            influx_db=DB, mqtt_host=mq_host, mqtt_port=mq_port, mosquitto_dir=mq_dir,
            mosquitto_pid_file=mq_pid, log_level="INFO",
            mqtt_client_id="bench-bridge",
            # The figures measure the pipeline's capacity: a handful of devices send what
            # a fleet would, far over any one device's fair share (DEVICEDATA_MQTT_POINTS_*,
            # DEVICEDATA_HTTP_*; `bench.py fairness` measures those limits).
            mqtt_points_per_second=0.0, http_requests_per_second=0.0, http_concurrency=0,
            http_read_points_per_second=0.0)
        self.influx.create_database(DB)
        registry = open_registry(self.settings.registry_location)
        try:
            existing = registry.list_devices()
            names = {d.name: d for d in existing}
            self.devices = []
            for i in range(self.ndevices):
                dev = names.get(f"bench-{i:02d}") or registry.create_device(f"bench-{i:02d}")
                token = registry.create_token(dev.id, "full", name="bench").token
                self.devices.append(Device(dev.id, token))
            if self.with_mosquitto:
                broker_sync.sync(self.settings, registry)
        finally:
            registry.close()
        self.bridge_password = broker_sync.bridge_password(self.settings)
        self.creds_file = self.dir / "creds.txt"
        self.creds_file.write_text("".join(f"{d.id} {d.token}\n" for d in self.devices))
        if self.with_mosquitto:
            time.sleep(0.3)  # SIGHUP: the broker re-reads passwd and ACL
        return self

    def stop(self) -> None:
        for server in (self.mosquitto, self.influx):
            if server is not None:
                server.terminate()
        for server in (self.mosquitto, self.influx):
            if server is not None:
                server.wait(15)
        if not self.keep and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Env:
        return self.start()

    def revive(self) -> list[str]:
        """Restart whichever server died (a shared machine); say which."""
        dead = []
        for server in (self.influx, self.mosquitto):
            if server is not None and server.pid is None:
                code = server.proc.returncode if server.proc is not None else None
                dead.append(f"{server.name} (exit code {code})")
                # keep the dead server's log for the report; the run directory goes away
                keep = WORK / f"crash-{server.name}-{time.strftime('%H%M%S')}.log"
                with contextlib.suppress(OSError):
                    shutil.copyfile(server.log, keep)
                    log(f"{server.name} died; its log is kept in {keep}")
                server.start()
        return dead

    def attempt(self, what: str, fn: Callable[[], Any], tries: int = 2) -> Any:
        """Run one measurement; if it fails, say why, revive dead servers, try again. The
        retry is recorded in RETRIES so results can list it."""
        for i in range(tries):
            try:
                return fn()
            except Exception as exc:
                dead = self.revive()
                RETRIES.append({"run": what, "error": f"{type(exc).__name__}: {exc}"[:300],
                                "dead_servers": dead})
                log(f"{what} failed ({exc!r:.200}); dead servers: {dead or 'none'}"
                    + ("; retrying" if i + 1 < tries else ""))
                if i + 1 == tries:
                    raise
        raise AssertionError

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            os.environ["BENCH_KEEP"] = "1"  # keep the logs of a failed run
            log(f"failed; logs kept in {self.dir}")
        self.stop()

    # -- InfluxDB helpers -------------------------------------------------------------

    def query(self, q: str, db: str = DB) -> dict[str, Any]:
        assert self.influx is not None
        return self.influx.query(q, db=db)

    def count(self, where: str, measurement: str = "data", field_name: str = "value",
              db: str = DB) -> int:
        res = self.query(f'SELECT count("{field_name}") FROM "{measurement}" WHERE {where}', db)
        series = res["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0


# -- MQTT clients ------------------------------------------------------------------------

def cpub(env: Env, n: int, qos: int, points: int = 1, base_ms: int = 0, rate: float = 0,
         window: int = 1000, fmt: str = "json") -> subprocess.Popen[str]:
    """``fmt``: ``json`` (TagoIO JSON on devices/{id}/data) or ``senml-cbor`` (SenML CBOR
    packs on devices/{id}/senml/cbor)."""
    assert env.mosquitto is not None and env.creds_file is not None
    argv = [str(BIN / "cpub"), "--host", "127.0.0.1", "--port", str(env.mosquitto.port),
            "--creds", str(env.creds_file), "-n", str(n), "--qos", str(qos),
            "--points", str(points), "--window", str(window), "--base-ms", str(base_ms),
            "--rate", str(rate), "--format", fmt]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def cpub_result(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"cpub exited {proc.returncode}: {out}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def csub(env: Env, n: int, qos: int, idle: float = 5, topic: str = "devices/+/data"
         ) -> subprocess.Popen[str]:
    """The counting C subscriber, logged in as the bridge's broker user (the ACL lets it
    read devices/+/data); returns once its SUBACK is in."""
    assert env.mosquitto is not None and env.settings is not None
    proc = subprocess.Popen(
        [str(BIN / "csub"), "--port", str(env.mosquitto.port), "-u", env.settings.mqtt_username,
         "-P", env.bridge_password, "--topic", topic, "--qos", str(qos),
         "-n", str(n), "--idle", str(idle)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"csub did not subscribe: {line!r}")
    return proc


def csub_result(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return dict(json.loads(out.strip().splitlines()[-1]))


def purge_session(env: Env, client_id: str) -> None:
    """Drop a persistent session (and what the broker queued for it): connect with clean
    start and session expiry 0, then disconnect."""
    assert env.mosquitto is not None and env.settings is not None
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(env.settings.mqtt_username, env.bridge_password)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    done = []
    client.on_connect = lambda *a: done.append(1)
    client.connect("127.0.0.1", env.mosquitto.port, clean_start=True, properties=props)
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        client.loop(0.05)
    client.disconnect()
    client.loop(0.05)
    client._reset_sockets()


# -- our processes -----------------------------------------------------------------------

# A checkout of the code to compare with (``BENCH_BEFORE=/path``: a ``git worktree`` of the
# branch point): figures that support it run its bridge / API next to ours, same servers.
BEFORE = os.environ.get("BENCH_BEFORE", "")


def before_env(settings: Settings) -> tuple[dict[str, str], Settings]:
    """Environment and settings that run ``BEFORE``'s code: its package first on the path
    (and not the current directory), on a copy of the registry taken back to the schema
    version that code knows (the tables ours added, dropped)."""
    import sqlite3
    src = Path(settings.registry_location.removeprefix("sqlite:///"))
    copy = src.with_name("registry-before.sqlite3")
    shutil.copyfile(src, copy)
    db = sqlite3.connect(copy)
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version >= 6:  # migration 6: current values (issue 17)
        db.execute("DROP TABLE IF EXISTS current_values")
        db.execute("ALTER TABLE devices DROP COLUMN current_ready")
    if version >= 5:  # migration 5: serial numbers and network tokens (issue 18)
        db.execute("DROP INDEX IF EXISTS tokens_serial")
        db.execute("ALTER TABLE tokens DROP COLUMN serial")
        db.execute("DROP TABLE IF EXISTS network_tokens")
    db.execute("PRAGMA user_version = 4")  # the branch point's (9790078)
    db.commit()
    db.close()
    env = {"PYTHONPATH": BEFORE, "PYTHONSAFEPATH": "1"}
    return env, settings.replace(registry_url=f"sqlite:///{copy}")


@contextlib.contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

class Bridge:
    """``devicedata bridge`` (tests/support/mqtt.py BridgeProcess), with peak RSS; with
    ``before``, the ``BEFORE`` checkout's bridge."""

    def __init__(self, env: Env, tag: str, *extra: str, settings: Settings | None = None,
                 before: bool = False):
        self.env = env
        self.log = env.dir / f"bridge-{tag}.log"
        settings = settings or env.settings
        assert settings is not None
        self.extra_env: dict[str, str] = {}
        if before:
            self.extra_env, settings = before_env(settings)
        self.proc = BridgeProcess(settings, self.log, *extra)

    def __enter__(self) -> Bridge:
        with environment(self.extra_env):
            self.proc.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.proc.pid if self.proc.proc is not None else None

    def rss(self) -> float | None:
        return peak_rss_mb(self.pid)

    def __exit__(self, *exc: Any) -> None:
        if self.proc.running():
            self.proc.stop()
        assert self.env.settings is not None
        purge_session(self.env, self.env.settings.mqtt_client_id)


class ClientBridgeProcess(BridgeProcess):
    """``bench/mqtt_clients.py CLIENT``: ``devicedata bridge`` with its MQTT connection
    replaced by CLIENT's adapter (``ours`` replaces nothing)."""

    def __init__(self, settings: Settings, log: Path, client: str) -> None:
        super().__init__(settings, log)
        self.client = client

    def start(self) -> ClientBridgeProcess:
        env = {**os.environ, **self.settings.to_env()}
        start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([PY, str(BENCH / "mqtt_clients.py"), self.client],
                                         env=env, stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, cwd=ROOT)
        wait_until(lambda: b"event=mqtt_connected" in self.log.read_bytes()[start:]
                   or self.proc is None or self.proc.poll() is not None,
                   timeout=20, what=f"the bridge over {self.client} to connect")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        return self


class ClientBridge(Bridge):
    """A ``Bridge`` whose MQTT connection is ``client``'s (``bench/mqtt_clients.py``)."""

    def __init__(self, env: Env, tag: str, client: str):
        self.env = env
        self.log = env.dir / f"bridge-{tag}.log"
        assert env.settings is not None
        self.proc = ClientBridgeProcess(env.settings, self.log, client)


class Child:
    """A benchmarked child process: its pid and its peak RSS, stopped on exit."""

    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def rss(self) -> float | None:
        return peak_rss_mb(self.pid)

    def __exit__(self, *exc: Any) -> None:
        stop_proc(self.proc)


class Api(Child):
    """``devicedata api`` on a free port; ready when /health answers 200; with
    ``before``, the ``BEFORE`` checkout's API."""

    def __init__(self, env: Env, tag: str, settings: Settings | None = None,
                 before: bool = False):
        self.env = env
        self.before = before
        self.log = env.dir / f"api-{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        assert env.settings is not None
        self.settings = settings or env.settings
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Api:
        settings = self.settings.replace(http_port=self.port)
        extra: dict[str, str] = {}
        if self.before:
            extra, settings = before_env(settings)
        env = {**os.environ, **settings.to_env(), **extra}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([PY, "-m", "devicedata", "api"], env=env, stdout=out,
                                         stderr=out, stdin=subprocess.DEVNULL,
                                         cwd=BEFORE if self.before else ROOT)
        procs.wait_ready(lambda: procs.http_status(f"{self.url}/health") == 200, "the API",
                         self.log, 30, self.proc)
        return self


class BareApp(Child):
    """bench/bare_app.py: Starlette + uvicorn, parse the JSON body, answer 200."""

    def __init__(self, env: Env):
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = env.dir / "bare.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BareApp:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([PY, str(BENCH / "bare_app.py"), str(self.port)],
                                         stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        procs.wait_ready(lambda: procs.http_status(f"{self.url}/health") == 200, "bare app",
                         self.log, 30, self.proc)
        return self


# -- end-to-end completion ---------------------------------------------------------------

def wait_for_points(env: Env, where: str, expected: int, publisher: subprocess.Popen[Any],
                    *, idle: float = 10.0, timeout: float = 300.0, measurement: str = "data",
                    field_name: str = "value", db: str = DB,
                    on_tick: Callable[[float], None] | None = None) -> tuple[int, float]:
    """Poll count() until ``expected`` points are visible (or the count stops growing for
    ``idle`` seconds after the publisher exited). Every 0.25 s while the publisher runs,
    every 0.05 s after. Returns (points seen, wall-clock time they were first seen)."""
    start = time.monotonic()
    last_count, last_change = -1, time.time()
    seen_at = time.time()
    while True:
        now_mono = time.monotonic()
        if on_tick is not None:
            on_tick(now_mono - start)
        count = env.count(where, measurement, field_name, db)
        now = time.time()
        if count != last_count:
            last_count, last_change, seen_at = count, now, now
        if count >= expected:
            return count, seen_at
        running = publisher.poll() is None
        if not running and now - last_change > idle:
            return count, seen_at
        if now_mono - start > timeout:
            return count, seen_at
        time.sleep(0.25 if running else 0.05)


_run_counter = [0]


def fresh_base_ms(span_ms: int = 10_000_000) -> int:
    """A device-time window no earlier run of this process used: points of each run land
    on keys of their own, so a run counts exactly its own points."""
    _run_counter[0] += 1
    day = 86_400_000
    return (int(time.time() * 1000) // day - 20) * day + _run_counter[0] * span_ms


def ns_window(base_ms: int, span_ms: int = 10_000_000) -> str:
    return f"time >= {base_ms * 1_000_000} AND time < {(base_ms + span_ms) * 1_000_000}"


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    t = time.monotonic()
    yield
    log(f"{label}: {time.monotonic() - t:.1f} s")
