"""The bridge says when it cannot work: connected but refused its subscription, or pushed off
by another client with its id. Its /ready and a metric say so, and the log names why."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.settings import Settings
from devicedata.procs import free_port
from support.metrics import samples, value
from support.mqtt import BridgeProcess, drop_session, wait_until
from support.scripted_broker import ScriptedBroker, answer_connect_and_subscribe

NOT_AUTHORIZED = 0x87
HEALTHCHECK = Path(__file__).resolve().parents[3] / "docker" / "app" / "healthcheck.py"


def compose_healthcheck(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEVICEDATA_MQTT_PORT": str(settings.mqtt_port),
           "DEVICEDATA_BRIDGE_METRICS_PORT": str(settings.bridge_metrics_port)}
    return subprocess.run([sys.executable, str(HEALTHCHECK), "bridge"], env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def refusing_broker() -> Iterator[ScriptedBroker]:
    broker = ScriptedBroker(answer_connect_and_subscribe(suback_codes=(NOT_AUTHORIZED,)))
    yield broker
    broker.close()


def test_a_refused_subscription_is_not_ready(stack_settings: Settings, tmp_path: Path,
                                              refusing_broker: ScriptedBroker) -> None:
    port = free_port()
    settings = stack_settings.replace(mqtt_port=refusing_broker.port, bridge_metrics_port=port,
                                      broker_sync_seconds=0.0)
    bridge = BridgeProcess(settings, tmp_path / "bridge.log").start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: "event=mqtt_subscribe_refused" in bridge.text(),
                   what="the refusal to be logged")
        assert "reason=not authorized" in bridge.text()
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 503
        assert "refused the subscription" in ready.json()["message"]
        assert "not authorized (0x87)" in ready.json()["message"]
        assert httpx.get(url + "/health").status_code == 200  # alive, just not useful
        assert value(samples(httpx.get(url + "/metrics").text), "devicedata_mqtt_ready") == 0
        check = compose_healthcheck(settings)  # docker compose marks it unhealthy
        assert check.returncode == 1 and "refused the subscription" in check.stderr
    finally:
        assert bridge.stop() == 0


def test_a_granted_subscription_is_ready(stack_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    bridge = BridgeProcess(stack_settings.replace(bridge_metrics_port=port),
                           tmp_path / "bridge.log").start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/ready").status_code == 200, what="readiness")
        assert value(samples(httpx.get(url + "/metrics").text), "devicedata_mqtt_ready") == 1
        check = compose_healthcheck(stack_settings.replace(bridge_metrics_port=port))
        assert check.returncode == 0, check.stderr
    finally:
        assert bridge.stop() == 0


def test_a_bridge_pushed_off_by_its_own_user_name_says_why(
        stack_settings: Settings, tmp_path: Path) -> None:
    """Two bridges given the same user name (a misconfiguration) push each other off:
    Mosquitto 2.0 just closes the socket, so the bridge names the likely cause."""
    settings = stack_settings.replace(mqtt_username="twin", mqtt_client_id="twin")
    port = free_port()
    first = BridgeProcess(settings.replace(mqtt_client_id="twin-1", bridge_metrics_port=port),
                          tmp_path / "first.log").start()
    try:
        second = BridgeProcess(settings.replace(mqtt_client_id="twin-2"),
                               tmp_path / "second.log").start()
        try:
            wait_until(lambda: "using this bridge's user name" in first.text(),
                       what="the first bridge to say why it lost the broker")
            metrics = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            assert value(metrics, "devicedata_mqtt_session_takeovers_total") >= 1
        finally:
            assert second.stop() == 0
    finally:
        assert first.stop() == 0
        drop_session(settings)
