"""Device tokens on HTTP: which headers carry them and what each permission allows."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from bridge.errors import AuthorizationDenied
from bridge.registry import Permission, TokenInfo
from bridge.registry.token_cache import TokenCache

# TagoIO clients send the token under any of these names (the SDKs use ``token``).
_HEADERS = ("token", "device-token", "authorization")


def request_token(request: Request) -> str | None:
    for name in _HEADERS:
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
