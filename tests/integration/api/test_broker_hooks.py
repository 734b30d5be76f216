"""The API's broker hooks, spoken to the way each broker documents (EMQX, mosquitto-go-auth,
VerneMQ, RabbitMQ). The RabbitMQ end to end run is tests/integration/mqtt/test_rabbitmq.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.registry.sqlite import SQLiteRegistry
from bridge.settings import Settings
from devicedata.procs import free_port
from support.api import ApiServer, start_api

SECRET = "hook-secret"
HEADERS = {"x-devicedata-hook-secret": SECRET}


@pytest.fixture(scope="module")
def hooked(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("hooks")
    settings = stack_settings.replace(
        http_port=free_port(), broker_hook_secret=SECRET, mqtt_password="shared-pw",
        mqtt_admin_password="admin-pw", token_cache_seconds=0.5, data_dir=tmp,
        spool_dir=tmp / "spool")
    server = start_api(settings, SQLiteRegistry(Path(tmp) / "registry.sqlite3"))
    yield server
    server.stop()
    server.registry.close()


@pytest.fixture
def device(hooked: ApiServer) -> tuple[str, str, str]:
    """A device with two write tokens."""
    device_id, first = hooked.device("full")
    second = hooked.registry.create_token(device_id, "write").token
    return device_id, first, second


def post(api: ApiServer, path: str, headers: dict[str, str] | None = None,
         **kwargs: Any) -> httpx.Response:
    return httpx.post(api.url + path, headers={**HEADERS, **(headers or {})}, **kwargs)


def test_the_hooks_need_the_secret(hooked: ApiServer, api: ApiServer) -> None:
    body = {"username": "x", "password": "y"}
    assert httpx.post(hooked.url + "/broker/emqx/authenticate", json=body).status_code == 401
    assert post(hooked, "/broker/emqx/authenticate", json=body,
                headers={"x-devicedata-hook-secret": "wrong"}).status_code == 401
    assert httpx.post(hooked.url + "/broker/emqx/authenticate?secret=" + SECRET,
                      json=body).status_code == 200
    # An API without the setting has no hooks at all.
    assert post(api, "/broker/emqx/authenticate", json=body).status_code == 404


def test_emqx(hooked: ApiServer, device: tuple[str, str, str]) -> None:
    device_id, first, second = device

    def authn(username: str, password: str, clientid: str = "") -> Any:
        return post(hooked, "/broker/emqx/authenticate", json={
            "username": username, "password": password, "clientid": clientid}).json()

    assert authn(device_id, first) == {"result": "allow", "is_superuser": False}
    assert authn(device_id, second, device_id)["result"] == "allow"
    assert authn(device_id, "wrong")["result"] == "deny"
    assert authn("f" * 24, first)["result"] == "deny"
    assert authn(device_id, first, "devicedata-bridge")["result"] == "deny"

    def authz(action: str, topic: str) -> str:
        result: str = post(hooked, "/broker/emqx/authorize", json={
            "username": device_id, "clientid": device_id, "topic": topic,
            "action": action}).json()["result"]
        return result

    assert authz("publish", f"devices/{device_id}/data") == "allow"
    assert authz("publish", "devices/" + "f" * 24 + "/data") == "deny"
    assert authz("subscribe", f"devices/{device_id}/errors") == "allow"
    assert authz("subscribe", "$share/devicedata/devices/+/data") == "deny"


def test_mosquitto_go_auth(hooked: ApiServer, device: tuple[str, str, str]) -> None:
    device_id, first, _ = device
    user = post(hooked, "/broker/go-auth/user", json={
        "username": device_id, "password": first, "clientid": device_id})
    assert (user.status_code, user.json()) == (200, {"ok": True, "error": ""})
    assert post(hooked, "/broker/go-auth/user", data={
        "username": device_id, "password": "nope", "clientid": device_id}).status_code == 403
    assert post(hooked, "/broker/go-auth/superuser",
                json={"username": device_id}).status_code == 403

    def acl(acc: int, topic: str) -> int:
        return post(hooked, "/broker/go-auth/acl", json={
            "username": device_id, "clientid": device_id, "topic": topic,
            "acc": acc}).status_code

    assert acl(2, f"devices/{device_id}/kv") == 200
    assert acl(4, f"devices/{device_id}/errors") == 200
    assert acl(1, f"devices/{device_id}/errors") == 200
    assert acl(4, "devices/#") == 403
    assert acl(1, "devices/" + "f" * 24 + "/errors") == 403


def test_vernemq(hooked: ApiServer, device: tuple[str, str, str]) -> None:
    device_id, _, second = device

    def hook(name: str, body: dict[str, Any]) -> Any:
        return post(hooked, "/broker/vernemq", json=body,
                    headers={"vernemq-hook": name}).json()

    register = {"peer_addr": "127.0.0.1", "peer_port": 1, "username": device_id,
                "password": second, "mountpoint": "", "client_id": device_id,
                "clean_session": False}
    assert hook("auth_on_register", register) == {"result": "ok"}
    assert hook("auth_on_register", {**register, "password": "x"}) == {
        "result": {"error": "not_allowed"}}
    publish = {"username": device_id, "client_id": device_id, "mountpoint": "", "qos": 1,
               "topic": f"devices/{device_id}/data", "payload": "e30=", "retain": False}
    assert hook("auth_on_publish", publish) == {"result": "ok"}
    assert hook("auth_on_publish", {**publish, "topic": "devices/x/data"})["result"] != "ok"
    topics = [{"topic": f"devices/{device_id}/errors", "qos": 1},
              {"topic": "$share/g/devices/+/data", "qos": 1}]
    subscribe = {"username": device_id, "client_id": device_id, "mountpoint": "",
                 "topics": topics}
    assert hook("auth_on_subscribe", subscribe) == {"result": "ok", "topics": [
        {"topic": f"devices/{device_id}/errors", "qos": 1},
        {"topic": "$share/g/devices/+/data", "qos": 128}]}
    assert hook("auth_on_subscribe_m5", {**subscribe, "properties": {}}) == {
        "result": "ok", "modifiers": {"topics": [
            {"topic": f"devices/{device_id}/errors", "qos": 1},
            {"topic": "$share/g/devices/+/data", "qos": 135}]}}
    assert hook("auth_on_subscribe", {**subscribe, "topics": topics[:1]}) == {"result": "ok"}


def test_rabbitmq(hooked: ApiServer, device: tuple[str, str, str]) -> None:
    device_id, first, _ = device

    def ask(path: str, **params: str) -> str:
        # POST with a form (http_method = post), the secret in the configured URL.
        return httpx.post(f"{hooked.url}/broker/rabbitmq/{path}?secret={SECRET}",
                          data=params).text

    assert ask("user", username=device_id, password=first, vhost="/",
               client_id=device_id) == "allow"
    assert ask("user", username=device_id, password="x", vhost="/") == "deny"
    assert ask("vhost", username=device_id, vhost="/", ip="127.0.0.1") == "allow"
    assert ask("vhost", username=device_id, vhost="other", ip="127.0.0.1") == "deny"
    queue = f"mqtt-subscription-{device_id}qos1"
    assert ask("resource", username=device_id, vhost="/", resource="queue", name=queue,
               permission="configure", client_id=device_id) == "allow"
    assert ask("resource", username=device_id, vhost="/", resource="queue",
               name="mqtt-subscription-devicedata-bridgeqos1", permission="read",
               client_id=device_id) == "deny"
    topic = {"username": device_id, "vhost": "/", "resource": "topic", "name": "amq.topic",
             "variable_map.client_id": device_id}
    assert ask("topic", permission="write", routing_key=f"devices.{device_id}.data",
               **topic) == "allow"
    assert ask("topic", permission="read", routing_key="devices.*.data", **topic) == "deny"
    # GET, the plugin's default method, with the parameters in the query string.
    assert httpx.get(f"{hooked.url}/broker/rabbitmq/user", params={
        "secret": SECRET, "username": device_id, "password": first}).text == "allow"
