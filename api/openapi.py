"""The OpenAPI 3.1 description served at /openapi.json."""

from __future__ import annotations

from typing import Any

from bridge.model.query import KINDS

_LIST = {"type": "array", "items": {"type": "string"}}


def _param(name: str, schema: dict[str, Any], doc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": doc}


_FILTERS = [
    _param("variables", _LIST, "Variable names (alias `variable`; `k=a&k=b`, `k[]=a`, `k[0]=a`)."),
    _param("groups", _LIST, "Groups (aliases `group`, `series`, `serie`)."),
    _param("ids", _LIST, "Point ids (alias `id`)."),
    _param("values", _LIST, "Exact values (alias `value`)."),
    _param("qty", {"type": "integer", "minimum": 0, "maximum": 10000, "default": 15}, "Page size."),
    _param("skip", {"type": "integer", "minimum": 0, "default": 0}, "Points to skip."),
    _param("ordination", {"type": "string", "enum": ["descending", "ascending", "DESC", "ASC"]},
           "Newest first (default) or oldest first; case-insensitive."),
    _param("start_date", {"type": "string"}, "ISO date-time, date, or relative ('1 day')."),
    _param("end_date", {"type": "string"}, "ISO date-time, date, or relative ('1 day')."),
    _param("query", {"type": "string", "enum": list(KINDS)}, "Kind of query."),
    _param("function", {"type": "string", "enum": ["avg", "sum", "min", "max", "count"]},
           "Aggregation function for query=aggregate."),
    _param("interval", {"type": "string"}, "Bucket width for query=aggregate ('1 hour')."),
    _param("details", {"type": "boolean"}, "Add created_at to each point."),
]

_POINT = {
    "type": "object",
    "required": ["variable"],
    "properties": {
        "variable": {"type": "string", "minLength": 1, "maxLength": 100},
        "value": {"oneOf": [{"type": "string", "maxLength": 6000}, {"type": "number"},
                            {"type": "boolean"}]},
        "unit": {"type": "string", "maxLength": 25},
        "group": {"type": "string", "maxLength": 100},
        "serie": {"type": "string", "description": "Legacy alias of group."},
        "time": {"oneOf": [{"type": "string"}, {"type": "number",
                                                "description": "Epoch milliseconds."}]},
        "location": {"type": "object"},
        "metadata": {"type": "object"},
    },
}

_ENVELOPE = {"type": "object", "properties": {"status": {"type": "boolean"},
                                              "result": {}, "message": {"type": "string"}}}
_SECURITY: list[dict[str, list[str]]] = [{"token": []}, {"deviceToken": []}, {"authorization": []}]
_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}, {"adminBearer": []}]
_NETWORK: list[dict[str, list[str]]] = [{"token": []}, {"authorization": []}]


def _network(summary: str, **extra: Any) -> dict[str, Any]:
    op = _op(summary, **extra)
    op["security"] = _NETWORK
    op["responses"]["404"] = {"description": "No active device token carries the DevEUI",
                              "content": {"application/json": {"schema": _ENVELOPE}}}
    return op


_UPLINK = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}


def _admin(summary: str, body: bool = False) -> dict[str, Any]:
    op = _op(summary)
    op["security"] = _ADMIN
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"type": "object"}}}}
    return op


_DEVICE_ID = [{"name": "device_id", "in": "path", "required": True,
               "schema": {"type": "string"}}]


def _op(summary: str, **extra: Any) -> dict[str, Any]:
    responses = {code: {"description": text, "content": {"application/json": {
        "schema": _ENVELOPE}}} for code, text in (
        ("200", "Success"), ("400", "Invalid input; names the field or parameter"),
        ("401", "Authorization denied"), ("413", "Body or point count over the limit"),
        ("503", "Store unavailable; retry after Retry-After seconds"))}
    return {"summary": summary, "security": _SECURITY, "responses": responses, **extra}


def openapi_document() -> dict[str, Any]:
    body = {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [_POINT, {"type": "array", "items": _POINT}]}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "devicedata", "version": "0.1.0",
                 "description": "TagoIO-compatible device data API on InfluxDB."},
        "components": {"securitySchemes": {
            "token": {"type": "apiKey", "in": "header", "name": "token"},
            "deviceToken": {"type": "apiKey", "in": "header", "name": "device-token"},
            "authorization": {"type": "apiKey", "in": "header", "name": "authorization"},
            "adminToken": {"type": "apiKey", "in": "header", "name": "admin-token"},
            "adminBearer": {"type": "http", "scheme": "bearer"},
        }},
        "paths": {
            "/data": {
                "post": _op("Send data points ('N Data Added')", requestBody=body),
                "get": _op("Read data points, or a number for count/sum/avg/min/max",
                           parameters=_FILTERS),
                "put": _op("Edit points by id ('N item(s) updated')", requestBody=body),
                "delete": _op("Delete what the same GET returns ('N Data Removed')",
                              parameters=_FILTERS),
            },
            "/info": {"get": _op("The token's device")},
            "/admin/devices": {
                "get": _admin("List devices with last input and points in the last hour"),
                "post": _admin("Create a device and its first full token", body=True),
            },
            "/admin/devices/{device_id}": {
                "parameters": _DEVICE_ID,
                "patch": _admin("Rename a device", body=True),
                "delete": _admin("Delete a device, its data, tokens and broker credentials"),
            },
            "/admin/devices/{device_id}/tokens": {
                "parameters": _DEVICE_ID,
                "get": _admin("List a device's tokens (never the tokens themselves)"),
                "post": _admin("Create a token (shown once)", body=True),
            },
            "/admin/devices/{device_id}/variables": {
                "parameters": _DEVICE_ID,
                "get": _admin("Each variable's newest value, unit and time"),
            },
            "/admin/devices/{device_id}/series": {
                "parameters": _DEVICE_ID,
                "get": _admin("The last hour of a numeric variable"),
            },
            "/admin/tokens/{token}": {
                "parameters": [{"name": "token", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "delete": _admin("Revoke a token by itself or its prefix"),
            },
            "/admin/networks": {
                "get": _admin("List network tokens (never the tokens themselves)"),
                "post": _admin("Create a network token (shown once)", body=True),
            },
            "/admin/networks/{token}": {
                "parameters": [{"name": "token", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "delete": _admin("Revoke a network token by itself or its prefix"),
            },
            "/integration/network/resolve/{serie}": {
                "parameters": [{"name": "serie", "in": "path", "required": True,
                                "schema": {"type": "string"},
                                "description": "serie_number: a DevEUI or other serial"}],
                "get": _network("The device whose active token carries the serial number "
                                "(network token; docs/formats.md)"),
            },
            "/integrations/chirpstack": {"post": _network(
                "ChirpStack v4 HTTP integration, JSON encoding (network token)",
                parameters=[{"name": "event", "in": "query", "required": True,
                             "schema": {"type": "string"},
                             "description": "up and status are stored; others answer 200"}],
                requestBody=_UPLINK)},
            "/integrations/ttn": {"post": _network(
                "The Things Stack v3 webhook (network token); uplink_message is stored",
                requestBody=_UPLINK)},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format"}}}},
            "/health": {"get": {"summary": "Process alive", "responses": {
                "200": {"description": "Alive"}}}},
            "/ready": {"get": {"summary": "InfluxDB, registry and broker reachable", "responses": {
                "200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
        },
    }
