"""The live inspector's HTTP side (``bridge/inspector`` has the design).

- ``GET /admin/devices/{id}/live?after=SEQ&wait=S``: the device's events newer than
  ``after``, waiting up to ``wait`` seconds (at most MAX_WAIT) for one. Polling is what
  keeps the device watched; ``feed`` names this process's feed (when it changes, the API
  restarted and ``after`` starts again from 0), ``watching`` says the watch has reached
  the broker, ``online`` that the broker is reachable.
- ``DELETE /admin/devices/{id}/live``: stop watching now.

And what the HTTP write path tells the inspector: ``accepted`` / ``rejected``, which cost
one dict look-up when nobody watches the device.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth import authorized, existing_device
from api.errors import public_message, reason_of
from api.responses import success
from api.state import AppState
from bridge.errors import (
    DeviceDataError,
    FieldError,
    NotFound,
    ValidationError,
)

MAX_WAIT = 10.0  # a long poll answers within this (and within uvicorn's 10 s shutdown)
SLICE = 1.0  # a waiting poll checks this often whether its page went away


def accepted(state: AppState, device_id: str, body: bytes, count: int,
             where: str = "POST /data") -> None:
    tap = state.inspector.tap if state.inspector is not None else None
    if tap is not None and tap.watching(device_id):
        tap.accepted(device_id, "http", where, body, count)


def rejected(state: AppState, device_id: str, body: bytes | None,
             exc: DeviceDataError, where: str = "POST /data") -> None:
    tap = state.inspector.tap if state.inspector is not None else None
    if tap is not None and tap.watching(device_id):
        errors = exc.errors if isinstance(exc, ValidationError) else []
        tap.rejected(device_id, "http", where, body or None, reason_of(exc),
                     public_message(exc), errors)


def _float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else float(raw)
        if not value >= 0:
            raise ValueError(raw)
    except ValueError:
        raise ValidationError("Invalid query parameters",
                              [FieldError(name, "must be a number from 0 up")]) from None
    return value


async def live(request: Request) -> Response:
    state = authorized(request)
    device_id = request.path_params["device_id"]
    after = int(_float(request, "after", 0))
    wait = min(_float(request, "wait", MAX_WAIT), MAX_WAIT)
    await existing_device(state, device_id)
    link = state.inspector
    if link is None:
        raise NotFound("The live inspector is turned off (DEVICEDATA_INSPECTOR)")
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        found, last = await link.feed.poll(device_id, after, min(SLICE, max(0.0, remaining)))
        if found or remaining <= SLICE or await request.is_disconnected():
            break
    return success({"events": found, "last": last, "feed": link.watcher,
                    "watching": link.confirmed(device_id), "online": link.online})


async def stop(request: Request) -> Response:
    state = authorized(request)
    if state.inspector is not None:
        state.inspector.feed.unwatch(request.path_params["device_id"])
    return success("stopped")


routes = [
    Route("/admin/devices/{device_id}/live", live, methods=["GET"]),
    Route("/admin/devices/{device_id}/live", stop, methods=["DELETE"]),
]
