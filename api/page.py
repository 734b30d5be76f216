"""The Data page: ``/`` and ``/static/...``, plain files served as they are (no build step).

The page signs in with the admin token and polls the ``/admin/...`` JSON endpoints.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Defence in depth for a page that displays device-supplied strings: even if one slipped
# into markup, no inline script or foreign origin could run or be reached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",  # frame-ancestors, for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=SECURITY_HEADERS)


class SafeStaticFiles(StaticFiles):
    """Static files with the page's headers: ``/static/index.html`` is the page too, and
    must not be framed or run foreign scripts either."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


routes = [
    Route("/", index, methods=["GET", "HEAD"]),
    Mount("/static", app=SafeStaticFiles(directory=STATIC_DIR), name="static"),
]
