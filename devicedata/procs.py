"""Our own Mosquitto and InfluxDB processes, for ``devicedata stack`` and the test fixtures.

One implementation of port picking, config rendering, start, readiness and stop, so the
stack a user runs and the servers the tests run cannot drift apart. Plain child processes
only: never systemd or ``service`` (infra-notes section 1).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from bridge import broker_sync
from bridge.errors import DeviceDataError

REPO_ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO_TEMPLATE = REPO_ROOT / "mosquitto" / "mosquitto.conf.template"
INFLUX_TEMPLATE = REPO_ROOT / "influxdb" / "influxdb.conf.template"
MOSQUITTO_USER = "mosquitto"  # Debian's broker drops to this user when started as root
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin")


class ProcessError(DeviceDataError):
    """A server could not be found, started or reached."""


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else in the sbin directories a non-root PATH often lacks."""
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_EXTRA_BIN_DIRS))


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now.

    SO_REUSEADDR mirrors what Mosquitto, Go and uvicorn set, so a port left in TIME_WAIT
    counts as free while one with a listener (on this address or 0.0.0.0) does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just considered free (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def render(template: Path, dest: Path, **values: object) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(template.read_text(encoding="utf-8").format(**values), encoding="utf-8")
    return dest


def spawn(argv: list[str], log: Path, env: Mapping[str, str] | None = None,
          new_session: bool = True) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log`` and stdin closed.

    ``new_session`` keeps a background stack alive after its terminal closes and keeps
    the terminal's Ctrl-C away from it; test servers stay in pytest's group instead, so a
    killed test run takes them along.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=None if env is None else dict(env),
                                start_new_session=new_session)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but is gone for every purpose here
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_runs(pid: int, needle: str) -> bool:
    """Whether ``pid`` is alive and its command line mentions ``needle``: a pid file that
    outlived its process may name an unrelated process by now, which we must not signal."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc: trust the pid
    return needle.encode() in cmdline


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def stop_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM all of ``pids`` at once, wait up to ``timeout`` for each, then SIGKILL."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        _reap(pids)
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            _signal(pid, signal.SIGKILL)
    _reap(pids)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pids: list[int]) -> None:
    for pid in pids:  # only our own children can be reaped; others are not ours to wait for
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def wait_ready(check: Callable[[], bool], what: str, log: Path, timeout: float,
               proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``check`` until true; fail early, with the log's tail, if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"{what} exited with code {proc.returncode} while starting; "
                               f"see {log}:\n{tail(log)}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise ProcessError(f"{what} not ready after {timeout:.0f} s; see {log}:\n{tail(log)}")
        time.sleep(0.02)


def tcp_accepts(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def http_status(url: str, timeout: float = 2.0) -> int:
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        return client.get(url).status_code


def owner_can_reach(path: Path, user: str) -> Path | None:
    """The first directory on ``path``'s way up that ``user`` cannot enter, if any.

    Mosquitto started as root drops to ``mosquitto`` before reading its password file,
    so a private parent (pytest's 0700 tmp dirs, a 0700 home) stops it cold.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    groups = {entry.pw_gid} | {g for g in os.getgrouplist(user, entry.pw_gid)}
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return parent
    return None


def chown_tree(path: Path, user: str) -> None:
    """Hand ``path`` and everything under it to ``user`` (only meaningful as root)."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


class Server:
    """A restartable server process with a config rendered from a template."""

    name = "server"

    def __init__(self, dir: Path, port: int, log: Path | None = None,
                 new_session: bool = True, binary: str | None = None) -> None:
        self.dir = dir.resolve()
        self.host = "127.0.0.1"
        self.port = port
        self.log = log or self.dir / f"{self.name}.log"
        self.new_session = new_session
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _binary(self, package: str) -> str:
        found = self.binary or find_binary(self.name)
        if found is None:
            raise ProcessError(f"`{self.name}` not found: install Debian's `{package}` package "
                               "(apt-get install -y " + package + ") or run `make run`")
        return found

    def start(self, timeout: float = 30.0) -> None:
        if self.pid is not None:
            return
        self.proc = spawn(self._argv(), self.log, new_session=self.new_session)
        try:
            wait_ready(self._ready, f"{self.name} on {self.host}:{self.port}", self.log,
                       timeout, self.proc)
        except BaseException:
            self.stop()
            raise

    def terminate(self) -> None:
        """Ask the server to stop without waiting (see ``wait``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        self.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, for crash tests: no clean shutdown, no saved state."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.wait()


class InfluxServer(Server):
    name = "influxd"

    def __init__(self, dir: Path, port: int, rpc_port: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(dir, port, **kwargs)
        self.rpc_port = rpc_port
        self.conf = self.dir / "influxdb.conf"
        self.url = f"http://{self.host}:{port}"

    def _argv(self) -> list[str]:
        binary = self._binary("influxdb")
        if self.rpc_port is None or not port_free(self.rpc_port):
            self.rpc_port = free_port()
        render(INFLUX_TEMPLATE, self.conf, port=self.port, rpc_port=self.rpc_port,
               data_dir=self.dir)
        return [binary, "-config", str(self.conf)]

    def _ready(self) -> bool:
        # The version header proves it is InfluxDB answering, not whoever took the port.
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            resp = client.get(f"{self.url}/ping")
        return resp.status_code == 204 and "X-Influxdb-Version" in resp.headers

    def query(self, q: str, db: str | None = None, **params: str) -> dict[str, Any]:
        """Run InfluxQL (POST, so writes like CREATE work too); raises on an HTTP error."""
        data = {"q": q, **params}
        if db:
            data["db"] = db
        with httpx.Client(trust_env=False, timeout=30.0) as client:
            resp = client.post(f"{self.url}/query", data=data)
        if resp.status_code != 200:
            raise ProcessError(f"InfluxDB {resp.status_code}: {resp.text.strip()}")
        result: dict[str, Any] = resp.json()
        return result

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')


class MosquittoServer(Server):
    name = "mosquitto"

    def __init__(self, dir: Path, port: int, pid_file: Path | None = None,
                 bridge_user: str = "devicedata-bridge", **kwargs: Any) -> None:
        super().__init__(dir, port, **kwargs)
        self.conf = self.dir / "mosquitto.conf"
        self.pid_file = pid_file or self.dir / "mosquitto.pid"
        self.bridge_user = bridge_user

    def _argv(self) -> list[str]:
        binary = self._binary("mosquitto")
        self.dir.mkdir(parents=True, exist_ok=True)
        passwd = broker_sync.passwd_path(self.dir)
        acl = broker_sync.acl_path(self.dir)
        if not passwd.exists() or not acl.exists():
            broker_sync.write_initial(self.dir, self.bridge_user)
        render(MOSQUITTO_TEMPLATE, self.conf, port=self.port, data_dir=self.dir,
               passwd_file=passwd, acl_file=acl)
        if os.geteuid() == 0:
            blocked = owner_can_reach(self.dir, MOSQUITTO_USER)
            if blocked is not None:
                raise ProcessError(
                    f"mosquitto runs as user `{MOSQUITTO_USER}` and cannot enter {blocked}; "
                    f"choose a data dir outside it or `chmod o+x {blocked}`")
            chown_tree(self.dir, MOSQUITTO_USER)
        return [binary, "-c", str(self.conf)]

    def _ready(self) -> bool:
        return tcp_accepts(self.host, self.port)

    def start(self, timeout: float = 15.0) -> None:
        super().start(timeout)
        if self.proc is not None:
            write_pid(self.pid_file, self.proc.pid)

    def wait(self, timeout: float = 10.0) -> None:
        super().wait(timeout)
        self.pid_file.unlink(missing_ok=True)

    def hup(self) -> None:
        """Make the broker re-read its password and ACL files now."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
