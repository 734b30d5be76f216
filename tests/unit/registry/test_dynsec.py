"""The broker's access rules as data: the file rendered before a broker starts, and the
commands that bring a running broker in step with the registry."""

from __future__ import annotations

import json

from bridge.registry import dynsec

A, B, C = "6b112ab1041725ebe32a925d", "6b112ab193e5e52ea839c170", "6b112ab100000000deadbeef"


def test_a_device_may_publish_its_own_topics_and_read_only_its_errors() -> None:
    acls = {(a["acltype"], a["topic"]) for a in dynsec.device_acls(A)}
    assert ("publishClientSend", f"devices/{A}/data") in acls
    assert ("publishClientSend", f"devices/{A}/senml/cbor") in acls
    assert ("subscribeLiteral", f"devices/{A}/errors") in acls
    assert ("publishClientReceive", f"devices/{A}/errors") in acls
    assert all(A in topic for _, topic in acls)  # nothing of anybody else's
    assert not any(kind == "subscribePattern" for kind, _ in acls)


def test_the_rendered_file_denies_by_default_and_names_every_device() -> None:
    document = json.loads(dynsec.render([B, A, "not-a-device"], [("bridge-1", "bridge")],
                                        "admin"))
    assert document["defaultACLAccess"] == {"publishClientSend": False,
                                            "publishClientReceive": False,
                                            "subscribe": False, "unsubscribe": True}
    clients = {c["username"]: c["roles"][0]["rolename"] for c in document["clients"]}
    assert clients == {"admin": "dynsec-admin", "bridge-1": "bridge",
                       A: f"device:{A}", B: f"device:{B}"}
    assert all("password" not in c for c in document["clients"])  # password_file decides
    roles = [r["rolename"] for r in document["roles"]]
    assert len(roles) == len(set(roles))  # the plugin refuses duplicates


def test_plan_creates_the_missing_and_removes_only_devices() -> None:
    commands = dynsec.plan(
        devices=[A, B], services=[("bridge-2", "bridge")],
        clients=[A, C, "admin", "bridge-1", "someone-else"],
        roles=[f"device:{A}", f"device:{C}", *SERVICE_ROLES])
    assert commands == [
        {"command": "createRole", "rolename": f"device:{B}", "acls": dynsec.device_acls(B)},
        {"command": "createClient", "username": B, "roles": [{"rolename": f"device:{B}"}]},
        {"command": "createClient", "username": "bridge-2", "roles": [{"rolename": "bridge"}]},
        {"command": "deleteClient", "username": C},
        {"command": "deleteRole", "rolename": f"device:{C}"},
    ]


SERVICE_ROLES = ["dynsec-admin", "bridge", "api"]


def test_plan_gives_a_client_left_without_its_role_a_new_one() -> None:
    commands = dynsec.plan(devices=[A], services=[], clients=[A], roles=SERVICE_ROLES)
    assert [c["command"] for c in commands] == ["createRole", "addClientRole"]


def test_plan_creates_our_own_roles_when_the_broker_lacks_them() -> None:
    commands = dynsec.plan(devices=[], services=[("b", "bridge")], clients=[],
                           roles=["dynsec-admin"])
    assert [(c["command"], c.get("rolename") or c.get("username")) for c in commands] == [
        ("createRole", "bridge"), ("createRole", "api"), ("createClient", "b")]


def test_plan_is_empty_when_the_broker_agrees() -> None:
    assert dynsec.plan([A], [("b", "bridge")], [A, "b"], [f"device:{A}", *SERVICE_ROLES]) == []


def test_harmless_answers_are_not_failures() -> None:
    assert dynsec.failed({"command": "createClient"}) is None
    assert dynsec.failed({"command": "createRole", "error": "Role already exists"}) is None
    assert dynsec.failed({"command": "deleteClient", "error": "Client not found"}) is None
    assert dynsec.failed({"command": "createClient", "error": "Role not found"}) is not None
