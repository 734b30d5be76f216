"""Durability soak (issue 4): a long InfluxDB outage under steady load, with the bridge and
the API SIGKILLed at random moments, then an exact comparison of what was acknowledged with
what InfluxDB holds.

What runs (all on 127.0.0.1, all children of this script, all stopped by it):

- our InfluxDB and Mosquitto (``bench/lib.Env``: the repository's templates, broker auth
  on, credentials synced from the registry as the stack does), N devices;
- one ``devicedata bridge`` and one ``devicedata api`` (each with its own spool);
- the load: ``bench/bin/cpub`` publishes QoS 1 single-point messages, round-robin over the
  devices, each point with a unique device time (``base + k`` ms), so the expected set is
  known exactly; a Python generator POSTs /data (20 timed points per request, variables
  ``http_*``), counts only 200s as acknowledged and retries 503/429/5xx after
  ``Retry-After`` and connection errors after 0.25 s, with the same body, as a client would.

During the run InfluxDB is stopped for the outage window, the bridge is SIGKILLed ``--kills``
times and the API ``--api-kills`` times at random moments (seeded), each restarted at once.
A sampler reads VmRSS/VmHWM of both processes and the size of both spool directories every
second. Afterwards the script waits until both spools are empty and InfluxDB stops
growing, stops the bridge and the API, then reads every stored point back per device and
variable and compares sets: acknowledged but absent (lost), present but never sent (extra,
which is how a duplicate would show: InfluxDB cannot hold two points with one key), and
values that differ from what was sent.

MQTT "acknowledged" here is the device's PUBACK from Mosquitto, which is stricter than the
bridge's own PUBACK (docs/guarantees.md): the broker is not restarted, so every message it
took must end up stored.

    .venv/bin/python bench/soak.py            # 14 min, 10-min outage, 20 bridge kills
    .venv/bin/python bench/soak.py --quick    # 90 s, 30-s outage, 5 kills (checks the script)

Results: bench/results/soak.json (``--quick``: bench/work/soak-quick/soak.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
import lib
import orjson
from lib import BIN, PY, RESULTS, ROOT, WORK, Env, log

from bridge.settings import Settings
from devicedata import procs
from support.mqtt import BridgeProcess

VARIABLES = 25          # cpub's default --variables
HTTP_VARIABLES = 4
SEGMENT = re.compile(r"(\d{12})\.seg")
FRAME = struct.Struct(">4sII")   # bridge/write/spool.py record header: magic, length, crc32
MAGIC = b"DDS\x01"


class Abort(Exception):
    """SIGTERM/SIGHUP/SIGALRM: stop now, clean up, keep what was measured."""


def _raise_abort(signum: int, frame: Any) -> None:
    raise Abort(f"signal {signal.Signals(signum).name}")


# -- /proc and spool directories ----------------------------------------------------------

def proc_mem_kb(pid: int | None) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB, or (0, 0) when the process is gone."""
    if pid is None:
        return 0, 0
    rss = hwm = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def _head(directory: Path) -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError):
        seg, off = (directory / "head").read_text().split()
        return int(seg), int(off)
    return 0, 0


def spool_disk(directory: Path) -> tuple[int, int]:
    """(bytes of all files in the spool dir, bytes of segments not yet consumed)."""
    head_seg, head_off = _head(directory)
    total = backlog = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            total += size
            m = SEGMENT.fullmatch(entry.name)
            if m:
                seg = int(m.group(1))
                if seg > head_seg:
                    backlog += size
                elif seg == head_seg:
                    backlog += max(0, size - head_off)
    return total, backlog


def spool_points(directory: Path) -> tuple[int, int]:
    """(records, points) not yet consumed, by parsing the segments from the head (a
    record is one batch of newline-separated line protocol). A frame still being
    written ends the count."""
    head_seg, head_off = _head(directory)
    segs = []
    with contextlib.suppress(FileNotFoundError):
        segs = sorted(int(m.group(1)) for e in os.scandir(directory)
                      if (m := SEGMENT.fullmatch(e.name)) and int(m.group(1)) >= head_seg)
    records = points = 0
    for seg in segs:
        try:
            data = (directory / f"{seg:012d}.seg").read_bytes()
        except FileNotFoundError:
            continue
        at = head_off if seg == head_seg else 0
        while at + FRAME.size <= len(data):
            magic, length, _ = FRAME.unpack_from(data, at)
            end = at + FRAME.size + length
            if magic != MAGIC or end > len(data):
                break
            payload = data[at + FRAME.size:end]
            records += 1
            points += payload.count(b"\n") + (0 if payload.endswith(b"\n") else 1)
            at = end
    return records, points


# -- our two processes -----------------------------------------------------------------------

class ApiProc:
    """``devicedata api`` on a fixed port (its spool dir is named after the port, so a
    restarted API must keep it to replay what the killed one spooled)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{settings.http_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        env = {**os.environ, **self.settings.to_env()}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([PY, "-m", "devicedata", "api"], env=env, stdout=out,
                                         stderr=out, stdin=subprocess.DEVNULL, cwd=ROOT)
        procs.wait_ready(lambda: procs.http_status(f"{self.url}/health") == 200, "the API",
                         self.log, 30, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 40) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Bridge:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.proc = BridgeProcess(settings, log_path)
        self.log = log_path
        self.failed_starts: list[str] = []

    @property
    def pid(self) -> int | None:
        p = self.proc.proc
        return p.pid if p is not None and p.poll() is None else None

    def start(self, tries: int = 3) -> None:
        """Start and wait for its CONNACK; a start that fails is recorded and retried."""
        for i in range(tries):
            try:
                self.proc.start()
                return
            except AssertionError as exc:
                self.failed_starts.append(str(exc)[-500:])
                p = self.proc.proc
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
                self.proc.proc = None
                if i + 1 == tries:
                    raise

    def kill(self) -> None:
        if self.proc.proc is not None:
            self.proc.stop(signal.SIGKILL, timeout=30)

    def stop(self) -> int | None:
        if self.proc.proc is None:
            return None
        try:
            return self.proc.stop(signal.SIGTERM, timeout=60)
        except subprocess.TimeoutExpired:
            p = self.proc.proc
            if p is not None:
                p.kill()
                p.wait()
            self.proc.proc = None
            return None

    def exited(self) -> int | None:
        p = self.proc.proc
        return p.poll() if p is not None else None


# -- the sampler -----------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Every second: VmRSS/VmHWM of the current bridge and API, size of both spool dirs."""

    def __init__(self, soak: Soak) -> None:
        super().__init__(name="sampler", daemon=True)
        self.soak = soak
        self.stopping = threading.Event()
        self.samples: list[list[Any]] = []
        self.peak = Counter[str]()
        self.lock = threading.Lock()

    def note(self, key: str, value: float) -> None:
        with self.lock:
            if value > self.peak[key]:
                self.peak[key] = int(value)

    def sample(self) -> None:
        s = self.soak
        t = round(time.monotonic() - s.t0, 1)
        b_rss, b_hwm = proc_mem_kb(s.bridge.pid if s.bridge else None)
        a_rss, a_hwm = proc_mem_kb(s.api.pid if s.api else None)
        b_disk, b_back = spool_disk(s.bridge_spool)
        a_disk, a_back = spool_disk(s.api_spool)
        for key, value in (("bridge_rss_kb", b_rss), ("bridge_hwm_kb", b_hwm),
                           ("api_rss_kb", a_rss), ("api_hwm_kb", a_hwm),
                           ("bridge_spool_bytes", b_disk), ("api_spool_bytes", a_disk),
                           ("total_spool_bytes", b_disk + a_disk),
                           ("bridge_backlog_bytes", b_back), ("api_backlog_bytes", a_back)):
            self.note(key, value)
        self.samples.append([t, b_rss, a_rss, b_disk, a_disk, b_back, a_back,
                             int(s.influx_up), round(os.getloadavg()[0], 2)])

    def run(self) -> None:
        n = 0
        while not self.stopping.wait(1.0):
            with contextlib.suppress(Exception):
                self.sample()
            n += 1
            if n % 5 == 0:
                with contextlib.suppress(Exception):
                    self.soak.note_code_changes()


# -- the HTTP load -------------------------------------------------------------------------

class HttpLoad:
    """POST /data at a steady rate of requests of ``per_post`` timed points; each request
    is retried until 200 (503/429/5xx after Retry-After, connection errors after 0.25 s)
    or until ``give_up_at``. Point g of the run: device (g // per_post) % D, variable
    http_{g % 4}, time base_ms + g, value g."""

    def __init__(self, soak: Soak, points_per_s: float, per_post: int, seconds: float,
                 workers: int = 8) -> None:
        self.soak = soak
        self.per_post = per_post
        self.req_rate = points_per_s / per_post
        self.n_posts = int(seconds * self.req_rate) if points_per_s > 0 else 0
        self.n_points = self.n_posts * per_post
        self.acked = bytearray(self.n_posts)
        self.ack_at = [0.0] * self.n_posts       # seconds since t0
        self.first_at = [0.0] * self.n_posts
        self.attempts = [0] * self.n_posts
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.jobs: queue.Queue[int | None] = queue.Queue()
        self.give_up_at = float("inf")
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._schedule, name="http-sched", daemon=True)]
        self.threads += [threading.Thread(target=self._work, name=f"http-{i}", daemon=True)
                         for i in range(workers)]
        self.lock = threading.Lock()

    def device_of(self, post: int) -> int:
        return post % len(self.soak.env.devices)

    def body(self, post: int) -> bytes:
        g0 = post * self.per_post
        base = self.soak.base_ms
        return orjson.dumps([{"variable": f"http_{g % HTTP_VARIABLES}", "value": g,
                              "time": base + g} for g in range(g0, g0 + self.per_post)])

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _schedule(self) -> None:
        start = time.monotonic()
        for i in range(self.n_posts):
            delay = start + i / self.req_rate - time.monotonic()
            if delay > 0 and self.stopping.wait(delay):
                break
            self.jobs.put(i)
        for _ in self.threads[1:]:
            self.jobs.put(None)

    def _work(self) -> None:
        with httpx.Client(trust_env=False, timeout=10.0) as client:
            while not self.stopping.is_set():
                i = self.jobs.get()
                if i is None:
                    return
                self._post(client, i)

    def _post(self, client: httpx.Client, i: int) -> None:
        dev = self.soak.env.devices[self.device_of(i)]
        body = self.body(i)
        headers = {"token": dev.token, "content-type": "application/json"}
        self.first_at[i] = time.monotonic() - self.soak.t0
        while not self.stopping.is_set():
            self.attempts[i] += 1
            try:
                r = client.post(f"{self.soak.api_url}/data", content=body, headers=headers)
            except httpx.HTTPError as exc:
                self._count(type(exc).__name__)
                if time.monotonic() > self.give_up_at:
                    return
                self.stopping.wait(0.25)
                continue
            self._count(str(r.status_code))
            if r.status_code == 200:
                self.acked[i] = 1
                self.ack_at[i] = time.monotonic() - self.soak.t0
                return
            if r.status_code in (429, 503) or r.status_code >= 500:
                if time.monotonic() > self.give_up_at:
                    return
                ra = r.headers.get("retry-after", "1")
                self.stopping.wait(min(float(ra) if ra.replace(".", "").isdigit() else 1.0,
                                       30.0))
                continue
            with self.lock:  # a 4xx: the request itself is wrong; never retried
                if len(self.errors) < 20:
                    self.errors.append(f"post {i}: {r.status_code} {r.text[:200]}")
            return

    def _count(self, key: str) -> None:
        with self.lock:
            self.statuses[key] += 1

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        self.stopping.set()
        for _ in self.threads[1:]:
            self.jobs.put(None)


# -- the soak ------------------------------------------------------------------------------

class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        # keep=True: a fixed directory (bench/work/soak), left in place for the logs; it is
        # emptied here first so no earlier run's points or devices are counted.
        shutil.rmtree(WORK / args.work_name, ignore_errors=True)
        self.env = Env(args.work_name, ndevices=args.devices, keep=True)
        self.bridge: Bridge | None = None
        self.api: ApiProc | None = None
        self.cpub: subprocess.Popen[str] | None = None
        self.http: HttpLoad | None = None
        self.sampler: Sampler | None = None
        self.t0 = time.monotonic()
        self.influx_up = True
        self.events: list[dict[str, Any]] = []
        self.unexpected: list[dict[str, Any]] = []
        self.base_ms = 0
        self.api_url = ""
        self.bridge_spool = Path("/nonexistent")
        self.api_spool = Path("/nonexistent")
        self.result: dict[str, Any] = {}
        self.code_mtimes: dict[str, float] = {}
        self.code_changes: list[dict[str, Any]] = []
        self.t_outage_start = self.t_influx_back = self.drain_end = float("nan")
        self.backlog_points = 0
        self.stored_at_return = self.stored_at_drain_end = -1
        self.t_stored_at_return = self.t_stored_at_drain_end = float("nan")
        self.bridge_backlog_at_return = 0
        self.drain_kills_left = args.drain_kills

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note_code_changes(self) -> None:
        """The work tree is shared: a restarted bridge or API imports whatever is on disk
        then. Record when code under bridge/, api/ or devicedata/ changes mid-run."""
        mtimes = {str(p.relative_to(ROOT)): p.stat().st_mtime
                  for d in ("bridge", "api", "devicedata") for p in (ROOT / d).glob("*.py")}
        if self.code_mtimes and mtimes != self.code_mtimes:
            changed = sorted(k for k in mtimes.keys() | self.code_mtimes.keys()
                             if mtimes.get(k) != self.code_mtimes.get(k))
            self.code_changes.append({"seen_at_s": round(self.now(), 1), "files": changed})
            log(f"t={self.now():7.1f}s code changed on disk: {', '.join(changed)}")
        self.code_mtimes = mtimes

    # -- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        self.env.start()
        assert self.env.settings is not None
        self.settings = self.env.settings.replace(
            http_port=procs.free_port(), mqtt_client_id="soak-bridge",
            bridge_metrics_port=procs.free_port())
        self.api_url = f"http://127.0.0.1:{self.settings.http_port}"
        self.bridge_spool = self.settings.spool_path("bridge-soak-bridge")
        self.api_spool = self.settings.spool_path(f"api-{self.settings.http_port}")
        self.bridge = Bridge(self.settings, self.env.dir / "bridge.log")
        self.api = ApiProc(self.settings, self.env.dir / "api.log")
        self.bridge.start()
        self.api.start()

    # -- events --------------------------------------------------------------------------

    def plan(self) -> list[tuple[float, str]]:
        a = self.args
        run = a.minutes * 60
        margin = min(5.0, run / 20)
        plan = [(self.outage_start, "influx_stop"), (self.outage_end, "influx_start")]
        plan += [(self.rng.uniform(margin, run - margin), "bridge_kill") for _ in range(a.kills)]
        plan += [(self.rng.uniform(margin, run - margin), "api_kill")
                 for _ in range(a.api_kills)]
        return sorted(plan)

    def do(self, what: str, planned: float, **extra: Any) -> None:
        assert self.bridge is not None and self.api is not None and self.env.influx is not None
        ev: dict[str, Any] = {"what": what, "planned_s": round(planned, 2),
                              "at_s": round(self.now(), 2), **extra}
        if what == "influx_stop":
            self.env.influx.stop()
            self.influx_up = False
            ev["done_s"] = round(self.now(), 2)
            self.t_outage_start = self.now()
        elif what == "influx_start":
            # what waits in the spools when InfluxDB comes back (counted just before)
            b = spool_points(self.bridge_spool)
            a = spool_points(self.api_spool)
            ev["spooled"] = {"bridge_records": b[0], "bridge_points": b[1],
                             "api_records": a[0], "api_points": a[1]}
            self.backlog_points = b[1] + a[1]
            self.env.influx.start()
            self.influx_up = True
            self.t_influx_back = self.now()
            ev["done_s"] = round(self.t_influx_back, 2)
            self.bridge_backlog_at_return = spool_disk(self.bridge_spool)[1]
            self.stored_at_return = self.count_stored()
            self.t_stored_at_return = self.now()
            ev["stored_at_return"] = self.stored_at_return
            log(f"InfluxDB back after {self.t_influx_back - self.t_outage_start:.0f} s; "
                f"spooled: bridge {b[1]:,} points in {b[0]:,} records, API {a[1]:,} points")
        elif what == "bridge_kill":
            self._kill_and_restart(ev, self.bridge, self.bridge_spool, "bridge_hwm_kb")
        elif what == "api_kill":
            self._kill_and_restart(ev, self.api, self.api_spool, "api_hwm_kb")
        self.events.append(ev)
        log(f"t={ev['at_s']:7.1f}s {what}" + (f" (restarted in {ev['restart_s']} s)"
                                             if "restart_s" in ev else ""))

    def _kill_and_restart(self, ev: dict[str, Any], child: Bridge | ApiProc, spool: Path,
                          hwm_key: str) -> None:
        """SIGKILL ``child`` (its peak RSS and spool backlog noted first), start it again."""
        pid = child.pid
        _, hwm = proc_mem_kb(pid)
        if self.sampler:
            self.sampler.note(hwm_key, hwm)
        ev.update(pid=pid, hwm_kb=hwm, backlog_bytes=spool_disk(spool)[1])
        child.kill()
        t = self.now()
        child.start()
        ev["restart_s"] = round(self.now() - t, 2)

    def check_children(self) -> None:
        """A bridge or API that died without being killed by us is a finding: record it
        and restart it so the soak goes on."""
        assert self.bridge is not None and self.api is not None
        code = self.bridge.exited()
        if code is not None:
            self.unexpected.append({"who": "bridge", "at_s": round(self.now(), 2),
                                    "code": code, "log_tail": self.bridge.log.read_text(
                                        errors="replace")[-2000:]})
            log(f"bridge exited by itself with {code}; restarting")
            self.bridge.proc.proc = None
            self.bridge.start()
        if self.api.proc is not None and self.api.proc.poll() is not None:
            self.unexpected.append({"who": "api", "at_s": round(self.now(), 2),
                                    "code": self.api.proc.returncode,
                                    "log_tail": self.api.log.read_text(
                                        errors="replace")[-2000:]})
            log(f"API exited by itself with {self.api.proc.returncode}; restarting")
            self.api.start()

    def count_stored(self) -> int:
        try:
            return self.env.count("time > 0")
        except Exception:
            return -1

    def spools_empty(self) -> bool:
        return spool_disk(self.bridge_spool)[1] == 0 and spool_disk(self.api_spool)[1] == 0

    # -- the run -------------------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        run_s = a.minutes * 60
        outage_s = a.outage_minutes * 60
        self.outage_start = a.outage_start if a.outage_start is not None else max(
            5.0, (run_s - outage_s) / 4)
        self.outage_end = self.outage_start + outage_s
        if self.outage_end > run_s:
            raise SystemExit("the outage must end before the run does")
        http_rate = a.rate * a.http_share
        mqtt_rate = a.rate - http_rate
        n_msgs = int(mqtt_rate * run_s)
        self.base_ms = (int(time.time() * 1000) // 1000) * 1000 - 3_600_000
        log(f"soak: {run_s:.0f} s at {a.rate:,.0f} points/s ({mqtt_rate:,.0f} MQTT QoS 1 "
            f"msgs/s + {http_rate:,.0f} HTTP points/s), InfluxDB down "
            f"{self.outage_start:.0f}-{self.outage_end:.0f} s, {a.kills} bridge and "
            f"{a.api_kills} API kills, seed {a.seed}")
        self.setup()
        assert self.env.mosquitto is not None and self.env.creds_file is not None
        self.note_code_changes()
        self.sampler = Sampler(self)
        self.sampler.start()
        self.http = HttpLoad(self, http_rate, a.http_batch, run_s)
        plan = self.plan()
        cpub_argv = [str(BIN / "cpub"), "--host", "127.0.0.1", "--port",
                     str(self.env.mosquitto.port), "--creds", str(self.env.creds_file),
                     "-n", str(n_msgs), "--qos", "1", "--points", "1", "--window", "1000",
                     "--base-ms", str(self.base_ms), "--rate", str(mqtt_rate),
                     "--timeout", str(run_s + 300)]
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.cpub = subprocess.Popen(cpub_argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.http.start()
        drain_end = float("nan")
        zero_since: float | None = None
        for planned, what in plan:
            while self.now() < planned:
                time.sleep(min(0.2, max(0.0, planned - self.now())))
                self.check_children()
                if self.influx_up and self.now() > self.t_influx_back and math.isnan(drain_end):
                    self._drain_kill()
                    drain_end, zero_since = self._drain_tick(zero_since)
            self.do(what, planned)
        while self.now() < run_s:
            time.sleep(0.2)
            self.check_children()
            if math.isnan(drain_end) and self.now() > self.t_influx_back:
                self._drain_kill()
                drain_end, zero_since = self._drain_tick(zero_since)
        log(f"t={self.now():.0f}s load period over; waiting for the publisher")
        self.load_end = self.now()
        self.http.give_up_at = time.monotonic() + 120
        try:
            out, err = self.cpub.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            self.cpub.kill()
            out, err = self.cpub.communicate()
        self.cpub_out = out
        self.cpub_err = err[-2000:]
        self.cpub_result = (json.loads(out.strip().splitlines()[-1])
                            if out.strip() else {"error": err[-500:]})
        self.http_finished = self.http.join(180)
        self.http.stop()
        log(f"publisher done: {self.cpub_result}; HTTP posts "
            f"{sum(self.http.acked):,}/{self.http.n_posts:,} acknowledged")
        deadline = time.monotonic() + a.drain_timeout
        while math.isnan(drain_end) and time.monotonic() < deadline:
            time.sleep(0.2)
            self.check_children()
            self._drain_kill()
            drain_end, zero_since = self._drain_tick(zero_since)
        self.drain_end = drain_end
        log(f"spools {'drained' if not math.isnan(drain_end) else 'NOT drained'} "
            f"{drain_end - self.t_influx_back:.1f} s after InfluxDB returned")
        self.settle()
        self.bridge_exit = self.bridge.stop() if self.bridge else None
        self.api_exit = self.api.stop() if self.api else None
        self.sampler.stopping.set()
        self.sampler.sample()
        self.final_backlog = {"bridge": spool_disk(self.bridge_spool)[1],
                              "api": spool_disk(self.api_spool)[1]}
        log(f"bridge exit {self.bridge_exit}, API exit {self.api_exit}; spool backlog after "
            f"stop {self.final_backlog}; comparing sets")
        if self.args.self_test:
            self.sabotage()
        self.verify()

    def sabotage(self) -> None:
        """--self-test: damage the store on purpose so the comparison must report exactly
        5 + 1 lost, 1 extra and 1 wrong value (proves the checker can see a failure)."""
        assert self.env.influx is not None and self.http is not None
        devs = [d.id for d in self.env.devices]
        nd = len(devs)

        def key(k: int) -> tuple[str, str, int]:
            return devs[k % nd], f"temperature_sensor_{(k // nd) % VARIABLES:02d}", \
                (self.base_ms + k) * 1_000_000

        gone = [key(k) for k in range(100, 105)]
        g = 50
        gone.append((devs[self.http.device_of(g // self.http.per_post)],
                     f"http_{g % HTTP_VARIABLES}", (self.base_ms + g) * 1_000_000))
        for dev, var, t in gone:
            self.env.query(f'DELETE FROM "data" WHERE "device" = \'{dev}\' AND '
                           f'"variable" = \'{var}\' AND time >= {t} AND time <= {t}')
        dev, var, t = key(200)
        extra_t = (self.base_ms - 1) * 1_000_000  # never sent
        body = (f"data,device={dev},variable={var} value=-1 {t}\n"
                f"data,device={devs[0]},variable=temperature_sensor_00 created=1i,value=1 "
                f"{extra_t}")
        httpx.post(f"{self.env.influx.url}/write", params={"db": lib.DB},
                   content=body).raise_for_status()
        self.result["self_test"] = {"deleted": 6, "extra_written": 1, "value_changed": 1}
        log("self-test: deleted 6 points, wrote 1 extra, changed 1 value")

    def _drain_kill(self) -> None:
        """The targeted kill(s): the bridge SIGKILLed while it is replaying its spool into
        InfluxDB (once the backlog is down to 80 % of what it was when InfluxDB returned),
        the moment where a write can land without its commit."""
        if self.drain_kills_left <= 0:
            return
        backlog = spool_disk(self.bridge_spool)[1]
        if 0 < backlog < 0.8 * self.bridge_backlog_at_return:
            self.drain_kills_left -= 1
            self.do("bridge_kill", self.now(), targeted="while draining",
                    backlog_at_return=self.bridge_backlog_at_return)

    def _drain_tick(self, zero_since: float | None) -> tuple[float, float | None]:
        if not self.spools_empty():
            return float("nan"), None
        if zero_since is None:
            now = self.now()
            self.stored_at_drain_end = self.count_stored()  # kept if the next look agrees
            self.t_stored_at_drain_end = self.now()
            return float("nan"), now
        if self.now() - zero_since >= 1.0:  # empty on two looks a second apart
            log(f"t={self.now():7.1f}s spools empty since t={zero_since:.1f}s")
            return zero_since, zero_since
        return float("nan"), zero_since

    def settle(self) -> None:
        """Wait until InfluxDB holds every acknowledged point, or its count has stopped
        changing for 30 s (bounded by --settle-timeout)."""
        assert self.http is not None
        expected = int(self.cpub_result.get("completed", 0)) + sum(self.http.acked) * \
            self.http.per_post
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + self.args.settle_timeout
        while time.monotonic() < deadline:
            self.check_children()
            n = self.count_stored()
            if n != last:
                last, since = n, time.monotonic()
            if n >= expected and time.monotonic() - since > 3:
                break
            if time.monotonic() - since > 30:
                break
            time.sleep(2)
        self.stored_at_settle = last
        log(f"settled: {last:,} points in InfluxDB, {expected:,} acknowledged")

    # -- verification --------------------------------------------------------------------

    def stream(self, device: str) -> Iterator[tuple[dict[str, str], list[Any]]]:
        assert self.env.influx is not None
        q = f'SELECT "created_us", "value" FROM "data" WHERE "device" = \'{device}\' GROUP BY *'
        with httpx.Client(trust_env=False, timeout=300) as client, client.stream(
                "POST", f"{self.env.influx.url}/query", data={"q": q},
                params={"db": lib.DB, "epoch": "ns", "chunked": "true",
                        "chunk_size": "20000"}) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.strip():
                    continue
                for res in orjson.loads(line).get("results", []):
                    if "error" in res:
                        raise RuntimeError(f"InfluxDB: {res['error']}")
                    for s in res.get("series", []):
                        yield s.get("tags") or {}, s["values"]

    def verify(self) -> None:
        assert self.http is not None and self.env.influx is not None
        devices = [d.id for d in self.env.devices]
        nd = len(devices)
        dev_index = {d: i for i, d in enumerate(devices)}
        sent = int(self.cpub_result.get("sent", 0))
        completed = int(self.cpub_result.get("completed", 0))
        refused = int(self.cpub_result.get("refused", 0))
        mqtt_all_acked = sent > 0 and completed == sent and refused == 0
        seen_m = bytearray(sent)
        seen_h = bytearray(self.http.n_points)
        per_key: dict[str, dict[str, int]] = {}
        extra: list[dict[str, Any]] = []
        n_extra = n_wrong = n_twice = 0
        base = self.base_ms
        per = self.http.per_post
        t = time.monotonic()
        stored_total = 0
        for dev in devices:
            for tags, values in self.stream(dev):
                var = tags.get("variable", "")
                slot = tags.get("slot", "")
                key = f"{dev}/{var}"
                row = per_key.setdefault(key, {"stored": 0, "extra": 0})
                for t_ns, _created, value in values:
                    stored_total += 1
                    row["stored"] += 1
                    ms, sub = divmod(int(t_ns), 1_000_000)
                    g = ms - base
                    ok = False
                    if not slot and not sub and var.startswith("temperature_sensor_"):
                        if 0 <= g < sent and dev_index[dev] == g % nd and \
                                var == f"temperature_sensor_{(g // nd) % VARIABLES:02d}":
                            ok = True
                            n_twice += seen_m[g]
                            seen_m[g] = 1
                            if value != ((g * 7919) % 100000) / 1000:
                                n_wrong += 1
                    elif (not slot and not sub and var.startswith("http_")
                          and 0 <= g < self.http.n_points
                          and var == f"http_{g % HTTP_VARIABLES}"
                          and dev_index[dev] == self.http.device_of(g // per)):
                        ok = True
                        n_twice += seen_h[g]
                        seen_h[g] = 1
                        if value != float(g):
                            n_wrong += 1
                    if not ok:
                        n_extra += 1
                        row["extra"] += 1
                        if len(extra) < 50:
                            extra.append({"device": dev, "variable": var, "slot": slot,
                                          "time_ns": t_ns, "value": value})
        # Points of devices that are not ours would be extra too.
        foreign = [v for v in self._tag_values("device") if v not in dev_index]
        read_s = time.monotonic() - t
        # Expected, per device and variable, and what is missing.
        msg_rate = float(self.cpub_result.get("rate") or 1.0)
        t_first = float(self.cpub_result.get("t_first", self.wall0))
        lost_m = [k for k in range(sent) if not seen_m[k]]
        http_acked_points = [g for g in range(self.http.n_points) if self.http.acked[g // per]]
        lost_h = [g for g in http_acked_points if not seen_h[g]]
        unacked_stored_h = sum(1 for g in range(self.http.n_points)
                               if seen_h[g] and not self.http.acked[g // per])
        for k in range(sent):
            dev = devices[k % nd]
            var = f"temperature_sensor_{(k // nd) % VARIABLES:02d}"
            row = per_key.setdefault(f"{dev}/{var}", {"stored": 0, "extra": 0})
            row["expected"] = row.get("expected", 0) + 1
            if not seen_m[k]:
                row["lost"] = row.get("lost", 0) + 1
        for g in http_acked_points:
            dev = devices[self.http.device_of(g // per)]
            row = per_key.setdefault(f"{dev}/http_{g % HTTP_VARIABLES}",
                                     {"stored": 0, "extra": 0})
            row["expected"] = row.get("expected", 0) + 1
            if not seen_h[g]:
                row["lost"] = row.get("lost", 0) + 1
        mismatched = {k: v for k, v in per_key.items()
                      if v.get("lost") or v.get("extra")
                      or v.get("expected", 0) != v["stored"]}
        self.result["verify"] = {
            "read_back_s": round(read_s, 1), "stored_points_read": stored_total,
            "stored_count_query": self.count_stored(),
            "mqtt": {"messages_sent": sent, "pubacks": completed, "refused": refused,
                     "all_acknowledged": mqtt_all_acked, "points_stored": sum(seen_m),
                     "lost": len(lost_m),
                     "lost_runs": self._runs(lost_m, lambda k: t_first - self.wall0
                                             + k / msg_rate)},
            "http": {"posts": self.http.n_posts, "posts_acknowledged": sum(self.http.acked),
                     "points_sent": self.http.n_points,
                     "points_acknowledged": len(http_acked_points),
                     "points_stored": sum(seen_h), "lost": len(lost_h),
                     "stored_but_never_acknowledged": unacked_stored_h,
                     "lost_posts": self._lost_posts(lost_h)},
            "extra": n_extra, "extra_examples": extra, "foreign_devices": foreign,
            "seen_twice": n_twice, "wrong_values": n_wrong,
            "series": len(per_key), "series_mismatched": mismatched,
        }

    def _tag_values(self, key: str) -> list[str]:
        res = self.env.query(f'SHOW TAG VALUES FROM "data" WITH KEY = "{key}"')
        series = res["results"][0].get("series") or []
        return [v[1] for s in series for v in s["values"]]

    def _phase(self, t: float) -> str:
        if math.isnan(self.t_outage_start) or t < self.t_outage_start:
            return "before the outage"
        if math.isnan(self.t_influx_back) or t < self.t_influx_back:
            return "InfluxDB down"
        if math.isnan(self.drain_end) or t < self.drain_end:
            return "draining"
        return "after the drain"

    def _near_kill(self, t: float, who: str) -> float | None:
        """Signed seconds from ``t`` to the nearest kill of that kind."""
        kills = [e["at_s"] for e in self.events if e["what"] == who]
        return round(min(kills, key=lambda k: abs(k - t)) - t, 2) if kills else None

    def _runs(self, ks: list[int], when: Any) -> list[dict[str, Any]]:
        runs: list[list[int]] = []
        for k in ks:
            if runs and k == runs[-1][1] + 1:
                runs[-1][1] = k
            else:
                runs.append([k, k])
        out = []
        nd = len(self.env.devices)
        for lo, hi in runs[:50]:
            t = when(lo)
            out.append({"first_k": lo, "last_k": hi, "points": hi - lo + 1,
                        "device": self.env.devices[lo % nd].id,
                        "sent_at_s": round(t, 2), "phase": self._phase(t),
                        "nearest_bridge_kill_s": self._near_kill(t, "bridge_kill")})
        return out

    def _lost_posts(self, lost: list[int]) -> list[dict[str, Any]]:
        assert self.http is not None
        posts = sorted({g // self.http.per_post for g in lost})
        return [{"post": i, "points_lost": sum(1 for g in lost if g // self.http.per_post == i),
                 "acknowledged_at_s": round(self.http.ack_at[i], 2),
                 "first_try_at_s": round(self.http.first_at[i], 2),
                 "attempts": self.http.attempts[i], "phase": self._phase(self.http.ack_at[i]),
                 "nearest_api_kill_s": self._near_kill(self.http.ack_at[i], "api_kill")}
                for i in posts[:50]]

    # -- cleanup and report ---------------------------------------------------------------

    def cleanup(self) -> None:
        if self.http is not None:
            self.http.stop()
        if self.cpub is not None and self.cpub.poll() is None:
            self.cpub.kill()
            self.cpub.wait()
        if self.sampler is not None:
            self.sampler.stopping.set()
        for p in (self.bridge, self.api):
            if p is not None:
                with contextlib.suppress(Exception):
                    p.stop()
        with contextlib.suppress(Exception):
            self.env.stop()

    def log_facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, path in (("bridge", self.env.dir / "bridge.log"),
                           ("api", self.env.dir / "api.log")):
            text = path.read_text(errors="replace") if path.exists() else ""
            out[name] = {k: text.count(pat) for k, pat in (
                ("spooling_started", "event=spooling_started"),
                ("spool_recovered", "event=spool_recovered"),
                ("spool_drained", "event=spool_drained"),
                ("torn_tail_dropped", "torn tail"),
                ("corrupt", "corrupt"), ("tracebacks", "Traceback"),
                ("lines_rejected", "event=spool_line_rejected"),
                ("write_retry", "event=write_retry"),
                ("mqtt_paused", "event=mqtt_paused"))}
        return out


def machine_facts() -> dict[str, Any]:
    facts = lib.machine()
    for k in ("node", "node-red", "node-red-contrib-influxdb", "wrk"):
        facts.pop(k, None)
    facts["filesystem_of_spool"] = lib._cmd(["stat", "-f", "-c", "%T", str(WORK)])
    facts["platform"] = platform.platform()
    return facts


def report(soak: Soak, args: argparse.Namespace, started: str, facts: dict[str, Any],
           code: dict[str, Any], error: str | None) -> dict[str, Any]:
    s = soak
    sp = s.sampler.peak if s.sampler else Counter()
    v = s.result.get("verify", {})
    m, h = v.get("mqtt", {}), v.get("http", {})
    kills = [e for e in s.events if e["what"] == "bridge_kill"]
    api_kills = [e for e in s.events if e["what"] == "api_kill"]
    drain_s = s.__dict__.get("drain_end", float("nan")) - s.t_influx_back
    stored_end = s.stored_at_drain_end
    count_span = s.t_stored_at_drain_end - s.t_stored_at_return
    acked = (m.get("messages_sent", 0) if m.get("all_acknowledged") else m.get("pubacks", 0)) \
        + h.get("points_acknowledged", 0)
    summary = {
        "points_acknowledged": acked,
        "points_acknowledged_mqtt": m.get("messages_sent") if m.get("all_acknowledged") else
        m.get("pubacks"),
        "points_acknowledged_http": h.get("points_acknowledged"),
        "points_stored": (m.get("points_stored", 0) + h.get("points_stored", 0)) if v else None,
        "points_stored_total_in_influxdb": v.get("stored_points_read"),
        "lost": (m.get("lost", 0) + h.get("lost", 0)) if v else None,
        "extra": v.get("extra"),
        "wrong_values": v.get("wrong_values"),
        "bridge_peak_rss_mb": round(max(sp["bridge_rss_kb"], sp["bridge_hwm_kb"]) / 1024, 1),
        "bridge_peak_vmrss_sampled_mb": round(sp["bridge_rss_kb"] / 1024, 1),
        "bridge_peak_vmhwm_mb": round(sp["bridge_hwm_kb"] / 1024, 1),
        "api_peak_rss_mb": round(max(sp["api_rss_kb"], sp["api_hwm_kb"]) / 1024, 1),
        "api_peak_vmrss_sampled_mb": round(sp["api_rss_kb"] / 1024, 1),
        "api_peak_vmhwm_mb": round(sp["api_hwm_kb"] / 1024, 1),
        "spool_peak_mb": round(sp["total_spool_bytes"] / 2**20, 1),
        "bridge_spool_peak_mb": round(sp["bridge_spool_bytes"] / 2**20, 1),
        "api_spool_peak_mb": round(sp["api_spool_bytes"] / 2**20, 1),
        "spooled_points_at_return": s.backlog_points if hasattr(s, "backlog_points") else None,
        "drain_s": round(drain_s, 1) if drain_s == drain_s else None,
        "drain_rate_points_per_s": round(s.backlog_points / drain_s)
        if drain_s == drain_s and drain_s > 0 else None,
        "stored_rate_during_drain_points_per_s": round(
            (stored_end - s.stored_at_return) / count_span)
        if count_span > 0 and stored_end >= 0 and s.stored_at_return >= 0 else None,
        "bridge_kills": len(kills), "api_kills": len(api_kills),
        "bridge_kills_targeted_in_drain": sum(1 for e in kills if e.get("targeted")),
        "bridge_kills_by_phase": dict(Counter(s._phase(e["at_s"]) for e in kills))
        if hasattr(s, "drain_end") else None,
        "unexpected_exits": len(s.unexpected),
        "bridge_failed_starts": len(s.bridge.failed_starts) if s.bridge else 0,
        "influx_down_s": round(s.t_influx_back - s.t_outage_start, 1)
        if s.t_influx_back == s.t_influx_back else None,
    }
    samples = s.sampler.samples if s.sampler else []
    return {
        "figure": "soak", "started": started, "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(shlex.quote(x) for x in ["python", "bench/soak.py", *sys.argv[1:]]),
        "error": error,
        "parameters": {"minutes": args.minutes, "outage_minutes": args.outage_minutes,
                       "outage_start_s": getattr(s, "outage_start", None),
                       "rate_points_per_s": args.rate, "http_share": args.http_share,
                       "http_points_per_post": args.http_batch, "mqtt_points_per_message": 1,
                       "mqtt_qos": 1, "devices": args.devices, "bridge_kills": args.kills,
                       "api_kills": args.api_kills, "drain_kills": args.drain_kills,
                       "seed": args.seed, "quick": args.quick,
                       "spool_max_bytes": s.settings.spool_max_bytes
                       if hasattr(s, "settings") else None},
        "summary": summary,
        "code": code, "code_at_end": lib.code_state(),
        "code_changed_during_run": s.code_changes, "machine": facts,
        "loadavg_at_end": os.getloadavg(),
        "publisher": getattr(s, "cpub_result", None),
        "publisher_stderr": getattr(s, "cpub_err", ""),
        "http": {"statuses": dict(s.http.statuses) if s.http else None,
                 "errors": s.http.errors if s.http else None,
                 "all_posts_finished": getattr(s, "http_finished", None)},
        "timeline": {"influx_stopped_s": round(s.t_outage_start, 2),
                     "influx_back_s": round(s.t_influx_back, 2),
                     "load_end_s": round(getattr(s, "load_end", float("nan")), 2),
                     "drain_end_s": round(getattr(s, "drain_end", float("nan")), 2),
                     "stored_at_influx_return": s.stored_at_return
                     if hasattr(s, "stored_at_return") else None,
                     "stored_at_drain_end": stored_end,
                     "stored_at_settle": getattr(s, "stored_at_settle", None)},
        "exits": {"bridge_sigterm": getattr(s, "bridge_exit", None),
                  "api_sigterm": getattr(s, "api_exit", None),
                  "spool_backlog_bytes_after_stop": getattr(s, "final_backlog", None)},
        "logs": s.log_facts(),
        "peaks_raw": dict(sp),
        "events": s.events, "unexpected_exits": s.unexpected,
        "bridge_failed_starts": s.bridge.failed_starts if s.bridge else [],
        "verify": s.result.get("verify"), "self_test": s.result.get("self_test"),
        "samples_columns": ["t_s", "bridge_rss_kb", "api_rss_kb", "bridge_spool_bytes",
                            "api_spool_bytes", "bridge_backlog_bytes", "api_backlog_bytes",
                            "influx_up", "loadavg_1min"],
        "samples_every_5s": samples[::5],
    }


def print_summary(data: dict[str, Any]) -> None:
    s = data["summary"]
    rows = [("points acknowledged", f"{s['points_acknowledged']:,} (MQTT "
             f"{s['points_acknowledged_mqtt'] or 0:,}, "
             f"HTTP {s['points_acknowledged_http'] or 0:,})"),
            ("points stored (of those)", s["points_stored"]),
            ("lost (acknowledged, absent)", s["lost"]),
            ("extra (stored, never sent)", s["extra"]),
            ("values differing", s["wrong_values"]),
            ("peak RSS bridge / API", f"{s['bridge_peak_rss_mb']} / {s['api_peak_rss_mb']} MB"),
            ("spool peak on disk", f"{s['spool_peak_mb']} MB (bridge "
             f"{s['bridge_spool_peak_mb']}, API {s['api_spool_peak_mb']})"),
            ("spooled when InfluxDB returned", s["spooled_points_at_return"]),
            ("drain time", f"{s['drain_s'] if s['drain_s'] is not None else '-'} s"),
            ("drain rate", f"{s['drain_rate_points_per_s']} points/s of backlog; "
             f"{s['stored_rate_during_drain_points_per_s']} points/s stored overall"),
            ("kills", f"bridge {s['bridge_kills']} ({s['bridge_kills_targeted_in_drain']} of "
             f"them aimed at the drain), API {s['api_kills']}; unexpected exits "
             f"{s['unexpected_exits']}")]
    print("\n== soak summary: " + data["command"])
    for k, val in rows:
        shown = val if isinstance(val, str) else "-" if val is None else format(val, ",")
        print(f"  {k:32} {shown}")
    if data.get("error"):
        print(f"  ERROR: {data['error']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=14.0, help="load period (default 14)")
    p.add_argument("--outage-minutes", type=float, default=10.0,
                   help="InfluxDB stopped this long (default 10)")
    p.add_argument("--outage-start", type=float, default=None,
                   help="seconds into the run (default: a quarter of the time left around "
                        "the outage, 60 s by default)")
    p.add_argument("--rate", type=float, default=2000.0, help="points/s in total (2000)")
    p.add_argument("--http-share", type=float, default=0.1,
                   help="share of the points sent by HTTP POST (0.1)")
    p.add_argument("--http-batch", type=int, default=20, help="points per POST (20)")
    p.add_argument("--kills", type=int, default=20, help="bridge SIGKILLs (20)")
    p.add_argument("--api-kills", type=int, default=3, help="API SIGKILLs (3)")
    p.add_argument("--drain-kills", type=int, default=1,
                   help="extra bridge SIGKILLs aimed at the spool replay after InfluxDB "
                        "returns (1; on top of --kills)")
    p.add_argument("--devices", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drain-timeout", type=float, default=900.0,
                   help="seconds to wait for the spools to empty after the load (900)")
    p.add_argument("--settle-timeout", type=float, default=300.0)
    p.add_argument("--self-test", action="store_true",
                   help="before comparing, delete 6 stored points, add 1 and change 1: the "
                        "summary must then show lost 6, extra 1, values differing 1")
    p.add_argument("--quick", action="store_true",
                   help="90 s, 30-s outage, 5 bridge and 2 API kills: checks the script")
    p.add_argument("--out", type=Path, default=None,
                   help="result file (default bench/results/soak.json; with --quick "
                        "bench/work/soak-quick/soak.json)")
    args = p.parse_args()
    if args.quick:
        args.minutes, args.outage_minutes, args.kills, args.api_kills = 1.5, 0.5, 5, 2
    args.work_name = "soak-quick" if args.quick or args.self_test else "soak"
    out = args.out or (WORK / args.work_name / "soak.json" if args.work_name == "soak-quick"
                       else RESULTS / "soak.json")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _raise_abort)
    # Hard bound on the whole script, whatever happens.
    signal.alarm(int(args.minutes * 60 + args.drain_timeout + args.settle_timeout + 900))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    facts = machine_facts()
    code = lib.code_state()
    soak = Soak(args)
    error = None
    try:
        soak.run()
    except (KeyboardInterrupt, Abort) as exc:
        error = f"interrupted: {exc!r}"
        log(error)
    except Exception as exc:
        import traceback
        error = "".join(traceback.format_exception(exc))[-3000:]
        log(f"soak failed: {error}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        soak.cleanup()
        signal.alarm(0)
    data = report(soak, args, started, facts, code, error)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, default=str) + "\n")
    log(f"wrote {out}")
    print_summary(data)
    s = data["summary"]
    return 1 if error or s["lost"] or s["extra"] or s["wrong_values"] else 0


if __name__ == "__main__":
    sys.exit(main())
