"""The API's HTTP server against slow and greedy clients, over raw sockets: a request's head
and body each have a deadline (408, then closed), and connections past the cap get 503.
Sockets wait at most 20 s for an answer; the server's deadlines here are 1 s."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from support.api import ApiServer, MakeApi

WAIT = 20.0  # how long a socket waits for the server before the test gives up on it


@pytest.fixture
def strict(make_api: MakeApi) -> ApiServer:
    return make_api(http_header_timeout=1.0, http_body_timeout=1.0)


def connect(api: ApiServer) -> socket.socket:
    host, port = api.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    return sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server held the connection for {WAIT} s: {received!r}")
        if not data:
            return received
        received += data


def test_half_a_header_is_answered_408_and_closed(strict: ApiServer) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /data HTTP/1.1\r\nHost: test\r\nto")
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert b'"status":false' in got


def test_a_header_trickled_a_byte_at_a_time_is_cut_off(strict: ApiServer) -> None:
    """Each byte would restart uvicorn's keep-alive timer; the head's deadline stays."""
    request = b"GET /data HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200
    with connect(strict) as sock:
        sent = 0
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        except OSError:
            pass  # closed under us: that is the point
        got = answer(sock)
    assert sent < len(request), "the server took a 20-second header"
    assert got.startswith(b"HTTP/1.1 408 "), got


def test_half_a_body_is_answered_408_and_closed(strict: ApiServer) -> None:
    _, token = strict.device()
    with connect(strict) as sock:
        sock.sendall(b"POST /data HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\n"
                     b"token: " + token.encode() + b"\r\ncontent-length: 100\r\n\r\n"
                     b'{"variable"')
        got = answer(sock)
    assert got.startswith(b"HTTP/1.1 408 "), got
    with strict.client(token) as client:
        assert client.get("/data").json()["result"] == []


def test_an_idle_connection_is_closed(strict: ApiServer) -> None:
    with connect(strict) as sock:
        assert answer(sock) == b""


def test_keep_alive_requests_are_unaffected(strict: ApiServer) -> None:
    _, token = strict.device()
    with strict.client(token) as client:
        for i in range(5):
            assert client.post("/data", json={"variable": "v", "value": i}).status_code == 200
            time.sleep(0.3)  # under the deadline each time, over it in all
        assert len(client.get("/data").json()["result"]) == 5


@pytest.fixture
def capped(make_api: MakeApi) -> Iterator[ApiServer]:
    yield make_api(http_max_connections=4)


def test_connections_past_the_cap_get_503(capped: ApiServer) -> None:
    held = [connect(capped) for _ in range(4)]
    try:
        with connect(capped) as extra:
            got = answer(extra)
        assert got.startswith(b"HTTP/1.1 503 "), got
        assert b"Too many connections" in got
    finally:
        for sock in held:
            sock.close()
    for _ in range(100):  # the server notices the closed sockets on its next loop turn
        try:
            if httpx.get(capped.url + "/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    assert httpx.get(capped.url + "/health").status_code == 200
