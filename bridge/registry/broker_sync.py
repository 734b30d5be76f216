"""Push the registry's credentials to Mosquitto: its ``password_file`` and ``acl_file``.

Why files and not the dynamic-security plugin: Debian's Mosquitto 2.0.11 does not
substitute ``%u`` in dynsec ACLs, while ``acl_file`` ``pattern`` lines do, and both files
are re-read on SIGHUP without dropping well-behaved clients. On that reload the broker
also disconnects every connected client whose password no longer matches, so a revoked
token or deleted device loses its open connection too (measured on 2.0.11).

One hash per device. Measured on Mosquitto 2.0.11: when a password file lists the same
username twice, the broker keeps only the LAST line; the other password is refused with
CONNACK "not authorised". So the file holds exactly one line per device: the hash of its
NEWEST active ``write``/``full`` token (``Registry.broker_credentials`` lists them oldest
first). Older active tokens keep working over HTTP only.

Also measured: ``acl_file`` never refuses a SUBSCRIBE (SUBACK grants any filter, even
``devices/#``); it filters on delivery instead, so such a subscription simply never
receives another device's messages. Publishing to a topic the ACL denies is dropped
(MQTT 5: PUBACK reason 135).

``sync`` is idempotent (files are replaced only when their content changes, and the
broker is signalled only for content it has not seen) and safe across processes: the
whole read-registry-then-write step runs under an ``flock`` in the broker directory, so
a slower writer can never put back an older credential set.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pwd
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bridge import keyfile
from bridge.registry.interface import Registry
from bridge.registry.tokens import mosquitto_hash, mosquitto_verify
from bridge.settings import Settings

log = logging.getLogger(__name__)

PASSWD_NAME = "passwd"
ACL_NAME = "acl"
BRIDGE_PASSWORD_NAME = "mqtt-bridge-password"
ACL_TEMPLATE = Path(__file__).resolve().parent / "acl.template"  # package data
BROKER_USER = "mosquitto"  # Debian's broker drops to this user when started as root
_LOCK_NAME = ".sync.lock"
_STATE_NAME = ".reloaded"  # "<pid> <digest>" of the last content the broker was told about
_UNSAFE = frozenset(":\n\r+#/\0")  # would break the file format or the %u topic patterns


def passwd_path(broker_dir: Path) -> Path:
    return broker_dir / PASSWD_NAME


def acl_path(broker_dir: Path) -> Path:
    return broker_dir / ACL_NAME


def render_acl(bridge_user: str) -> str:
    return ACL_TEMPLATE.read_text(encoding="utf-8").format(bridge_user=bridge_user)


def bridge_password(settings: Settings) -> str:
    """The bridge's broker password: the configured one, else one generated on first use
    and kept in ``DATA_DIR/mqtt-bridge-password`` (mode 0600)."""
    if settings.mqtt_password:
        return settings.mqtt_password
    return keyfile.read_or_create(settings.data_dir / BRIDGE_PASSWORD_NAME)


def render_passwd(settings: Settings, registry: Registry, existing: str = "") -> str:
    """The password file: the bridge's user first, then one line per device, sorted."""
    password = bridge_password(settings)
    user = settings.mqtt_username
    # Keep the bridge's current hash when it still matches, so an unchanged credential set
    # renders to identical bytes and needs no broker reload.
    old = next((line.partition(":")[2] for line in existing.splitlines()
                if line.partition(":")[0] == user), "")
    bridge_hash = old if old and mosquitto_verify(password, old) else mosquitto_hash(password)
    newest: dict[str, str] = {}
    for device_id, mqtt_hash in registry.broker_credentials():
        if device_id == user or _UNSAFE.intersection(device_id) or not mqtt_hash:
            log.warning("device %r cannot get broker credentials; skipped", device_id)
            continue
        newest[device_id] = mqtt_hash  # oldest first, so the last one is the newest token
    lines = [f"{user}:{bridge_hash}"] + [f"{d}:{h}" for d, h in sorted(newest.items())]
    return "\n".join(lines) + "\n"


def write_initial(broker_dir: Path, bridge_user: str) -> None:
    """An empty password file and the ACL, so a broker can start before the first sync."""
    broker_dir.mkdir(parents=True, exist_ok=True)
    with _locked(broker_dir):
        if not passwd_path(broker_dir).exists():
            _write_if_changed(passwd_path(broker_dir), "", 0o600)
        _write_if_changed(acl_path(broker_dir), render_acl(bridge_user), 0o644)


def sync(settings: Settings, registry: Registry) -> None:
    """Rewrite the broker's password and ACL files from ``registry`` and, if their content
    is new to the running broker, SIGHUP it so they apply within the second."""
    broker_dir = settings.broker_dir
    broker_dir.mkdir(parents=True, exist_ok=True)
    with _locked(broker_dir):
        passwd_file = passwd_path(broker_dir)
        try:
            existing = passwd_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = ""
        passwd = render_passwd(settings, registry, existing)
        acl = render_acl(settings.mqtt_username)
        _write_if_changed(passwd_file, passwd, 0o600)
        _write_if_changed(acl_path(broker_dir), acl, 0o644)
        digest = hashlib.sha256((passwd + "\0" + acl).encode("utf-8")).hexdigest()
        _reload_broker(settings, broker_dir, digest)


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
def _locked(broker_dir: Path) -> Iterator[None]:
    with (broker_dir / _LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_if_changed(path: Path, content: str, mode: int) -> bool:
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


def _reload_broker(settings: Settings, broker_dir: Path, digest: str) -> None:
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
