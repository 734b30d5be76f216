"""The Data page: ``/`` and ``/static/...``, plain files served as they are (no build step).

The page signs in with the admin token and polls the ``/admin/...`` JSON endpoints.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Defence in depth for a page that displays device-supplied strings: even if one slipped
# into markup, no inline script or foreign origin could run or be reached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=SECURITY_HEADERS)


routes = [
    Route("/", index, methods=["GET", "HEAD"]),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]
