"""devicedata.tls: the local CA and broker certificate, checked with real TLS handshakes."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from devicedata.tls import (
    CA_LIFETIME,
    RENEW_BEFORE,
    SERVER_LIFETIME,
    TLSFiles,
    ensure_local_tls,
)

NAMES = ("ca_cert", "ca_key", "server_cert", "server_key")


def contents(files: TLSFiles) -> dict[str, bytes]:
    return {name: getattr(files, name).read_bytes() for name in NAMES}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def handshake(files: TLSFiles, cafile: Path | None, server_hostname: str) -> None:
    """A TLS handshake over loopback between a server using ``files``' certificate and a
    client trusting ``cafile`` (the system's CAs when None); raises the client's error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.server_cert, files.server_key)
    client_ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")
            except (ssl.SSLError, OSError):
                pass  # the client refused us: its side says why
            finally:
                conn.close()

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (socket.create_connection(listener.getsockname(), timeout=10) as raw,
                  client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls):
                assert tls.recv(5) == b"hello"
        finally:
            thread.join(10)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[TLSFiles, dict[str, bytes]]:
    files = ensure_local_tls(tmp_path_factory.mktemp("tls") / "certs")
    return files, contents(files)


@pytest.fixture
def copy(made: tuple[TLSFiles, dict[str, bytes]], tmp_path: Path) -> Iterator[Path]:
    """A private copy of the made directory, to spoil."""
    shutil.copytree(made[0].ca_cert.parent, tmp_path / "certs")
    yield tmp_path / "certs"


def test_first_call_creates_the_four_files(made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    files, _ = made
    assert files.created_ca and files.issued_server
    for name in NAMES:
        path: Path = getattr(files, name)
        assert path.is_absolute() and path.parent == files.ca_cert.parent
    assert [p.name for p in (files.ca_cert, files.ca_key, files.server_cert,
                             files.server_key)] == ["ca.crt", "ca.key", "server.crt",
                                                    "server.key"]
    assert stat.S_IMODE(files.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_cert.stat().st_mode) == 0o644


def test_the_server_certificate(made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    files, _ = made
    ca, server = cert(files.ca_cert), cert(files.server_cert)
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert server.not_valid_after_utc - server.not_valid_before_utc <= SERVER_LIFETIME * 1.01
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_client_trusting_the_ca_connects(made: tuple[TLSFiles, dict[str, bytes]],
                                           host: str) -> None:
    handshake(made[0], made[0].ca_cert, host)


def test_a_client_not_trusting_the_ca_fails(made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(made[0], None, "localhost")  # the system's CAs only


def test_a_client_trusting_another_ca_fails(made: tuple[TLSFiles, dict[str, bytes]],
                                            tmp_path: Path) -> None:
    other = ensure_local_tls(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(made[0], other.ca_cert, "localhost")


def test_another_name_fails(made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(made[0], made[0].ca_cert, "broker.example")


def test_later_calls_reuse_everything(copy: Path,
                                      made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    again = ensure_local_tls(copy)
    assert not again.created_ca and not again.issued_server
    assert contents(again) == made[1]
    assert ensure_local_tls(str(copy)) == again


def test_server_certificate_renewed_near_expiry(copy: Path,
                                                made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    expires = cert(made[0].server_cert).not_valid_after_utc
    assert not ensure_local_tls(copy, now=expires - RENEW_BEFORE - timedelta(days=1)).issued_server
    later = ensure_local_tls(copy, now=expires - RENEW_BEFORE)
    assert later.issued_server and not later.created_ca
    after = contents(later)
    assert after["ca_cert"] == made[1]["ca_cert"] and after["ca_key"] == made[1]["ca_key"]
    assert after["server_key"] != made[1]["server_key"]
    renewed = cert(later.server_cert)
    renewed.verify_directly_issued_by(cert(later.ca_cert))  # devices keep their ca.crt
    assert renewed.not_valid_after_utc > expires
    assert stat.S_IMODE(later.server_key.stat().st_mode) == 0o600


def test_ca_replaced_near_its_expiry(copy: Path, made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    ca_expires = cert(made[0].ca_cert).not_valid_after_utc
    later = ensure_local_tls(copy, now=ca_expires - RENEW_BEFORE)
    assert later.created_ca and later.issued_server
    assert contents(later)["ca_cert"] != made[1]["ca_cert"]


def test_server_certificate_never_outlives_its_ca(copy: Path,
                                                  made: tuple[TLSFiles, dict[str, bytes]]) -> None:
    ca = cert(made[0].ca_cert)
    near = ca.not_valid_after_utc - RENEW_BEFORE - RENEW_BEFORE
    later = ensure_local_tls(copy, now=near)
    assert later.issued_server and not later.created_ca
    assert cert(later.server_cert).not_valid_after_utc == ca.not_valid_after_utc
    assert CA_LIFETIME > SERVER_LIFETIME


@pytest.mark.parametrize(("spoil", "new_ca"), [
    ({"server.key": b"garbage"}, False),
    ({"server.crt": b""}, False),
    ({"server.crt": None}, False),
    ({"ca.key": b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"}, True),
    ({"ca.crt": None}, True),
])
def test_unusable_files_are_made_again(copy: Path, made: tuple[TLSFiles, dict[str, bytes]],
                                       spoil: dict[str, bytes | None], new_ca: bool) -> None:
    for name, data in spoil.items():
        if data is None:
            (copy / name).unlink()
        else:
            (copy / name).write_bytes(data)
    again = ensure_local_tls(copy)
    assert again.issued_server and again.created_ca is new_ca
    handshake(again, again.ca_cert, "localhost")


def test_a_key_of_another_certificate_is_not_used(copy: Path, tmp_path: Path) -> None:
    other = ensure_local_tls(tmp_path / "other")
    shutil.copy(other.server_key, copy / "server.key")
    assert ensure_local_tls(copy).issued_server
    shutil.copy(other.server_cert, copy / "server.crt")
    shutil.copy(other.server_key, copy / "server.key")  # a pair, but from another CA
    again = ensure_local_tls(copy)
    assert again.issued_server and not again.created_ca
    handshake(again, again.ca_cert, "127.0.0.1")


def test_more_names_reissue_the_server_certificate(copy: Path) -> None:
    hosts = ("localhost", "127.0.0.1", "broker.example", "::1")
    again = ensure_local_tls(copy, hosts=hosts)
    assert again.issued_server and not again.created_ca
    handshake(again, again.ca_cert, "broker.example")
    assert not ensure_local_tls(copy, hosts=hosts).issued_server
    assert not ensure_local_tls(copy).issued_server  # a subset of the names is covered


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file away")
def test_a_renewal_keeps_the_owner_the_caller_chose(copy: Path) -> None:
    os.chown(copy / "server.key", 65534, 65534)
    os.chown(copy / "server.crt", 65534, 65534)
    expires = cert(copy / "server.crt").not_valid_after_utc
    assert ensure_local_tls(copy, now=expires).issued_server
    assert (copy / "server.key").stat().st_uid == 65534
    assert stat.S_IMODE((copy / "server.key").stat().st_mode) == 0o600


def test_concurrent_first_calls_make_one_ca(tmp_path: Path) -> None:
    results: list[TLSFiles] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_local_tls(tmp_path / "c")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.created_ca for r in results) == 1
    handshake(results[0], results[0].ca_cert, "localhost")


def test_now_defaults_to_the_clock(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path / "c")
    assert cert(files.server_cert).not_valid_before_utc < datetime.now(UTC)
