"""bridge.mqtt.tls: the bridge's TLS context always verifies; unusable files fail at once."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from bridge.mqtt.tls import TLSConfigError, client_context, server_name
from bridge.settings import Settings
from devicedata.tls import ensure_local_tls


def test_off_by_default() -> None:
    assert client_context(Settings()) is None


def test_verification_is_always_on(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    for settings in (Settings(mqtt_tls=True), Settings(mqtt_tls=True,
                                                       mqtt_tls_ca_file=files.ca_cert)):
        context = client_context(settings)
        assert context is not None
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with_ca = client_context(Settings(mqtt_tls=True, mqtt_tls_ca_file=files.ca_cert))
    assert with_ca is not None
    (ca,) = with_ca.get_ca_certs()
    assert dict(name for rdn in ca["subject"] for name in rdn)["commonName"].startswith(
        "devicedata local CA")


def test_client_certificate(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    settings = Settings(mqtt_tls=True, mqtt_tls_cert_file=files.server_cert,
                        mqtt_tls_key_file=files.server_key)
    assert client_context(settings) is not None
    both = tmp_path / "both.pem"
    both.write_bytes(files.server_cert.read_bytes() + files.server_key.read_bytes())
    assert client_context(Settings(mqtt_tls=True, mqtt_tls_cert_file=both)) is not None


@pytest.mark.parametrize(("changes", "message"), [
    ({"mqtt_tls_ca_file": "missing.crt"}, "DEVICEDATA_MQTT_TLS_CA_FILE=missing.crt"),
    ({"mqtt_tls_ca_file": "server.key"}, "DEVICEDATA_MQTT_TLS_CA_FILE="),
    ({"mqtt_tls_cert_file": "server.crt"}, "DEVICEDATA_MQTT_TLS_CERT_FILE="),  # no key
    ({"mqtt_tls_cert_file": "server.crt", "mqtt_tls_key_file": "ca.key"}, "CERT_FILE"),
    ({"mqtt_tls_key_file": "server.key"}, "without DEVICEDATA_MQTT_TLS_CERT_FILE"),
])
def test_unusable_files_are_named(tmp_path: Path, changes: dict[str, str], message: str) -> None:
    ensure_local_tls(tmp_path)
    settings = Settings(mqtt_tls=True, **{k: tmp_path / v if v != "missing.crt" else Path(v)
                                          for k, v in changes.items()})
    with pytest.raises(TLSConfigError, match=message):
        client_context(settings)


def test_server_name() -> None:
    assert server_name(Settings(mqtt_host="10.0.0.5")) == "10.0.0.5"
    assert server_name(Settings(mqtt_host="10.0.0.5", mqtt_tls_server_name="mqtt.example.com")
                       ) == "mqtt.example.com"
