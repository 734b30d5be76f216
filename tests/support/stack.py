"""`devicedata stack` as a user runs it: the CLI in a subprocess, free ports, a data dir
Mosquitto can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicedata import procs

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``devicedata ARGS`` without the developer's DEVICEDATA_* variables (plus ``env``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEDATA_")}
    return subprocess.run([sys.executable, "-m", "devicedata", *args], capture_output=True,
                          text=True, timeout=timeout, env={**clean, **(env or {})}, cwd=REPO)


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    # mkdtemp under /tmp rather than tmp_path: Mosquitto (user `mosquitto` once it drops
    # root) must be able to enter every parent of its directory.
    path = Path(tempfile.mkdtemp(prefix="devicedata-stack-"))
    path.chmod(0o755)
    yield path
    cli("stack", "down", "--data-dir", str(path))
    shutil.rmtree(path, ignore_errors=True)


def port_args() -> list[str]:
    return ["--http-port", str(procs.free_port()), "--mqtt-port", str(procs.free_port()),
            "--mqtt-tls-port", str(procs.free_port()), "--influx-port", str(procs.free_port())]


def wait_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while any(procs.pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if procs.pid_alive(p)] == []
