"""JSON responses rendered with orjson (fast, and it refuses NaN instead of emitting it)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSON


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def success(result: Any) -> JSONResponse:
    return JSONResponse({"status": True, "result": result})
