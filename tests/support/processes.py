"""The API as a child process, so a test can SIGKILL it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bridge.settings import Settings
from support.mqtt import env_of, wait_until


class ApiProcess:
    """``devicedata api`` as a child process, so it can be SIGKILLed."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{settings.http_port}"

    def start(self) -> ApiProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "devicedata", "api"],
                                         env=env_of(self.settings), stdout=out, stderr=out)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(self.url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20, what="the API to start")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)
