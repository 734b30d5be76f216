"""/metrics (Prometheus text format) and the middleware that counts HTTP requests."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import AuthorizationDenied
from bridge.metrics import CONTENT_TYPE, token_matches


class RequestMetrics:
    """Counts requests by route template (never the raw path: ids would explode the
    label set), method (unknown ones as ``other``) and status, and times them."""

    def __init__(self, app: ASGIApp, templates: dict[Any, str]) -> None:
        self.app = app
        self.templates = templates  # endpoint -> path template, from the app's routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = getattr(scope["app"].state, "devicedata", None)
            if state is not None:
                # The router records the matched endpoint in the shared scope.
                template = self.templates.get(scope.get("endpoint"), "unmatched")
                state.metrics.http_request(template, scope["method"], status,
                                           time.perf_counter() - started)


async def metrics(request: Request) -> Response:
    state = request.app.state.devicedata
    if not token_matches(state.settings.metrics_token, request.headers.get("authorization", "")):
        raise AuthorizationDenied()
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]
