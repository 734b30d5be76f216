"""Markdown tables from bench/results/*.json, written into docs/benchmarks.md between
``<!-- results:begin -->`` and ``<!-- results:end -->``, and the client comparison
(results/clients.json) between ``<!-- clients:begin -->`` and ``<!-- clients:end -->``
(nothing else in the file is touched). Usage: .venv/bin/python bench/report.py [--print]"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOC = BENCH.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
CLIENTS_BEGIN, CLIENTS_END = "<!-- clients:begin -->", "<!-- clients:end -->"
CASE_TITLES = {"qos1_single": "QoS 1, 1 point per message",
               "qos1_array10": "QoS 1, 10-point arrays"}


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def f(s: dict[str, float], unit: str = "", digits: int = 0) -> str:
    """median (min-max)"""
    if not s or s.get("n", 0) == 0:
        return "n/a"
    fmt = f"{{:,.{digits}f}}"
    return f"**{fmt.format(s['median'])}**{unit} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def r(s: dict[str, float]) -> str:
    if not s or s.get("n", 0) == 0:
        return "n/a"
    return f"**{s['median']:.2f}** ({s['min']:.2f}–{s['max']:.2f})"


def ok(cond: bool) -> str:
    return "yes" if cond else "**no**"


def tables() -> str:
    mqtt, influx, http, get, peer = (load(n) for n in ("mqtt", "influx", "http", "get", "peer"))
    out: list[str] = []
    add = out.append
    m = next((d["machine"] for d in (mqtt, http, peer, get, influx) if d), None)
    if m:
        add("Machine and versions (as recorded by the runs):")
        add("")
        add("| | |")
        add("|---|---|")
        add(f"| cores (`nproc`) | {m['nproc']} |")
        add(f"| CPU model (`/proc/cpuinfo`) | {m['cpu']} |")
        add(f"| memory | {m['memory']} |")
        add(f"| kernel | {m['kernel']} |")
        for key in ("python", "mosquitto", "libmosquitto", "influxdb", "wrk", "node",
                    "node-red", "node-red-contrib-influxdb", "paho-mqtt", "httpx", "orjson",
                    "starlette", "uvicorn"):
            add(f"| {key} | {m.get(key, '?')} |")
        add("")
    add("| figure | ceiling, same run: median (range) | ours: median (range) | ratio to ceiling "
        "| peak RSS, MB | N (runs) |")
    add("|---|---|---|---|---|---|")
    if mqtt:
        c = mqtt["cases"]
        names = {"qos1_single": "MQTT QoS 1, 1 point/msg, end to end (msg/s)",
                 "qos0_single": "MQTT QoS 0, 1 point/msg, end to end (msg/s)",
                 "qos1_array10": "MQTT QoS 1, 10 points/msg, end to end (points/s)"}
        for case, label in names.items():
            if case not in c:
                continue
            key = "points_per_s" if case == "qos1_array10" else "msgs_per_s"
            x = c[case]
            add(f"| {label}; {x['messages']:,} msgs | broker {f(x[f'ceiling_{key}'])} | "
                f"{f(x[f'ours_{key}'])} | {r(x['ratio'])} | bridge "
                f"{f(x['bridge_peak_rss_mb'])} | {x['ratio']['n']} |")
    if http:
        add(f"| HTTP POST 1 point, wrk -c64 (req/s) | bare Starlette "
            f"{f(http['post1_bare_req_per_s'])} | "
            f"{f(http['post1_ours_req_per_s'])} | {r(http['post1_ratio'])} | API "
            f"{f(http['api_peak_rss_mb'])} | {http['post1_ratio']['n']} |")
        add(f"| HTTP POST 1 point at half our max rate: p50 / p99 latency (ms) | bare Starlette at "
            f"the same rate: p50 {f(http['half_bare_p50_ms'], '', 1)} / p99 "
            f"{f(http['half_bare_p99_ms'], '', 1)} | p50 {f(http['half_ours_p50_ms'], '', 1)} / "
            f"p99 {f(http['half_ours_p99_ms'], '', 1)} at {f(http['half_rate_req_per_s'])} req/s "
            f"| – | – | {http['half_ours_p99_ms']['n']} |")
        add(f"| HTTP POST 1000 points, wrk -c16 (points/s) | bare Starlette "
            f"{f(http['post1000_bare_points_per_s'])} | {f(http['post1000_ours_points_per_s'])} "
            f"| {r(http['post1000_ratio'])} | (as above) | {http['post1000_ratio']['n']} |")
    if get:
        # Since session 3 the API keeps answers: "ours" is a repeated read of unchanged
        # data, "ours_changed" a read right after the device's data version moved.
        kinds = [("ours", "repeated, data unchanged"), ("ours_changed", "after each change")]
        for q in ("default", "last_value", "aggregate"):
            for who, label in kinds if f"{q}_ours_changed_p50_ms" in get else kinds[:1]:
                if q == "aggregate" and who == "ours":
                    label = "bounded (start_date): never kept"
                ratio = get[f"{q}_{who}_p50_ms"]["median"] / get[f"{q}_influx_p50_ms"]["median"]
                add(f"| GET /data {q}, {label}, {get['device_points']:,}-point device: "
                    f"p50 / p99 (ms) | the same /query requests (a repeated read's) straight "
                    f"to InfluxDB: p50 {f(get[f'{q}_influx_p50_ms'], '', 1)} "
                    f"/ p99 {f(get[f'{q}_influx_p99_ms'], '', 1)} | p50 "
                    f"{f(get[f'{q}_{who}_p50_ms'], '', 1)} / p99 "
                    f"{f(get[f'{q}_{who}_p99_ms'], '', 1)} | p50 ratio {ratio:.2f}"
                    f" (time, lower is better) | API {f(get['api_peak_rss_mb'])} | "
                    f"{get[f'{q}_{who}_p50_ms']['n']} |")
                if q == "aggregate":
                    break
    if peer:
        n = peer["messages"]
        for who, label in (("ours", "devicedata bridge"), ("nodered_batch", "Node-RED, batch flow"),
                           ("nodered_plain", "Node-RED, plain flow")):
            add(f"| Peer: {n:,} QoS 1 msgs flood, {label} (points/s) | broker "
                f"{f(peer['ceiling_msgs_per_s'])} | {f(peer[f'flood_{who}_points_per_s'])}, "
                f"lost {f(peer[f'flood_{who}_lost'])} | {r(peer[f'flood_{who}_ratio'])} | "
                f"{f(peer[f'flood_{who}_peak_rss_mb'])} | {peer[f'flood_{who}_lost']['n']} |")
    if influx and "points_per_s" in influx:  # before issue 17's variants (storage_tables)
        add(f"| InfluxDB ceiling: our line protocol, 5000-line batches, 1 connection (points/s) | "
            f"{f(influx['points_per_s'])} | – | – | – | {influx['points_per_s']['n']} |")
        add(f"| … same lines, 2 connections | {f(influx['points_per_s_2conn'])} | – | – | – | "
            f"{influx['points_per_s_2conn']['n']} |")
        add(f"| … same points with one field (`value`) instead of our five, 1 connection | "
            f"{f(influx['value_only_points_per_s'])} | – | – | – | "
            f"{influx['value_only_points_per_s']['n']} |")
    out.append("")
    if peer and "outage_ours_lost" in peer:
        add("Loss scenarios, side by side (messages published − points stored; every message "
            "has a unique device time, so a point stored is a message kept):")
        add("")
        add("| scenario | devicedata bridge | Node-RED batch flow | Node-RED plain flow |")
        add("|---|---|---|---|")
        add(f"| {n:,}-message QoS 1 flood at full speed: lost | {f(peer['flood_ours_lost'])} | "
            f"{f(peer['flood_nodered_batch_lost'])} | {f(peer['flood_nodered_plain_lost'])} |")
        sent = peer["outage_ours_sent"]["median"]
        add(f"| {sent:,.0f} msgs at 2,000/s, InfluxDB stopped for 10 s: lost | "
            f"{f(peer['outage_ours_lost'])} | {f(peer['outage_nodered_batch_lost'])} | "
            f"{f(peer['outage_nodered_plain_lost'])} |")
        add(f"| peak RSS in the outage run, MB | {f(peer['outage_ours_peak_rss_mb'])} | "
            f"{f(peer['outage_nodered_batch_peak_rss_mb'])} | "
            f"{f(peer['outage_nodered_plain_peak_rss_mb'])} |")
        add("")
    if get and "variant_p50_ms" in get:
        add("For context, timed straight on InfluxDB in the same run: the requests of a "
            "first read (no window hint yet); the unbounded single statement the API sent "
            "before commit c137bf0 (recent windows first); and the default read's last-hour "
            "statement as is, cut down to one field, and cut down to one of the 20 "
            "variables:")
        add("")
        add("| statement | p50 ms, median (range) |")
        add("|---|---|")
        for q in ("default", "last_value"):
            if f"{q}_influx_cold_p50_ms" in get:
                add(f"| {q.replace('_', ' ')}: a first read's requests | "
                    f"{f(get[f'{q}_influx_cold_p50_ms'], '', 1)} |")
        for name, s in get["variant_p50_ms"].items():
            add(f"| {name.replace('_', ' ')} | {f(s, '', 1)} |")
        add("")
    if http:
        add(f"Load generator check (bench/loadgen.py against the bare endpoint at our full POST "
            f"rate, {f(http['loadgen_check_rate'])} req/s): achieved "
            f"{f(http['loadgen_check_achieved'])} req/s, p99 "
            f"{f(http['loadgen_check_p99_ms'], ' ms', 1)}.")
        add("")
    rows = []
    if mqtt:
        for case, c in mqtt["cases"].items():
            if "bridge_cpu_us_per_point" in c:
                extra = ""
                if "influxd_cpu_share" in c:
                    extra = (f"; meanwhile influxd {f(c['influxd_cpu_share'], '', 2)}, "
                             f"mosquitto {f(c['mosquitto_cpu_share'], '', 2)}")
                rows.append(f"| bridge, MQTT {case} | {f(c['bridge_cpu_us_per_point'], '', 1)} | "
                            f"{f(c['bridge_cpu_share'], '', 2)}{extra} |")
    if http and "post1_ours_cpu_share" in http:
        rows.append(f"| API, POST 1 point under wrk -c64 | – | "
                    f"{f(http['post1_ours_cpu_share'], '', 2)} (bare Starlette: "
                    f"{f(http['post1_bare_cpu_share'], '', 2)}) |")
        rows.append(f"| API, POST 1000 points under wrk -c16 | "
                    f"{f(http['post1000_ours_cpu_us_per_point'], '', 1)} | "
                    f"{f(http['post1000_ours_cpu_share'], '', 2)} |")
    if rows:
        add("CPU of our processes in the same runs (`/proc/PID/stat` user+system; share = CPU "
            "seconds ÷ wall seconds of the run, 1.00 = one full core of the 2):")
        add("")
        add("| process, load | CPU µs per stored point | CPU share during the run |")
        add("|---|---|---|")
        out.extend(rows)
        add("")
    # the bars
    add("The bars of issue 5:")
    add("")
    add("| bar | measured (median) | reached |")
    add("|---|---|---|")
    if mqtt and "qos1_single" in mqtt["cases"]:
        x = mqtt["cases"]["qos1_single"]["ratio"]["median"]
        add(f"| MQTT QoS 1 single-point ≥ 0.9 × broker ceiling | {x:.2f} × | {ok(x >= 0.9)} |")
    if mqtt and "qos1_array10" in mqtt["cases"]:
        x = mqtt["cases"]["qos1_array10"]["ours_points_per_s"]["median"]
        add(f"| 10-point arrays at QoS 1 ≥ 250,000 points/s | {x:,.0f} points/s | "
            f"{ok(x >= 250_000)} |")
    if peer:
        ours = peer["flood_ours_points_per_s"]["median"]
        nr = max(peer["flood_nodered_batch_points_per_s"]["median"],
                 peer["flood_nodered_plain_points_per_s"]["median"])
        add(f"| faster than the better Node-RED flow, same load | {ours:,.0f} vs {nr:,.0f} "
            f"points/s | {ok(ours > nr)} |")
        fl = peer["flood_ours_lost"]["max"]
        add(f"| zero loss, 100,000-message QoS 1 flood | {fl:,.0f} lost (worst run) | "
            f"{ok(fl == 0)} |")
        if "outage_ours_lost" in peer:
            ol = peer["outage_ours_lost"]["max"]
            add(f"| zero loss, InfluxDB stopped 10 s at 2,000 msg/s | {ol:,.0f} lost (worst run) "
                f"| {ok(ol == 0)} |")
    if http:
        x = http["post1_ratio"]["median"]
        add(f"| HTTP POST 1 point ≥ 0.5 × bare Starlette req/s | {x:.2f} × | {ok(x >= 0.5)} |")
        x = http["half_ours_p99_ms"]["median"]
        add(f"| p99 at half load < 25 ms | {x:.1f} ms | {ok(x < 25)} |")
        x = http["post1000_ours_points_per_s"]["median"]
        add(f"| POST 1000 points ≥ 200,000 points/s | {x:,.0f} points/s | {ok(x >= 200_000)} |")
    if get:
        for q in ("last_value", "default"):
            x = get[f"{q}_ours_p50_ms"]["median"]
            add(f"| GET /data {q} p50 < 10 ms (10M points), repeated read of unchanged data "
                f"| {x:.1f} ms | {ok(x < 10)} |")
            if f"{q}_ours_changed_p50_ms" in get:
                x = get[f"{q}_ours_changed_p50_ms"]["median"]
                add(f"| … the same read right after each change (InfluxDB answers) "
                    f"| {x:.1f} ms | {ok(x < 10)} |")
    rss = []
    if mqtt:
        rss += [c["bridge_peak_rss_mb"]["max"] for c in mqtt["cases"].values()]
    if peer:
        rss += [peer["flood_ours_peak_rss_mb"]["max"]]
        if "outage_ours_peak_rss_mb" in peer:
            rss += [peer["outage_ours_peak_rss_mb"]["max"]]
    if rss:
        add(f"| bridge RSS < 150 MB in every run | {max(rss):.0f} MB (worst run) | "
            f"{ok(max(rss) < 150)} |")
    add("")
    # provenance
    add("Provenance (from the result files):")
    add("")
    add("| figure | date | command | code measured (HEAD; files differing from it) | load "
        "average at the end; machine busy before each repetition | runs repeated after a "
        "failure |")
    add("|---|---|---|---|---|---|")
    for name in ("influx", "mqtt", "http", "get", "peer", "profile"):
        d = load(name)
        if not d:
            continue
        code = d.get("code", {})
        dirty = ", ".join(x.strip() for x in code.get("dirty", [])) or "none"
        start = d.get("code_at_start")
        if start and start != code:
            sdirty = ", ".join(x.strip() for x in start.get("dirty", [])) or "none"
            dirty += f" (at start: {start.get('head', '?')}; {sdirty})"
        la = d.get("machine", {}).get("loadavg_at_save", "?")
        la = " / ".join(f"{v:.1f}" for v in la) if isinstance(la, list) else la
        retried = "; ".join(f"{x['run']}: {x['error'][:80]}" for x in d.get("retried_runs", []))
        quiet = d.get("quiet_before_reps") or []
        if quiet:
            la = (f"{la}; others' CPU before each rep: "
                  + ", ".join(f"{q['busy_share']:.0%}" for q in quiet))
        add(f"| {name} | {d.get('date', '?')} | `{d.get('command', '?')}` | "
            f"{code.get('head', '?')}; {dirty} | {la} | {retried or 'none'} |")
    out.append("")
    return "\n".join(out)


def clients_tables() -> str:
    """``bench.py clients``: one table per case, a row per library; then the runs of
    some libraries only (``--client``: ``clients-NAME.json``), the same way."""
    out = [clients_table("clients")]
    for path in sorted(RESULTS.glob("clients-*.json")):
        out += ["", f"Run of some libraries only (`{path.relative_to(BENCH.parent)}`):", "",
                clients_table(path.stem)]
    return "\n".join(out)


def clients_table(name: str) -> str:
    d = load(name)
    if not d:
        return ""
    out: list[str] = []
    add = out.append
    for case, c in d["cases"].items():
        add(f"**{CASE_TITLES.get(case, case)}**, {c['messages']:,} messages per run, "
            f"{c['ceiling_points_per_s']['n']} runs per library; broker ceiling in the same "
            f"repetitions (cpub → csub): {f(c['ceiling_points_per_s'])} points/s.")
        add("")
        add("| library | version | points/s, end to end | ratio to ours (same repetition) "
            "| bridge CPU µs per point | bridge CPU share | lost | late-ack check |")
        add("|---|---|---|---|---|---|---|---|")
        for name, info in d["clients"].items():
            x = c[name]
            check = info["late_ack_check"]
            add(f"| {name} | {info['version']} | {f(x['points_per_s'])} | "
                f"{r(x['ratio_to_ours'])} | {f(x['bridge_cpu_us_per_point'], '', 1)} | "
                f"{r(x['bridge_cpu_share'])} | {f(x['lost_points'])} | "
                f"{'passed' if check.get('ok') else '**failed**'} |")
        add("")
    codec = d.get("codec_only")
    if codec:
        add(f"The codecs alone, no I/O (one {codec['read_bytes']:,}-byte read of "
            f"{codec['messages_per_read']} QoS 1 PUBLISH packets split into messages, their "
            f"PUBACKs built into one write; interleaved, "
            f"{codec['ours_us_per_message']['n']} times): ours "
            f"{f(codec['ours_us_per_message'], ' µs', 2)}, mqtt5 "
            f"{f(codec['mqtt5_us_per_message'], ' µs', 2)} per message.")
        add("")
    code = d.get("code", {})
    quiet = ", ".join(f"{q['busy_share']:.0%}" for q in d.get("quiet_before_reps") or [])
    dirty = ", ".join(code.get("dirty", [])) or "none"
    add(f"Run {d.get('date', '?')}, `{d.get('command', '?')}`, at {code.get('head', '?')} "
        f"(files of bridge/ api/ devicedata/ differing: {dirty}); "
        f"others' CPU before each repetition: {quiet or '?'}; runs repeated after a failure: "
        f"{len(d.get('retried_runs', []))}.")
    return "\n".join(out)


STORAGE_BEGIN, STORAGE_END = "<!-- storage:begin -->", "<!-- storage:end -->"


def _run_line(d: dict[str, Any]) -> str:
    code = d.get("code", {})
    quiet = ", ".join(f"{q['busy_share']:.0%}" for q in d.get("quiet_before_reps") or [])
    la = d.get("machine", {}).get("loadavg_at_save", "?")
    la = " / ".join(f"{v:.1f}" for v in la) if isinstance(la, list) else la
    return (f"{d.get('date', '?')}, `{d.get('command', '?')}`, at {code.get('head', '?')} "
            f"(differing: {', '.join(code.get('dirty', [])) or 'none'}); others' CPU before "
            f"each repetition: {quiet or '?'}; load average at the end {la}")


def storage_tables() -> str:
    """Issue 17's bars: ``influx`` (variants), ``mqtt`` (ratios to InfluxDB's single-field
    rate and to the CPU reference, with the branch point's bridge), ``current``, ``disk``."""
    out: list[str] = []
    add = out.append
    influx = load("influx")
    if influx and "variants" in influx:
        add(f"**InfluxDB ingest**, {influx['points']:,} points per variant in "
            f"{influx['batch_lines']}-line bodies on one connection, variants interleaved "
            f"in every repetition ({influx['one_field_points_per_s']['n']} repetitions):")
        add("")
        add("| line | bytes/line | points/s | ratio to the single-field line, same rep |")
        add("|---|---|---|---|")
        names = {"one_field": "single field `value` (the reference)",
                 "v2_plain_untimed": "version 2, plain number, no device time",
                 "v2_plain_timed": "version 2, plain number with device time",
                 "v2_typical": "version 2, number + unit + device time (the bench's point)",
                 "v1_typical": "version 1 (branch point), number + unit + device time",
                 "v1_plain_timed": "version 1 (branch point), plain number with device time"}
        for key, title in names.items():
            v = influx["variants"][key]
            add(f"| {title} | {v['bytes_per_line']:.0f} | "
                f"{f(influx[f'{key}_points_per_s'])} | {r(influx[f'{key}_ratio'])} |")
        add("")
        add(f"Run {_run_line(influx)}.")
        add("")
    mqtt = load("mqtt")
    for case, c in (mqtt.get("cases") or {}).items():
        if "ratio_to_influx_one_field" not in c:
            continue
        add(f"**MQTT end to end, {CASE_TITLES.get(case, case)}** ({c['messages']:,} messages "
            f"per run, {c['ratio']['n']} repetitions; same servers, the branch point's bridge "
            "run right after ours in every repetition):")
        add("")
        add("| | points/s | ratio to InfluxDB's single-field rate (5000-line bodies, 1 "
            "connection, same rep) | bridge CPU µs per point | ratio to the plain-Python "
            "reference (orjson + minimal line), same rep | lost |")
        add("|---|---|---|---|---|---|")
        add(f"| ours | {f(c['ours_points_per_s'])} | {r(c['ratio_to_influx_one_field'])} | "
            f"{f(c['bridge_cpu_us_per_point'], '', 1)} | {r(c['cpu_ratio_to_reference'])} | "
            f"{f(c['lost_points'])} |")
        if "before_points_per_s" in c:
            add(f"| branch point | {f(c['before_points_per_s'])} | "
                f"{r(c['before_ratio_to_influx_one_field'])} | "
                f"{f(c['before_bridge_cpu_us_per_point'], '', 1)} | "
                f"{r(c['before_cpu_ratio_to_reference'])} | {f(c['before_lost_points'])} |")
        add(f"| InfluxDB, single-field lines | {f(c['influx_one_field_points_per_s'])} | 1 | "
            f"– | – | – |")
        add(f"| reference, µs per point | | | {f(c['cpu_reference_us_per_point'], '', 2)} "
            "| | |")
        add("")
    if mqtt.get("cases"):
        add(f"Run {_run_line(mqtt)}.")
        add("")
    cur = load("current")
    if cur:
        add(f"**Current values right after a write**, device with "
            f"{cur['device_points']:,} points (schema version 1 lines, 20 variables); before "
            "every timed GET the device POSTs one point through the same API:")
        add("")
        add("| API | GET /info p50 ms | last_value p50 ms (÷ /info) | last_item p50 ms "
            "(÷ /info) | last_value, one variable (÷ /info) | GET /data default (÷ /info) |")
        add("|---|---|---|---|---|---|")
        for side in ("ours", "before"):
            if f"{side}_info_p50_ms" not in cur:
                continue
            cells = [f(cur[f"{side}_info_p50_ms"], "", 2)]
            for q in ("last_value", "last_item", "last_value_one", "default"):
                cells.append(f"{f(cur[f'{side}_{q}_p50_ms'], '', 2)} "
                             f"({r(cur[f'{side}_{q}_ratio'])})")
            add(f"| {'ours' if side == 'ours' else 'branch point'} | " + " | ".join(cells)
                + " |")
        add("")
        add(f"Run {_run_line(cur)}.")
        add("")
    post = load("post1000")
    if post:
        add(f"**HTTP POST of 1000 points** (wrk -c16, ours and the branch point's API in "
            f"alternating slices; {post['ours_ratio']['n']} repetitions):")
        add("")
        add("| API | points/s | ratio to InfluxDB's single-field rate, same rep | API CPU µs "
            "per point |")
        add("|---|---|---|---|")
        add(f"| ours | {f(post['ours_points_per_s'])} | {r(post['ours_ratio'])} | "
            f"{f(post['ours_cpu_us_per_point'], '', 1)} |")
        if post.get("before"):
            add(f"| branch point | {f(post['before_points_per_s'])} | "
                f"{r(post['before_ratio'])} | {f(post['before_cpu_us_per_point'], '', 1)} |")
        add(f"| InfluxDB, single-field lines | {f(post['influx_one_field_points_per_s'])} | 1 "
            "| – |")
        add("")
        add(f"Run {_run_line(post)}.")
        add("")
    disk = load("disk")
    if disk:
        v = disk["variants"]
        add(f"**Disk after compaction**, {disk['points']:,} typical points per database "
            "(20 variables sampled together every "
            f"{v['one']['load']['step_s']:.2f} s, unit, device time, received 20–300 ms "
            "later), TSM files only:")
        add("")
        add("| line | bytes per point | ratio to the single field |")
        add("|---|---|---|")
        one = v["one"]["bytes_per_point"]
        for key, title in (("one", "single field `value`"), ("v2", "version 2"),
                           ("v1", "version 1 (branch point)")):
            add(f"| {title} | **{v[key]['bytes_per_point']:.2f}** | "
                f"**{v[key]['bytes_per_point'] / one:.2f}** |")
        add("")
        add(f"Run {_run_line(disk)}.")
    return "\n".join(out)


def _splice(doc: str, begin: str, end: str, text: str) -> str:
    start, stop = doc.index(begin) + len(begin), doc.index(end)
    return doc[:start] + "\n" + text + "\n" + doc[stop:]


def main() -> None:
    if "--storage" in sys.argv:  # issue 17's block only
        doc = _splice(DOC.read_text(), STORAGE_BEGIN, STORAGE_END, storage_tables())
        DOC.write_text(doc)
        print(f"updated {DOC}")
        return
    text = tables()
    if "--print" in sys.argv:
        print(text)
        print(clients_tables())
        return
    doc = _splice(DOC.read_text(), BEGIN, END, text)
    if CLIENTS_BEGIN in doc:
        doc = _splice(doc, CLIENTS_BEGIN, CLIENTS_END, clients_tables())
    DOC.write_text(doc)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
