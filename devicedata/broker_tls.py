"""Which certificate Mosquitto's TLS listener serves: one from the local CA in
DATA_DIR/tls (``devicedata.tls``: made on the first start, kept, renewed before expiry),
or the operator's own (``--tls-cert/--tls-key``, ``DEVICEDATA_BROKER_TLS_CERT_FILE`` and
``_KEY_FILE``). Used by ``devicedata stack`` and by compose's ``init`` service, which
copies the chosen pair into the volume the broker container reads (``install``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from bridge.settings import Settings, configured
from devicedata import procs, servers
from devicedata.tls import DEFAULT_HOSTS, certificate_names

CERT_NAME, KEY_NAME = "server.crt", "server.key"  # as ``install`` names them


def fail(message: str) -> NoReturn:
    raise procs.ProcessError(message)


def choose(settings: Settings, data_dir: Path, say: Callable[[str], None],
           cert: Path | None = None, key: Path | None = None, hosts: Sequence[str] = ()
           ) -> tuple[Path, Path, Path | None]:
    """(certificate, key, CA file devices trust): the given pair, else the settings', else
    the local CA's for localhost, 127.0.0.1, ``hosts`` and ``DEVICEDATA_BROKER_TLS_HOSTS``
    (the CA file is None for the operator's own certificate)."""
    cert = cert or configured(settings.broker_tls_cert_file)
    key = key or configured(settings.broker_tls_key_file)
    if cert is None and key is None:
        extra = [h.strip() for h in settings.broker_tls_hosts.split(",") if h.strip()]
        files = servers.local_tls(data_dir / "tls", [*hosts, *extra])
        if files.created_ca:
            say(f"created a local CA for the MQTT TLS listener; devices trust {files.ca_cert}")
        return files.server_cert, files.server_key, files.ca_cert
    if cert is None or key is None:
        fail("--tls-cert and --tls-key (DEVICEDATA_BROKER_TLS_CERT_FILE and "
             "DEVICEDATA_BROKER_TLS_KEY_FILE) go together")
    cert, key = (Path(p).expanduser().resolve() for p in (cert, key))
    for path in (cert, key):
        if not path.is_file():
            fail(f"{path} (the broker's TLS certificate or key) is not a file")
    return cert, key, None


def for_stack(args: argparse.Namespace, base: Settings, data_dir: Path,
              say: Callable[[str], None]) -> tuple[servers.BrokerTLS, Path | None]:
    """The stack's TLS listener (``--mqtt-tls-port``), and the CA file devices trust."""
    cert, key, ca_file = choose(base, data_dir, say, args.tls_cert, args.tls_key)
    return servers.BrokerTLS(args.mqtt_tls_port, cert, key), ca_file


def tls_host(cert: Path) -> str:
    """The name devices dial for the TLS listener: localhost for the local CA's
    certificate, else the first name of the operator's certificate."""
    names = certificate_names(cert)
    return "localhost" if not names or DEFAULT_HOSTS[0] in names else names[0]


def check_readable(broker_dir: Path, tls: servers.BrokerTLS) -> None:
    """Started as root, Mosquitto reads its certificate and key as user ``mosquitto``:
    say so now rather than have it exit with an OpenSSL error."""
    if os.geteuid() != 0 or procs.owner_can_reach(broker_dir, servers.MOSQUITTO_USER):
        return  # not root, or the broker will run as root (see MosquittoServer)
    for path in (tls.cert, tls.key):
        if not procs.user_can_read(path, servers.MOSQUITTO_USER):
            fail(f"user `{servers.MOSQUITTO_USER}` cannot read {path}: Mosquitto reads its "
                 "certificate and key after dropping to that user. Give it a copy it can "
                 "read (docs/deployment.md, \"A real certificate\")")


def install(cert: Path, key: Path, directory: Path) -> bool:
    """Copy the pair to ``directory``/server.crt and server.key (mode 0600), each replaced
    whole and only when its content changed; True when one changed. A broker watching
    the directory (compose's entrypoint) then reloads with SIGHUP."""
    changed = False
    for source, name, mode in ((cert, CERT_NAME, 0o644), (key, KEY_NAME, 0o600)):
        data, dest = source.read_bytes(), directory / name
        with contextlib.suppress(FileNotFoundError):
            if dest.read_bytes() == data:
                continue
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        changed = True
    return changed
