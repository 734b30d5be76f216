"""``/broker/...``: HTTP hooks a clustered broker calls to ask whether a client may connect,
publish and subscribe, answered from the registry (``bridge.registry.broker_login``) by the
rules of ``bridge.registry.broker_auth``, each in the shape its broker documents:

- EMQX 5, HTTP authentication and authorization: ``emqx/authenticate``, ``emqx/authorize``;
  JSON ``{"result": "allow"}`` or ``"deny"``.
- mosquitto-go-auth, HTTP backend: ``go-auth/user``, ``go-auth/superuser``, ``go-auth/acl``;
  200 or 403 with ``{"ok", "error"}`` (its response modes ``status`` and ``json``).
- VerneMQ webhooks: ``vernemq`` (the ``vernemq-hook`` header names the hook);
  ``{"result": "ok"}`` or ``{"result": {"error": "not_allowed"}}``.
- RabbitMQ, rabbitmq_auth_backend_http: ``rabbitmq/user``, ``/vhost``, ``/resource``,
  ``/topic``; the text ``allow`` or ``deny``.

Every request must carry ``DEVICEDATA_BROKER_HOOK_SECRET``: in the header
``x-devicedata-hook-secret`` (EMQX can send headers) or the query parameter ``secret``
(in the URL configured on the broker: go-auth, VerneMQ and RabbitMQ send no custom header).
Without the setting the hooks answer 404. Parameters come as JSON, a form, or a query
string, whichever the broker sends.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.data import read_body
from api.responses import JSONResponse
from api.state import AppState
from bridge.errors import AuthorizationDenied, NotFound, ValidationError
from bridge.registry import broker_auth as rules
from bridge.registry.broker_auth import Identity
from bridge.registry.broker_login import BrokerLogin

log = logging.getLogger("devicedata.api")

SECRET_HEADER = "x-devicedata-hook-secret"
MAX_HOOK_BODY = 4 * 1024 * 1024 + 65536  # VerneMQ's publish hook carries the payload
Params = dict[str, Any]


def _login(request: Request) -> BrokerLogin:
    """The hooks' state, once the secret checks out; 404 when hooks are off."""
    state = AppState.of(request)
    expected = state.settings.broker_hook_secret.encode("utf-8")
    login = state.broker_login
    if not expected or login is None:
        raise NotFound("Not found")
    given = (request.headers.get(SECRET_HEADER) or request.query_params.get("secret")
             or "").encode("utf-8")
    if not hmac.compare_digest(given, expected):
        raise AuthorizationDenied()
    return login


async def _params(request: Request) -> Params:
    """Query parameters (minus the secret), then the body's: JSON or a form."""
    params: Params = {k: v for k, v in request.query_params.items() if k != "secret"}
    body = await read_body(request, MAX_HOOK_BODY)
    if not body:
        return params
    if body.lstrip()[:1] == b"{":
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ValidationError("the hook's body is not JSON") from None
        if isinstance(decoded, dict):
            params.update(decoded)
        return params
    params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _text(params: Params, name: str) -> str:
    value = params.get(name)
    return value if isinstance(value, str) else ""


async def _authenticate(login: BrokerLogin, params: Params, *, user: str = "username",
                        client: str = "clientid") -> Identity | None:
    return await run_in_threadpool(login.authenticate, _text(params, user),
                                   _text(params, "password"), _text(params, client) or None)


async def _identity(login: BrokerLogin, username: str) -> Identity | None:
    return await run_in_threadpool(login.identity, username)


Hook = Callable[[BrokerLogin, Params, Request], Awaitable[Response]]


def _hook(handler: Hook) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        login = _login(request)
        return await handler(login, await _params(request), request)

    endpoint.__name__ = handler.__name__
    return endpoint


# -- EMQX 5: HTTP authentication and HTTP authorization ---------------------------------

def _emqx(allowed: bool) -> Response:
    return JSONResponse({"result": "allow" if allowed else "deny", "is_superuser": False})


async def emqx_authenticate(login: BrokerLogin, params: Params, _: Request) -> Response:
    return _emqx(await _authenticate(login, params) is not None)


async def emqx_authorize(login: BrokerLogin, params: Params, _: Request) -> Response:
    identity = await _identity(login, _text(params, "username"))
    topic, action = _text(params, "topic"), _text(params, "action")
    allowed = identity is not None and rules.client_id_allowed(
        identity, _text(params, "clientid")) and (
        (action == "publish" and rules.may_publish(identity, topic))
        or (action == "subscribe" and rules.may_subscribe(identity, topic)))
    return _emqx(allowed)


# -- mosquitto-go-auth: the HTTP backend --------------------------------------------------

GO_AUTH_READ, GO_AUTH_WRITE, GO_AUTH_SUBSCRIBE = 1, 2, 4


def _go_auth(allowed: bool) -> Response:
    return JSONResponse({"ok": allowed, "error": "" if allowed else "not allowed"},
                        status_code=200 if allowed else 403)


async def go_auth_user(login: BrokerLogin, params: Params, _: Request) -> Response:
    return _go_auth(await _authenticate(login, params) is not None)


async def go_auth_superuser(login: BrokerLogin, params: Params, _: Request) -> Response:
    return _go_auth(False)  # nobody is above the rules


async def go_auth_acl(login: BrokerLogin, params: Params, _: Request) -> Response:
    identity = await _identity(login, _text(params, "username"))
    topic = _text(params, "topic")
    try:
        acc = int(params.get("acc", 0))
    except (TypeError, ValueError):
        acc = 0
    allowed = identity is not None and rules.client_id_allowed(
        identity, _text(params, "clientid")) and (
        (acc == GO_AUTH_READ and rules.may_receive(identity, topic))
        or (acc == GO_AUTH_WRITE and rules.may_publish(identity, topic))
        or (acc == GO_AUTH_SUBSCRIBE and rules.may_subscribe(identity, topic)))
    return _go_auth(allowed)


# -- VerneMQ: webhooks ----------------------------------------------------------------------

VERNEMQ_NOT_ALLOWED = {"result": {"error": "not_allowed"}}


async def vernemq(login: BrokerLogin, params: Params, request: Request) -> Response:
    hook = request.headers.get("vernemq-hook", "")
    m5 = hook.endswith("_m5")
    if hook in ("auth_on_register", "auth_on_register_m5"):
        identity = await _authenticate(login, params, client="client_id")
        return JSONResponse({"result": "ok"} if identity else VERNEMQ_NOT_ALLOWED)
    identity = await _identity(login, _text(params, "username"))
    if identity is not None and not rules.client_id_allowed(identity,
                                                             _text(params, "client_id")):
        identity = None
    if hook in ("auth_on_publish", "auth_on_publish_m5"):
        allowed = identity is not None and rules.may_publish(identity, _text(params, "topic"))
        return JSONResponse({"result": "ok"} if allowed else VERNEMQ_NOT_ALLOWED)
    if hook in ("auth_on_subscribe", "auth_on_subscribe_m5"):
        topics = params.get("topics")
        if identity is None or not isinstance(topics, list) or not topics:
            return JSONResponse(VERNEMQ_NOT_ALLOWED)
        answer, refused = [], False
        for entry in topics:
            name = entry.get("topic") if isinstance(entry, dict) else None
            ok = isinstance(name, str) and rules.may_subscribe(identity, name)
            refused = refused or not ok
            # 128 (3.1.1) / 135 "not authorized" (5) refuses that one filter only.
            answer.append({"topic": name, "qos": entry.get("qos", 0) if ok else (
                135 if m5 else 128)})
        if not refused:
            return JSONResponse({"result": "ok"})
        return JSONResponse({"result": "ok", "modifiers": {"topics": answer}} if m5
                            else {"result": "ok", "topics": answer})
    return JSONResponse({"result": "next"})  # a hook we do not decide


# -- RabbitMQ: rabbitmq_auth_backend_http -----------------------------------------------------

def _rabbit(allowed: bool) -> Response:
    return PlainTextResponse("allow" if allowed else "deny")


async def rabbitmq_user(login: BrokerLogin, params: Params, _: Request) -> Response:
    return _rabbit(await _authenticate(login, params, client="client_id") is not None)


async def rabbitmq_vhost(login: BrokerLogin, params: Params, _: Request) -> Response:
    identity = await _identity(login, _text(params, "username"))
    return _rabbit(identity is not None and _text(params, "vhost") == rules.RABBITMQ_VHOST)


async def rabbitmq_resource(login: BrokerLogin, params: Params, _: Request) -> Response:
    identity = await _identity(login, _text(params, "username"))
    return _rabbit(identity is not None and _text(params, "vhost") == rules.RABBITMQ_VHOST
                   and rules.rabbitmq_resource(identity, _text(params, "client_id"),
                                               _text(params, "resource"),
                                               _text(params, "name"),
                                               _text(params, "permission")))


async def rabbitmq_topic(login: BrokerLogin, params: Params, _: Request) -> Response:
    identity = await _identity(login, _text(params, "username"))
    client_id = _text(params, "variable_map.client_id")
    return _rabbit(identity is not None and _text(params, "vhost") == rules.RABBITMQ_VHOST
                   and rules.client_id_allowed(identity, client_id)
                   and rules.rabbitmq_topic(identity, _text(params, "name"),
                                            _text(params, "permission"),
                                            _text(params, "routing_key")))


HOOKS: dict[str, Hook] = {
    "/broker/emqx/authenticate": emqx_authenticate,
    "/broker/emqx/authorize": emqx_authorize,
    "/broker/go-auth/user": go_auth_user,
    "/broker/go-auth/superuser": go_auth_superuser,
    "/broker/go-auth/acl": go_auth_acl,
    "/broker/vernemq": vernemq,
    "/broker/rabbitmq/user": rabbitmq_user,
    "/broker/rabbitmq/vhost": rabbitmq_vhost,
    "/broker/rabbitmq/resource": rabbitmq_resource,
    "/broker/rabbitmq/topic": rabbitmq_topic,
}
routes = [Route(path, _hook(handler), methods=["GET", "POST"])
          for path, handler in HOOKS.items()]


def openapi_paths() -> dict[str, Any]:
    op = {"summary": "Broker hook (docs/scaling.md); needs DEVICEDATA_BROKER_HOOK_SECRET",
          "responses": {"200": {"description": "The broker's own answer format"},
                        "401": {"description": "Wrong or missing secret"},
                        "404": {"description": "Hooks are off"}}}
    return {path: {"get": op, "post": op} for path in HOOKS}
