"""/metrics of the API and of the bridge, in Prometheus text format, after real traffic."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer, MakeApi
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
    assert value(after, "devicedata_devices_active") >= 1
    assert token not in response.text
    assert device_id not in response.text  # no series per device: the fleet is unbounded


def test_bridge_metrics_endpoint(api: ApiServer, stack_settings: Settings,
                                 tmp_path: Path) -> None:
    port = free_port()
    bridge = BridgeProcess(stack_settings.replace(bridge_metrics_port=port,
                                                  metrics_token="scrape-me"),
                           tmp_path / "bridge.log").start()
    scraper = {"authorization": "Bearer scrape-me"}
    device_id, token = api.mqtt_device()
    client = connect_when_allowed(api.settings, device_id, token)
    try:
        client.publish(f"devices/{device_id}/data",
                       json.dumps([{"variable": "b", "value": 1}, {"variable": "b", "value": 2}]))
        client.publish(f"devices/{device_id}/data", b"not json", qos=0)
        url = f"http://127.0.0.1:{port}/metrics"

        def scraped() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            got = samples(httpx.get(url, headers=scraper).text)
            done = value(got, "devicedata_points_rejected_total", path="mqtt", reason="invalid")
            # A device counts as active once its points are stored, which may come after
            # the refusal of the later bad message.
            stored = value(got, "devicedata_devices_active")
            return got if done >= 1 and stored >= 1 else None

        got = wait_until(scraped, what="the bridge's counters")
        assert value(got, "devicedata_points_accepted_total", path="mqtt") >= 2
        assert value(got, "devicedata_mqtt_messages_total", qos="1") >= 1
        assert value(got, "devicedata_mqtt_messages_total", qos="0") >= 1
        assert ("devicedata_mqtt_reconnects_total", ()) in got
        assert value(got, "devicedata_devices_active") >= 1
        assert device_id not in httpx.get(url, headers=scraper).text
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404
    finally:
        client.close()
        assert bridge.stop() == 0


def test_metrics_can_require_a_token(make_api: MakeApi) -> None:
    api = make_api(metrics_token="scrape-me")
    assert httpx.get(api.url + "/metrics").status_code == 401
    denied = httpx.get(api.url + "/metrics", headers={"authorization": "Bearer nope"})
    assert denied.status_code == 401 and denied.json()["status"] is False
    allowed = httpx.get(api.url + "/metrics", headers={"authorization": "Bearer scrape-me"})
    assert allowed.status_code == 200 and "devicedata_http_requests" in allowed.text


def _pipelined(url: str, requests: list[bytes]) -> int:
    """Send ``requests`` over one keep-alive connection in large writes; the number of
    responses read back."""
    host, port = url.removeprefix("http://").split(":")
    answered = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        for start in range(0, len(requests), 500):
            chunk = requests[start:start + 500]
            sock.sendall(b"".join(chunk))
            buffer = b""
            while buffer.count(b"HTTP/1.1 ") < len(chunk):
                data = sock.recv(1 << 16)
                assert data, "the server closed the connection"
                buffer += data
            answered += buffer.count(b"HTTP/1.1 ")
    return answered


def test_invented_http_methods_leave_metrics_bounded(api: ApiServer) -> None:
    """20,000 unauthenticated requests, each with a method of its own, on known and unknown
    paths: the request counter names methods from a closed set."""
    before = httpx.get(api.url + "/metrics").text
    requests = [f"X{i:05d}Y {('/data', '/nowhere', '/admin/devices')[i % 3]} HTTP/1.1\r\n"
                f"Host: test\r\n\r\n".encode() for i in range(20_000)]
    answered = sum(_pipelined(api.url, requests[i::4]) for i in range(4))
    assert answered == 20_000
    after = httpx.get(api.url + "/metrics").text
    assert "X00001Y" not in after and "X19999Y" not in after
    assert value(samples(after), "devicedata_http_requests_total", route="/data",
                 method="other", status="405") >= 20_000 // 3
    assert len(after) < len(before) + 5_000, (len(before), len(after))
