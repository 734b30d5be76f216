"""devicedata benchmarks: one subcommand per figure (see bench/README.md).

Every figure measures our path and its ceiling side by side in the same run, repeats
``--reps`` times (default 3) and stores per-run numbers plus median/min/max in
bench/results/FIGURE.json. Only 127.0.0.1 is ever loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lib
from lib import BENCH, Api, BareApp, Bridge, Env, log, summary

# ---------------------------------------------------------------------------------------
# Figure 1 (a): broker ceiling, and figure 2: our MQTT path end to end
# ---------------------------------------------------------------------------------------

MQTT_CASES = {
    # name: (qos, points per message, messages, payload format: cpub --format)
    "qos1_single": (1, 1, 100_000, "json"),
    "qos0_single": (0, 1, 100_000, "json"),
    "qos1_array10": (1, 10, 25_000, "json"),
    # The same 10 points per message as a SenML CBOR pack on devices/{id}/senml/cbor.
    "qos1_senml_cbor10": (1, 10, 25_000, "senml-cbor"),
}
TOPICS = {"json": "devices/+/data", "senml-cbor": "devices/+/senml/cbor"}


def mqtt_ceiling(env: Env, qos: int, points: int, n: int, fmt: str = "json"
                 ) -> dict[str, Any]:
    sub = lib.csub(env, n, qos, topic=TOPICS[fmt])
    pub = lib.cpub(env, n, qos, points, base_ms=lib.fresh_base_ms(), fmt=fmt)
    p = lib.cpub_result(pub)
    s = lib.csub_result(sub)
    elapsed = s["t_last"] - p["t_first"]
    # csub counts the '{' of JSON points; a CBOR pack has none to count.
    received = s["points"] if fmt == "json" else s["messages"] * points
    return {"sent": p["sent"], "received": s["messages"], "points": received,
            "refused": p["refused"], "elapsed_s": elapsed,
            "msgs_per_s": s["messages"] / elapsed, "points_per_s": received / elapsed}


def mqtt_ours(env: Env, qos: int, points: int, n: int, tag: str, client: str = "",
              fmt: str = "json", before: bool = False) -> dict[str, Any]:
    """Our bridge end to end; with ``client``, over that library (``bench clients``);
    ``fmt``: the payload format (``cpub --format``); with ``before``, the bridge of the
    BENCH_BEFORE checkout."""
    base = lib.fresh_base_ms()
    assert env.influx is not None and env.mosquitto is not None
    with (lib.ClientBridge(env, tag, client) if client
          else Bridge(env, tag, before=before)) as bridge:
        others = {"influxd": env.influx.pid, "mosquitto": env.mosquitto.pid}
        cpu0 = lib.cpu_seconds(bridge.pid)
        o0 = {k: lib.cpu_seconds(p) for k, p in others.items()}
        t0 = time.monotonic()
        pub = lib.cpub(env, n, qos, points, base_ms=base, fmt=fmt)
        stored, seen_at = lib.wait_for_points(env, lib.ns_window(base), n * points, pub)
        p = lib.cpub_result(pub)
        wall = time.monotonic() - t0
        cpu = lib.cpu_seconds(bridge.pid) - cpu0
        other_share = {k: (lib.cpu_seconds(pid) - o0[k]) / wall for k, pid in others.items()}
        rss = bridge.rss()
    elapsed = seen_at - p["t_first"]
    return {"sent": p["sent"], "points_expected": n * points, "points_stored": stored,
            "lost_points": n * points - stored, "refused": p["refused"],
            "publisher_s": p["t_done"] - p["t_first"], "elapsed_s": elapsed,
            "points_per_s": stored / elapsed, "msgs_per_s": stored / points / elapsed,
            "bridge_cpu_s": cpu, "bridge_peak_rss_mb": rss,
            "influxd_cpu_share": other_share["influxd"],
            "mosquitto_cpu_share": other_share["mosquitto"]}


def cpu_reference(points: int, n: int = 5000) -> float:
    """CPU µs per point plain Python needs for the bench's messages: orjson parses each
    message (``points`` points like cpub's), and a minimal line is formatted per point
    (device and variable tags, value, the ISO time parsed to ns)."""
    from datetime import datetime

    import orjson
    device = "6b0abdb07231163020356b4b"
    msgs = []
    for k in range(n):
        pts = [{"variable": f"temperature_sensor_{(k * points + j) % 25:02d}",
                "value": round(20 + (k * 7919 + j) % 100000 / 1000, 3), "unit": "celsius",
                "time": f"2026-11-08T12:{k % 60:02d}:{j % 60:02d}.{k % 1000:03d}Z"}
               for j in range(points)]
        msgs.append(orjson.dumps(pts if points > 1 else pts[0]))
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for msg in msgs:
            parsed = orjson.loads(msg)
            for p in parsed if isinstance(parsed, list) else (parsed,):
                ns = int(datetime.fromisoformat(p["time"]).timestamp() * 1e9)
                _line = f"data,device={device},variable={p['variable']} value={p['value']} {ns}"
        best = min(best, time.process_time() - t0)
    return 1e6 * best / (n * points)


def fig_mqtt(args: argparse.Namespace) -> None:
    cases = {k: v for k, v in MQTT_CASES.items() if not args.case or k in args.case}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    with Env("mqtt") as env:
        one_field = [b"\n".join(lines) for lines in (
            lambda ls: [ls[i:i + 5000] for i in range(0, len(ls), 5000)])(our_lines(
                int(500_000 * args.scale), [d.id for d in env.devices], 25,
                (time.time_ns() // 10**9 - 86400 * 20) * 10**9, 1_000_000, "one"))]
        for rep in range(args.reps):
            lib.wait_quiet()
            influx_one = influx_ceiling(env, one_field, int(500_000 * args.scale),
                                        f"one_field_{rep}")["points_per_s"]
            log(f"mqtt rep {rep}: InfluxDB, single-field lines, 5000-line bodies, 1 conn: "
                f"{influx_one:,.0f} pts/s")
            for name, (qos, points, n, fmt) in cases.items():
                n = int(n * args.scale)
                lib.purge_session(env, env.settings.mqtt_client_id)
                ceiling = env.attempt(f"ceiling {name} rep {rep}", lambda q=qos, p=points, m=n,
                                      f=fmt: mqtt_ceiling(env, q, p, m, f))
                ours = env.attempt(f"ours {name} rep {rep}", lambda q=qos, p=points, m=n,
                                   tag=f"{name}-{rep}", f=fmt: mqtt_ours(env, q, p, m, tag,
                                                                       fmt=f))
                ratio = ours["msgs_per_s"] / ceiling["msgs_per_s"]
                before = None
                if lib.BEFORE:
                    lib.purge_session(env, env.settings.mqtt_client_id)
                    before = env.attempt(f"before {name} rep {rep}", lambda q=qos, p=points,
                                         m=n, tag=f"{name}-{rep}-before": mqtt_ours(
                                             env, q, p, m, tag, before=True))
                    log(f"mqtt {name} rep {rep}: before (BENCH_BEFORE) "
                        f"{before['points_per_s']:,.0f} pts/s, "
                        f"{1e6 * before['bridge_cpu_s'] / max(1, before['points_stored']):.2f}"
                        f" us/pt bridge CPU, lost {before['lost_points']}")
                ref = cpu_reference(points)
                cpu_pt = 1e6 * ours["bridge_cpu_s"] / max(1, ours["points_stored"])
                runs[name].append({"rep": rep, "ceiling": ceiling, "ours": ours, "ratio": ratio,
                                   "before": before,
                                   "influx_one_field_points_per_s": influx_one,
                                   "ratio_to_influx_one_field": ours["points_per_s"] / influx_one,
                                   "cpu_reference_us_per_point": ref,
                                   "cpu_ratio_to_reference": cpu_pt / ref})
                log(f"mqtt {name} rep {rep}: {ours['points_per_s'] / influx_one:.2f}x InfluxDB "
                    f"single-field; bridge CPU {cpu_pt:.2f} us/pt = {cpu_pt / ref:.2f}x the "
                    f"reference ({ref:.2f} us/pt)")
                log(f"mqtt {name} rep {rep}: ceiling {ceiling['msgs_per_s']:,.0f} msg/s, ours "
                    f"{ours['msgs_per_s']:,.0f} msg/s = {ours['points_per_s']:,.0f} pts/s "
                    f"(ratio {ratio:.2f}, lost {ours['lost_points']}, "
                    f"bridge RSS {ours['bridge_peak_rss_mb']:.0f} MB)")
    out: dict[str, Any] = {"broker": "our mosquitto.conf.template with auth ON (password_file "
                           "+ acl_file from the registry); ceiling subscriber logs in as the "
                           "bridge user", "cases": {}}
    for name, rs in runs.items():
        qos, points, n, fmt = cases[name]
        out["cases"][name] = {
            "qos": qos, "points_per_message": points, "messages": int(n * args.scale),
            "format": fmt,
            "ceiling_msgs_per_s": summary([r["ceiling"]["msgs_per_s"] for r in rs]),
            "ceiling_points_per_s": summary([r["ceiling"]["points_per_s"] for r in rs]),
            "ours_msgs_per_s": summary([r["ours"]["msgs_per_s"] for r in rs]),
            "ours_points_per_s": summary([r["ours"]["points_per_s"] for r in rs]),
            "ratio": summary([r["ratio"] for r in rs]),
            "lost_points": summary([r["ours"]["lost_points"] for r in rs]),
            "bridge_peak_rss_mb": summary([r["ours"]["bridge_peak_rss_mb"] for r in rs]),
            "bridge_cpu_us_per_point": summary([1e6 * r["ours"]["bridge_cpu_s"]
                                                / max(1, r["ours"]["points_stored"])
                                                for r in rs]),
            "bridge_cpu_share": summary([r["ours"]["bridge_cpu_s"] / r["ours"]["elapsed_s"]
                                         for r in rs]),
            "influxd_cpu_share": summary([r["ours"]["influxd_cpu_share"] for r in rs]),
            "mosquitto_cpu_share": summary([r["ours"]["mosquitto_cpu_share"] for r in rs]),
            "influx_one_field_points_per_s": summary([r["influx_one_field_points_per_s"]
                                                      for r in rs]),
            "ratio_to_influx_one_field": summary([r["ratio_to_influx_one_field"] for r in rs]),
            "cpu_reference_us_per_point": summary([r["cpu_reference_us_per_point"]
                                                   for r in rs]),
            "cpu_ratio_to_reference": summary([r["cpu_ratio_to_reference"] for r in rs]),
            **({} if not lib.BEFORE else {
                "before": lib.BEFORE,
                "before_points_per_s": summary([r["before"]["points_per_s"] for r in rs]),
                "before_ratio_to_influx_one_field": summary([
                    r["before"]["points_per_s"] / r["influx_one_field_points_per_s"]
                    for r in rs]),
                "before_cpu_ratio_to_reference": summary([
                    1e6 * r["before"]["bridge_cpu_s"] / max(1, r["before"]["points_stored"])
                    / r["cpu_reference_us_per_point"] for r in rs]),
                "before_bridge_cpu_us_per_point": summary([
                    1e6 * r["before"]["bridge_cpu_s"] / max(1, r["before"]["points_stored"])
                    for r in rs]),
                "before_lost_points": summary([r["before"]["lost_points"] for r in rs])}),
            "runs": rs}
    lib.save("mqtt", out)


# ---------------------------------------------------------------------------------------
# Figure 1 (b): InfluxDB ceiling for our line protocol
# ---------------------------------------------------------------------------------------

def our_lines(n: int, devices: list[str], variables: int, start_ns: int, step_ns: int,
              variant: str = "v2", unit: str | None = "celsius", timed: bool = True,
              ) -> list[bytes]:
    """``n`` points as line protocol, one bytes object per line: ``v2`` is today's
    encoder (bridge.influx.schema.encode_point), ``v1`` the frozen encoder of schema
    version 1 (tests/support/schema_v1.py: the branch point's lines), ``one`` the single
    field ``value``. Messages of 10 points share a receive time (50 ms after the first
    point's time, later for untimed points) and, in v1, a random group."""
    import random

    from bridge.influx.schema import encode_point
    from bridge.model.points import Point, generated_group
    from support.schema_v1 import encode_point_v1
    rng = random.Random(7)
    out = []
    nd = len(devices)
    group = ""
    for k in range(n):
        t = start_ns + k * step_ns
        if k % 10 == 0:
            received = t + 50_000_000 + rng.randrange(1000)
            group = f"{rng.getrandbits(96):024x}" if variant == "v1" else generated_group(received)
        device = devices[k % nd]
        variable = f"temperature_sensor_{(k // nd) % variables:02d}"
        value = round(20 + (k * 7919 % 100000) / 1000, 3)
        if variant == "one":
            out.append(f"data,device={device},variable={variable} value={value!r} {t}".encode())
            continue
        time_ns = t if timed else received + k % 10
        p = Point(device, variable, time_ns, received, group, value, unit)
        out.append((encode_point_v1(p) if variant == "v1" else encode_point(p)).encode())
    return out


def influx_ceiling(env: Env, bodies: list[bytes], npoints: int, db: str,
                   connections: int = 1, count_field: str = "value") -> dict[str, Any]:
    """Write pre-built bodies over ``connections`` keep-alive httpx clients (one thread
    each, bodies dealt round-robin); rate = points / wall time; the count is verified."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    assert env.influx is not None
    env.influx.query(f'DROP DATABASE "{db}"')
    env.influx.create_database(db)

    def send(part: list[bytes]) -> None:
        with httpx.Client(base_url=env.influx.url, trust_env=False, timeout=60) as client:
            client.get("/ping")
            for body in part:
                r = client.post("/write", params={"db": db, "precision": "ns"}, content=body)
                if r.status_code != 204:
                    raise RuntimeError(f"InfluxDB {r.status_code}: {r.text[:200]}")

    parts = [bodies[i::connections] for i in range(connections)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(send, parts))
    elapsed = time.perf_counter() - t0
    stored = env.count("time > 0", field_name=count_field, db=db)
    env.influx.query(f'DROP DATABASE "{db}"')
    return {"points": npoints, "stored": stored, "elapsed_s": elapsed,
            "points_per_s": npoints / elapsed, "requests": len(bodies),
            "bytes": sum(len(b) for b in bodies), "connections": connections}


# name: (variant, unit, timed): the bench's typical point has a unit and its own time
INFLUX_VARIANTS = {
    "one_field": ("one", None, True),
    "v2_plain_untimed": ("v2", None, False),
    "v2_plain_timed": ("v2", None, True),
    "v2_typical": ("v2", "celsius", True),
    "v1_typical": ("v1", "celsius", True),
    "v1_plain_timed": ("v1", None, True),
}


def fig_influx(args: argparse.Namespace) -> None:
    """Our lines (schema version 2, and version 1's: the branch point's) against the
    single-field line, 5000-line bodies on one connection, interleaved in every rep."""
    n = int(1_000_000 * args.scale)
    batch = 5000
    with Env("influx", with_mosquitto=False) as env:
        devices = [d.id for d in env.devices]
        start = (time.time_ns() // 10**9 - 86400 * 10) * 10**9
        bodies, sizes = {}, {}
        for name, (variant, unit, timed) in INFLUX_VARIANTS.items():
            lines = our_lines(n, devices, 25, start, 1_000_000, variant, unit, timed)
            sizes[name] = {"bytes_per_line": sum(map(len, lines)) / n,
                           "sample": lines[1].decode()}
            bodies[name] = [b"\n".join(lines[i:i + batch]) for i in range(0, n, batch)]
            log(f"influx: {name}: {sizes[name]['bytes_per_line']:.0f} B/line, e.g. "
                f"{sizes[name]['sample']}")
        runs = []
        for rep in range(args.reps):
            lib.wait_quiet()
            r: dict[str, Any] = {"rep": rep}
            order = list(INFLUX_VARIANTS) if rep % 2 == 0 else list(INFLUX_VARIANTS)[::-1]
            for name in order:
                r[name] = influx_ceiling(env, bodies[name], n, f"{name}_{rep}")
            for name in INFLUX_VARIANTS:
                r[f"{name}_ratio"] = r[name]["points_per_s"] / r["one_field"]["points_per_s"]
            runs.append(r)
            log(f"influx rep {rep}: " + ", ".join(
                f"{name} {r[name]['points_per_s']:,.0f} pts/s ({r[f'{name}_ratio']:.2f})"
                for name in INFLUX_VARIANTS))
    lib.save("influx", {"batch_lines": batch, "points": n, "connections": 1,
                        "client": "httpx.Client keep-alive, bodies pre-built",
                        "variants": {k: {"variant": v[0], "unit": v[1], "timed": v[2],
                                         **sizes[k]} for k, v in INFLUX_VARIANTS.items()},
                        **{f"{name}_points_per_s": summary([r[name]["points_per_s"]
                                                            for r in runs])
                           for name in INFLUX_VARIANTS},
                        **{f"{name}_ratio": summary([r[f"{name}_ratio"] for r in runs])
                           for name in INFLUX_VARIANTS},
                        "runs": runs})


# ---------------------------------------------------------------------------------------
# Figure 1 (c) + 3: HTTP POST (wrk), latency at half load (loadgen)
# ---------------------------------------------------------------------------------------

def wrk(url: str, body_file: Path, token: str, seconds: int, connections: int
        ) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_TOKEN": token}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(BENCH / "post.lua"), url], env=env, capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = {m.group(1): m.group(2) for m in re.finditer(r"\s+(50|99)%\s+(\S+)", out)}
    return {"req_per_s": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "", "latency": lat,
            "connections": connections, "seconds": seconds}


def paired_wrk(a: tuple[str, str, int | None], b: tuple[str, str, int | None],
               body_file: Path, seconds: int, connections: int, rounds: int = 4
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """wrk against two servers in alternating slices (a, b, a, b, ...), ``seconds`` in all
    per server: a shared machine's speed drifts over minutes, and slices seconds apart
    see nearly the same machine. Each side: total requests / total time, the server's
    CPU share over its slices, and every slice's own wrk figures."""
    slice_s = max(1, seconds // rounds)
    sides: list[dict[str, Any]] = [{"slices": [], "cpu": 0.0}, {"slices": [], "cpu": 0.0}]
    for _ in range(rounds):
        for side, (url, token, pid) in zip(sides, (a, b), strict=True):
            c0 = lib.cpu_seconds(pid) if pid else 0.0
            side["slices"].append(wrk(url, body_file, token, slice_s, connections))
            side["cpu"] += (lib.cpu_seconds(pid) - c0) if pid else 0.0
    out = []
    for side in sides:
        slices = side["slices"]
        total_s = slice_s * len(slices)
        out.append({"req_per_s": sum(x["requests"] for x in slices) / total_s,
                    "requests": sum(x["requests"] for x in slices),
                    "non_2xx": sum(x["non_2xx"] for x in slices),
                    "server_cpu_share": side["cpu"] / total_s,
                    "connections": connections, "seconds": total_s, "slices": slices})
    return out[0], out[1]


def one_point_body() -> bytes:
    return b'{"variable":"temperature","value":21.437,"unit":"celsius"}'


def thousand_points_body() -> bytes:
    return json.dumps([{"variable": f"temperature_sensor_{i % 20:02d}",
                        "value": round(20 + i * 0.013, 3), "unit": "celsius"}
                       for i in range(1000)], separators=(",", ":")).encode()


def fig_http(args: argparse.Namespace) -> None:
    secs = args.seconds
    runs = []
    with Env("http", ndevices=1) as env:
        tok = env.devices[0].token
        dev = env.devices[0].id
        body1 = env.dir / "one.json"
        body1.write_bytes(one_point_body())
        body1k = env.dir / "thousand.json"
        body1k.write_bytes(thousand_points_body())
        with BareApp(env) as bare, Api(env, "http") as api:
            # warm-up: JIT-free Python, but lazy imports and first connections
            wrk(f"{bare.url}/data", body1, "", 2, 64)
            wrk(f"{api.url}/data", body1, tok, 2, 64)
            for rep in range(args.reps):
                lib.wait_quiet()
                r: dict[str, Any] = {"rep": rep}
                before = env.count(f"\"device\" = '{dev}'")
                r["bare_1"], r["ours_1"] = paired_wrk(
                    (f"{bare.url}/data", "", bare.pid), (f"{api.url}/data", tok, api.pid),
                    body1, secs, 64)
                time.sleep(0.5)
                after = env.count(f"\"device\" = '{dev}'")
                r["ours_1"]["points_stored"] = after - before
                r["ratio_1"] = r["ours_1"]["req_per_s"] / r["bare_1"]["req_per_s"]
                half = r["ours_1"]["req_per_s"] / 2
                r["lat_ours"] = asyncio.run(lib_loadgen(f"{api.url}/data", half, secs,
                                                        body1.read_bytes(), tok))
                r["lat_bare"] = asyncio.run(lib_loadgen(f"{bare.url}/data", half, secs,
                                                        body1.read_bytes(), ""))
                # generator check: the bare endpoint at twice that rate (our full rate)
                r["lat_bare_full"] = asyncio.run(lib_loadgen(
                    f"{bare.url}/data", half * 2, 5, body1.read_bytes(), ""))
                before = env.count(f"\"device\" = '{dev}'")
                r["bare_1000"], r["ours_1000"] = paired_wrk(
                    (f"{bare.url}/data", "", bare.pid), (f"{api.url}/data", tok, api.pid),
                    body1k, secs, 16)
                cpu = r["ours_1000"]["server_cpu_share"] * secs
                time.sleep(0.5)
                after = env.count(f"\"device\" = '{dev}'")
                r["ours_1000"]["points_stored"] = after - before
                r["ours_1000"]["api_cpu_us_per_point"] = 1e6 * cpu / max(1, after - before)
                r["ratio_1000"] = r["ours_1000"]["req_per_s"] / r["bare_1000"]["req_per_s"]
                r["api_peak_rss_mb"] = api.rss()
                runs.append(r)
                log(f"http rep {rep}: POST 1: bare {r['bare_1']['req_per_s']:,.0f} req/s, ours "
                    f"{r['ours_1']['req_per_s']:,.0f} (ratio {r['ratio_1']:.2f}); at "
                    f"{half:,.0f} req/s ours p50 {r['lat_ours']['p50_ms']:.1f} ms p99 "
                    f"{r['lat_ours']['p99_ms']:.1f} ms (bare p99 {r['lat_bare']['p99_ms']:.1f}); "
                    f"POST 1000: bare {r['bare_1000']['req_per_s'] * 1000:,.0f} pts/s, ours "
                    f"{r['ours_1000']['req_per_s'] * 1000:,.0f} pts/s; API RSS "
                    f"{r['api_peak_rss_mb']:.0f} MB")
    lib.save("http", {
        "wrk": "wrk -t1 (POST 1: -c64, POST 1000: -c16), bench/post.lua, in 4 alternating "
               "slices per side (bare, ours, bare, ours, ...), --seconds in all per side",
        "loadgen": "bench/loadgen.py, 64 keep-alive connections, latency from due time",
        "post1_bare_req_per_s": summary([r["bare_1"]["req_per_s"] for r in runs]),
        "post1_ours_req_per_s": summary([r["ours_1"]["req_per_s"] for r in runs]),
        "post1_ratio": summary([r["ratio_1"] for r in runs]),
        "half_rate_req_per_s": summary([r["lat_ours"]["target_rate"] for r in runs]),
        "half_ours_p50_ms": summary([r["lat_ours"]["p50_ms"] for r in runs]),
        "half_ours_p99_ms": summary([r["lat_ours"]["p99_ms"] for r in runs]),
        "half_bare_p50_ms": summary([r["lat_bare"]["p50_ms"] for r in runs]),
        "half_bare_p99_ms": summary([r["lat_bare"]["p99_ms"] for r in runs]),
        "loadgen_check_rate": summary([r["lat_bare_full"]["target_rate"] for r in runs]),
        "loadgen_check_achieved": summary([r["lat_bare_full"]["achieved_rate"] for r in runs]),
        "loadgen_check_p99_ms": summary([r["lat_bare_full"]["p99_ms"] for r in runs]),
        "post1000_bare_points_per_s": summary([r["bare_1000"]["req_per_s"] * 1000
                                               for r in runs]),
        "post1000_ours_points_per_s": summary([r["ours_1000"]["req_per_s"] * 1000
                                               for r in runs]),
        "post1000_ratio": summary([r["ratio_1000"] for r in runs]),
        "api_peak_rss_mb": summary([r["api_peak_rss_mb"] for r in runs]),
        "post1_ours_cpu_share": summary([r["ours_1"]["server_cpu_share"] for r in runs]),
        "post1_bare_cpu_share": summary([r["bare_1"]["server_cpu_share"] for r in runs]),
        "post1000_ours_cpu_share": summary([r["ours_1000"]["server_cpu_share"] for r in runs]),
        "post1000_ours_cpu_us_per_point": summary([r["ours_1000"]["api_cpu_us_per_point"]
                                                   for r in runs]),
        "runs": runs})


async def lib_loadgen(url: str, rate: float, seconds: float, body: bytes, token: str,
                      method: str = "POST") -> dict[str, Any]:
    import loadgen
    return await loadgen.run(url, rate, seconds, body, token, method=method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=sorted(FIGURES))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply message/point counts (quick checks: 0.1)")
    parser.add_argument("--seconds", type=int, default=8, help="wrk/loadgen duration")
    parser.add_argument("--case", action="append", help="mqtt: only these cases")
    parser.add_argument("--no-outage", action="store_true", help="peer: flood runs only")
    parser.add_argument("--client", action="append",
                        help="clients: only these libraries (ours always runs)")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every server and child this run started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lib.setup()
    FIGURES[args.figure](args)


FIGURES = {"mqtt": fig_mqtt, "influx": fig_influx, "http": fig_http}


# ---------------------------------------------------------------------------------------
# The payload formats, in process: DataService.accept per message, no servers
# ---------------------------------------------------------------------------------------

def format_payloads() -> dict[str, tuple[str, bytes]]:
    """name -> (topic suffix, payload): the same 10 readings (or 1) in every format."""
    import cbor2
    import orjson
    t0 = 1_700_000_000_000
    points = [{"variable": f"temperature_sensor_{j:02d}", "value": 21.437 + j, "unit": "celsius",
               "time": t0 + j} for j in range(10)]
    senml = [{"n": p["variable"], "u": "Cel", "v": p["value"], "t": (t0 + j) / 1000}
             for j, p in enumerate(points)]
    labels = {"n": 0, "u": 1, "v": 2, "t": 6}
    return {
        "tagoio_1": ("data", orjson.dumps(points[0])),
        "tagoio_10": ("data", orjson.dumps(points)),
        "raw_1": ("data/temperature_sensor_00", b"21.437"),
        "kv_10": ("kv", orjson.dumps({"ts": t0, "values": {p["variable"]: p["value"]
                                                           for p in points}})),
        "senml_json_10": ("senml", orjson.dumps(senml)),
        "senml_cbor_10": ("senml/cbor", cbor2.dumps([{labels[k]: v for k, v in r.items()}
                                                     for r in senml])),
    }


def fig_formats(args: argparse.Namespace) -> None:
    """Microseconds of ``DataService.accept`` (convert, validate, encode) per message, for
    each format; and, for TagoIO JSON, the path before the formats were wired in
    (``accept(decode_json(payload))``) against today's (``accept(payload, fmt=...)``),
    alternating in one process so both see the same machine."""
    import timeit

    from bridge.model.formats import format_for_topic
    from bridge.model.points import decode_json
    from bridge.service import DataService
    service = DataService(None, None, max_points=10_000)  # type: ignore[arg-type]
    device = "0123456789abcdef01234567"
    calls: dict[str, Any] = {}
    for name, (suffix, payload) in format_payloads().items():
        fmt = format_for_topic(suffix)
        calls[name] = lambda p=payload, f=fmt: service.accept(device, p, source="mqtt", fmt=f)
        if name.startswith("tagoio"):
            calls[name + "_before"] = lambda p=payload: service.accept(
                device, decode_json(p), source="mqtt")
    # Short timings, many of them, the cases interleaved, the fastest kept: on a shared
    # machine most windows of a few milliseconds still run undisturbed.
    number = max(1, int(100 * args.scale))
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for rep in range(max(args.reps, 5)):
        lib.wait_quiet()
        best = {name: float("inf") for name in calls}
        for _ in range(30):
            for name, call in calls.items():
                best[name] = min(best[name], timeit.timeit(call, number=number))
        for name, seconds in best.items():
            runs[name].append(1e6 * seconds / number)
        log(f"formats rep {rep}: " + ", ".join(f"{n} {v[-1]:.1f} us" for n, v in runs.items()))
    lib.save("formats", {"unit": "microseconds per message (DataService.accept)",
                         "messages_per_timing": number,
                         "payload_bytes": {n: len(p) for n, (_, p) in format_payloads().items()},
                         "cases": {n: {**summary(v), "runs": v} for n, v in runs.items()}})


FIGURES["formats"] = fig_formats



# ---------------------------------------------------------------------------------------
# Profiles (py-spy) of the bridge under MQTT load and of the API under wrk
# ---------------------------------------------------------------------------------------

def pyspy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                             str(pid), "--duration", str(int(seconds)), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fig_profile(args: argparse.Namespace) -> None:
    import profile_summary
    result: dict[str, Any] = {}
    lib.wait_quiet()
    with Env("profile") as env:
        for name, (qos, points, n) in {"bridge_qos1_single": (1, 1, 150_000),
                                       "bridge_qos1_array10": (1, 10, 30_000)}.items():
            raw = env.dir / f"{name}.raw"
            base = lib.fresh_base_ms()
            with Bridge(env, name) as bridge:
                spy = pyspy(bridge.pid, 12, raw)
                time.sleep(1)
                pub = lib.cpub(env, n, qos, points, base_ms=base)
                stored, _ = lib.wait_for_points(env, lib.ns_window(base), n * points, pub)
                lib.cpub_result(pub)
                spy.wait()
            result[name] = profile_summary.summarise(str(raw), 30)
            log(f"profile {name}: {result[name]['samples']} samples, stored {stored}")
        tok = env.devices[0].token
        body = env.dir / "one.json"
        body.write_bytes(one_point_body())
        body1k = env.dir / "thousand.json"
        body1k.write_bytes(thousand_points_body())
        with Api(env, "profile") as api:
            wrk(f"{api.url}/data", body, tok, 2, 64)
            for name, body_file, connections in (("api_post1", body, 64),
                                                 ("api_post1000", body1k, 16)):
                raw = env.dir / f"{name}.raw"
                spy = pyspy(api.pid, 10, raw)
                time.sleep(0.5)
                wrk(f"{api.url}/data", body_file, tok, 9, connections)
                spy.wait()
                result[name] = profile_summary.summarise(str(raw), 30)
    for name, res in result.items():
        print(f"\n== {name} ({res['samples']} samples)")
        for kind in ("self", "total"):
            print(f"  {kind}:")
            for fn, p in res[kind][:20]:
                print(f"    {p:5.1f}%  {fn}")
    lib.save("profile", {"profiler": "py-spy record --rate 200 --nonblocking --format raw",
                         "profiles": result})


FIGURES["profile"] = fig_profile



# ---------------------------------------------------------------------------------------
# Figure 4: the Node-RED peer, same load; the two loss scenarios side by side
# ---------------------------------------------------------------------------------------

def _target(env: Env, who: str, tag: str) -> Any:
    import nodered
    if who == "ours":
        return Bridge(env, tag)
    return nodered.NodeRed(env, who.split("_", 1)[1], tag)


def _count_args(who: str, base: int) -> dict[str, Any]:
    import nodered
    if who == "ours":
        return {"where": lib.ns_window(base)}
    return {"where": lib.ns_window(base), "measurement": "telemetry", "field_name": "value",
            "db": nodered.NR_DB}


def flood_run(env: Env, who: str, n: int, tag: str) -> dict[str, Any]:
    base = lib.fresh_base_ms()
    with _target(env, who, tag) as target:
        pub = lib.cpub(env, n, 1, base_ms=base)
        ca = _count_args(who, base)
        # Node-RED's plain flow can stall for a while with thousands of writes in flight:
        # give it 30 s without progress before calling the rest lost.
        idle = 30 if who == "nodered_plain" else 10
        stored, seen_at = lib.wait_for_points(env, ca.pop("where"), n, pub, idle=idle,
                                              timeout=180, **ca)
        p = lib.cpub_result(pub)
        rss = target.rss()
        errors = target.log_tail_errors() if who != "ours" else 0
    elapsed = seen_at - p["t_first"]
    return {"who": who, "sent": p["sent"], "puback_ok": p["completed"] - p["refused"],
            "stored": stored, "lost": n - stored, "elapsed_s": elapsed,
            "points_per_s": stored / elapsed, "peak_rss_mb": rss, "logged_errors": errors}


def outage_run(env: Env, who: str, tag: str, rate: int = 2000, seconds: int = 30,
               down_at: float = 10, down_for: float = 10) -> dict[str, Any]:
    assert env.influx is not None
    n = rate * seconds
    base = lib.fresh_base_ms()
    with _target(env, who, tag) as target:
        pub = lib.cpub(env, n, 1, base_ms=base, rate=rate)
        t0 = time.monotonic()
        time.sleep(max(0.0, t0 + down_at - time.monotonic()))
        t_stop = time.monotonic()
        env.influx.stop()
        time.sleep(max(0.0, t_stop + down_for - time.monotonic()))
        env.influx.start()
        t_up = time.monotonic()
        p = lib.cpub_result(pub)
        ca = _count_args(who, base)
        stored, _ = lib.wait_for_points(env, ca.pop("where"), n, pub, idle=15, timeout=150, **ca)
        rss = target.rss()
        errors = target.log_tail_errors() if who != "ours" else 0
    return {"who": who, "sent": p["sent"], "puback_ok": p["completed"] - p["refused"],
            "stored": stored, "lost": n - stored, "rate": rate,
            "influx_down_s": t_up - t_stop, "publish_s": p["t_done"] - p["t_first"],
            "peak_rss_mb": rss, "logged_errors": errors}


PEERS = ("ours", "nodered_batch", "nodered_plain")


def fig_peer(args: argparse.Namespace) -> None:
    import nodered
    n = int(100_000 * args.scale)
    runs = []
    with Env("peer") as env:
        env.influx.create_database(nodered.NR_DB)
        for rep in range(args.reps):
            lib.wait_quiet()
            r: dict[str, Any] = {"rep": rep}
            lib.purge_session(env, env.settings.mqtt_client_id)
            r["ceiling"] = env.attempt(f"ceiling rep {rep}", lambda: mqtt_ceiling(env, 1, 1, n))
            for who in PEERS:
                r[f"flood_{who}"] = f = env.attempt(
                    f"flood {who} rep {rep}",
                    lambda who=who, tag=f"flood-{who}-{rep}": flood_run(env, who, n, tag))
                log(f"peer flood rep {rep} {who}: {f['points_per_s']:,.0f} pts/s, stored "
                    f"{f['stored']:,}/{n:,} (lost {f['lost']:,}), RSS {f['peak_rss_mb']:.0f} MB")
            if not args.no_outage:
                for who in PEERS:
                    r[f"outage_{who}"] = o = env.attempt(
                        f"outage {who} rep {rep}",
                        lambda who=who, tag=f"outage-{who}-{rep}": outage_run(env, who, tag))
                    log(f"peer outage rep {rep} {who}: stored {o['stored']:,}/{o['sent']:,} "
                        f"(lost {o['lost']:,}), InfluxDB down {o['influx_down_s']:.1f} s")
            runs.append(r)
    out: dict[str, Any] = {
        "messages": n, "flows": nodered.__doc__,
        "ceiling_msgs_per_s": summary([r["ceiling"]["msgs_per_s"] for r in runs])}
    for who in PEERS:
        out[f"flood_{who}_points_per_s"] = summary([r[f"flood_{who}"]["points_per_s"]
                                                     for r in runs])
        out[f"flood_{who}_lost"] = summary([r[f"flood_{who}"]["lost"] for r in runs])
        out[f"flood_{who}_ratio"] = summary([r[f"flood_{who}"]["points_per_s"]
                                             / r["ceiling"]["msgs_per_s"] for r in runs])
        out[f"flood_{who}_peak_rss_mb"] = summary([r[f"flood_{who}"]["peak_rss_mb"]
                                                    for r in runs])
        if not args.no_outage:
            out[f"outage_{who}_lost"] = summary([r[f"outage_{who}"]["lost"] for r in runs])
            out[f"outage_{who}_sent"] = summary([r[f"outage_{who}"]["sent"] for r in runs])
            out[f"outage_{who}_peak_rss_mb"] = summary([r[f"outage_{who}"]["peak_rss_mb"]
                                                         for r in runs])
    out["runs"] = runs
    lib.save("peer", out)


FIGURES["peer"] = fig_peer



# ---------------------------------------------------------------------------------------
# Figure 3 (GET): /data on a device with 10 million stored points
# ---------------------------------------------------------------------------------------

BIG_POINTS = 10_000_000
BIG_VARIABLES = 20
BIG_DAYS = 100


def _load_worker(url: str, device: str, first: int, last: int, end_ns: int, step_ns: int,
                 batch: int) -> int:
    """Write points first..last-1 of the 10M set: point k is variable k % 20 at time
    end - (k // 20) * step, so the 20 variables are sampled together every ``step``."""
    import httpx

    from bridge.influx.schema import encode_point
    from bridge.model.points import Point
    written = 0
    with httpx.Client(base_url=url, trust_env=False, timeout=120) as client:
        for start in range(first, last, batch):
            lines = []
            for k in range(start, min(start + batch, last)):
                t = end_ns - (k // BIG_VARIABLES) * step_ns
                lines.append(encode_point(Point(
                    device, f"sensor_{k % BIG_VARIABLES:02d}", t, t,
                    f"{k // BIG_VARIABLES:024x}", round(((k * 7919) % 100000) / 1000, 3),
                    "celsius")))
            r = client.post("/write", params={"db": lib.DB, "precision": "ns"},
                            content="\n".join(lines).encode())
            if r.status_code != 204:
                raise RuntimeError(f"InfluxDB {r.status_code}: {r.text[:200]}")
            written += len(lines)
    return written


def load_big(env: Env, device: str) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor
    assert env.influx is not None
    env.query(f"DROP SERIES FROM \"data\" WHERE \"device\" = '{device}'")
    end_ns = (time.time_ns() // 10**9 - 60) * 10**9
    steps = BIG_POINTS // BIG_VARIABLES
    step_ns = BIG_DAYS * 86400 * 10**9 // steps
    t = time.perf_counter()
    half = BIG_POINTS // 2
    with ProcessPoolExecutor(2) as pool:
        futs = [pool.submit(_load_worker, env.influx.url, device, a, b, end_ns, step_ns, 50_000)
                for a, b in ((0, half), (half, BIG_POINTS))]
        written = sum(f.result() for f in futs)
    elapsed = time.perf_counter() - t
    log(f"get: loaded {written:,} points in {elapsed:.0f} s ({written / elapsed:,.0f} pts/s)")
    return {"points": written, "seconds": elapsed, "step_s": step_ns / 1e9,
            "end_ns": end_ns}


def top_up_big(env: Env, device: str) -> int:
    """A kept 10M-point store ages: write the samples due since its newest point (same
    cadence, 20 variables), so the device reads as live and "recent" means recent."""
    import httpx

    from bridge.influx.schema import encode_point
    from bridge.model.points import Point
    assert env.influx is not None
    res = env.influx.query(f"SELECT last(\"created\") FROM \"data\" WHERE \"device\" = "
                           f"'{device}'", db=lib.DB, epoch="ns")
    series = res["results"][0].get("series") or []
    if not series:
        return 0
    newest = int(series[0]["values"][0][0])  # epoch=ns: the time of the newest point
    step_ns = BIG_DAYS * 86400 * 10**9 // (BIG_POINTS // BIG_VARIABLES)
    now = time.time_ns()
    lines = []
    t = newest + step_ns
    while t <= now:
        for v in range(BIG_VARIABLES):
            lines.append(encode_point(Point(device, f"sensor_{v:02d}", t, t, f"{t:024x}",
                                            round((t // step_ns % 100000) / 1000, 3),
                                            "celsius")))
        t += step_ns
    with httpx.Client(base_url=env.influx.url, trust_env=False, timeout=120) as client:
        for i in range(0, len(lines), 50_000):
            r = client.post("/write", params={"db": lib.DB, "precision": "ns"},
                            content="\n".join(lines[i:i + 50_000]).encode())
            if r.status_code != 204:
                raise RuntimeError(f"InfluxDB {r.status_code}: {r.text[:200]}")
    log(f"get: topped up {len(lines):,} points (newest was "
        f"{(now - newest) / 60e9:.0f} min old)")
    return len(lines)


def _influx_idle(env: Env, limit: float = 120) -> float:
    """Wait until influxd's CPU use falls under 10 % of a core (compactions done)."""
    assert env.influx is not None and env.influx.pid is not None
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        c0 = lib.cpu_seconds(env.influx.pid)
        time.sleep(2)
        if (lib.cpu_seconds(env.influx.pid) - c0) / 2 < 0.10:
            break
    return time.monotonic() - t0


GET_QUERIES = {
    "default": "",
    "last_value": "query=last_value",
    "aggregate": "query=aggregate&function=avg&interval=1%20hour&start_date=7%20days&qty=200",
}


def _recorded_calls(settings: Any, device: str, qs: str
                    ) -> tuple[list[list[str]], list[list[str]]]:
    """The InfluxQL our API sends for ``GET /data?qs``: ``DataService.get`` runs in this
    process against the real InfluxDB with its store's ``query`` recorded. Each entry is
    one /query request (a list of statements), in the order the service sent them. Two
    reads in a row: the first (cold: no window hint yet) and the second (warm: what every
    further read of a polling client sends, as long as the data stays put)."""
    from urllib.parse import parse_qs

    from bridge.influx.store import InfluxStore
    from bridge.model.query import parse_data_query
    from bridge.service import DataService

    async def run() -> tuple[list[list[str]], list[list[str]]]:
        store = InfluxStore(settings)
        calls: list[list[str]] = []
        original = store.query

        async def recording(statements: list[str]) -> Any:
            calls.append(list(statements))
            return await original(statements)

        store.query = recording  # type: ignore[method-assign]
        try:
            service = DataService(store, None, max_points=settings.max_points)  # type: ignore[arg-type]
            await service.get(device, parse_data_query(parse_qs(qs), now_ns=time.time_ns()))
            cold = list(calls)
            calls.clear()
            await service.get(device, parse_data_query(parse_qs(qs), now_ns=time.time_ns()))
        finally:
            await store.close()
        return cold, calls

    return asyncio.run(run())


def _variants(device: str) -> dict[str, str]:
    """Context statements timed straight on InfluxDB: the same reads as one unbounded
    statement each (what the API sent before commit c137bf0 "newest-first reads look at
    recent windows first"), and the default read's last-hour statement cut down to one
    field, or to one of the 20 variables, to show where InfluxDB's time goes."""
    from bridge.influx.influxql import COLUMNS, edge_statement, list_statements
    from bridge.model.query import DataQuery
    hour = DataQuery(start_ns=time.time_ns() - 3600 * 10**9)
    default_hour = list_statements(device, hour)[0]
    one_variable = list_statements(device, DataQuery(start_ns=hour.start_ns,
                                                     variables=["sensor_00"]))[0]
    return {"default_unbounded": list_statements(device, DataQuery())[0],
            "last_value_unbounded": edge_statement(device, DataQuery(kind="last_value")),
            "default_last_hour": default_hour,
            "default_last_hour_one_field": default_hour.replace(COLUMNS, '"value"::float'),
            "default_last_hour_one_variable": one_variable}


def _latencies(call: Any, budget_s: float, max_n: int, min_n: int = 20,
               before: Any = None) -> dict[str, Any]:
    """``before`` runs ahead of each call, untimed."""
    for _ in range(3):
        call()  # warm-up
    lat = []
    t0 = time.perf_counter()
    while len(lat) < max_n and (len(lat) < min_n or time.perf_counter() - t0 < budget_s):
        if before is not None:
            before()
        t = time.perf_counter()
        call()
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {"n": len(lat), "p50_ms": lib.percentile(lat, 50) * 1000,
            "p99_ms": lib.percentile(lat, 99) * 1000, "max_ms": lat[-1] * 1000}


def fig_get(args: argparse.Namespace) -> None:
    import httpx

    from bridge.registry import open_registry
    env = Env("get10m", ndevices=1, keep=True).start()
    try:
        dev, tok = env.devices[0].id, env.devices[0].token
        stored = env.count(f"\"device\" = '{dev}'")
        load: dict[str, Any] = {"reused": True, "points": stored}
        if stored < BIG_POINTS:
            load = load_big(env, dev)
        load["topped_up"] = top_up_big(env, dev)
        stored = env.count(f"\"device\" = '{dev}'")
        settle = _influx_idle(env)
        log(f"get: device {dev} holds {stored:,} points; InfluxDB settled after {settle:.0f} s")
        runs = []
        registry = open_registry(env.settings.registry_location)
        with Api(env, "get") as api, \
                httpx.Client(base_url=api.url, trust_env=False, timeout=120,
                             headers={"token": tok}) as client, \
                httpx.Client(base_url=env.influx.url, trust_env=False, timeout=120) as influx:
            for rep in range(args.reps):
                lib.wait_quiet()
                r: dict[str, Any] = {"rep": rep}
                for name, qs in GET_QUERIES.items():
                    cold, calls = _recorded_calls(env.settings, dev, qs)
                    r[f"{name}_influx_requests"] = len(calls)
                    r[f"{name}_influx_requests_cold"] = len(cold)

                    def direct(calls: list[list[str]] = calls) -> None:
                        for stmts in calls:
                            resp = influx.post("/query", params={"db": lib.DB, "epoch": "ns"},
                                               data={"q": ";\n".join(stmts)})
                            assert resp.status_code == 200, resp.text[:200]

                    def ours(qs: str = qs) -> None:
                        resp = client.get("/data" + (f"?{qs}" if qs else ""))
                        assert resp.status_code == 200, resp.text[:200]

                    r[f"{name}_influx"] = _latencies(direct, 8, 300)
                    r[f"{name}_influx_cold"] = _latencies(
                        lambda cold=cold: direct(cold), 3, 100, 10)
                    # A kept answer serves a repeated read of unchanged data; after any
                    # write the next read goes to InfluxDB. The write is simulated by
                    # bumping the device's data version (what every writer does) before
                    # each timed read, so the 10M-point store itself stays as loaded.
                    r[f"{name}_ours"] = _latencies(ours, 8, 300)
                    r[f"{name}_ours_changed"] = _latencies(
                        ours, 8, 300, before=lambda: registry.bump_data_versions([dev]))
                    r[f"{name}_rows"] = len(client.get(
                        "/data" + (f"?{qs}" if qs else "")).json()["result"])
                    log(f"get rep {rep} {name}: ours p50 {r[f'{name}_ours']['p50_ms']:.1f} ms "
                        f"p99 {r[f'{name}_ours']['p99_ms']:.1f} ms (kept); after a change p50 "
                        f"{r[f'{name}_ours_changed']['p50_ms']:.1f} ms p99 "
                        f"{r[f'{name}_ours_changed']['p99_ms']:.1f} ms; InfluxDB alone p50 "
                        f"{r[f'{name}_influx']['p50_ms']:.1f} ms p99 "
                        f"{r[f'{name}_influx']['p99_ms']:.1f} ms ({r[f'{name}_rows']} rows); "
                        f"a first read's requests on InfluxDB p50 "
                        f"{r[f'{name}_influx_cold']['p50_ms']:.1f} ms")
                for name, stmt in _variants(dev).items():
                    def direct_v(stmt: str = stmt) -> None:
                        resp = influx.post("/query", params={"db": lib.DB, "epoch": "ns"},
                                           data={"q": stmt})
                        assert resp.status_code == 200, resp.text[:200]
                    r[f"variant_{name}"] = _latencies(direct_v, 3, 100, 10)
                    log(f"get rep {rep} InfluxDB variant {name}: p50 "
                        f"{r[f'variant_{name}']['p50_ms']:.1f} ms")
                r["api_peak_rss_mb"] = api.rss()
                runs.append(r)
        registry.close()
        recorded = {k: _recorded_calls(env.settings, dev, v) for k, v in GET_QUERIES.items()}
        for name in _variants(dev):
            out_v = summary([r[f"variant_{name}"]["p50_ms"] for r in runs])
            log(f"variant {name}: p50 median {out_v['median']:.1f} ms")
        out: dict[str, Any] = {"variants": _variants(dev),
                               "variant_p50_ms": {name: summary(
                                   [r[f"variant_{name}"]["p50_ms"] for r in runs])
                                   for name in _variants(dev)},
                               "device_points": stored, "variables": BIG_VARIABLES,
                               "days": BIG_DAYS, "load": load, "queries": GET_QUERIES,
                               "influx_requests": {k: c[1] for k, c in recorded.items()},
                               "influx_requests_cold": {k: c[0] for k, c in recorded.items()},
                               "ceiling": "the /query requests DataService.get sends for the "
                                          "same GET once it has read it before (recorded "
                                          "in-process), replayed in order straight to "
                                          "InfluxDB; *_influx_cold: those of a first read",
                               "client": "httpx.Client keep-alive, sequential requests"}
        for name in GET_QUERIES:
            for who in ("ours", "ours_changed", "influx", "influx_cold"):
                for p in ("p50_ms", "p99_ms"):
                    out[f"{name}_{who}_{p}"] = summary([r[f"{name}_{who}"][p] for r in runs])
        out["api_peak_rss_mb"] = summary([r["api_peak_rss_mb"] for r in runs])
        out["runs"] = runs
        lib.save("get", out)
    finally:
        env.stop()


FIGURES["get"] = fig_get



# ---------------------------------------------------------------------------------------
# Paced load: what a steady, sub-ceiling stream costs (a regression guard, no bar)
# ---------------------------------------------------------------------------------------

PACED_RATE = 2000  # msg/s: the outage scenario rate, far below every ceiling
PACED_SECONDS = 15


def _influx_write_requests(env: Env) -> int:
    """InfluxDB's own count of /write requests served (``SHOW STATS``, module httpd)."""
    assert env.influx is not None
    res = env.influx.query("SHOW STATS FOR 'httpd'")
    series = res["results"][0]["series"][0]
    return int(series["values"][0][series["columns"].index("writeReq")])


def fig_paced(args: argparse.Namespace) -> None:
    """QoS 1 single-point messages at a steady PACED_RATE for PACED_SECONDS: how many
    InfluxDB writes the bridge makes and what CPU it and InfluxDB spend. A full-speed
    figure hides a batching rule that writes too often (session 2's group commit made
    1,211 writes/s here); the linger bounds it at 1 / linger = 200 batches/s."""
    runs = []
    with Env("paced") as env:
        assert env.influx is not None
        for rep in range(args.reps):
            lib.wait_quiet()
            lib.purge_session(env, env.settings.mqtt_client_id)
            n = PACED_RATE * PACED_SECONDS
            base = lib.fresh_base_ms()
            with Bridge(env, f"paced-{rep}") as bridge:
                pids = {"bridge": bridge.pid, "influxd": env.influx.pid}
                cpu0 = {k: lib.cpu_seconds(p) for k, p in pids.items()}
                writes0 = _influx_write_requests(env)
                t0 = time.monotonic()
                pub = lib.cpub(env, n, 1, 1, base_ms=base, rate=PACED_RATE)
                stored, _ = lib.wait_for_points(env, lib.ns_window(base), n, pub)
                lib.cpub_result(pub)
                wall = time.monotonic() - t0
                writes = _influx_write_requests(env) - writes0
                share = {k: (lib.cpu_seconds(p) - cpu0[k]) / wall for k, p in pids.items()}
            r = {"rep": rep, "messages": n, "stored": stored, "lost": n - stored,
                 "seconds": wall, "influx_writes_per_s": writes / wall,
                 "points_per_write": stored / max(1, writes),
                 "bridge_cpu_share": share["bridge"], "influxd_cpu_share": share["influxd"],
                 "bridge_cpu_us_per_msg": 1e6 * share["bridge"] * wall / max(1, stored)}
            runs.append(r)
            log(f"paced rep {rep}: {n:,} msgs at {PACED_RATE}/s, lost {r['lost']}; "
                f"{r['influx_writes_per_s']:.0f} InfluxDB writes/s "
                f"({r['points_per_write']:.1f} points each); CPU bridge "
                f"{r['bridge_cpu_share']:.2f} ({r['bridge_cpu_us_per_msg']:.0f} µs/msg), "
                f"influxd {r['influxd_cpu_share']:.2f}")
    lib.save("paced", {"rate": PACED_RATE, "seconds": PACED_SECONDS,
                       "writes_per_s_bound": 1000 / env.settings.batch_linger_ms,
                       **{k: summary([r[k] for r in runs]) for k in (
                           "lost", "influx_writes_per_s", "points_per_write",
                           "bridge_cpu_share", "influxd_cpu_share", "bridge_cpu_us_per_msg")},
                       "runs": runs})


FIGURES["paced"] = fig_paced


# ---------------------------------------------------------------------------------------
# MQTT client options for the bridge (issue 15): the MQTT figure over each library
# ---------------------------------------------------------------------------------------

def late_ack_check(env: Env, client: str) -> dict[str, Any]:
    """``mqtt_clients.py --check``: unacknowledged messages come back to a new connection
    of the session, acknowledged ones do not (in a process of its own, like the bridge)."""
    assert env.mosquitto is not None and env.settings is not None
    dev = env.devices[0]
    out = subprocess.run(
        [sys.executable, str(BENCH / "mqtt_clients.py"), "--check", client, "127.0.0.1",
         str(env.mosquitto.port), env.settings.mqtt_username, env.bridge_password,
         "devices/+/data", dev.id, dev.token], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    if not lines:
        return {"client": client, "ok": False, "error": out.stderr[-500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def codec_costs(reps: int = 7, number: int = 40) -> dict[str, Any]:
    """The codecs alone, no I/O: one 64 KB socket read of 1-point QoS 1 PUBLISH packets
    (the bench's topic and payload) split into messages, and their PUBACKs built and
    joined into one write, as our connection does. Ours and mqtt5 interleaved, ``reps``
    times; µs per message. (gmqtt and paho parse inside their I/O code: not separable.)"""
    import timeit

    import mqtt_clients
    codecs: dict[str, Any] = {"ours": mqtt_clients.wire, "mqtt5": mqtt_clients.Mqtt5Codec()}
    topic = "devices/0123456789abcdef01234567/data"
    payload = (b'{"variable":"temperature_sensor_07","value":21.437,"unit":"celsius",'
               b'"time":"2026-11-08T12:34:56.789Z"}')
    one = len(mqtt_clients.wire.publish(topic, payload, 1, 1))
    chunk = b"".join(mqtt_clients.wire.publish(topic, payload, 1, i + 1)
                     for i in range(65536 // one))
    n = 65536 // one

    def run(codec: Any) -> None:
        messages = codec.Reader().feed(chunk)
        assert len(messages) == n and messages[-1].mid == n
        b"".join([codec.puback(m.mid) for m in messages])

    times: dict[str, list[float]] = {k: [] for k in codecs}
    for _ in range(reps):
        for name, codec in codecs.items():
            times[name].append(1e6 * timeit.timeit(lambda c=codec: run(c), number=number)
                               / (number * n))
    return {"messages_per_read": n, "read_bytes": len(chunk),
            **{f"{k}_us_per_message": summary(v) for k, v in times.items()}}


def fig_clients(args: argparse.Namespace) -> None:
    """The MQTT figure (cpub at QoS 1 -> our Mosquitto -> bridge -> InfluxDB, end to end)
    with the bridge's connection over each client library (bench/mqtt_clients.py), the
    broker ceiling beside it; the clients take turns, a different one first each
    repetition. Ratio = the library's points/s over ours in the same repetition."""
    import mqtt_clients
    clients = args.client or list(mqtt_clients.CLIENTS)
    if "ours" not in clients:
        clients = ["ours", *clients]
    cases = {k: v for k, v in MQTT_CASES.items() if k in (args.case or ["qos1_single"])}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in cases}
    with Env("clients") as env:
        assert env.settings is not None
        checks = {}
        for client in clients:
            lib.purge_session(env, "bench-late-ack")
            checks[client] = late_ack_check(env, client)
            lib.purge_session(env, "bench-late-ack")
            log(f"clients: late-ack check {client}: {checks[client]}")
        for rep in range(args.reps):
            lib.wait_quiet()
            order = clients[rep % len(clients):] + clients[:rep % len(clients)]
            for name, (qos, points, n, _fmt) in cases.items():
                n = int(n * args.scale)
                lib.purge_session(env, env.settings.mqtt_client_id)
                r: dict[str, Any] = {"rep": rep, "order": order}
                r["ceiling"] = env.attempt(f"ceiling {name} rep {rep}", lambda q=qos, p=points,
                                           m=n: mqtt_ceiling(env, q, p, m))
                for client in order:
                    r[client] = env.attempt(
                        f"{client} {name} rep {rep}",
                        lambda q=qos, p=points, m=n, c=client, tag=f"{client}-{name}-{rep}":
                        mqtt_ours(env, q, p, m, tag, c))
                    x = r[client]
                    log(f"clients {name} rep {rep} {client}: {x['points_per_s']:,.0f} pts/s, "
                        f"lost {x['lost_points']}, bridge CPU "
                        f"{1e6 * x['bridge_cpu_s'] / max(1, x['points_stored']):.1f} us/point")
                for client in clients:
                    r[client]["ratio_to_ours"] = (r[client]["points_per_s"]
                                                  / r["ours"]["points_per_s"])
                log(f"clients {name} rep {rep}: ceiling {r['ceiling']['points_per_s']:,.0f} "
                    "pts/s; ratio to ours: " + ", ".join(
                        f"{c} {r[c]['ratio_to_ours']:.2f}" for c in clients))
                runs[name].append(r)
    out: dict[str, Any] = {
        "clients": {c: {"distribution": mqtt_clients.CLIENTS[c][0],
                        "version": mqtt_clients.version(c),
                        "adapter": mqtt_clients.describe(c),
                        "late_ack_check": checks[c]} for c in clients},
        "broker": "our mosquitto.conf.template with auth ON, as in the mqtt figure",
        "codec_only": codec_costs(), "cases": {}}
    for name, rs in runs.items():
        qos, points, n, _fmt = cases[name]
        case: dict[str, Any] = {
            "qos": qos, "points_per_message": points, "messages": int(n * args.scale),
            "ceiling_points_per_s": summary([r["ceiling"]["points_per_s"] for r in rs])}
        for c in clients:
            case[c] = {
                "points_per_s": summary([r[c]["points_per_s"] for r in rs]),
                "ratio_to_ours": summary([r[c]["ratio_to_ours"] for r in rs]),
                "ratio_to_ceiling": summary([r[c]["points_per_s"]
                                             / r["ceiling"]["points_per_s"] for r in rs]),
                "lost_points": summary([r[c]["lost_points"] for r in rs]),
                "bridge_cpu_us_per_point": summary([1e6 * r[c]["bridge_cpu_s"]
                                                    / max(1, r[c]["points_stored"])
                                                    for r in rs]),
                "bridge_cpu_share": summary([r[c]["bridge_cpu_s"] / r[c]["elapsed_s"]
                                             for r in rs]),
                "bridge_peak_rss_mb": summary([r[c]["bridge_peak_rss_mb"] for r in rs])}
        case["runs"] = rs
        out["cases"][name] = case
    # A run of some libraries only (--client) gets a file of its own: clients-NAME.json.
    lib.save("-".join(["clients", *(c for c in clients if c != "ours")])
             if args.client else "clients", out)


FIGURES["clients"] = fig_clients


def fig_all(args: argparse.Namespace) -> None:
    """Every figure in turn, then the plots."""
    for name in ("influx", "mqtt", "http", "get", "peer", "paced", "profile"):
        t = time.monotonic()
        log(f"== {name}")
        FIGURES[name](args)
        log(f"== {name} took {time.monotonic() - t:.0f} s")
    subprocess.run([sys.executable, str(BENCH / "plot.py")], check=True)


def fig_plot(args: argparse.Namespace) -> None:
    subprocess.run([sys.executable, str(BENCH / "plot.py")], check=True)


FIGURES["all"] = fig_all
FIGURES["plot"] = fig_plot


def fig_fairness(args: argparse.Namespace) -> None:
    import fairness
    fairness.fig_fairness(args)


FIGURES["fairness"] = fig_fairness


# ---------------------------------------------------------------------------------------
# Issue 17: current values right after a write, disk bytes per point, CPU reference
# ---------------------------------------------------------------------------------------

def _typical_worker(url: str, db: str, device: str, first: int, last: int, end_ns: int,
                    step_ns: int, variant: str) -> int:
    """Typical points first..last-1 (as ``_load_worker``: 20 variables sampled together
    every ``step``), unit celsius, device time; one message per sample of the 20, received
    20-300 ms later (random); ``variant`` one / v1 / v2 as in ``our_lines``."""
    import random

    import httpx

    from bridge.influx.schema import encode_point
    from bridge.model.points import Point, generated_group
    from support.schema_v1 import encode_point_v1
    rng = random.Random(first)
    written = 0
    with httpx.Client(base_url=url, trust_env=False, timeout=300) as client:
        for start in range(first, last, 50_000):
            lines = []
            for k in range(start, min(start + 50_000, last)):
                t = end_ns - (k // BIG_VARIABLES) * step_ns
                if k % BIG_VARIABLES == 0 or k == start:
                    received = t + rng.randrange(20_000_000, 300_000_000)
                    group = (f"{rng.getrandbits(96):024x}" if variant == "v1"
                             else generated_group(received))
                variable = f"sensor_{k % BIG_VARIABLES:02d}"
                value = round(((k * 7919) % 100000) / 1000, 3)
                if variant == "one":
                    lines.append(f"data,device={device},variable={variable} value={value!r} {t}")
                    continue
                p = Point(device, variable, t, received, group, value, "celsius")
                lines.append(encode_point_v1(p) if variant == "v1" else encode_point(p))
            r = client.post("/write", params={"db": db, "precision": "ns"},
                            content="\n".join(lines).encode())
            if r.status_code != 204:
                raise RuntimeError(f"InfluxDB {r.status_code}: {r.text[:200]}")
            written += len(lines)
    return written


def load_typical(env: Env, db: str, device: str, n: int, variant: str) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor
    assert env.influx is not None
    env.influx.create_database(db)
    end_ns = (time.time_ns() // 10**9 - 60) * 10**9
    step_ns = BIG_DAYS * 86400 * 10**9 // (n // BIG_VARIABLES)
    t = time.perf_counter()
    half = n // 2
    with ProcessPoolExecutor(2) as pool:
        futs = [pool.submit(_typical_worker, env.influx.url, db, device, a, b, end_ns, step_ns,
                            variant) for a, b in ((0, half), (half, n))]
        written = sum(f.result() for f in futs)
    elapsed = time.perf_counter() - t
    log(f"loaded {written:,} {variant} points into {db} in {elapsed:.0f} s")
    return {"points": written, "seconds": elapsed, "step_s": step_ns / 1e9}


def fig_current(args: argparse.Namespace) -> None:
    """last_value / last_item (all variables, and one) right after a write through the
    API, on a device with 10M typical points, against GET /info in the same run: before
    each timed request the device POSTs one point."""
    n = int(BIG_POINTS * args.scale)
    env = Env(f"current-{n}", ndevices=1, keep=True).start()
    try:
        dev, tok = env.devices[0].id, env.devices[0].token
        stored = env.count(f"\"device\" = '{dev}'")
        load: dict[str, Any] = {"reused": True, "points": stored}
        if stored < n:
            # Schema version 1's lines (what a database written before version 2 holds):
            # both sides read them, and the branch point's code reads nothing else.
            load = load_typical(env, lib.DB, dev, n - stored, "v1")
        stored = env.count(f"\"device\" = '{dev}'")
        settle = _influx_idle(env)
        log(f"current: device {dev} holds {stored:,} points; settled after {settle:.0f} s")
        runs = []
        # The branch point's side first: ours writes version 2 lines, which it cannot read.
        sides = ([("before", True)] if lib.BEFORE else []) + [("ours", False)]
        for side, before in sides:
            runs += _current_side(env, tok, args, side, before)
        out: dict[str, Any] = {"device_points": stored, "load": load, "reads": CURRENT_READS,
                               "before": lib.BEFORE,
                               "method": "before each timed GET the device POSTs one point "
                                         "through the same API (httpx keep-alive, "
                                         "sequential)"}
        for side, _ in sides:
            rs = [r for r in runs if r["side"] == side]
            for name in CURRENT_READS:
                out[f"{side}_{name}_p50_ms"] = summary([r[name]["p50_ms"] for r in rs])
                out[f"{side}_{name}_p99_ms"] = summary([r[name]["p99_ms"] for r in rs])
                out[f"{side}_{name}_ratio"] = summary([r[f"{name}_ratio"] for r in rs])
        out["runs"] = runs
        lib.save("current", out)
    finally:
        env.stop()


CURRENT_READS = {"info": "/info", "last_value": "/data?query=last_value",
                 "last_item": "/data?query=last_item",
                 "last_value_one": "/data?query=last_value&variable=sensor_00",
                 "default": "/data"}


def _current_side(env: Env, tok: str, args: argparse.Namespace, side: str, before: bool
                  ) -> list[dict[str, Any]]:
    import httpx
    runs = []
    with Api(env, f"current-{side}", before=before) as api, httpx.Client(
                base_url=api.url, trust_env=False, timeout=120, headers={"token": tok}) as c:
            counter = [int(time.time())]

            def write() -> None:
                counter[0] += 1
                r = c.post("/data", json={"variable": "sensor_00", "value": counter[0]})
                assert r.status_code == 200, r.text

            def read(path: str) -> Any:
                def call() -> None:
                    r = c.get(path)
                    assert r.status_code == 200, r.text
                return call

            read("/data?query=last_value")()  # the device's first read builds its rows
            reads = CURRENT_READS
            for rep in range(args.reps):
                lib.wait_quiet()
                r: dict[str, Any] = {"rep": rep, "side": side}
                for name, path in reads.items():
                    r[name] = _latencies(read(path), 6, 300, before=write)
                for name in reads:
                    r[f"{name}_ratio"] = r[name]["p50_ms"] / r["info"]["p50_ms"]
                newest = c.get("/data?query=last_value&variable=sensor_00").json()["result"]
                r["exact"] = newest[0]["value"] == counter[0]
                r["api_peak_rss_mb"] = api.rss()
                runs.append(r)
                log(f"current {side} rep {rep}: " + ", ".join(
                    f"{k} p50 {r[k]['p50_ms']:.2f} ms ({r[f'{k}_ratio']:.2f}x /info)"
                    for k in reads) + f"; newest exact: {r['exact']}")
    return runs


FIGURES["current"] = fig_current


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fig_disk(args: argparse.Namespace) -> None:
    """Disk bytes per point once InfluxDB has compacted 10M typical points (the single
    field line, schema version 1 and version 2), each in its own database. InfluxDB runs
    with a 10 s cold-shard full compaction (its default waits 4 hours)."""
    n = int(BIG_POINTS * args.scale)
    os.environ["INFLUXDB_DATA_COMPACT_FULL_WRITE_COLD_DURATION"] = "10s"
    os.environ["INFLUXDB_DATA_CACHE_SNAPSHOT_WRITE_COLD_DURATION"] = "5s"
    out: dict[str, Any] = {"points": n, "variants": {}}
    with Env("disk", ndevices=1, with_mosquitto=False) as env:
        assert env.influx is not None
        dev = env.devices[0].id
        for variant in ("one", "v2", "v1"):
            db = f"disk_{variant}"
            load = load_typical(env, db, dev, n, variant)
            out["variants"][variant] = {"load": load}
        t0 = time.monotonic()
        wal = env.influx.dir / "wal"
        while time.monotonic() - t0 < 600 and (
                _du(wal) > 1_000_000 or not all(
                    list((env.influx.dir / "data" / f"disk_{v}").rglob("*.tsm"))
                    for v in ("one", "v2", "v1"))):
            time.sleep(5)
        time.sleep(30)  # then the cold shards' full compactions
        waited = time.monotonic() - t0 + _influx_idle(env, limit=600)
        for variant in ("one", "v2", "v1"):
            data = env.influx.dir / "data" / f"disk_{variant}"
            tsm = [f for f in data.rglob("*.tsm")]
            size = sum(f.stat().st_size for f in tsm)
            out["variants"][variant].update({"tsm_bytes": size, "tsm_files": len(tsm),
                                             "dir_bytes": _du(data),
                                             "bytes_per_point": size / n})
            log(f"disk {variant}: {size / n:.2f} B/point in {len(tsm)} TSM files")
        out["compaction_wait_s"] = waited
        one = out["variants"]["one"]["bytes_per_point"]
        for variant in ("v2", "v1"):
            out[f"{variant}_ratio"] = out["variants"][variant]["bytes_per_point"] / one
        log(f"disk: v2 {out['v2_ratio']:.2f}x, v1 {out['v1_ratio']:.2f}x the single field")
    lib.save("disk", out)


FIGURES["disk"] = fig_disk


def fig_post1000(args: argparse.Namespace) -> None:
    """POST /data with 1000 points (wrk -c16), ours and the BENCH_BEFORE checkout's API in
    alternating slices, against InfluxDB's single-field rate (5000-line bodies, 1
    connection) in the same repetition."""
    runs = []
    with Env("post1000", ndevices=1, with_mosquitto=False) as env:
        tok = env.devices[0].token
        body = env.dir / "thousand.json"
        body.write_bytes(thousand_points_body())
        one_field = [b"\n".join(ls) for ls in (lambda x: [x[i:i + 5000] for i in range(
            0, len(x), 5000)])(our_lines(500_000, [d.id for d in env.devices], 25,
                                         (time.time_ns() // 10**9 - 86400 * 20) * 10**9,
                                         1_000_000, "one"))]
        with Api(env, "ours") as ours, (Api(env, "before", before=True) if lib.BEFORE
                                         else contextlib.nullcontext()) as before:
            wrk(f"{ours.url}/data", body, tok, 2, 16)
            for rep in range(args.reps):
                lib.wait_quiet()
                influx_one = influx_ceiling(env, one_field, 500_000, f"one_{rep}")["points_per_s"]
                other = before if before is not None else ours
                a, b = paired_wrk((f"{ours.url}/data", tok, ours.pid),
                                  (f"{other.url}/data", tok, other.pid), body, args.seconds, 16)
                r = {"rep": rep, "influx_one_field_points_per_s": influx_one,
                     "ours_points_per_s": a["req_per_s"] * 1000,
                     "before_points_per_s": b["req_per_s"] * 1000 if lib.BEFORE else None,
                     "ours_non_2xx": a["non_2xx"], "before_non_2xx": b["non_2xx"],
                     "ours_cpu_us_per_point": 1e6 * a["server_cpu_share"] / max(
                         1, a["req_per_s"] * 1000),
                     "before_cpu_us_per_point": 1e6 * b["server_cpu_share"] / max(
                         1, b["req_per_s"] * 1000)}
                r["ours_ratio"] = r["ours_points_per_s"] / influx_one
                r["before_ratio"] = (r["before_points_per_s"] or 0) / influx_one
                runs.append(r)
                log(f"post1000 rep {rep}: InfluxDB single-field {influx_one:,.0f} pts/s; ours "
                    f"{r['ours_points_per_s']:,.0f} ({r['ours_ratio']:.2f}x), before "
                    f"{r['before_points_per_s'] or 0:,.0f} ({r['before_ratio']:.2f}x)")
    lib.save("post1000", {"before": lib.BEFORE, **{k: summary([r[k] for r in runs]) for k in (
        "influx_one_field_points_per_s", "ours_points_per_s", "before_points_per_s",
        "ours_ratio", "before_ratio", "ours_cpu_us_per_point", "before_cpu_us_per_point")},
        "runs": runs})


FIGURES["post1000"] = fig_post1000


if __name__ == "__main__":
    main()
