"""Tokens on HTTP: which headers carry them, what each device-token permission allows,
and network tokens (LoRaWAN network servers), which only the integration routes take."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bridge.errors import AuthorizationDenied
from bridge.registry import Permission, TokenInfo
from bridge.registry.interface import NetworkInfo
from bridge.registry.token_cache import NetworkCache, TokenCache

# TagoIO clients send the token under any of these names (the SDKs use ``token``).
_HEADERS = ("token", "device-token", "authorization")
# A network server's webhook sets one of these (both ChirpStack and TTN take any header).
_NETWORK_HEADERS = ("token", "authorization")


def request_token(request: Request, headers: tuple[str, ...] = _HEADERS) -> str | None:
    for name in headers:
        value = request.headers.get(name, "").strip()
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        if value and value != "null":
            return value
    return None


async def authorize(request: Request, tokens: TokenCache,
                    needed: Permission | None) -> TokenInfo:
    """The token's record, or AuthorizationDenied whatever the reason (unknown, expired,
    revoked, wrong permission): the answer never tells an attacker which. ``needed=None``
    accepts any permission."""
    token = request_token(request)
    info = None
    if token:
        hit, info = tokens.cached(token)
        if not hit:  # the registry may be PostgreSQL across a network: not on the loop
            info = await run_in_threadpool(tokens.lookup, token)
    if info is None or (needed is not None and not info.allows(needed)):
        raise AuthorizationDenied()
    return info


async def authorize_network(request: Request, networks: NetworkCache) -> NetworkInfo:
    """The network token's record, or AuthorizationDenied (missing, unknown, revoked, or
    a device token: the two kinds never stand in for each other)."""
    token = request_token(request, _NETWORK_HEADERS)
    info = None
    if token:
        hit, info = networks.cached(token)
        if not hit:
            info = await run_in_threadpool(networks.lookup, token)
    if info is None:
        raise AuthorizationDenied()
    return info
