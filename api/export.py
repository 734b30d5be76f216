"""``/admin/devices/{id}/export``: a device's points for a time range, all variables or
chosen ones, as CSV or JSON lines, streamed from InfluxDB chunk by chunk
(``DataService.export``), so memory stays flat whatever the size.

Parameters (the names ``GET /data`` uses): ``format`` (``csv``, default, or ``jsonl``),
``start_date``, ``end_date``, ``variable``/``variables`` (repeatable), ``group``/``groups``.

A browser download cannot send the admin token as a header, so the page first asks
``POST .../export-link`` (admin token) for a URL signed with the admin token (HMAC-SHA256
over path and parameters) that is valid for ``LINK_SECONDS``; ``GET .../export`` takes
either the admin token or such a signature.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from api.auth import authorized, existing_device
from api.params import query_lists
from api.responses import success
from api.state import AppState
from bridge.errors import FieldError, StoreError, ValidationError
from bridge.model.query import DataQuery, parse_data_query
from bridge.model.timeparse import format_iso_ms, now_ns

log = logging.getLogger("devicedata.api")

CSV_COLUMNS = ("time", "variable", "value", "unit", "group", "lat", "lng", "metadata")
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"),
           "jsonl": ("application/x-ndjson", "jsonl")}
FILTERS = ("variable", "variables", "group", "groups", "serie", "series",
           "start_date", "end_date")
LINK_SECONDS = 300
_SIGNED = ("expires", "signature")


def _parse(params: dict[str, list[str]]) -> tuple[DataQuery, str]:
    fmt = (params.get("format") or ["csv"])[-1]
    query = parse_data_query({k: v for k, v in params.items() if k in FILTERS},
                             now_ns=now_ns())
    if fmt not in FORMATS:
        raise ValidationError("Invalid query parameters",
                              [FieldError("format", "must be csv or jsonl")])
    return query, fmt


def _signature(key: str, path: str, params: dict[str, list[str]]) -> str:
    pairs = sorted((k, v) for k, values in params.items() if k != "signature"
                   for v in values)
    message = f"{path}?{urlencode(pairs)}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _signed_ok(state: AppState, path: str, params: dict[str, list[str]]) -> bool:
    if not state.admin_token or not all(params.get(k) for k in _SIGNED):
        return False
    try:
        expires = int(params["expires"][-1])
    except ValueError:
        return False
    now = int(time.time())
    if not now <= expires <= now + LINK_SECONDS + 5:
        return False
    expected = _signature(state.admin_token, path, params)
    return hmac.compare_digest(params["signature"][-1].encode(), expected.encode())


async def export_link(request: Request) -> Response:
    """A signed download URL for the same parameters, valid LINK_SECONDS."""
    state = authorized(request)
    device_id = request.path_params["device_id"]
    params = {k: v for k, v in query_lists(request.url.query).items() if k not in _SIGNED}
    _parse(params)  # refuse bad parameters now, not when the browser downloads
    await existing_device(state, device_id)
    path = f"/admin/devices/{device_id}/export"
    expires = int(time.time()) + LINK_SECONDS
    params["expires"] = [str(expires)]
    params["signature"] = [_signature(state.admin_token, path, params)]
    pairs = [(k, v) for k, values in params.items() for v in values]
    return success({"url": f"{path}?{urlencode(pairs)}",
                    "expires_at": format_iso_ms(expires * 10**9)})


async def export(request: Request) -> Response:
    state = AppState.of(request)
    device_id = request.path_params["device_id"]
    params = query_lists(request.url.query)
    if not _signed_ok(state, request.url.path, params):
        authorized(request)
    query, fmt = _parse({k: v for k, v in params.items() if k not in _SIGNED})
    await existing_device(state, device_id)
    chunks = state.service.export(device_id, query)
    # The first chunk is read before the answer starts, so an unreachable InfluxDB is
    # still a 503 with a JSON body rather than a download that breaks off.
    first: list[dict[str, Any]] = await anext(chunks, [])
    media_type, suffix = FORMATS[fmt]
    encode = _csv if fmt == "csv" else _jsonl

    async def body() -> AsyncIterator[bytes]:
        try:
            if fmt == "csv":
                yield (",".join(CSV_COLUMNS) + "\r\n").encode()
            if first:
                yield encode(first)
            async for points in chunks:
                yield encode(points)
        except StoreError as exc:
            # Too late for an error status: break the download off (no last chunk), so
            # the client sees it incomplete rather than a file that looks whole.
            log.warning("event=export_failed device=%s reason=%s", device_id, exc)
            raise
        finally:
            await chunks.aclose()

    name = f"{device_id}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{suffix}"
    return StreamingResponse(body(), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(points: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for p in points:
        location = p.get("location")
        lng, lat = location["coordinates"] if location else ("", "")
        metadata = p.get("metadata")
        writer.writerow((p["time"], p["variable"], _csv_value(p.get("value")),
                         p.get("unit", ""), p.get("group", ""), lat, lng,
                         "" if metadata is None else orjson.dumps(metadata).decode()))
    return out.getvalue().encode("utf-8")


def _jsonl(points: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(p) + b"\n" for p in points)


routes = [
    Route("/admin/devices/{device_id}/export", export, methods=["GET"]),
    Route("/admin/devices/{device_id}/export-link", export_link, methods=["POST"]),
]
