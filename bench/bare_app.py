"""The HTTP ceiling: a bare Starlette app on uvicorn that reads the body, parses it as JSON
(orjson, as our API does) and answers 200 with a small JSON body. Same uvicorn settings as
``devicedata api`` (devicedata/serve.py): default loop and HTTP implementation, no access
log. Usage: python bench/bare_app.py PORT"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def post(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    count = len(payload) if isinstance(payload, list) else 1
    return Response(orjson.dumps({"status": True, "result": f"{count} Data Added"}),
                    media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":true}', media_type="application/json")


app = Starlette(routes=[Route("/data", post, methods=["POST"]),
                        Route("/health", health, methods=["GET"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, log_config=None)
