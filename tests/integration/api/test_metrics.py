"""/metrics of the API and of the bridge, in Prometheus text format, after real traffic."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer
from support.metrics import samples, value
from support.mqtt import BridgeProcess, connect_when_allowed, wait_until


def test_api_metrics_after_traffic(api: ApiServer) -> None:
    device_id, token = api.device()
    with api.client(token) as c:
        before = samples(c.get("/metrics").text)
        assert c.post("/data", json=[{"variable": "m", "value": 1},
                                     {"variable": "m", "value": 2}]).status_code == 200
        assert c.post("/data", json={"value": 1}).status_code == 400
        assert c.get("/data").status_code == 200
        response = c.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("devicedata_points_accepted_total", path="http") == 2
    assert grew("devicedata_points_rejected_total", path="http", reason="invalid") == 1
    assert grew("devicedata_http_requests_total", route="/data", method="POST",
                status="200") == 1
    assert grew("devicedata_http_requests_total", route="/data", method="POST",
                status="400") == 1
    assert grew("devicedata_batch_points_count") >= 1
    assert grew("devicedata_write_seconds_count") >= 1
    assert ("devicedata_spool_records", ()) in after
    assert value(after, "devicedata_device_last_seen_timestamp_seconds", device=device_id) > 0
    assert token not in response.text


def test_bridge_metrics_endpoint(api: ApiServer, stack_settings: Settings,
                                 tmp_path: Path) -> None:
    port = free_port()
    bridge = BridgeProcess(stack_settings.replace(bridge_metrics_port=port),
                           tmp_path / "bridge.log").start()
    device_id, token = api.mqtt_device()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        client.publish(f"devices/{device_id}/data",
                       json.dumps([{"variable": "b", "value": 1}, {"variable": "b", "value": 2}]))
        client.publish(f"devices/{device_id}/data", b"not json", qos=0)
        url = f"http://127.0.0.1:{port}/metrics"

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            got = samples(httpx.get(url).text)
            done = value(got, "devicedata_points_rejected_total", path="mqtt", reason="invalid")
            return got if done >= 1 else None

        got = wait_until(scraped, what="the bridge's counters")
        assert value(got, "devicedata_points_accepted_total", path="mqtt") >= 2
        assert value(got, "devicedata_mqtt_messages_total", qos="1") >= 1
        assert value(got, "devicedata_mqtt_messages_total", qos="0") >= 1
        assert ("devicedata_mqtt_reconnects_total", ()) in got
        assert value(got, "devicedata_device_last_seen_timestamp_seconds", device=device_id) > 0
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    finally:
        client.close()
        assert bridge.stop() == 0
