"""What `stack up` / `make run` print: ready-to-paste commands for each listener."""

from __future__ import annotations

from typing import Any

from devicedata.stack import friendly

INFO: dict[str, Any] = {
    "api_url": "http://127.0.0.1:8888", "mqtt_host": "127.0.0.1", "mqtt_port": 18830,
    "mqtt_tls_port": 18883, "mqtt_tls_host": "localhost", "ca_file": "/srv/dd/tls/ca.crt",
    "influx_url": "http://127.0.0.1:18086", "influx_db": "devicedata", "device_id": "d1",
    "device_name": "demo", "device_token": "tok", "mqtt_topic": "devices/d1/data",
    "bridge": True, "data_dir": "/srv/dd",
}


def test_both_listeners() -> None:
    text = friendly(INFO)
    assert "mosquitto_pub -h 127.0.0.1 -p 18830 -u d1" in text
    assert ("mosquitto_pub -h localhost -p 18883 --cafile /srv/dd/tls/ca.crt -u d1 "
            '-P "$TOKEN" -q 1 -t devices/d1/data/temperature -m 21.5') in text
    assert "MQTT/TLS  localhost:18883  (devices trust the CA /srv/dd/tls/ca.crt)" in text


def test_tls_only_with_the_operators_certificate() -> None:
    text = friendly({**INFO, "mqtt_port": None, "ca_file": "", "mqtt_tls_host": "mqtt.ex.com"})
    assert "-p 18830" not in text and "MQTT      " not in text
    assert "mosquitto_pub -h mqtt.ex.com -p 18883 --capath /etc/ssl/certs -u d1" in text
