"""The TagoIO device endpoints: /data (POST, GET, PUT, DELETE) and /info."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import inspect
from api.auth import authorize
from api.params import query_lists
from api.responses import success
from api.state import AppState
from bridge.errors import DeviceDataError, PayloadTooLarge
from bridge.model.formats import format_for_content_type
from bridge.model.points import decode_json
from bridge.model.query import parse_data_query
from bridge.model.timeparse import format_iso_ms, now_ns


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request, state: AppState) -> Any:
    return decode_json(await read_body(request, state.settings.max_body_bytes))


# Each handler admits the request under its device's limits (api/fairness.py) right after
# authentication; reads are charged what they returned, changed or removed.

async def post_data(request: Request) -> Response:
    state = AppState.of(request)
    token = await authorize(request, state.tokens, "write")
    body = None
    try:  # a refusal by the device's limits shows in the live inspector too
        with state.limits.request(token.device_id, reads=False):
            # application/senml+json and application/senml+cbor are converted; anything
            # else is TagoIO JSON, as it always was (docs/formats.md).
            fmt = format_for_content_type(request.headers.get("content-type"))
            body = await read_body(request, state.settings.max_body_bytes)
            count = await state.service.add(token.device_id, body, source="http", fmt=fmt)
    except DeviceDataError as exc:
        inspect.rejected(state, token.device_id, body, exc)
        raise
    inspect.accepted(state, token.device_id, body, count)
    return success(f"{count} Data Added")


async def get_data(request: Request) -> Response:
    state = AppState.of(request)
    token = await authorize(request, state.tokens, "read")
    with state.limits.request(token.device_id, reads=True):
        query = parse_data_query(query_lists(request.url.query), now_ns=now_ns())
        with state.limits.timed(token.device_id):
            result = await state.service.get(token.device_id, query)
        state.limits.charge_reads(token.device_id,
                                  len(result) if isinstance(result, list) else 1)
    return success(result)


async def put_data(request: Request) -> Response:
    state = AppState.of(request)
    token = await authorize(request, state.tokens, "write")
    with state.limits.request(token.device_id, reads=True):
        body = await _json_body(request, state)
        with state.limits.timed(token.device_id):  # the store's time, not the upload's
            count = await state.service.edit(token.device_id, body)
        state.limits.charge_reads(token.device_id, count)
    return success(f"{count} item(s) updated")


async def delete_data(request: Request) -> Response:
    state = AppState.of(request)
    token = await authorize(request, state.tokens, "write")
    with state.limits.request(token.device_id, reads=True):
        query = parse_data_query(query_lists(request.url.query), now_ns=now_ns())
        with state.limits.timed(token.device_id):
            count = await state.service.delete(token.device_id, query)
        state.limits.charge_reads(token.device_id, count)
    return success(f"{count} Data Removed")


async def info(request: Request) -> Response:
    state = AppState.of(request)
    token = await authorize(request, state.tokens, None)
    with state.limits.request(token.device_id, reads=False):
        device = await state.registry_call(state.registry.get_device, token.device_id)
    last = state.service.last_input.latest(device.id, device.last_input_ns)
    return success({
        "id": device.id,
        "name": device.name,
        "active": True,
        "type": "mutable",
        "created_at": format_iso_ms(device.created_ns),
        "last_input": format_iso_ms(last) if last else None,
    })


routes = [
    Route("/data", post_data, methods=["POST"]),
    Route("/data", get_data, methods=["GET"]),
    Route("/data", put_data, methods=["PUT"]),
    Route("/data", delete_data, methods=["DELETE"]),
    Route("/info", info, methods=["GET"]),
]
