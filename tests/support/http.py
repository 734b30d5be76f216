"""Small clients for /data: what many tests do over and over."""

from __future__ import annotations

from typing import Any

import httpx

from support.api import ApiServer


def post(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/data", json=body)


def get(client: httpx.Client, params: Any = None) -> Any:
    response = client.get("/data", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] is True
    return body["result"]


def count(api: ApiServer, token: str, **params: Any) -> int:
    with api.client(token) as c:
        result: int = c.get("/data", params={"query": "count", **params}).json()["result"]
        return result


def read(api: ApiServer, token: str, **params: Any) -> list[dict[str, Any]]:
    with api.client(token) as c:
        result: list[dict[str, Any]] = c.get("/data", params=params).json()["result"]
        return result
