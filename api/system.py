"""Operational endpoints: liveness, readiness and the OpenAPI document."""

from __future__ import annotations

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
        await state.store.ping()
    except DeviceDataError as exc:
        problems["influxdb"] = str(exc)
    try:
        await state.registry_call(state.registry.ping)
    except DeviceDataError as exc:
        problems["registry"] = str(exc)
    if problems:
        failing = ", ".join(sorted(problems))
        return failure(503, f"Not ready: {failing} unreachable", checks=problems,
                       headers={"Retry-After": "5"})
    return success({"influxdb": "ok", "registry": "ok"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/ready", ready, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
