"""Per-device fairness on HTTP (issue 12, item 4): a device past its request rate, its
requests in flight or its read budget gets 429 with Retry-After and TagoIO's wording,
while another device's requests are served. The limits are set so that time cannot
refill them during a test; the tests assert answers and data, never durations."""

from __future__ import annotations

import concurrent.futures
import socket
from typing import Any

import httpx
import pytest

from support.api import ApiServer, MakeApi
from support.mqtt import wait_until


def too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1
    assert response.json() == {"status": False,
                               "message": f"Too many requests (Retry-After: {seconds})"}


def served_alongside(api: ApiServer) -> None:
    """Another device's POST and GET round trip, with its data."""
    _, token = api.device()
    with api.client(token) as other:
        assert other.post("/data", json={"variable": "calm", "value": 7}).status_code == 200
        (point,) = other.get("/data").json()["result"]
        assert (point["variable"], point["value"]) == ("calm", 7)


@pytest.fixture
def rated(make_api: MakeApi) -> ApiServer:
    # 5 requests at once, then one per 1,000 s: nothing refills during the test.
    return make_api(http_requests_per_second=0.001, http_requests_burst=5,
                    http_concurrency=0, http_read_points_per_second=0,
                    http_read_seconds_per_second=0)


def test_a_flooding_device_gets_429_while_another_is_served(rated: ApiServer) -> None:
    _, token = rated.device()

    def request(i: int) -> httpx.Response:
        with rated.client(token) as flooder:
            if i % 2:
                return flooder.get("/data")
            return flooder.post("/data", json={"variable": "flood", "value": i})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(request, range(20)))
    assert sum(a.status_code == 200 for a in answers) == 5
    for refused in [a for a in answers if a.status_code != 200]:
        too_many(refused)
    served_alongside(rated)
    # Every token of the device shares its allowance.
    second = rated.registry.create_token(rated.registry.authenticate(token).device_id,
                                         "full").token
    with rated.client(second) as same_device:
        too_many(same_device.get("/data"))


def test_large_reads_are_throttled_by_points_read(make_api: MakeApi) -> None:
    api = make_api(http_requests_per_second=0, http_concurrency=0,
                   http_read_points_per_second=0.001, http_read_points_burst=150)
    _, token = api.device()
    with api.client(token) as reader:
        assert reader.post("/data", json=[{"variable": "v", "value": i}
                                          for i in range(300)]).status_code == 200
        assert len(reader.get("/data", params={"qty": 100}).json()["result"]) == 100
        assert len(reader.get("/data", params={"qty": 100}).json()["result"]) == 100
        too_many(reader.get("/data", params={"qty": 100}))
        too_many(reader.get("/data", params={"query": "count"}))
        too_many(reader.delete("/data", params={"qty": 100}))
        # Writing is not reading: the device may still send.
        assert reader.post("/data", json={"variable": "v", "value": 1}).status_code == 200
    served_alongside(api)
    _, other = api.device()
    with api.client(other) as calm:
        calm.post("/data", json=[{"variable": "v", "value": i} for i in range(120)])
        assert len(calm.get("/data", params={"qty": 120}).json()["result"]) == 120


def _slow_post(api: ApiServer, token: str) -> tuple[socket.socket, bytes]:
    """A POST whose body has not all arrived: admitted, and in flight until it does."""
    host, port = api.url.removeprefix("http://").split(":")
    body = b'{"variable": "slow", "value": 1}'
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"POST /data HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
                 b"token: " + token.encode() + b"\r\ncontent-length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
    return sock, body[5:]


def test_costly_reads_spend_a_time_budget(make_api: MakeApi) -> None:
    # A tenth of a second at once, then nearly nothing: a count over the device's history
    # answers one point, but its time is what it costs.
    api = make_api(http_requests_per_second=0, http_concurrency=0,
                   http_read_points_per_second=0, http_read_seconds_per_second=0.0001,
                   http_read_seconds_burst=0.1)
    _, token = api.device()
    with api.client(token) as device:
        assert device.post("/data", json=[{"variable": "t", "value": i}
                                          for i in range(1000)]).status_code == 200
        statuses = []
        while 429 not in statuses and len(statuses) < 500:
            # Bounded by a date, so never a kept answer: every one asks InfluxDB.
            statuses.append(device.get("/data", params={
                "query": "count", "variable": "t", "start_date": "2000-01-01"}).status_code)
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        too_many(device.get("/data", params={"query": "count"}))
        assert device.post("/data", json={"variable": "w", "value": 1}).status_code == 200
    served_alongside(api)  # another device reads as usual


def test_requests_in_flight_are_limited_per_device(make_api: MakeApi) -> None:
    api = make_api(http_requests_per_second=0, http_concurrency=2,
                   http_read_points_per_second=0)
    device_id, token = api.device()
    held = [_slow_post(api, token) for _ in range(2)]
    try:
        def in_flight() -> int:
            state = api.state.limits._devices.get(device_id)
            return state.inflight if state is not None else 0

        wait_until(lambda: in_flight() == 2, what="both slow POSTs admitted")
        with api.client(token) as device:  # the two hold the device's slots, however long
            too_many(device.get("/data"))
            too_many(device.post("/data", json={"variable": "fast", "value": 1}))
        served_alongside(api)
    finally:
        for sock, rest in held:
            sock.sendall(rest)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 "), "the slow POST"
            sock.close()
    with api.client(token) as device:
        assert [p["variable"] for p in device.get("/data").json()["result"]] == [
            "slow", "slow"]


def test_limits_can_be_turned_off(make_api: MakeApi) -> None:
    # Tiny bursts: were a rate of 0 not "off", the 6th request would already be refused.
    api = make_api(http_requests_per_second=0, http_requests_burst=5, http_concurrency=0,
                   http_read_points_per_second=0, http_read_points_burst=5,
                   http_read_seconds_per_second=0, http_read_seconds_burst=0.001)
    _, token = api.device()
    with api.client(token) as device:
        statuses: list[Any] = [device.get("/data").status_code for _ in range(150)]
    assert set(statuses) == {200}
