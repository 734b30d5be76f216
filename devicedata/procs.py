"""Process plumbing shared by ``devicedata stack`` and the test fixtures: binaries, ports,
config rendering, start, readiness, pid files and stop.

One implementation, so the stack a user runs and the servers the tests run cannot drift
apart (the servers themselves are in ``devicedata.servers``). Plain child processes only:
never systemd or ``service`` (infra-notes section 1).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

import httpx

from bridge.errors import DeviceDataError

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


class Startable(Protocol):
    def start(self) -> None: ...


S = TypeVar("S", bound=Startable)


def start_on_free_port(make: Callable[[int], S], made: Callable[[S], None] | None = None,
                       attempts: int = 3) -> S:
    """``make(port).start()`` on a free port, trying again on another port if it fails:
    free_port() is only a snapshot, and another process may take the port meanwhile.
    ``made`` sees every server created, started or not (so a caller can clean up)."""
    for attempt in range(attempts):
        server = make(free_port())
        if made is not None:
            made(server)
        try:
            server.start()
            return server
        except ProcessError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


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
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pids: list[int]) -> None:
    for pid in pids:  # only our own children can be reaped; others are not ours to wait for
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


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


def dial_address(listen: str) -> str:
    """Where a process on this machine reaches a server that listens on ``listen``."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen, listen)


def is_loopback(address: str) -> bool:
    """Whether ``address`` (a name or an IP) reaches this machine only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def tcp_accepts(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def http_status(url: str, timeout: float = 2.0, verify: bool = True) -> int:
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    with httpx.Client(trust_env=False, timeout=timeout, verify=verify) as client:
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


def user_can_read(path: Path, user: str) -> bool:
    """Whether ``user`` can read the file ``path`` (reach its directory, then read it by
    its owner, group or other bits); True when there is no such user."""
    if owner_can_reach(path.parent, user) is not None:
        return False
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return True
    groups = {entry.pw_gid} | set(os.getgrouplist(user, entry.pw_gid))
    st = path.stat()
    if st.st_uid == entry.pw_uid:
        return bool(st.st_mode & 0o400)
    if st.st_gid in groups:
        return bool(st.st_mode & 0o040)
    return bool(st.st_mode & 0o004)


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
