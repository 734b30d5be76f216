"""Health checks of the app image (python:3.11-slim has no curl), run by Docker inside the
container:

    python /app/docker/app/healthcheck.py api      GET /health on this container answers 200
    python /app/docker/app/healthcheck.py bridge   GET /ready on the bridge's metrics port
                                                   answers 200: connected, and every
                                                   subscription granted (without that
                                                   port: a TCP connection to the broker)

Ports come from the same ``DEVICEDATA_*`` settings the processes read. Exit 0 when healthy,
1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from bridge.settings import Settings

TCP_ESTABLISHED = "01"


def answers_200(url: str) -> str | None:
    # No proxy: a container's HTTP(S)_PROXY must not capture a request to itself.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as response:
            status = response.status
    except urllib.error.HTTPError as exc:  # the answer's body says why (/ready's reason)
        return f"{url} answered {exc.code}: {exc.read(500).decode(errors='replace')}"
    except OSError as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def api(settings: Settings) -> str | None:
    return answers_200(f"http://127.0.0.1:{settings.http_port}/health")


def established_to(port: int, tables: tuple[Path, ...] = (
        Path("/proc/net/tcp"), Path("/proc/net/tcp6"))) -> bool:
    """Whether any socket of this network namespace is connected to ``port`` (remote side)."""
    for table in tables:
        try:
            lines = table.read_text(encoding="ascii").splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            columns = line.split()
            remote, state = columns[2], columns[3]
            if state == TCP_ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def bridge(settings: Settings) -> str | None:
    if settings.bridge_metrics_port:
        # Connected is not enough: a broker that refuses the subscription leaves the
        # bridge connected and deaf.
        host = settings.bridge_metrics_host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return answers_200(f"http://{host}:{settings.bridge_metrics_port}/ready")
    if established_to(settings.mqtt_port):
        return None
    return f"no connection to the broker's port {settings.mqtt_port}"


CHECKS = {"api": api, "bridge": bridge}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {'|'.join(CHECKS)}", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]](Settings.from_env())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
