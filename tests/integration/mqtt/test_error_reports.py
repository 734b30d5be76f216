"""Error reports cost the broker and the bridge a bounded amount, whatever a device does:
nothing is queued for a device whose session is offline, and a device that keeps sending
bad messages gets a burst of reports, then about one a second, each saying how many were
left out. Each test runs its own bridge."""

from __future__ import annotations

import json
import queue
import signal
import time
from pathlib import Path

import httpx

from bridge.mqtt.reports import REPORT_BURST
from bridge.settings import Settings
from devicedata.servers import InfluxServer
from support.api import ApiServer
from support.http import count
from support.mqtt import BridgeProcess, DeviceClient, connect_when_allowed, wait_until


def drain(client: DeviceClient, quiet: float = 1.0) -> list[dict[str, object]]:
    out = []
    while True:
        try:
            out.append(json.loads(client.next_message(timeout=quiet).payload))
        except queue.Empty:
            return out


def test_nothing_is_queued_for_an_offline_session(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    assert bridge.proc is not None

    def session() -> DeviceClient:
        # The broker binds a session to the device's user name: every connect of this
        # device resumes the one session, with its subscription to the errors topic.
        return DeviceClient(api.settings, device_id, token, session_expiry=3600)

    try:
        listener = session()
        listener.subscribe(f"devices/{device_id}/errors")
        # The bridge handles the bad messages only once the device is offline: its reports
        # then meet a session with a subscription and no connection.
        bridge.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(300):
                listener.publish(f"devices/{device_id}/data", b"{bad json %d" % i, qos=0)
            listener.publish(f"devices/{device_id}/data",
                             json.dumps({"variable": "m", "value": 1}))
            listener.close()
        finally:
            bridge.proc.send_signal(signal.SIGCONT)
        # The bridge handles a device's messages in order: once the last is stored, every
        # refusal (and its report) is behind us.
        wait_until(lambda: count(api, token) == 1, what="the last message")
        time.sleep(0.5)  # a report published just before the write may still be in flight
        listener = session()
        try:
            assert listener.connack is not None and not listener.connack.is_failure
            assert listener.session_present  # the subscription was kept
            assert drain(listener) == []  # nothing waited for it
        finally:
            listener.close()
            DeviceClient(api.settings, device_id, token).close()  # ends the session
    finally:
        bridge.stop()


def test_a_device_that_keeps_failing_gets_a_bounded_number_of_reports(
        api: ApiServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    try:
        client = connect_when_allowed(api.settings, device_id, token)
        client.subscribe(f"devices/{device_id}/errors")
        started = time.monotonic()
        for i in range(2000):
            client.publish(f"devices/{device_id}/data", b"[{\"value\": %d}]" % i, qos=0)
        client.publish(f"devices/{device_id}/data", b"[{\"value\": 1}]")  # QoS 1: all sent
        reports = drain(client, quiet=2.0)
        # A report passes again after the quiet spell, and says how many were left out.
        client.publish(f"devices/{device_id}/data", b"[{\"value\": -1}]")
        reports += drain(client, quiet=2.0)
        elapsed = time.monotonic() - started
        client.close()
        assert len(reports) <= REPORT_BURST + elapsed + 2, (len(reports), elapsed)
        assert reports[0]["errors"] == [{"index": 0, "field": "variable",
                                         "message": "is required"}]
        assert "reports_left_out" not in reports[0]
        left_out = reports[-1].get("reports_left_out")
        assert isinstance(left_out, int) and left_out >= 2001 - len(reports), left_out
    finally:
        bridge.stop()


def test_a_refused_write_is_reported_in_our_words_and_loses_nothing_else(
        api: ApiServer, influx: InfluxServer, stack_settings: Settings, tmp_path: Path) -> None:
    device_id, token = api.mqtt_device("full")
    # An outside writer gave value_str another type in this shard: our string is refused.
    httpx.post(f"{influx.url}/write", params={"db": stack_settings.influx_db},
               content=f"data,device={device_id},variable=p value_str=1i 1700000000000000000"
               ).raise_for_status()
    bridge = BridgeProcess(stack_settings, tmp_path / "bridge.log").start()
    try:
        client = connect_when_allowed(api.settings, device_id, token)
        client.subscribe(f"devices/{device_id}/errors")
        client.publish(f"devices/{device_id}/data", json.dumps(
            {"variable": "p", "value": "poison", "time": 1_700_000_000_001}))
        client.publish(f"devices/{device_id}/data", json.dumps({"variable": "ok", "value": 1}))
        reports = drain(client, quiet=2.0)
        client.close()
        wait_until(lambda: count(api, token) == 1, what="the other message")
        assert len(reports) == 1, reports
        message = str(reports[0]["message"])
        assert "value of another type" in message, message
        assert "conflict" not in message and "partial write" not in message  # InfluxDB's own
    finally:
        bridge.stop()
