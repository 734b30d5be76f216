"""MQTT over TLS with real handshakes: devices on the session broker's TLS listener (local
CA), a broker with only a TLS listener and a bridge connecting to it, client
certificates, and a renewed certificate reaching the broker with SIGHUP."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from bridge.registry import broker_sync
from bridge.settings import Settings
from devicedata import procs, servers
from devicedata.tls import TLSFiles
from support.api import ApiServer
from support.http import count, read
from support.mqtt import (
    BridgeProcess,
    DeviceClient,
    connect_when_allowed,
    running_bridge,
    wait_until,
)
from support.tls import client_certificate


@pytest.fixture(scope="module")
def bridge(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[BridgeProcess]:
    """The session broker's bridge, on its plain listener."""
    yield from running_bridge(stack_settings, tmp_path_factory.mktemp("b") / "bridge.log")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    # Not tmp_path: Mosquitto, once it drops root, must reach its files through it.
    path = Path(tempfile.mkdtemp(prefix="devicedata-tls-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def stranger_ca(scratch: Path) -> TLSFiles:
    """A CA of another installation: nobody here trusts it."""
    return servers.local_tls(scratch / "stranger")


def connections_of(broker: servers.MosquittoServer, user: str) -> int:
    return broker.log.read_text(errors="replace").count(f"u'{user}')")


# -- devices on the session broker's TLS listener -------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_device_trusting_the_ca_publishes_over_tls(
        api: ApiServer, bridge: BridgeProcess, mosquitto: servers.MosquittoServer,
        local_ca: TLSFiles, host: str) -> None:
    device_id, token = api.mqtt_device()
    assert mosquitto.tls_port is not None
    client = DeviceClient(api.settings, device_id, token, port=mosquitto.tls_port,
                          tls=(local_ca.ca_cert, None), host=host)
    try:
        assert client.accepted, client.connack
        reason = client.publish(f"devices/{device_id}/data/temperature", "21.5")
        assert not reason.is_failure
    finally:
        client.close()
    wait_until(lambda: count(api, token) == 1, what="the point")
    assert [(p["variable"], p["value"]) for p in read(api, token)] == [("temperature", 21.5)]


@pytest.mark.parametrize("trusted", ["system CAs", "another CA"])
def test_a_device_that_does_not_trust_the_ca_cannot_connect(
        api: ApiServer, mosquitto: servers.MosquittoServer, stranger_ca: TLSFiles,
        trusted: str) -> None:
    device_id, token = api.mqtt_device()
    ca_file = None if trusted == "system CAs" else stranger_ca.ca_cert
    assert mosquitto.tls_port is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        DeviceClient(api.settings, device_id, token, port=mosquitto.tls_port,
                     tls=(ca_file, None), host="localhost")
    # The handshake failed before CONNECT: the token never left the device.
    assert connections_of(mosquitto, device_id) == 0


def test_the_certificate_names_only_this_machine(mosquitto: servers.MosquittoServer,
                                                 local_ca: TLSFiles) -> None:
    """A device that trusts the CA but dialled another name is refused: the local CA's
    certificate is for localhost and 127.0.0.1 only."""
    context = ssl.create_default_context(cafile=str(local_ca.ca_cert))
    assert mosquitto.tls_port is not None
    with socket.create_connection(("127.0.0.1", mosquitto.tls_port), timeout=5) as raw, \
            pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        context.wrap_socket(raw, server_hostname="broker.example.com")


def test_plain_mqtt_on_the_tls_port_gets_nowhere(api: ApiServer,
                                                 mosquitto: servers.MosquittoServer) -> None:
    device_id, token = api.mqtt_device()
    with pytest.raises((TimeoutError, OSError)):
        DeviceClient(api.settings, device_id, token, port=mosquitto.tls_port)
    assert connections_of(mosquitto, device_id) == 0


# -- a broker with only a TLS listener --------------------------------------------------------


def tls_broker(directory: Path, local_ca: TLSFiles, client_ca: Path | None = None
               ) -> servers.MosquittoServer:
    tls = servers.BrokerTLS(0, local_ca.server_cert, local_ca.server_key, client_ca)
    return procs.start_on_free_port(lambda port: servers.MosquittoServer(
        directory, port, tls=tls, plain=False, new_session=False))


@pytest.fixture(scope="module")
def tls_only(scratch: Path, local_ca: TLSFiles) -> Iterator[servers.MosquittoServer]:
    broker = tls_broker(scratch / "tls-only", local_ca)
    yield broker
    broker.stop()


def tls_settings(stack_settings: Settings, broker: servers.MosquittoServer, ca: Path,
                 client_id: str) -> Settings:
    assert broker.tls_port is not None
    return stack_settings.replace(
        mosquitto_dir=broker.dir, mosquitto_pid_file=broker.pid_file, mqtt_port=broker.tls_port,
        mqtt_tls=True, mqtt_tls_ca_file=ca, mqtt_client_id=client_id)


def test_a_tls_only_broker_refuses_plain_connections(api: ApiServer,
                                                     tls_only: servers.MosquittoServer) -> None:
    listeners = [line for line in tls_only.conf.read_text().splitlines()
                 if line.startswith("listener ")]
    assert listeners == [f"listener {tls_only.tls_port} 127.0.0.1"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", tls_only.port), timeout=5)


def test_the_bridge_runs_against_a_tls_only_broker(
        api: ApiServer, stack_settings: Settings, tls_only: servers.MosquittoServer,
        local_ca: TLSFiles, tmp_path: Path) -> None:
    settings = tls_settings(stack_settings, tls_only, local_ca.ca_cert, "tls-bridge")
    device_id, token = api.device()
    broker_sync.sync(settings, api.registry)
    bridge = BridgeProcess(settings, tmp_path / "bridge.log").start()
    try:
        device = connect_when_allowed(settings, device_id, token, port=tls_only.tls_port,
                                      tls=(local_ca.ca_cert, None), host="localhost")
        try:
            payload = json.dumps({"variable": "over_tls", "value": 1})
            assert not device.publish(f"devices/{device_id}/data", payload).is_failure
        finally:
            device.close()
        wait_until(lambda: count(api, token) == 1, what="the point")
    finally:
        assert bridge.stop() == 0
    assert "event=mqtt_connected" in bridge.text()


def test_a_bridge_checks_the_brokers_certificate_and_name(
        api: ApiServer, stack_settings: Settings, tls_only: servers.MosquittoServer,
        local_ca: TLSFiles, stranger_ca: TLSFiles, tmp_path: Path) -> None:
    cases = {
        "another CA": (stranger_ca.ca_cert, "", "certificate verify failed"),
        "another name": (local_ca.ca_cert, "broker.example.com", "mismatch"),
    }
    before = connections_of(tls_only, stack_settings.mqtt_username)
    for name, (ca, server_name, expected) in cases.items():
        port = procs.free_port()
        settings = tls_settings(stack_settings, tls_only, ca, "tls-bridge-refused").replace(
            mqtt_tls_server_name=server_name, bridge_metrics_port=port)
        bridge = BridgeProcess(settings, tmp_path / f"{name}.log").start(wait=False)
        try:
            reason = wait_until(lambda p=port: _not_ready(p), timeout=20, what="/ready")
            assert expected in reason, (name, reason)
            assert "event=mqtt_connected" not in bridge.text()
        finally:
            assert bridge.stop() == 0
    # The handshake failed before CONNECT: the bridge's password never left it.
    assert connections_of(tls_only, stack_settings.mqtt_username) == before


def _not_ready(port: int) -> str:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
    except httpx.HTTPError:
        return ""
    text = response.text
    return text if response.status_code == 503 and "SSL" in text else ""


def test_an_unusable_ca_file_stops_the_bridge_at_once(stack_settings: Settings,
                                                      tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.crt"
    settings = stack_settings.replace(mqtt_tls=True, mqtt_tls_ca_file=missing,
                                      mqtt_client_id="tls-bridge-misconfigured")
    bridge = BridgeProcess(settings, tmp_path / "bridge.log").start(wait=False)
    assert bridge.proc is not None
    assert bridge.proc.wait(30) == 1
    assert f"error: DEVICEDATA_MQTT_TLS_CA_FILE={missing}" in bridge.text()


# -- client certificates ------------------------------------------------------------------------


def test_a_broker_that_requires_client_certificates(
        api: ApiServer, stack_settings: Settings, scratch: Path, local_ca: TLSFiles,
        tmp_path: Path) -> None:
    broker = tls_broker(scratch / "client-certs", local_ca, client_ca=local_ca.ca_cert)
    try:
        cert = client_certificate(local_ca, "bridge", tmp_path)
        settings = tls_settings(stack_settings, broker, local_ca.ca_cert, "tls-bridge-cert")
        device_id, token = api.device()
        # The broker sync connects as the bridge does: with its client certificate.
        with_cert = settings.replace(mqtt_tls_cert_file=cert[0], mqtt_tls_key_file=cert[1])
        broker_sync.sync(with_cert, api.registry)
        without = BridgeProcess(settings.replace(mqtt_client_id="tls-bridge-nocert"),
                                tmp_path / "without.log").start(wait=False)
        wait_until(lambda: "event=mqtt_reconnect_wait" in without.text(), timeout=20,
                   what="the bridge without a certificate to fail")
        assert without.stop() == 0
        assert "event=mqtt_connected" not in without.text()
        bridge = BridgeProcess(with_cert, tmp_path / "with.log").start()
        try:
            device_cert = client_certificate(local_ca, device_id, tmp_path)
            device = DeviceClient(settings, device_id, token, port=broker.tls_port,
                                  tls=(local_ca.ca_cert, device_cert), host="localhost")
            try:
                assert device.accepted, device.connack
                assert not device.publish(f"devices/{device_id}/kv", '{"t": 1}').is_failure
            finally:
                device.close()
            wait_until(lambda: count(api, token) == 1, what="the point")
        finally:
            assert bridge.stop() == 0
    finally:
        broker.stop()


# -- renewal --------------------------------------------------------------------------------------


def test_a_renewed_certificate_reaches_the_broker_on_sighup(scratch: Path) -> None:
    """Mosquitto 2.0 re-reads its certificate and key on SIGHUP (measured here on 2.0.11):
    a renewal needs no restart."""
    files = servers.local_tls(scratch / "renewing")
    broker = tls_broker(scratch / "renewing-broker", files)
    try:
        first = served_certificate(broker, files.ca_cert)
        files.server_cert.unlink()  # unusable, as an expiring one is: issued anew
        renewed = servers.local_tls(files.server_cert.parent)
        assert renewed.issued_server and not renewed.created_ca
        assert served_certificate(broker, files.ca_cert) == first  # until told
        broker.hup()
        new = wait_until(lambda: (c := served_certificate(broker, files.ca_cert)) != first and c,
                         what="the new certificate")
        on_disk = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        assert new == on_disk.serial_number
    finally:
        broker.stop()


def served_certificate(broker: servers.MosquittoServer, ca: Path) -> int:
    """The serial number of the certificate the broker presents (verified against ``ca``)."""
    assert broker.tls_port is not None
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", broker.tls_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number

