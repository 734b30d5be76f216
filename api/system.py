"""Operational endpoints: liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.errors import failure
from api.openapi import openapi_document
from api.responses import JSONResponse, success
from api.state import AppState
from bridge.errors import DeviceDataError


async def health(request: Request) -> Response:
    return success("ok")


async def ready(request: Request) -> Response:
    state = AppState.of(request)
    problems = {}
    try:
        await state.service.ping()
    except DeviceDataError as exc:
        problems["influxdb"] = str(exc)
    try:
        await state.registry_call(state.registry.ping)
    except DeviceDataError as exc:
        problems["registry"] = str(exc)
    try:
        await _broker_accepts(state.settings.mqtt_host, state.settings.mqtt_port)
    except OSError as exc:
        problems["broker"] = f"MQTT broker at {state.settings.mqtt_host}:" \
                             f"{state.settings.mqtt_port} is unreachable ({exc})"
    if problems:
        failing = ", ".join(sorted(problems))
        return failure(503, f"Not ready: {failing} unreachable", checks=problems,
                       headers={"Retry-After": "5"})
    return success({"influxdb": "ok", "registry": "ok", "broker": "ok"})


async def _broker_accepts(host: str, port: int) -> None:
    """A TCP connect is enough: devices, not the API, talk MQTT to the broker."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except TimeoutError:
        raise OSError("no answer within 2 s") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
