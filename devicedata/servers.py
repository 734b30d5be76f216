"""Our own InfluxDB and Mosquitto: configs rendered from the repository's templates into a
directory of their own, started as plain processes, restartable on the same port and data
(for outage tests). Used by ``devicedata stack`` and by the test fixtures alike. Mosquitto
listens without TLS, with TLS (``BrokerTLS``, ``local_tls``: our local CA), or both."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridge.influx.influxql import create_database_statement
from bridge.registry import broker_sync
from devicedata import procs, tls
from devicedata.procs import (
    ProcessError,
    chown_tree,
    find_binary,
    free_port,
    owner_can_reach,
    port_free,
    render,
    spawn,
    tcp_accepts,
    wait_ready,
    write_pid,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data
MOSQUITTO_TEMPLATE = TEMPLATES / "mosquitto.conf.template"
INFLUX_TEMPLATE = TEMPLATES / "influxdb.conf.template"
MOSQUITTO_USER = "mosquitto"  # Debian's broker drops to this user when started as root


@dataclass(frozen=True)
class BrokerTLS:
    """Mosquitto's TLS listener: its port (0: a free one, picked at each start unless
    one was picked before), its certificate and key, and optionally a CA whose client
    certificates it then requires (besides the username and password)."""

    port: int
    cert: Path
    key: Path
    client_ca: Path | None = None


def listener_lines(address: str, port: int | None, tls: BrokerTLS | None) -> str:
    """The ``listener`` sections of mosquitto.conf: plain on ``port`` (None: none), TLS
    on ``tls.port``. With ``per_listener_settings false`` authentication and access rules
    stay global; the TLS options and ``use_username_as_clientid`` (a session belongs to a
    user name, whatever client id a client sends) are each listener's own."""
    own = "use_username_as_clientid true"
    sections = [f"listener {port} {address}\n{own}"] if port is not None else []
    if tls is not None:
        lines = [f"listener {tls.port} {address}", own, f"certfile {tls.cert}",
                 f"keyfile {tls.key}"]
        if tls.client_ca is not None:
            lines += [f"cafile {tls.client_ca}", "require_certificate true"]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def local_tls(directory: Path, hosts: Sequence[str] = ()) -> tls.TLSFiles:
    """The local CA and a broker certificate for localhost, 127.0.0.1 and ``hosts`` in
    ``directory`` (made once, renewed before expiry: ``devicedata.tls``). Started as
    root, Mosquitto reads its certificate and key after dropping to ``mosquitto``, so
    those two are handed to that user; the CA's key stays the caller's."""
    names = list(dict.fromkeys([*tls.DEFAULT_HOSTS, *hosts]))
    files = tls.ensure_local_tls(directory, hosts=names)
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(MOSQUITTO_USER)
        except KeyError:
            return files
        for path in (files.server_cert, files.server_key):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return files


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
                 overrides: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        """``overrides``: template settings (``max-values-per-tag``...) given other values,
        for tests that need InfluxDB's own limits within reach."""
        super().__init__(dir, port, **kwargs)
        self.overrides = dict(overrides or {})
        self.rpc_port = rpc_port
        self.conf = self.dir / "influxdb.conf"
        self.url = f"http://{self.host}:{port}"

    def _argv(self) -> list[str]:
        binary = self._binary("influxdb")
        if self.rpc_port is None or not port_free(self.rpc_port):
            self.rpc_port = free_port()
        render(INFLUX_TEMPLATE, self.conf, port=self.port, rpc_port=self.rpc_port,
               data_dir=self.dir)
        if self.overrides:
            self.conf.write_text(_override(self.conf.read_text(encoding="utf-8"),
                                           self.overrides), encoding="utf-8")
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
        self.query(create_database_statement(name))


def _override(config: str, values: Mapping[str, str]) -> str:
    lines, left = [], dict(values)
    for line in config.splitlines():
        key = line.partition("=")[0].strip()
        if key in left:
            line = f"  {key} = {left.pop(key)}"
        lines.append(line)
    if left:
        raise ProcessError(f"not in {INFLUX_TEMPLATE.name}: {sorted(left)}")
    return "\n".join(lines) + "\n"


DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
# Debian puts it under the multiarch directory, the eclipse-mosquitto image in /usr/lib.
_PLUGIN_DIRS = ("/usr/lib/*-linux-gnu*", "/usr/lib", "/usr/local/lib", "/usr/lib64")


def dynsec_plugin() -> Path:
    """Where Mosquitto's dynamic-security plugin is installed."""
    for pattern in _PLUGIN_DIRS:
        for directory in sorted(Path("/").glob(pattern.lstrip("/"))):
            if (directory / DYNSEC_PLUGIN).is_file():
                return directory / DYNSEC_PLUGIN
    raise ProcessError(f"{DYNSEC_PLUGIN} not found (Debian's `mosquitto` package ships it)")


class MosquittoServer(Server):
    name = "mosquitto"

    def __init__(self, dir: Path, port: int, pid_file: Path | None = None,
                 bridge_user: str = "devicedata-bridge", admin_user: str = "devicedata-admin",
                 tls: BrokerTLS | None = None, plain: bool = True, listen: str = "127.0.0.1",
                 **kwargs: Any) -> None:
        """``port`` is the plain listener's; with ``plain`` False there is none (the
        port stays unused) and ``tls`` is required. ``listen``: the listeners' address."""
        super().__init__(dir, port, **kwargs)
        self.listen, self.host = listen, procs.dial_address(listen)  # where we dial it ourselves
        if not plain and tls is None:
            raise ValueError("a broker without a plain listener needs a TLS listener")
        self.tls = tls
        self.plain = plain
        self.conf = self.dir / "mosquitto.conf"
        self.pid_file = pid_file or self.dir / "mosquitto.pid"
        self.bridge_user = bridge_user
        self.admin_user = admin_user
        self.user = MOSQUITTO_USER  # who the broker runs as once started as root
        self.note = ""  # set when that had to be root instead

    def _argv(self) -> list[str]:
        binary = self._binary("mosquitto")
        self.dir.mkdir(parents=True, exist_ok=True)
        passwd = broker_sync.passwd_path(self.dir)
        access = broker_sync.dynsec_path(self.dir)
        broker_sync.write_initial(self.dir, self.bridge_user, self.admin_user)
        self.user, self.note = MOSQUITTO_USER, ""
        if os.geteuid() == 0:
            blocked = owner_can_reach(self.dir, MOSQUITTO_USER)
            if blocked is None:
                chown_tree(self.dir, MOSQUITTO_USER)
            else:
                # A clone in root's 0700 home is the common case; a loopback-only broker
                # run as root beats refusing to start or opening up someone's home dir.
                if not procs.is_loopback(self.listen):
                    raise ProcessError(f"user `{MOSQUITTO_USER}` cannot enter {blocked}, and "
                                       "a broker open to other machines never runs as root")
                self.user = "root"
                self.note = (f"user `{MOSQUITTO_USER}` cannot enter {blocked}, so mosquitto "
                             "runs as root (listening on 127.0.0.1 only)")
        if self.tls is not None and self.tls.port == 0:
            self.tls = BrokerTLS(free_port(), self.tls.cert, self.tls.key, self.tls.client_ca)
        plain = self.port if self.plain else None
        listeners = listener_lines(self.listen or "0.0.0.0", plain, self.tls)
        render(MOSQUITTO_TEMPLATE, self.conf, listeners=listeners, data_dir=self.dir,
               passwd_file=passwd, dynsec_plugin=dynsec_plugin(), dynsec_file=access,
               user=self.user)
        return [binary, "-c", str(self.conf)]

    @property
    def tls_port(self) -> int | None:
        return self.tls.port if self.tls is not None else None

    def _ready(self) -> bool:
        if self.tls is not None and not tcp_accepts(self.host, self.tls.port):
            return False
        return not self.plain or tcp_accepts(self.host, self.port)

    def start(self, timeout: float = 15.0) -> None:
        super().start(timeout)
        if self.proc is not None:
            write_pid(self.pid_file, self.proc.pid)

    def wait(self, timeout: float = 10.0) -> None:
        super().wait(timeout)
        self.pid_file.unlink(missing_ok=True)

    def hup(self) -> None:
        """Make the broker re-read its password file (and its TLS certificate) now."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
