"""POST /data with SenML bodies (application/senml+json, application/senml+cbor): the same
conversion and validation as over MQTT, read back over HTTP and with the TagoIO SDK."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import httpx
import pytest
from tagoio_sdk import Device

from bridge.errors import REPORTED_ERRORS
from support.api import ApiServer
from support.http import count, read

SENML_JSON = "application/senml+json"
SENML_CBOR = "application/senml+cbor"
# 2017-07-14: string values in a shard of its own (test_durability writes a conflicting
# field type into 2023-11-14 on purpose).
PACK = [{"bn": "room1:", "bt": 1_500_000_000, "n": "temperature", "u": "Cel", "v": 21.5},
        {"n": "humidity", "u": "%RH", "v": 48, "t": 60},
        {"n": "door", "vs": "open"}, {"n": "alarm", "vb": True}]
CBOR_PACK = [{-2: "room1:", -3: 1_500_000_000, 0: "temperature", 1: "Cel", 2: 21.5},
             {0: "humidity", 1: "%RH", 2: 48, 6: 60}, {0: "door", 3: "open"}, {0: "alarm", 4: True}]
EXPECTED = {
    "room1:temperature": (21.5, "Cel", "2017-07-14T02:40:00.000Z"),
    "room1:humidity": (48, "%RH", "2017-07-14T02:41:00.000Z"),
    "room1:door": ("open", None, "2017-07-14T02:40:00.000Z"),
    "room1:alarm": (True, None, "2017-07-14T02:40:00.000Z"),
}


def post(client: httpx.Client, body: bytes, content_type: str) -> httpx.Response:
    return client.post("/data", content=body, headers={"content-type": content_type})


@pytest.mark.parametrize(("content_type", "body"), [
    (SENML_JSON, json.dumps(PACK).encode()), (f"{SENML_JSON}; charset=utf-8",
                                              json.dumps(PACK).encode()),
    (SENML_CBOR, cbor2.dumps(CBOR_PACK)), ("Application/SenML+CBOR",
                                          b"\xd9\xd9\xf7" + cbor2.dumps(CBOR_PACK)),
])
def test_senml_packs_are_stored_as_points(api: ApiServer, client: httpx.Client,
                                          device: tuple[str, str], content_type: str,
                                          body: bytes) -> None:
    response = post(client, body, content_type)
    assert response.json() == {"status": True, "result": "4 Data Added"}
    got = read(api, device[1], qty=10)  # read-your-writes: no waiting
    assert {p["variable"]: (p["value"], p.get("unit"), p["time"]) for p in got} == EXPECTED
    assert len({p["group"] for p in got}) == 1
    sdk = Device({"token": device[1], "region": {"api": api.url, "sse": api.url}})
    (last,) = sdk.getData({"variables": ["room1:humidity"], "query": "last_value"})
    assert (last["value"], last["unit"], last["device"]) == (48, "%RH", device[0])


def test_json_stays_tagoio_json(api: ApiServer, client: httpx.Client,
                                device: tuple[str, str]) -> None:
    for content_type in ("application/json", "text/plain", "application/cbor"):
        response = post(client, json.dumps({"variable": "t", "value": 1}).encode(), content_type)
        assert response.json()["result"] == "1 Data Added", content_type
    response = post(client, json.dumps(PACK).encode(), "application/json")
    assert response.status_code == 400
    assert "[0] variable is required" in response.json()["message"]
    assert count(api, device[1]) == 3


@pytest.mark.parametrize(("content_type", "body", "message", "errors"), [
    (SENML_JSON, b'[{"n":"a","v":1},{"n":"b","v":"x"}]', "Invalid SenML pack: [1] v must be a "
     "number, not a string", [{"field": "v", "index": 1}]),
    (SENML_JSON, b'[{"n":"a","v":1,"x_":1}]', "[0] x_ is a must-understand extension",
     [{"field": "x_", "index": 0}]),
    (SENML_JSON, b'[{"n":"' + b"n" * 101 + b'","v":1}]', "[0] n must be at most 100 "
     "characters (as the variable name)", [{"field": "n", "index": 0}]),
    (SENML_JSON, b'{"n":"a","v":1}', "Invalid SenML pack", []),
    (SENML_JSON, b"[", "Invalid SenML pack: invalid JSON", []),
    (SENML_CBOR, b"\xff", "Invalid SenML pack", []),
    (SENML_CBOR, b"\x81\xa2\x00\x61a\x02\x61x", "[0] v must be a number", [{"field": "v",
                                                                            "index": 0}]),
    (SENML_CBOR, cbor2.dumps([{0: "a", 2: 1}])[:-1], "invalid CBOR", []),
    (SENML_CBOR, b"\x81\xd8\x20\x61x", "tag", []),  # tag 32: a URI
])
def test_bad_packs_are_400_naming_their_place(api: ApiServer, client: httpx.Client,
                                              device: tuple[str, str], content_type: str,
                                              body: bytes, message: str,
                                              errors: list[dict[str, Any]]) -> None:
    response = post(client, body, content_type)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["status"] is False and message in answer["message"], answer
    assert [{k: e[k] for k in ("field", "index")} for e in answer["errors"]] == errors
    assert count(api, device[1]) == 0


def test_limits(api: ApiServer, client: httpx.Client, device: tuple[str, str]) -> None:
    limit = api.settings.max_points
    response = post(client, cbor2.dumps([{0: "a", 2: i} for i in range(limit + 1)]), SENML_CBOR)
    assert response.status_code == 413
    assert f"at most {limit}" in response.json()["message"]
    response = post(client, json.dumps([{}] * limit).encode(), SENML_JSON)
    assert response.status_code == 400
    answer = response.json()
    assert len(answer["errors"]) == REPORTED_ERRORS
    assert answer["more_errors"] == 2 * limit - REPORTED_ERRORS
    too_big = b"[" + b" " * api.settings.max_body_bytes + b"]"
    assert post(client, too_big, SENML_JSON).status_code == 413
    assert count(api, device[1]) == 0
