"""/openapi.json describes every route the app serves, with its methods."""

from __future__ import annotations

from starlette.routing import Route

from api.app import create_app
from api.openapi import openapi_document
from bridge.settings import Settings

UNDOCUMENTED = {"/", "/openapi.json"}  # the Data page and the document itself


def test_every_route_and_method_is_documented() -> None:
    app = create_app(Settings())
    paths = openapi_document()["paths"]
    for route in app.routes:
        if not isinstance(route, Route) or route.path in UNDOCUMENTED:
            continue
        assert route.path in paths, route.path
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in paths[route.path], (route.path, method)
