"""InfluxDB through its v1 HTTP API: line-protocol ``/write`` and InfluxQL ``/query``.

1.x serves this API natively and 2.x/3.x as their v1-compatible API, so one client covers
them all. Writes to an ``http://`` URL go through ``bridge.influx.client`` (the hot path);
everything else through httpx. Their errors and InfluxDB's error statuses are converted
here, and only here, into ``StoreUnavailable`` (retry later) or ``StoreRejected`` (the
request itself is wrong).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Any

import httpx
import orjson

from bridge.errors import StoreRejected, StoreUnavailable
from bridge.influx.client import WireError, WireResponse, WriteClient, basic_auth
from bridge.influx.influxql import create_database_statement
from bridge.influx.schema import Series, devices_in
from bridge.model.current import Candidates
from bridge.settings import Settings

log = logging.getLogger("devicedata.store")


# (devices whose data may have changed, the write's candidates for current values: None
# when nothing is known to be stored, or for a change made by a query)
ChangeHook = Callable[[Collection[str], Candidates | None], Awaitable[None]]


class InfluxStore:
    def __init__(self, settings: Settings, *, on_change: ChangeHook | None = None):
        """``on_change`` hears which devices' data a write or delete may have changed,
        after InfluxDB answered and before the caller learns the outcome."""
        self._on_change = on_change
        self._db = settings.influx_db
        self._rp = settings.influx_rp
        self._create_db = settings.influx_create_db
        headers = {}
        if settings.influx_token:
            headers["Authorization"] = f"Token {settings.influx_token}"
        elif settings.influx_username:
            headers["Authorization"] = basic_auth(settings.influx_username,
                                                  settings.influx_password)
        url = settings.influx_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=settings.influx_timeout,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )
        self._write_params = {"db": self._db, "precision": "ns"}
        if self._rp:
            self._write_params["rp"] = self._rp
        self._writer = None
        if url.startswith("http://"):
            self._writer = WriteClient(url, self._write_params, headers=headers,
                                       timeout=settings.influx_timeout)
        self.statements_run = 0  # how many InfluxQL statements went out; tests read it

    @property
    def database(self) -> str:
        return self._db

    async def start(self) -> None:
        """Create the database where allowed; a refusal is logged, not fatal, since the
        operator may have created it with another user."""
        if not self._create_db:
            return
        try:
            await self._post_query(create_database_statement(self._db), db=None)
        except StoreRejected as exc:
            log.warning("event=create_database_refused db=%s reason=%s", self._db, exc)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
        await self._client.aclose()

    async def ping(self) -> None:
        response = await self._request("GET", "/ping")
        if response.status_code != 204:
            raise StoreUnavailable(f"InfluxDB ping answered {response.status_code}")

    async def write(self, body: bytes, devices: Collection[str] | None = None,
                    current: Candidates | None = None) -> None:
        """Write newline-separated line protocol at nanosecond precision. ``devices``
        (whose lines these are) spares reading them from the lines for ``on_change``,
        which also hears ``current`` once InfluxDB has stored every line."""
        if not body:
            return
        status, headers, content = await self._post_write(body)
        if status == 404 and self._create_db:
            # The database vanished (a wiped or replaced InfluxDB): recreate it once.
            await self.start()
            status, headers, content = await self._post_write(body)
        try:
            _check(status, headers, content)
        except BaseException:
            # Even a refused write may have stored part of its lines (a partial write).
            if self._on_change is not None:
                await self._on_change(devices_in(body) if devices is None else devices, None)
            raise
        if self._on_change is not None:
            await self._on_change(devices_in(body) if devices is None else devices, current)

    async def changed(self, device_ids: Collection[str]) -> None:
        """Report a change made by a query (DELETE), as ``write`` reports its own."""
        if self._on_change is not None:
            await self._on_change(device_ids, None)

    async def _post_write(self, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        if self._writer is None:
            response = await self._request("POST", "/write", params=self._write_params,
                                           content=body)
            return response.status_code, response.headers, response.content
        try:
            answer: WireResponse = await self._writer.write(body)
        except TimeoutError:
            raise StoreUnavailable("InfluxDB did not answer in time") from None
        except (OSError, asyncio.IncompleteReadError, WireError) as exc:
            raise StoreUnavailable(f"InfluxDB is unreachable ({type(exc).__name__})") from None
        return answer.status, answer.headers, answer.body

    async def query(self, statements: list[str]) -> list[list[Series]]:
        """Run statements in one request; one list of series per statement, in order."""
        if not statements:
            return []
        self.statements_run += len(statements)
        data = await self._post_query(";\n".join(statements), db=self._db)
        results = data.get("results", [])
        out: list[list[Series]] = []
        for result in results:
            if "error" in result:
                raise _rejected(f"InfluxDB refused the query: {result['error']}",
                                "The store could not run the query")
            out.append([_series(s) for s in result.get("series", [])])
        if len(out) != len(statements):
            raise _rejected(
                f"InfluxDB answered {len(out)} results for {len(statements)} statements",
                "The store could not run the query")
        return out

    async def stream(self, statement: str, chunk_size: int = 5000
                     ) -> AsyncIterator[list[Series]]:
        """Run one statement with InfluxDB's chunked responses (``chunked=true``): yields
        each chunk's series as InfluxDB sends it, at most ``chunk_size`` rows each, so a
        result of any size passes through in bounded memory. The caller's pace is the
        read pace: nothing is read ahead of what it has taken."""
        self.statements_run += 1
        params = {"db": self._db, "epoch": "ns", "chunked": "true",
                  "chunk_size": str(chunk_size)}
        if self._rp:
            params["rp"] = self._rp
        try:
            async with self._client.stream("POST", "/query", params=params,
                                           data={"q": statement}) as response:
                if response.status_code >= 400:
                    _check(response.status_code, response.headers, await response.aread())
                parts: list[bytes] = []  # of the line not yet complete
                async for data in response.aiter_bytes():
                    while (cut := data.find(b"\n")) >= 0:
                        line = b"".join((*parts, data[:cut]))
                        parts, data = [], data[cut + 1:]
                        if line.strip():
                            yield _chunk(line)
                    parts.append(data)
                if b"".join(parts).strip():
                    yield _chunk(b"".join(parts))
        except httpx.TimeoutException:
            raise StoreUnavailable("InfluxDB did not answer in time") from None
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB is unreachable ({type(exc).__name__})") from None

    async def _post_query(self, q: str, db: str | None) -> dict[str, Any]:
        form = {"q": q}
        params = {"epoch": "ns"}
        if db:
            params["db"] = db
            if self._rp:
                params["rp"] = self._rp  # read from the policy we write to
        response = await self._request("POST", "/query", params=params, data=form)
        _check(response.status_code, response.headers, response.content)
        try:
            parsed: dict[str, Any] = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise StoreUnavailable(f"InfluxDB sent unreadable JSON: {exc}") from None
        return parsed

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise StoreUnavailable("InfluxDB did not answer in time") from None
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"InfluxDB is unreachable ({type(exc).__name__})") from None


def _check(status: int, headers: Mapping[str, str], content: bytes) -> None:
    """``headers`` is looked up in lower case (httpx's are case-insensitive)."""
    if status < 400:
        return
    message = _error_text(status, content)
    if status >= 500 or status == 429:
        retry = headers.get("retry-after", "")
        raise StoreUnavailable(f"InfluxDB answered {status}: {message}",
                               retry_after=float(retry) if retry.isdigit() else 5.0)
    raise _rejected(f"InfluxDB answered {status}: {message}", _public(message))


# InfluxDB's refusals a client can act on, in our words; anything else is a generic refusal.
_PUBLIC = (
    ("max-values-per-tag", "The store refused new variables: the database's limit on "
     "distinct variable names is reached (see docs/schema.md, Cardinality)"),
    ("max-series-per-database", "The store refused new variables: the database's limit on "
     "series is reached (see docs/schema.md, Cardinality)"),
    ("beyond retention policy", "Points older than the database's retention period were "
     "not stored"),
    ("field type conflict", "The store refused a value of another type than the field has"),
    ("error parsing query", "The store could not run the query"),
)


def _public(message: str) -> str:
    for marker, public in _PUBLIC:
        if marker in message:
            return public
    return "The store refused the request"


def _rejected(message: str, public: str) -> StoreRejected:
    log.warning("event=store_rejected reason=%s", message[:500])
    return StoreRejected(message, public)


def _error_text(status: int, content: bytes) -> str:
    try:
        error = orjson.loads(content).get("error")
        if isinstance(error, str):
            return error
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return content[:200].decode("utf-8", "replace") or f"status {status}"


def _chunk(line: bytes) -> list[Series]:
    """One line of a chunked answer: ``{"results": [...]}`` holding one statement's part."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise StoreUnavailable(f"InfluxDB sent unreadable JSON: {exc}") from None
    if "error" in data:
        raise StoreRejected(f"InfluxDB refused the query: {data['error']}")
    out: list[Series] = []
    for result in data.get("results", []):
        if "error" in result:
            raise StoreRejected(f"InfluxDB refused the query: {result['error']}")
        out.extend(_series(s) for s in result.get("series", []))
    return out


def _series(raw: dict[str, Any]) -> Series:
    tags = raw.get("tags") or {}
    columns = raw.get("columns", [])
    rows = []
    for values in raw.get("values", []):
        row = dict(zip(columns, values, strict=False))
        row.update(tags)
        rows.append(row)
    return Series(name=raw.get("name", ""), tags=tags, rows=rows)
