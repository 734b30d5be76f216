"""``/admin/...``: devices and tokens for operators, and what the Data page shows.

Guarded by the admin token (``admin-token`` header, or ``authorization: Bearer``). The
operations are ``bridge.registry.devices``, the same code as ``devicedata device|token``; registry
and broker-sync calls are blocking, so each runs in a worker thread.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import authorized, existing_device
from api.data import read_body
from api.responses import success
from api.state import AppState
from bridge.errors import FieldError, StoreError, ValidationError
from bridge.model.points import decode_json
from bridge.model.query import DataQuery
from bridge.model.timeparse import format_iso_ms, now_ns
from bridge.registry.devices import (
    DeviceAdmin,
    admin_token,
    device_json,
    network_json,
    parse_expires,
    token_json,
)

log = logging.getLogger("devicedata.api")

MAX_ADMIN_BODY = 16 * 1024
SPARK_WINDOW_NS = 3600 * 10**9
SPARK_MINUTE_NS = 60 * 10**9
SPARK_RAW_MAX = 120  # up to this many points a sparkline draws them all, else minute means


async def load_admin_token(state: AppState) -> None:
    """Called once at start-up. Without a token the admin API refuses everyone rather
    than keeping the device API from starting."""
    try:
        state.admin_token = await run_in_threadpool(admin_token, state.settings)
    except OSError as exc:
        log.error("event=admin_token_unavailable reason=%s", exc)


def _admin(state: AppState) -> DeviceAdmin:
    return DeviceAdmin(state.settings, state.registry)


async def _body(request: Request) -> dict[str, Any]:
    body = decode_json(await read_body(request, MAX_ADMIN_BODY))
    if not isinstance(body, dict):
        raise ValidationError("Invalid body", [FieldError("body", "must be a JSON object")])
    return body


def _text(body: dict[str, Any], key: str, *, default: str | None = None) -> str:
    value = body.get(key, default)
    if value is None and default is None:
        raise ValidationError(f"{key} is required", [FieldError(key, "is required")])
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string", [FieldError(key, "must be a string")])
    return value


# devices

async def list_devices(request: Request) -> Response:
    state = authorized(request)
    devices = await state.registry_call(state.registry.list_devices)
    counts = await _points_last_hour(state)
    result = []
    recent = now_ns() - int(state.settings.active_seconds * 10**9)
    for device in devices:
        last = state.service.last_input.latest(device.id, device.last_input_ns)
        item = device_json(device, last)
        item["points_last_hour"] = None if counts is None else counts.get(device.id, 0)
        item["active"] = last is not None and last >= recent
        result.append(item)
    return success(result)


async def _points_last_hour(state: AppState) -> dict[str, int] | None:
    """Points per device over the last hour, in one query for all devices; None while
    InfluxDB is unreachable, so the device list itself still loads."""
    try:
        return await state.service.points_per_device(3600)
    except StoreError as exc:
        log.warning("event=points_last_hour_unavailable reason=%s", exc)
        return None


async def create_device(request: Request) -> Response:
    state = authorized(request)
    name = _text(await _body(request), "name")
    new = await state.registry_call(_admin(state).create_device, name)
    return success(new.as_json())


async def rename_device(request: Request) -> Response:
    state = authorized(request)
    name = _text(await _body(request), "name")
    device = await state.registry_call(_admin(state).rename_device,
                                       request.path_params["device_id"], name)
    return success(device_json(device, state.service.last_input.latest(device.id,
                                                                device.last_input_ns)))


async def delete_device(request: Request) -> Response:
    state = authorized(request)

    def delete_data(device_id: str) -> None:
        # Runs in the worker thread; the store lives on the event loop.
        anyio.from_thread.run(state.service.delete_device, device_id)

    # This process refuses the deleted tokens at once, not after the cache's TTL.
    device = await state.registry_call(_admin(state).delete_device,
                                       request.path_params["device_id"], delete_data,
                                       state.forget_credentials)
    return success(device_json(device))


async def info(request: Request) -> Response:
    """What the console needs to print connection snippets and mark activity."""
    state = authorized(request)
    settings = state.settings
    plain, tls = settings.public_mqtt_port, settings.public_mqtt_tls_port
    if not plain:
        plain = -1 if settings.mqtt_tls else settings.mqtt_port
    if not tls and settings.mqtt_tls:
        tls = settings.mqtt_port
    return success({"http_port": settings.http_port, "mqtt_port": plain if plain > 0 else None,
                    "mqtt_tls_port": tls if tls > 0 else None, "ca_file": settings.public_ca_file,
                    "active_seconds": settings.active_seconds})


# tokens

async def list_tokens(request: Request) -> Response:
    state = authorized(request)
    tokens = await state.registry_call(state.registry.list_tokens,
                                       request.path_params["device_id"])
    now = time.time_ns()
    return success([token_json(t, now) for t in tokens])


async def create_token(request: Request) -> Response:
    state = authorized(request)
    body = await _body(request)
    permission = _text(body, "permission")
    expires = body.get("expires")
    if expires is not None and not isinstance(expires, str):
        raise ValidationError("Invalid token", [
            FieldError("expires", "must be a duration such as '30d' or '12 hours', or null")])
    name = _text(body, "name", default="")
    serial = body.get("serie_number")  # validated by the registry: ValidationError -> 400
    issued = await state.registry_call(
        _admin(state).create_token, request.path_params["device_id"], permission,
        parse_expires(expires), name, serial)
    return success({"token": issued.token, **token_json(issued.info, issued.info.created_ns)})


async def revoke_token(request: Request) -> Response:
    state = authorized(request)
    info = await state.registry_call(_admin(state).revoke_token, request.path_params["token"])
    state.forget_credentials()
    return success(token_json(info, time.time_ns()))


# network tokens (LoRaWAN network servers: docs/formats.md)

async def list_networks(request: Request) -> Response:
    state = authorized(request)
    networks = await state.registry_call(state.registry.list_networks)
    return success([network_json(n) for n in networks])


async def create_network(request: Request) -> Response:
    state = authorized(request)
    name = _text(await _body(request), "name")
    issued = await state.registry_call(state.registry.create_network, name)
    return success({"token": issued.token, **network_json(issued.info)})


async def revoke_network(request: Request) -> Response:
    state = authorized(request)
    info = await state.registry_call(state.registry.revoke_network,
                                     request.path_params["token"])
    state.networks.clear()
    return success(network_json(info))


# what the Data page shows

async def variables(request: Request) -> Response:
    """Every variable of the device with its newest point (TagoCore's Data tab)."""
    state = authorized(request)
    device_id = request.path_params["device_id"]
    await existing_device(state, device_id)
    points = await state.service.get(device_id, DataQuery(kind="last_item"))
    assert isinstance(points, list)
    return success(sorted(points, key=lambda p: p["variable"]))


async def series(request: Request) -> Response:
    """The last hour of one numeric variable, for a sparkline: every point when there are
    at most SPARK_RAW_MAX, else one mean per minute (a sparkline has no use for more)."""
    state = authorized(request)
    device_id = request.path_params["device_id"]
    variable = request.query_params.get("variable", "")
    if not variable:
        raise ValidationError("Invalid query parameters",
                              [FieldError("variable", "is required")])
    await existing_device(state, device_id)
    start = now_ns() - SPARK_WINDOW_NS
    raw = await state.service.get(device_id, DataQuery(
        variables=[variable], start_ns=start, ascending=True, qty=SPARK_RAW_MAX + 1))
    assert isinstance(raw, list)
    aggregated = len(raw) > SPARK_RAW_MAX
    if aggregated:
        raw = await state.service.get(device_id, DataQuery(
            variables=[variable], start_ns=start, ascending=True, kind="aggregate",
            function="avg", interval_ns=SPARK_MINUTE_NS, qty=SPARK_RAW_MAX))
        assert isinstance(raw, list)
    points = [{"time": p["time"], "value": p["value"]} for p in raw
              if isinstance(p.get("value"), int | float) and not isinstance(p["value"], bool)]
    return success({"variable": variable, "interval": "1 minute" if aggregated else None,
                    "start": format_iso_ms(start), "points": points})


routes = [
    Route("/admin/info", info, methods=["GET"]),
    Route("/admin/devices", list_devices, methods=["GET"]),
    Route("/admin/devices", create_device, methods=["POST"]),
    Route("/admin/devices/{device_id}", rename_device, methods=["PATCH"]),
    Route("/admin/devices/{device_id}", delete_device, methods=["DELETE"]),
    Route("/admin/devices/{device_id}/tokens", list_tokens, methods=["GET"]),
    Route("/admin/devices/{device_id}/tokens", create_token, methods=["POST"]),
    Route("/admin/devices/{device_id}/variables", variables, methods=["GET"]),
    Route("/admin/devices/{device_id}/series", series, methods=["GET"]),
    Route("/admin/tokens/{token}", revoke_token, methods=["DELETE"]),
    Route("/admin/networks", list_networks, methods=["GET"]),
    Route("/admin/networks", create_network, methods=["POST"]),
    Route("/admin/networks/{token}", revoke_network, methods=["DELETE"]),
]
