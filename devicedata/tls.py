"""The local stack's own certificate authority and broker certificate (issue 14).

``ensure_local_tls(directory)`` leaves in ``directory``:

- ``ca.crt``: the CA certificate devices trust (``mosquitto_pub --cafile``);
- ``ca.key`` (0600): its private key, which signs nothing but our server certificate and
  never needs to leave this machine;
- ``server.crt`` / ``server.key`` (0600): the broker's certificate for ``localhost`` and
  ``127.0.0.1`` (and any other names given), issued by that CA.

The first call creates them; later calls reuse them, so devices keep trusting the same
CA across restarts. A server certificate that is unreadable, not from the CA, missing a
name, or within ``RENEW_BEFORE`` of expiry is issued anew (new key too); the CA itself is
replaced only when it is unusable or about to expire, which devices must then be given
again (``TLSFiles.created_ca`` says so).

Ownership: files are written by and for the calling user. Mosquitto started as root
reads its certificate files after dropping to user ``mosquitto``, so the caller hands
``server.key`` (and ``server.crt``) to that user, e.g. ``os.chown(files.server_key, uid,
gid)``, and makes sure it can enter ``directory`` (``procs.owner_can_reach``). A renewal
keeps the replaced file's owner where the caller may set it (as root), so that is done
once. After a renewal (``TLSFiles.issued_server``) the caller sends the broker SIGHUP,
on which Mosquitto 2.0 and later reload their certificates (the signal the ACL reload
already uses).

Keys are RSA 2048: every TLS stack in the field takes it, including small devices' (some
lack ECDSA), and a device verifies an RSA signature faster than an ECDSA one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
CA_LIFETIME = timedelta(days=3650)
# Under the 398 days that browsers and Apple's TLS stack accept for a server
# certificate, so the same files also serve a browser pointed at the broker's websocket.
SERVER_LIFETIME = timedelta(days=397)
RENEW_BEFORE = timedelta(days=30)
CLOCK_SKEW = timedelta(hours=1)  # backdated, for devices whose clock runs a little behind
KEY_BITS = 2048

CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """Absolute paths of the four files, and what this call changed."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    created_ca: bool = False  # devices must be given the new ca.crt
    issued_server: bool = False  # the broker must be sent SIGHUP to use the new certificate


def ensure_local_tls(
    directory: Path | str, *, hosts: Sequence[str] = DEFAULT_HOSTS, now: datetime | None = None
) -> TLSFiles:
    """Create, reuse or renew the CA and server certificate in ``directory``."""
    root = Path(directory).absolute()
    root.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC)
    files = TLSFiles(root / CA_CERT, root / CA_KEY, root / SERVER_CERT, root / SERVER_KEY)
    # Two processes starting at once (stack up, a test) must not each make a CA.
    with open(root / ".tls.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca = _usable_ca(files, now)
        created_ca = ca is None
        if ca is None:
            ca = _new_ca(now)
            _write(files.ca_key, _key_pem(ca[1]), 0o600)
            _write(files.ca_cert, ca[0].public_bytes(serialization.Encoding.PEM), 0o644)
        issue = created_ca or not _usable_server(files, ca[0], hosts, now)
        if issue:
            cert, key = _new_server(ca, hosts, now)
            _write(files.server_key, _key_pem(key), 0o600)
            _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return TLSFiles(files.ca_cert, files.ca_key, files.server_cert, files.server_key,
                    created_ca, issue)


Pair = tuple[x509.Certificate, rsa.RSAPrivateKey]


def _load(cert_path: Path, key_path: Path) -> Pair | None:
    """The certificate and its own key, or None when either is missing or unreadable or
    they do not belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or _spki(key.public_key()) != _spki(
            cert.public_key()):
        return None
    return cert, key


def _spki(public_key: object) -> bytes:
    assert isinstance(public_key, rsa.RSAPublicKey)
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _usable_ca(files: TLSFiles, now: datetime) -> Pair | None:
    pair = _load(files.ca_cert, files.ca_key)
    if pair is None:
        return None
    cert = pair[0]
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None
    if not is_ca or cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return None
    return pair


def _usable_server(files: TLSFiles, ca: x509.Certificate, hosts: Sequence[str],
                   now: datetime) -> bool:
    pair = _load(files.server_cert, files.server_key)
    if pair is None:
        return False
    cert = pair[0]
    try:
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (set(map(_general_name, hosts)) <= set(names)
            and cert.not_valid_before_utc <= now
            and now < cert.not_valid_after_utc - RENEW_BEFORE)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _new_ca(now: datetime) -> Pair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    # A serial in the name tells apart the CAs of two installations on one device.
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devicedata"),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           f"devicedata local CA {x509.random_serial_number() % 10**8:08d}"),
    ])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server(ca: Pair, hosts: Sequence[str], now: datetime) -> Pair:
    ca_cert, ca_key = ca
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    public = key.public_key()
    # Never outlives its CA: a chain with an expired CA fails however fresh the leaf.
    not_after = min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` whole (a reader never sees half a key), created with ``mode`` so a
    key is never readable by others even for a moment, keeping the old file's owner."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as out:
        out.write(data)
        out.flush()
        os.fchmod(out.fileno(), mode)  # exactly mode, whatever the umask
        try:
            st = path.stat()
            os.fchown(out.fileno(), st.st_uid, st.st_gid)  # the caller's choice: mosquitto
        except (FileNotFoundError, PermissionError):
            pass  # a first write, or not root: the file stays the caller's own
        os.fsync(out.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
