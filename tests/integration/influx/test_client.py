"""Writes through ``InfluxStore``'s own HTTP/1.1 client (bridge.influx.client): against the
real InfluxDB for what a user sees, and against a scripted socket server for the parts of
HTTP a healthy InfluxDB rarely shows (chunked errors, closed keep-alive connections,
silence, garbage)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import httpx
import pytest

from bridge.errors import StoreRejected, StoreUnavailable
from bridge.influx.store import InfluxStore
from bridge.settings import Settings
from devicedata import procs, servers


def _count(influx: servers.InfluxServer, db: str) -> int:
    response = httpx.post(f"{influx.url}/query", params={"db": db},
                          data={"q": 'SELECT count("v") FROM "m"'})
    series = response.json()["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture
async def real_store(stack_settings: Settings) -> AsyncIterator[InfluxStore]:
    store = InfluxStore(replace(stack_settings, influx_db=f"wc_{uuid.uuid4().hex[:10]}"))
    await store.start()
    yield store
    await store.close()


async def test_many_writes_land_over_few_connections(
        real_store: InfluxStore, influx: servers.InfluxServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened = 0
    real_open = asyncio.open_connection

    async def counting_open(*args: object, **kwargs: object) -> object:
        nonlocal opened
        opened += 1
        return await real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "open_connection", counting_open)
    for batch in range(50):
        await real_store.write(b"\n".join(b"m v=%d %d" % (i, batch * 10 + i)
                                          for i in range(10)))
    await asyncio.gather(*(real_store.write(b"m v=1 %d" % (1000 + i)) for i in range(4)))
    monkeypatch.undo()
    assert _count(influx, real_store.database) == 504
    assert opened <= 4  # keep-alive: sequential writes share one connection


async def test_influx_refusal_names_its_reason(real_store: InfluxStore) -> None:
    await real_store.write(b"m v=1 1")
    with pytest.raises(StoreRejected, match="field type conflict"):
        await real_store.write(b'm v="text" 2')


async def test_a_missing_database_is_refused_when_not_ours_to_create(
        stack_settings: Settings) -> None:
    store = InfluxStore(replace(stack_settings, influx_db=f"absent_{uuid.uuid4().hex[:8]}",
                                influx_create_db=False))
    try:
        with pytest.raises(StoreRejected, match="database not found"):
            await store.write(b"m v=1 1")
    finally:
        await store.close()


async def test_nobody_listening_is_unavailable(stack_settings: Settings) -> None:
    store = InfluxStore(replace(stack_settings,
                                influx_url=f"http://127.0.0.1:{procs.free_port()}"))
    try:
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.write(b"m v=1 1")
    finally:
        await store.close()


# -- a scripted server: each connection is handed to ``serve`` --------------------------

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


class Scripted:
    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.connections = 0
        self.bodies: list[bytes] = []

    async def __aenter__(self) -> InfluxStore:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.serve(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.store = InfluxStore(Settings(influx_url=f"http://127.0.0.1:{port}",
                                          influx_timeout=0.5, influx_create_db=False))
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()
        self.server.close()
        await self.server.wait_closed()


def answer(raw: bytes) -> Serve:
    """Reads one request and sends ``raw`` back."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        writer.write(raw)
        await writer.drain()
    return serve


async def test_a_chunked_error_body_is_read_whole() -> None:
    serve = answer(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"a\r\n{\"error\":\"\r\n13\r\nunable to parse x\"}\r\n0\r\n\r\n")
    async with Scripted(serve) as store:
        with pytest.raises(StoreRejected, match="unable to parse x"):
            await store.write(b"x")


async def test_a_busy_server_passes_on_its_retry_after() -> None:
    serve = answer(b'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n'
                   b'Content-Length: 20\r\n\r\n{"error":"too busy"}')
    async with Scripted(serve) as store:
        with pytest.raises(StoreUnavailable, match="too busy") as raised:
            await store.write(b"x")
    assert raised.value.retry_after == 7.0


async def test_a_keep_alive_connection_closed_while_idle_is_replaced() -> None:
    script = None

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one request, then closes the connection as an idle timeout would.
        script.bodies.append(await _request(reader))  # type: ignore[union-attr]
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    script = Scripted(serve)
    async with script as store:
        await store.write(b"first")
        await asyncio.sleep(0.05)  # the close reaches us; the client still holds the socket
        await store.write(b"second")
    assert script.bodies == [b"first", b"second"]
    assert script.connections == 2


async def test_http_1_0_answers_are_not_reused() -> None:
    script = None

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # would answer more, but the client must not ask on this connection
            script.bodies.append(await _request(reader))  # type: ignore[union-attr]
            writer.write(b"HTTP/1.0 204 No Content\r\n\r\n")
            await writer.drain()

    script = Scripted(serve)
    async with script as store:
        for body in (b"a", b"b", b"c"):
            await store.write(body)
    assert script.bodies == [b"a", b"b", b"c"]
    assert script.connections == 3


async def test_silence_is_a_timeout_not_a_hang() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request(reader)
        await asyncio.sleep(10)

    async with Scripted(serve) as store:
        with pytest.raises(StoreUnavailable, match="did not answer in time"):
            await asyncio.wait_for(store.write(b"x"), 5)


async def test_garbage_is_unavailable_not_a_crash() -> None:
    async with Scripted(answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as store:
        with pytest.raises(StoreUnavailable, match="WireError"):
            await store.write(b"x")


async def test_failed_writes_free_their_bodies_without_the_cyclic_gc(
        stack_settings: Settings) -> None:
    """While InfluxDB is down the spool drainer retries 8 MiB bodies every few seconds;
    a failed write must not leave its body in a reference cycle (it did, through
    asyncio.wait_for's Task, until the cyclic GC happened to run)."""
    store = InfluxStore(replace(stack_settings,
                                influx_url=f"http://127.0.0.1:{procs.free_port()}"))
    body = b"m v=1 1\n" * 131_072  # 1 MiB
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        for _ in range(20):
            with pytest.raises(StoreUnavailable):
                await store.write(b"%s" % body)  # a fresh copy each time, as the drainer's
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
        await store.close()
    assert held < 4 * len(body)  # 20 leaked copies would be 20 MiB
