"""The console on a device with 10 million points: what each of the page's reads costs,
next to one plain ``GET /data`` on the same device (the issue's yardstick: history pages
and charts answer in about the time of one API GET).

    .venv/bin/python bench/console.py [--reps 3]

Uses the 10M-point store of ``bench.py get`` (``bench/work/get10m``, kept; loaded here
the first time, ~4 min): 20 variables sampled together over 100 days, 500,000 points per
variable. Each read is timed through a real ``devicedata api`` process; results go to
``bench/results/console.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lib
from lib import Api, Env, log, summary

from bench import BIG_POINTS, _influx_idle, _latencies, load_big, top_up_big

S = 10**9
DAY = 86400


def _iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def reads(device: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """name -> (who, path, params): who is "device" (device token) or "admin"."""
    base = f"/admin/devices/{device}"
    var = {"variable": "sensor_00"}
    older = int((time.time() - 50 * DAY) * 1e9)
    return {
        "data_get_default": ("device", "/data", {}),
        "data_get_last_day_50": ("device", "/data", {**var, "qty": 50,
                                                      "start_date": _iso(DAY)}),
        "device_list": ("admin", "/admin/devices", {}),
        "variables": ("admin", f"{base}/variables", {}),
        "sparks_all_variables": ("admin", f"{base}/sparks", {}),
        "history_first_page_day": ("admin", f"{base}/history",
                                   {**var, "qty": 50, "start_date": _iso(DAY)}),
        "history_first_page_all": ("admin", f"{base}/history", {**var, "qty": 50}),
        "history_page_50_days_back": ("admin", f"{base}/history",
                                      {**var, "qty": 50, "before": f"{older}.0"}),
        "chart_hour": ("admin", f"{base}/chart", {**var, "start_date": _iso(3600)}),
        "chart_day": ("admin", f"{base}/chart", {**var, "start_date": _iso(DAY)}),
        "chart_week": ("admin", f"{base}/chart", {**var, "start_date": _iso(7 * DAY)}),
        "chart_100_days": ("admin", f"{base}/chart", {**var, "start_date": _iso(101 * DAY)}),
    }


def export_day(client: httpx.Client, device: str) -> dict[str, float]:
    """One day of all 20 variables as CSV: rows and seconds."""
    t = time.perf_counter()
    rows = 0
    with client.stream("GET", f"/admin/devices/{device}/export",
                       params={"start_date": _iso(DAY)}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            rows += bool(line)
    return {"rows": rows - 1, "seconds": time.perf_counter() - t}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    env = Env("get10m", ndevices=1, keep=True).start()
    try:
        assert env.settings is not None
        dev, token = env.devices[0].id, env.devices[0].token
        stored = env.count(f"\"device\" = '{dev}'")
        if stored < BIG_POINTS:
            load_big(env, dev)
        top_up_big(env, dev)
        stored = env.count(f"\"device\" = '{dev}'")
        log(f"console: device {dev} holds {stored:,} points; InfluxDB settled after "
            f"{_influx_idle(env):.0f} s")
        runs = []
        with Api(env, "console") as api:
            admin_token = (env.settings.data_dir / "admin-token").read_text().strip()
            clients = {"device": httpx.Client(base_url=api.url, trust_env=False, timeout=120,
                                              headers={"token": token}),
                       "admin": httpx.Client(base_url=api.url, trust_env=False, timeout=120,
                                             headers={"admin-token": admin_token})}
            for rep in range(args.reps):
                lib.wait_quiet()
                r: dict[str, Any] = {"rep": rep}
                for name, (who, path, params) in reads(dev).items():
                    def call(who: str = who, path: str = path,
                             params: dict[str, Any] = params) -> None:
                        response = clients[who].get(path, params=params)
                        assert response.status_code == 200, response.text[:300]

                    r[name] = _latencies(call, 4, 100, 10)
                    log(f"console rep {rep} {name}: p50 {r[name]['p50_ms']:.1f} ms "
                        f"p99 {r[name]['p99_ms']:.1f} ms")
                r["export_one_day"] = export_day(clients["admin"], dev)
                log(f"console rep {rep} export one day: {r['export_one_day']}")
                r["api_peak_rss_mb"] = api.rss()
                runs.append(r)
            for client in clients.values():
                client.close()
        names = list(reads(dev))
        lib.save("console", {
            "device_points": stored, "variables": 20, "days": 100,
            "reads": {n: [w, p, q] for n, (w, p, q) in reads(dev).items()},
            **{f"{n}_p50_ms": summary([r[n]["p50_ms"] for r in runs]) for n in names},
            **{f"{n}_p99_ms": summary([r[n]["p99_ms"] for r in runs]) for n in names},
            "export_one_day_rows": runs[-1]["export_one_day"]["rows"],
            "export_one_day_seconds": summary([r["export_one_day"]["seconds"] for r in runs]),
            "api_peak_rss_mb": summary([r["api_peak_rss_mb"] for r in runs]),
            "runs": runs})
    finally:
        env.stop()


if __name__ == "__main__":
    main()
