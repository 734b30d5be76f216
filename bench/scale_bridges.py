"""End-to-end QoS 1 throughput with 1, 2 and 3 bridges in one ``$share`` group.

For each bridge count, ``--reps`` runs (default 3): start the bridges (fresh client ids and
a fresh group, so no earlier session feeds them), publish ``--messages`` QoS 1 one-point
messages as fast as the C publisher (bench/bin/cpub, from bench/setup.sh) can, over 10
device connections, and time from the first publish until InfluxDB holds every point.
Reports the median (and min/max) per bridge count and writes
bench/results/scale_bridges.json.

It measures this machine: every process (publisher, Mosquitto, InfluxDB and the bridges)
shares its cores, so on a small machine extra bridges mostly compete for the same CPU.

    .venv/bin/python bench/scale_bridges.py [--messages 30000] [--reps 3] [--max-bridges 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lib
from lib import Env, log, summary

from support.mqtt import BridgeProcess


def one_run(env: Env, bridges: int, messages: int, rep: int) -> dict[str, Any]:
    assert env.settings is not None
    group = f"scale-{bridges}-{rep}-{secrets.token_hex(3)}"
    procs = [BridgeProcess(env.settings.replace(mqtt_shared_group=group,
                                                mqtt_client_id=f"{group}-{i}",
                                                mqtt_username=f"{group}-{i}",
                                                bridge_metrics_port=0),
                           env.dir / f"{group}-{i}.log") for i in range(bridges)]
    with ThreadPoolExecutor(bridges) as pool:
        list(pool.map(lambda p: p.start(), procs))
    try:
        time.sleep(0.5)  # each SUBSCRIBE is in before the first message
        assert env.influx is not None and env.mosquitto is not None
        ours = [p.proc.pid for p in procs if p.proc is not None]
        servers = [pid for pid in (env.influx.pid, env.mosquitto.pid) if pid is not None]
        before = _cpu_snapshot(ours + servers)
        base = lib.fresh_base_ms()
        pub = lib.cpub(env, messages, qos=1, points=1, base_ms=base)
        stored, seen_at = lib.wait_for_points(env, lib.ns_window(base), messages, pub)
        sent = lib.cpub_result(pub)  # reaps cpub, so its CPU shows in os.times() now
        after = _cpu_snapshot(ours + servers)
    finally:
        for p in procs:
            if p.running():
                p.stop()
        for p in procs:
            lib.purge_session(env, p.settings.mqtt_client_id)
    elapsed = seen_at - sent["t_first"]
    split = [_handled(p) for p in procs]
    used = {k: after[k] - before[k] for k in before}
    cpu = sum(used[pid] for pid in ours)
    # Everything the machine's CPUs did meanwhile that was not this benchmark: other
    # people's work on a shared machine, the one thing that can make a run unfair.
    others = used["machine"] - sum(used[pid] for pid in ours + servers) - used["self"]
    result = {"bridges": bridges, "rep": rep, "messages": messages, "stored": stored,
              "lost": messages - stored, "refused": sent["refused"],
              "publisher_s": sent["t_done"] - sent["t_first"], "elapsed_s": elapsed,
              "msgs_per_s": stored / elapsed, "bridge_cpu_s": cpu,
              "broker_and_influx_cpu_s": sum(used[pid] for pid in servers),
              "other_processes_cpu_s": others, "messages_per_bridge": split}
    log(f"{bridges} bridge(s), run {rep + 1}: {result['msgs_per_s']:.0f} msg/s "
        f"({stored}/{messages} in {elapsed:.2f} s; split {split}; bridge CPU {cpu:.1f} s; "
        f"other processes' CPU {others:.1f} s)")
    return result


def _cpu_snapshot(pids: list[int]) -> dict[Any, float]:
    """CPU seconds so far: of each pid, of the whole machine ("machine", all cores), and
    of this process with its reaped children ("self": the polling and the publisher)."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    t = os.times()
    snap: dict[Any, float] = {pid: lib.cpu_seconds(pid) for pid in pids}
    snap["machine"] = busy / ticks
    snap["self"] = t.user + t.system + t.children_user + t.children_system
    return snap


def _handled(bridge: BridgeProcess) -> int:
    lines = [x for x in bridge.text().splitlines() if "event=bridge_stopped" in x]
    return int(lines[-1].split("messages=")[1].split()[0]) if lines else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-bridges", type=int, default=3)
    args = parser.parse_args()
    if not (lib.BIN / "cpub").exists():
        sys.exit("bench/bin/cpub is missing: run bench/setup.sh first")
    runs: list[dict[str, Any]] = []
    load_start = os.getloadavg()[0]
    with Env("scale_bridges") as env:
        for rep in range(args.reps):  # interleaved, so drift in the machine hits all alike
            for bridges in range(1, args.max_bridges + 1):
                runs.append(one_run(env, bridges, args.messages, rep))
    table = {n: summary([r["msgs_per_s"] for r in runs if r["bridges"] == n])
             for n in range(1, args.max_bridges + 1)}
    cpu = {n: summary([r["bridge_cpu_s"] for r in runs if r["bridges"] == n])
           for n in table}
    others = {n: summary([r["other_processes_cpu_s"] for r in runs if r["bridges"] == n])
              for n in table}
    print(f"\nQoS 1, 1 point/message, {args.messages} messages, median of {args.reps} runs, "
          f"{os.cpu_count()} CPUs, 1-min load average {load_start:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print("| bridges | msg/s (median) | min | max | bridge CPU s (median) "
          "| other processes' CPU s (median) |")
    print("|---|---|---|---|---|---|")
    for n, s in table.items():
        print(f"| {n} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | "
              f"{cpu[n]['median']:.1f} | {others[n]['median']:.1f} |")
    lib.RESULTS.mkdir(parents=True, exist_ok=True)
    out = lib.RESULTS / "scale_bridges.json"
    out.write_text(json.dumps({
        "figure": "scale_bridges", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join([".venv/bin/python", "bench/scale_bridges.py", *sys.argv[1:]]),
        "machine": lib.machine(), "msgs_per_s": table, "bridge_cpu_s": cpu,
        "other_processes_cpu_s": others, "runs": runs,
    }, indent=1, default=str) + "\n")
    log(f"wrote {out.relative_to(lib.ROOT)}")


if __name__ == "__main__":
    main()
