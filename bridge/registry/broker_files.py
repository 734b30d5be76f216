"""The broker's files, written from the registry: ``password_file`` (who may log in) and the
dynamic-security plugin's JSON (what each may do; read by the broker only when it starts),
plus the generated secrets of our own broker users and the SIGHUP that makes a running
broker re-read its password file.

Measured on Mosquitto 2.0.11 (mosquitto/README.md): when a password file lists a username
twice the LAST line wins, so the file holds one line per device, the hash of its NEWEST
active ``write``/``full`` token (``Registry.broker_credentials`` lists them oldest first).
SIGHUP re-reads it and disconnects every client whose password no longer matches.

Files are replaced only when their content changes, atomically, readable by the broker
user, and every write happens under an ``flock`` in the broker directory, so a slower
process can never put back an older credential set; the broker is signalled only for
content it has not seen yet.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import signal
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from bridge import keyfile
from bridge.registry.tokens import mosquitto_hash, mosquitto_verify
from bridge.settings import Settings

log = logging.getLogger("devicedata.broker")

PASSWD_NAME = "passwd"
DYNSEC_NAME = "dynamic-security.json"
BRIDGE_PASSWORD_NAME = "mqtt-bridge-password"
ADMIN_PASSWORD_NAME = "mqtt-admin-password"
BROKER_USER = "mosquitto"  # Debian's broker drops to this user when started as root
_LOCK_NAME = ".sync.lock"
_STATE_NAME = ".reloaded"  # "<pid> <digest>" of the last content the broker was told about
_UNSAFE = frozenset(":\n\r+#/\0")  # would break the file format or a topic level


def passwd_path(broker_dir: Path) -> Path:
    return broker_dir / PASSWD_NAME


def dynsec_path(broker_dir: Path) -> Path:
    return broker_dir / DYNSEC_NAME


def bridge_password(settings: Settings) -> str:
    """The password of our own broker users (bridges, APIs): the configured one, else one
    generated on first use and kept in ``DATA_DIR/mqtt-bridge-password`` (mode 0600)."""
    if settings.mqtt_password:
        return settings.mqtt_password
    return keyfile.read_or_create(settings.data_dir / BRIDGE_PASSWORD_NAME)


def admin_password(settings: Settings) -> str:
    """The broker admin's password (it changes access rules): configured, or generated
    once into ``DATA_DIR/mqtt-admin-password`` (mode 0600)."""
    if settings.mqtt_admin_password:
        return settings.mqtt_admin_password
    return keyfile.read_or_create(settings.data_dir / ADMIN_PASSWORD_NAME)


def safe_username(name: str) -> bool:
    return bool(name) and not _UNSAFE.intersection(name)


def render_passwd(services: dict[str, str], devices: Iterable[tuple[str, str]],
                  existing: str = "") -> str:
    """The password file: our own users (``username -> password``) first, then one line per
    device (its newest token's hash), sorted. A service user's current hash is kept while
    it still matches, so an unchanged set renders to identical bytes (no reload)."""
    old = {line.partition(":")[0]: line.partition(":")[2] for line in existing.splitlines()}
    lines = []
    for user, password in sorted(services.items()):
        kept = old.get(user, "")
        same = bool(kept) and mosquitto_verify(password, kept)
        lines.append(f"{user}:{kept if same else mosquitto_hash(password)}")
    newest: dict[str, str] = {}
    for device_id, mqtt_hash in devices:
        if device_id in services or not safe_username(device_id) or not mqtt_hash:
            log.warning("device %r cannot get broker credentials; skipped", device_id)
            continue
        newest[device_id] = mqtt_hash  # oldest first, so the last one is the newest token
    lines += [f"{d}:{h}" for d, h in sorted(newest.items())]
    return "\n".join(lines) + "\n"


def broker_pid_file(settings: Settings) -> Path | None:
    """The configured pid file, else the one ``devicedata stack`` writes for this data dir
    (so ``devicedata device create`` next to a running stack applies at once)."""
    if str(settings.mosquitto_pid_file) not in ("", "."):
        return settings.mosquitto_pid_file
    if settings.broker_dir.resolve() == (settings.data_dir / "mosquitto").resolve():
        candidate = settings.data_dir / "run" / "mosquitto.pid"
        if candidate.exists():
            return candidate
    return None


@contextlib.contextmanager
def locked(broker_dir: Path) -> Iterator[None]:
    """Hold the broker directory's lock: one writer of its files at a time, every process."""
    broker_dir.mkdir(parents=True, exist_ok=True)
    with (broker_dir / _LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)



def write_if_changed(path: Path, content: str, mode: int) -> bool:
    """Replace ``path`` atomically with ``content`` unless it already holds it."""
    try:
        if path.read_text(encoding="utf-8") == content:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        _give_to_broker(tmp)  # before the rename: the broker must never see an unreadable file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def _give_to_broker(path: str) -> None:
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(BROKER_USER)
    except KeyError:  # no such user: the broker will not drop privileges either
        return
    os.chown(path, entry.pw_uid, entry.pw_gid)


def reload_broker(settings: Settings, broker_dir: Path, digest: str) -> None:
    """SIGHUP the broker named by the pid file, once per content ``digest``."""
    pid_file = broker_pid_file(settings)
    if pid_file is None:
        return
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        log.warning("broker pid file %s is missing; broker not reloaded", pid_file)
        return
    except (OSError, ValueError) as exc:
        log.warning("cannot read broker pid file %s (%s); broker not reloaded", pid_file, exc)
        return
    state_file = broker_dir / _STATE_NAME
    state = f"{pid} {digest}"
    with contextlib.suppress(FileNotFoundError):
        if state_file.read_text().strip() == state:
            return
    if not _is_mosquitto(pid):
        # A stale pid may belong to any process by now, and SIGHUP would kill most of them.
        log.warning("pid %d from %s is not a running mosquitto; broker not reloaded",
                    pid, pid_file)
        return
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError) as exc:
        log.warning("cannot signal broker pid %d from %s (%s); broker not reloaded",
                    pid, pid_file, exc)
        return
    state_file.write_text(state + "\n")


def _is_mosquitto(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc on this system: trust the pid file
    return b"mosquitto" in cmdline
