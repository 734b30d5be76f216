"""Every error becomes an HTTP response here, and only here, in TagoIO's envelope:
``{"status": false, "message": ...}`` with a 4xx/5xx code and never an HTML body."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from api.responses import JSONResponse
from bridge.errors import (
    AuthorizationDenied,
    Conflict,
    DeviceDataError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RegistryError,
    StoreRejected,
    StoreUnavailable,
    TooManyRequests,
    ValidationError,
)

log = logging.getLogger("devicedata.api")


def failure(status: int, message: str, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return JSONResponse({"status": False, "message": message, **extra}, status_code=status,
                        headers=headers)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


_REASONS = {ValidationError: "invalid", PayloadTooLarge: "too_large",
            AuthorizationDenied: "unauthorized", StoreRejected: "store_rejected",
            StoreUnavailable: "unavailable", Overloaded: "overloaded", NotFound: "not_found",
            TooManyRequests: "too_many_requests"}


def reason_of(exc: Exception) -> str:
    """A refusal's reason, from a closed set (metrics labels, the live inspector)."""
    return _REASONS.get(type(exc), "error")


def public_message(exc: DeviceDataError) -> str:
    """What a client or the inspector is told: never InfluxDB's own text."""
    if isinstance(exc, ValidationError):
        return exc.message
    if isinstance(exc, StoreRejected):
        return exc.public
    if isinstance(exc, StoreUnavailable):
        return "Service temporarily unavailable: the data store is not answering"
    return str(exc)


def _count_rejection(request: Request, exc: Exception) -> None:
    if request.url.path != "/data" or request.method not in ("POST", "PUT"):
        return
    state = getattr(request.app.state, "devicedata", None)
    if state is not None:
        state.service.rejected("http", _REASONS.get(type(exc), "other"))


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    _count_rejection(request, exc)
    if isinstance(exc, ValidationError):
        return JSONResponse({"status": False, "message": exc.message, **exc.report()},
                            status_code=400)
    if isinstance(exc, AuthorizationDenied):
        return failure(401, "Authorization denied")
    if isinstance(exc, PayloadTooLarge):
        return failure(413, str(exc))
    if isinstance(exc, NotFound):
        return failure(404, str(exc))
    if isinstance(exc, Conflict):
        return failure(409, str(exc))
    if isinstance(exc, StoreUnavailable | Overloaded):
        log.warning("event=unavailable path=%s reason=%s", request.url.path, exc)
        # A store's reason may quote InfluxDB (paths, shard ids): clients get ours only.
        message = public_message(exc) if isinstance(exc, StoreUnavailable) \
            else f"Service temporarily unavailable: {exc}"
        return failure(503, message, headers=_retry_after(exc.retry_after))
    if isinstance(exc, TooManyRequests):
        if exc.hold > 0:
            await asyncio.sleep(exc.hold)  # api/fairness.py: why a refusal waits
        return failure(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, StoreRejected):
        return failure(400, public_message(exc))  # InfluxDB's text is in the store's log
    if isinstance(exc, RegistryError):
        log.error("event=registry_error path=%s reason=%s", request.url.path, exc)
        return failure(503, "Device registry unavailable", headers=_retry_after(5))
    assert isinstance(exc, DeviceDataError)
    return failure(400, str(exc))


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "Route Not Found" if exc.status_code == 404 else str(exc.detail)
    return failure(exc.status_code, message, headers=dict(exc.headers or {}))


async def handle_disconnect(request: Request, exc: Exception) -> Response:
    """The client left (or its body was too slow: devicedata/httpserver.py) before its
    request was read; nobody will read this answer."""
    log.info("event=client_disconnected path=%s", request.url.path)
    return failure(400, "Client disconnected before its request was read")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("event=internal_error path=%s", request.url.path)
    return failure(500, "Internal error")


EXCEPTION_HANDLERS = {
    DeviceDataError: handle_domain_error,
    HTTPException: handle_http_error,
    ClientDisconnect: handle_disconnect,
    Exception: handle_unexpected,
}
