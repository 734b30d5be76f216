"""The bridge's TLS client context, from settings (``DEVICEDATA_MQTT_TLS*``).

Verification is always on: the broker's certificate must chain to the configured CA
file (or the system's CAs) and carry the expected name (``DEVICEDATA_MQTT_TLS_SERVER_NAME``,
else the host the bridge connects to, an IP address included). There is deliberately no
switch to turn that off: a bridge that accepts any certificate hands the broker password
to whoever answers. A broker with a private CA is what ``DEVICEDATA_MQTT_TLS_CA_FILE`` is
for. TLS 1.2 is the oldest version offered (Mosquitto 2.0's own default floor).
"""

from __future__ import annotations

import ssl

from bridge.errors import DeviceDataError
from bridge.settings import Settings, configured


class TLSConfigError(DeviceDataError):
    """A TLS setting names a file that cannot be used."""


def client_context(settings: Settings) -> ssl.SSLContext | None:
    """The context to connect with, or None when ``DEVICEDATA_MQTT_TLS`` is off."""
    if not settings.mqtt_tls:
        return None
    ca_file = configured(settings.mqtt_tls_ca_file)
    cert_file = configured(settings.mqtt_tls_cert_file)
    key_file = configured(settings.mqtt_tls_key_file)
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"DEVICEDATA_MQTT_TLS_CA_FILE={ca_file}: cannot load it as CA "
                             f"certificates ({exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"DEVICEDATA_MQTT_TLS_CERT_FILE={cert_file} (key "
                                 f"{key_file or 'in the same file'}): cannot load the "
                                 f"client certificate ({exc})") from None
    elif key_file is not None:
        raise TLSConfigError("DEVICEDATA_MQTT_TLS_KEY_FILE is set without "
                             "DEVICEDATA_MQTT_TLS_CERT_FILE")
    return context


def server_name(settings: Settings) -> str:
    """The name the broker's certificate is checked against."""
    return settings.mqtt_tls_server_name or settings.mqtt_host
