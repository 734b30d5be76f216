"""The Starlette application: routes, the CORS policy and the error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from api import admin, data, integrations, metrics, page, system
from api.errors import EXCEPTION_HANDLERS
from api.metrics import RequestMetrics
from api.state import lifespan
from bridge.registry import Registry
from bridge.settings import Settings

CORS_PATHS = ("/data", "/info")


class DeviceCORS:
    """CORS wide open for the device endpoints only (browsers and dashboards call them);
    admin and operational routes stay same-origin. A request without an ``Origin`` header
    is not a cross-origin browser request, so it skips the CORS layer altogether."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["token", "device-token", "authorization", "content-type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] in CORS_PATHS
                and any(name == b"origin" for name, _ in scope["headers"])):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings, *, registry: Registry | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def _lifespan(app: Starlette) -> AsyncIterator[None]:
        async with lifespan(app, settings, registry):
            await admin.load_admin_token(app.state.devicedata)
            yield

    routes = [*data.routes, *integrations.routes, *system.routes, *admin.routes, *page.routes,
              *metrics.routes]
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, lifespan=_lifespan)
    app.add_middleware(DeviceCORS)
    templates = {r.endpoint: r.path for r in routes if isinstance(r, Route)}
    app.add_middleware(RequestMetrics, templates=templates)
    return app
