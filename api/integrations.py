"""TagoIO's Network integrations for LoRaWAN network servers, on network tokens only.

- ``GET /integration/network/resolve/{serie}``: which device the serial number (DevEUI)
  reaches. TagoIO answers with the device token itself; devicedata keeps only token
  hashes, so it answers with what identifies that token instead (docs/formats.md).
- ``POST /integrations/chirpstack?event=up``: ChirpStack v4's HTTP integration (JSON).
- ``POST /integrations/ttn``: The Things Stack v3 webhooks.

An uplink reaches the device whose unrevoked, unexpired token carries the uplink's DevEUI
as its serial number, and nothing else: a network token cannot write to a device whose
token carries no serial, nor read anything. The points go through ``DataService.add``
like a ``POST /data`` (validation, per-device limits, batching, spool: durable before the
answer). Each call is counted by network and outcome (closed sets).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import inspect
from api.auth import authorize_network
from api.data import read_body
from api.responses import success
from api.state import AppState
from bridge.errors import (
    AuthorizationDenied,
    DeviceDataError,
    FieldError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    StoreUnavailable,
    ValidationError,
)
from bridge.model.formats import chirpstack, ttn
from bridge.model.formats.lorawan import Uplink
from bridge.model.points import decode_json
from bridge.model.timeparse import now_ns
from bridge.registry.interface import TokenInfo
from bridge.registry.networks import normalise_serial

log = logging.getLogger("devicedata.api")

OUTCOMES = ("stored", "ignored", "unknown_device", "invalid", "too_large", "unauthorized",
            "unavailable", "failed")  # the metric's label values, with NETWORKS
_OUTCOME_OF = ((AuthorizationDenied, "unauthorized"), (ValidationError, "invalid"),
               (PayloadTooLarge, "too_large"), (NotFound, "unknown_device"),
               ((StoreUnavailable, Overloaded), "unavailable"))


async def resolve(request: Request) -> Response:
    """The device whose active token carries the serial number, in TagoIO's envelope."""
    state = AppState.of(request)
    await authorize_network(request, state.networks)
    serie = request.path_params["serie"]
    token = await _token_for_serial(state, serie)
    if token is None:
        raise NotFound(f"No active device token carries serie_number {normalise_serial(serie)}")
    return success({"device": token.device_id, "serie_number": token.serial,
                    "token_prefix": token.prefix, "permission": token.permission})


async def _token_for_serial(state: AppState, serial: str) -> TokenInfo | None:
    """Through the per-process cache: a network server asking again and again (for an
    unknown serial too) costs the registry one look-up per serial and TTL."""
    hit, token = state.serials.cached(serial)
    if not hit:
        token = await state.registry_call(state.serials.lookup, serial)
    return token


async def chirpstack_event(request: Request) -> Response:
    return await _counted(request, "chirpstack")


async def ttn_message(request: Request) -> Response:
    return await _counted(request, "ttn")


async def _counted(request: Request, network: str) -> Response:
    state = AppState.of(request)
    try:
        outcome, response = await _webhook(request, state, network)
    except Exception as exc:
        outcome = next((name for kinds, name in _OUTCOME_OF if isinstance(exc, kinds)),
                       "failed")
        state.metrics.child(state.metrics.lorawan_uplinks, network, outcome).inc()
        raise
    state.metrics.child(state.metrics.lorawan_uplinks, network, outcome).inc()
    return response


async def _webhook(request: Request, state: AppState, network: str) -> tuple[str, Response]:
    await authorize_network(request, state.networks)
    body = await read_body(request, state.settings.max_body_bytes)
    if network == "chirpstack":
        event = request.query_params.get("event")
        if event is None:
            raise ValidationError("Invalid ChirpStack request", [
                FieldError("event", "is required (ChirpStack's HTTP integration sets ?event=)")])
        if event not in chirpstack.STORED_EVENTS:
            shown = event if event in chirpstack.KNOWN_EVENTS else "(unknown)"
            return "ignored", success(f"ChirpStack event {shown} is not stored")
        uplink = chirpstack.parse_chirpstack(event, _json(body, request))
    else:
        data = _json(body, request)
        kind = ttn.message_type(data)
        if type(data) is not dict or "end_device_ids" not in data:
            ttn.parse_ttn(data)  # raises, naming what is missing
        if kind != ttn.STORED_MESSAGE:
            return "ignored", success(f"The Things Stack message {kind or '(unknown)'} "
                                      "is not stored")
        uplink = ttn.parse_ttn(data)
    return "stored", success(f"{await _store(state, uplink, request, body)} Data Added")


def _json(body: bytes, request: Request) -> Any:
    try:
        return decode_json(body)
    except ValidationError as exc:
        if "json" not in request.headers.get("content-type", "json").lower():
            raise ValidationError(f"{exc.message} (the network server must send JSON: "
                                  "ChirpStack's HTTP integration has a JSON encoding)") from None
        raise


async def _store(state: AppState, uplink: Uplink, request: Request, body: bytes) -> int:
    received = now_ns()
    token = await _token_for_serial(state, uplink.eui)
    if token is None or not token.allows("write"):
        held = state.unknown_euis.passes(uplink.eui)
        if held is not None and state.unknown_eui_lines.passes("") is not None:
            log.warning("event=lorawan_unknown_device network=%s dev_eui=%s held_back=%d",
                        uplink.network, uplink.eui, held)
        raise NotFound(f"Unknown DevEUI {uplink.eui}: no active device token carries it as "
                       "serie_number (devicedata token create DEVICE_ID --permission write "
                       f"--serial {uplink.eui})")
    where = f"POST {request.url.path}"
    # The device's own limits, as for POST /data: a network server forwarding a chatty
    # (or cloned) device spends that device's allowance, never another's.
    try:
        with state.limits.request(token.device_id, reads=False):  # before any work
            converted = uplink.convert(received_ns=received,
                                       max_points=state.settings.max_points)
            count = await state.service.add(token.device_id, converted, source="lorawan",
                                            received_ns=received)
    except DeviceDataError as exc:
        inspect.rejected(state, token.device_id, body, exc, where)
        raise
    inspect.accepted(state, token.device_id, body, count, where)
    return count


routes = [
    Route("/integration/network/resolve/{serie}", resolve, methods=["GET"]),
    Route("/integrations/chirpstack", chirpstack_event, methods=["POST"]),
    Route("/integrations/ttn", ttn_message, methods=["POST"]),
]
