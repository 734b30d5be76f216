"""Plots from bench/results/*.json: throughput per path against its ceiling
(throughput.png), and the loss scenarios plus GET latencies (loss_and_get.png).
Bars are medians, whiskers the min..max over the repetitions.
Usage: .venv/bin/python bench/plot.py"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
CEIL, OURS, PEER = "#9e9e9e", "#1f77b4", "#ff7f0e"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def bars(ax: Any, title: str, unit: str, items: list[tuple[str, dict[str, float], str]],
         note: str = "") -> None:
    labels = [i[0] for i in items]
    med = [i[1]["median"] for i in items]
    lo = [i[1]["median"] - i[1]["min"] for i in items]
    hi = [i[1]["max"] - i[1]["median"] for i in items]
    ax.bar(range(len(items)), med, yerr=[lo, hi], color=[i[2] for i in items], capsize=3)
    ax.set_xticks(range(len(items)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    top = max(m + h for m, h in zip(med, hi, strict=True)) or 1
    for x, m in enumerate(med):
        ax.text(x, m + top * 0.02, f"{m:,.0f}", ha="center", fontsize=7)
    ax.set_ylim(0, top * 1.18)
    if note:
        ax.text(0.98, 0.96, note, transform=ax.transAxes, ha="right", va="top", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})


def ratio_note(r: dict[str, float]) -> str:
    return f"ratio {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def throughput() -> None:
    mqtt, influx, http, peer = load("mqtt"), load("influx"), load("http"), load("peer")
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    axes = axes.ravel()
    if mqtt:
        for ax, (case, title, unit, key) in zip(axes[:3], [
                ("qos1_single", "MQTT QoS 1, 1 point/msg", "msg/s", "msgs_per_s"),
                ("qos0_single", "MQTT QoS 0, 1 point/msg", "msg/s", "msgs_per_s"),
                ("qos1_array10", "MQTT QoS 1, 10 points/msg", "points/s", "points_per_s")],
                strict=True):
            c = mqtt["cases"].get(case)
            if not c:
                continue
            items = [("broker\nceiling", c[f"ceiling_{key}"], CEIL)]
            if case == "qos1_array10" and influx:
                items.append(("InfluxDB\nceiling*", influx["points_per_s"], CEIL))
            items.append(("devicedata\nbridge", c[f"ours_{key}"], OURS))
            bars(ax, title, unit, items, ratio_note(c["ratio"]) + " vs broker")
    if http:
        bars(axes[3], "HTTP POST, 1 point", "req/s",
             [("bare\nStarlette", http["post1_bare_req_per_s"], CEIL),
              ("devicedata\nAPI", http["post1_ours_req_per_s"], OURS)],
             ratio_note(http["post1_ratio"]))
        items = [("bare\nStarlette", http["post1000_bare_points_per_s"], CEIL)]
        if influx:
            items.append(("InfluxDB\nceiling*", influx["points_per_s"], CEIL))
        items.append(("devicedata\nAPI", http["post1000_ours_points_per_s"], OURS))
        bars(axes[4], "HTTP POST, 1000 points", "points/s", items,
             ratio_note(http["post1000_ratio"]) + " vs bare")
    if peer:
        bars(axes[5], f"Peer: {peer['messages']:,} QoS 1 msgs, 1 point each", "points/s",
             [("broker\nceiling", peer["ceiling_msgs_per_s"], CEIL),
              ("devicedata\nbridge", peer["flood_ours_points_per_s"], OURS),
              ("Node-RED\nbatch", peer["flood_nodered_batch_points_per_s"], PEER),
              ("Node-RED\nplain", peer["flood_nodered_plain_points_per_s"], PEER)])
    date = next((d["date"] for d in (mqtt, http, peer) if d), "")
    fig.suptitle(f"devicedata throughput vs ceiling, same run (median, min-max whiskers) "
                 f"- {date}", fontsize=10)
    fig.text(0.01, 0.005, "* InfluxDB ceiling: our line protocol, 5000-line batches, 1 "
             "connection, from the separate `bench.py influx` run (not the same run).",
             fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(RESULTS / "throughput.png", dpi=72)
    print(f"wrote {RESULTS / 'throughput.png'}")


def loss_and_get() -> None:
    peer, get = load("peer"), load("get")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    if peer:
        n = peer["messages"]
        bars(axes[0], f"Lost of {n:,} QoS 1 msgs (flood)", "messages lost",
             [("devicedata", peer["flood_ours_lost"], OURS),
              ("Node-RED\nbatch", peer["flood_nodered_batch_lost"], PEER),
              ("Node-RED\nplain", peer["flood_nodered_plain_lost"], PEER)])
        if "outage_ours_lost" in peer:
            sent = peer["outage_ours_sent"]["median"]
            bars(axes[1], f"Lost of {sent:,.0f} msgs, InfluxDB down 10 s at 2,000/s",
                 "messages lost",
                 [("devicedata", peer["outage_ours_lost"], OURS),
                  ("Node-RED\nbatch", peer["outage_nodered_batch_lost"], PEER),
                  ("Node-RED\nplain", peer["outage_nodered_plain_lost"], PEER)])
    if get:
        items = []
        # aggregate (about 500 ms, in the table) would flatten the rest of the chart
        for q, short in (("default", "default"), ("last_value", "last val.")):
            items.append((f"{short}\nInflux", get[f"{q}_influx_p50_ms"], CEIL))
            if f"{q}_ours_changed_p50_ms" in get:
                items.append((f"{short}\nAPI,\nchanged", get[f"{q}_ours_changed_p50_ms"], OURS))
                items.append((f"{short}\nAPI,\nrepeated", get[f"{q}_ours_p50_ms"], OURS))
            else:
                items.append((f"{short}\nAPI", get[f"{q}_ours_p50_ms"], OURS))
        bars(axes[2], f"GET /data p50, {get['device_points']:,}-point device", "ms", items)
    fig.tight_layout()
    fig.savefig(RESULTS / "loss_and_get.png", dpi=72)
    print(f"wrote {RESULTS / 'loss_and_get.png'}")


if __name__ == "__main__":
    throughput()
    loss_and_get()
