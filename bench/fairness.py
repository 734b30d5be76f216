"""Fairness (issue 12, item 4): another device's POST+GET round trip, unloaded and while one
device runs 8 connections of reads in a loop (a hostile client: it ignores Retry-After and
asks again at once), with the per-device limits off (the old behaviour) and at their
defaults. Two attacks: ``qty`` reads of 10,000 points, and ``count`` over the attacker's
whole history (one point returned, the whole history scanned).

``python bench/bench.py fairness [--reps N] [--seconds S]``; this file run directly with
``--attack`` is the attacker (a process of its own, so its client work is not the
measuring process's).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
import lib
from lib import Api, Env, log, summary

from bridge.settings import Settings

CONNECTIONS = 8
QTY = 10_000
STORED = 200_000  # the attacker's points: every qty read is full, every count scans them
OFF = {"http_requests_per_second": 0.0, "http_concurrency": 0,
       "http_read_points_per_second": 0.0, "http_read_seconds_per_second": 0.0}
DEFAULTS = {name: getattr(Settings(), name) for name in (
    "http_requests_per_second", "http_requests_burst", "http_concurrency",
    "http_read_points_per_second", "http_read_points_burst",
    "http_read_seconds_per_second", "http_read_seconds_burst")}
# A date bound keeps the count from being a kept answer: each one asks InfluxDB.
ATTACKS: dict[str, dict[str, str | int]] = {
    "qty": {"qty": QTY}, "count": {"query": "count", "start_date": "2000-01-01"}}


def attack(url: str, token: str, connections: int, seconds: float, kind: str) -> None:
    """Loop the ``kind`` of read on ``connections`` keep-alive connections; print the
    answers' counts by status."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        with httpx.Client(base_url=url, headers={"token": token}, timeout=60) as client:
            while time.monotonic() < deadline:
                try:
                    status = client.get("/data", params=ATTACKS[kind]).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(" ".join(f"{status}:{n}" for status, n in sorted(counts.items())), flush=True)


def round_trips(url: str, token: str, seconds: float) -> list[float]:
    """The other device: POST one point, then GET it back; milliseconds per pair."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, headers={"token": token}, timeout=60) as client:
        i = 0
        while time.monotonic() < deadline:
            i += 1
            started = time.perf_counter()
            posted = client.post("/data", json={"variable": "rt", "value": i})
            got = client.get("/data", params={"variables": "rt", "qty": 1})
            elapsed = (time.perf_counter() - started) * 1000
            assert posted.status_code == 200 and got.json()["result"][0]["value"] == i, (
                posted.text, got.text)
            times.append(elapsed)
            time.sleep(0.1)  # a device that polls (20 requests/s), not a second flood
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return lib.percentile(ordered, q) if ordered else float("nan")


def one_run(env: Env, limits: dict[str, Any], seconds: float, tag: str, kind: str
            ) -> dict[str, Any]:
    assert env.settings is not None
    attacker, victim = env.devices[0], env.devices[1]
    with Api(env, tag, settings=env.settings.replace(**limits)) as api:
        # Warm up both devices' tokens, kept answers and connections.
        round_trips(api.url, victim.token, 1)
        unloaded = round_trips(api.url, victim.token, seconds)
        proc = subprocess.Popen([sys.executable, __file__, "--attack", api.url,
                                 attacker.token, str(CONNECTIONS), str(seconds + 2), kind],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the attack is in full swing
        loaded = round_trips(api.url, victim.token, seconds)
        out, _ = proc.communicate(timeout=seconds + 60)
    attack_counts = {int(k): int(v) for k, v in (pair.split(":") for pair in out.split())}
    result = {"unloaded_p50_ms": _p(unloaded, 50), "unloaded_p95_ms": _p(unloaded, 95),
              "loaded_p50_ms": _p(loaded, 50), "loaded_p95_ms": _p(loaded, 95),
              "round_trips": [len(unloaded), len(loaded)],
              "attacker_answers": attack_counts}
    result["p50_ratio"] = result["loaded_p50_ms"] / result["unloaded_p50_ms"]
    log(f"{tag}: other device p50 {result['unloaded_p50_ms']:.1f} ms unloaded, "
        f"{result['loaded_p50_ms']:.1f} ms under attack (x{result['p50_ratio']:.1f}; p95 "
        f"{result['unloaded_p95_ms']:.1f} -> {result['loaded_p95_ms']:.1f} ms); attacker "
        f"answers {attack_counts}")
    return result


def fill(env: Env) -> None:
    """The attacker's history: STORED points, so every qty=10000 read is full."""
    assert env.settings is not None
    with Api(env, "fill", settings=env.settings.replace(**OFF)) as api, httpx.Client(
            base_url=api.url, headers={"token": env.devices[0].token}, timeout=60) as client:
        for start in range(0, STORED, 5000):
            body = [{"variable": f"v{i % 10}", "value": i, "time": 1_700_000_000_000 + i}
                    for i in range(start, start + 5000)]
            assert client.post("/data", json=body).status_code == 200


def fig_fairness(args: argparse.Namespace) -> None:
    seconds = max(5, args.seconds)
    modes = {f"{kind}_{name}": (kind, limits) for kind in ATTACKS
             for name, limits in (("limits_off", OFF), ("limits_default", DEFAULTS))}
    # What the read-time budget adds: the defaults with it turned off.
    modes["count_limits_default_no_time"] = (
        "count", {**DEFAULTS, "http_read_seconds_per_second": 0.0})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in modes}
    with Env("fairness", ndevices=2) as env:
        fill(env)
        for rep in range(args.reps):
            lib.wait_quiet()
            for name, (kind, limits) in modes.items():
                runs[name].append(one_run(env, limits, seconds, f"{name}-{rep}", kind))
    out: dict[str, Any] = {
        "what": f"another device's POST+GET round trip while one device loops GET "
                f"{ATTACKS} on {CONNECTIONS} connections, ignoring Retry-After",
        "defaults": DEFAULTS, "seconds": seconds, "cases": {}}
    for name, rs in runs.items():
        out["cases"][name] = {
            key: summary([r[key] for r in rs]) for key in (
                "unloaded_p50_ms", "unloaded_p95_ms", "loaded_p50_ms", "loaded_p95_ms",
                "p50_ratio")}
        out["cases"][name]["runs"] = rs
        ratios = [r["p50_ratio"] for r in rs]
        log(f"{name}: p50 ratio median {statistics.median(ratios):.2f} over {len(rs)} reps")
    lib.save("fairness", out)


if __name__ == "__main__" and sys.argv[1:2] == ["--attack"]:
    url, token, connections, seconds, kind = sys.argv[2:7]
    attack(url, token, int(connections), float(seconds), kind)
