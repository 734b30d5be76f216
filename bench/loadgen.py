"""A constant-rate (open-loop) HTTP/1.1 load generator: Debian's wrk has no ``-R`` and
wrk2 is not packaged, so this one measures latency at a fixed request rate.

Request i is due at ``t0 + i / rate``; a pool of keep-alive connections (raw asyncio
streams, pre-built request bytes, minimal response parsing) sends it as soon as a
connection is free, and its latency is counted from when it was *due*, not from when it
went out, so a stalled server cannot hide queueing delay (no coordinated omission).

Usage (also importable): python bench/loadgen.py URL RATE SECONDS BODY_FILE [TOKEN]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit


async def _connection(host: str, port: int, request: bytes, due: asyncio.Queue[float | None],
                      latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t_due = await due.get()
            if t_due is None:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - t_due)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(url: str, rate: float, seconds: float, body: bytes, token: str = "",
              connections: int = 64, method: str = "POST") -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    if token:
        headers.append(f"token: {token}")
    if method == "POST":
        headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(headers) + "\r\n\r\n").encode() + (body if method == "POST" else b"")
    due: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    workers = [asyncio.create_task(_connection(host, port, request, due, latencies, statuses))
               for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections up
    cpu0 = os.times()
    total = int(rate * seconds)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        target = min(total, int((now - t0) * rate) + 1)
        while sent < target:
            due.put_nowait(t0 + sent / rate)
            sent += 1
        await asyncio.sleep(0.0005)
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers, return_exceptions=True)
    elapsed = time.perf_counter() - t0
    cpu1 = os.times()
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, round((len(lat) - 1) * p / 100))] * 1000 if lat else 0

    return {"target_rate": rate, "requests": len(lat), "achieved_rate": len(lat) / elapsed,
            "elapsed_s": elapsed, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": lat[-1] * 1000 if lat else 0, "statuses": statuses,
            "generator_cpu_pct": 100 * ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system))
            / elapsed}


def main() -> None:
    url, rate, seconds, body_file = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    token = sys.argv[5] if len(sys.argv) > 5 else ""
    with open(body_file, "rb") as f:
        body = f.read()
    print(json.dumps(asyncio.run(run(url, rate, seconds, body, token))))


if __name__ == "__main__":
    main()
