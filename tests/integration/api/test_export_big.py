"""An export of 1,000,000 points through a real ``devicedata api`` process, whose resident
memory is sampled all along: streamed from InfluxDB in chunks, it stays flat.

The points are written straight into the test InfluxDB as line protocol (the service's
own encoding), in large batches. The measured figures go to
``artifacts/export-memory.json`` (and are printed with ``pytest -s``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.influx.schema import encode_point
from bridge.model.points import Point
from bridge.settings import Settings
from devicedata.procs import free_port
from devicedata.servers import InfluxServer
from support.api import ApiServer
from support.mqtt import wait_until

N_POINTS = 1_000_000
VARIABLES = 4
START_NS = 1_672_531_200 * 10**9  # 2023-01-01T00:00:00Z; one point per second after it
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def write_points(influx: InfluxServer, db: str, device: str, n: int) -> None:
    with httpx.Client(base_url=influx.url, timeout=120, trust_env=False) as client:
        for first in range(0, n, 50_000):
            lines = []
            for k in range(first, min(first + 50_000, n)):
                t = START_NS + k * 10**9
                lines.append(encode_point(Point(device, f"v{k % VARIABLES}", t, t, "g", k,
                                                "u")))
            response = client.post("/write", params={"db": db, "precision": "ns"},
                                   content="\n".join(lines).encode())
            assert response.status_code == 204, response.text


@pytest.fixture
def api_process(stack_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int]]:
    settings = stack_settings.replace(http_port=free_port(), spool_dir=tmp_path / "spool")
    log = tmp_path / "api.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "devicedata", "api"],
                                env={**os.environ, **settings.to_env()}, stdout=out,
                                stderr=out, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{settings.http_port}"

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(url + "/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30, what="the API process")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_million_point_export_streams_in_flat_memory(
        api: ApiServer, influx: InfluxServer, api_process: tuple[str, int]) -> None:
    url, pid = api_process
    device = api.registry.create_device("big export")
    t = time.monotonic()
    write_points(influx, api.settings.influx_db, device.id, N_POINTS)
    load_seconds = time.monotonic() - t
    headers = {"admin-token": api.state.admin_token}
    export_url = f"{url}/admin/devices/{device.id}/export"
    # Warm up (imports, connection pools): the baseline is the process as it serves.
    assert httpx.get(export_url, params={"end_date": "2023-01-01T00:10:00Z"},
                     headers=headers).status_code == 200
    baseline = _rss_mb(pid)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    count = total = 0
    first = last = ""
    t = time.monotonic()
    try:
        with httpx.stream("GET", export_url, headers=headers, timeout=120) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines) == "time,variable,value,unit,group,lat,lng,metadata"
            for line in lines:
                if not line:
                    continue
                fields = line.split(",")
                assert fields[1] == f"v{count % VARIABLES}"
                total += int(fields[2])
                first = first or line
                last = line
                count += 1
    finally:
        done.set()
        sampler.join()
    seconds = time.monotonic() - t
    assert count == N_POINTS
    assert total == N_POINTS * (N_POINTS - 1) // 2  # every value, each once
    assert first == "2023-01-01T00:00:00.000Z,v0,0,u,g,,,"
    assert last == f"2023-01-12T13:46:39.000Z,v3,{N_POINTS - 1},u,g,,,"
    peak = max(samples)
    figures = {"points": N_POINTS, "export_seconds": round(seconds, 1),
               "load_seconds": round(load_seconds, 1), "rss_before_mb": round(baseline, 1),
               "rss_peak_during_mb": round(peak, 1), "growth_mb": round(peak - baseline, 1),
               "vmhwm_mb": round(_rss_mb(pid, "VmHWM"), 1), "samples": len(samples)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "export-memory.json").write_text(json.dumps(figures, indent=1) + "\n")
    print("export memory:", figures)
    # The CSV alone is ~50 MB; holding it (or its rows as objects) would show many times
    # that. Streamed, the process grows by a few chunks at most.
    assert peak - baseline < 40, figures
