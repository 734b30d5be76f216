"""No input answers 5xx or shows InfluxDB's own error text (issue 12, item 7): huge numbers
in answers, ids that are not ours, NUL and CR in filters, and a sweep of the whole
GET/PUT/DELETE /data parameter space with hostile values, against the real API and InfluxDB."""

from __future__ import annotations

import concurrent.futures
import itertools
import random
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from bridge.model.timeparse import format_iso_ms
from support.api import ApiServer, ok
from support.http import get

# What InfluxDB's own messages look like; none may reach a client.
INFLUX_TEXT = re.compile(
    r"error parsing query|influx|overflows int64|underflows int64|partial write|"
    r"unable to parse|found [^,]*, expected|at line \d+, char \d+|retention polic", re.I)


def refused(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] is False
    assert field in body["message"], body
    assert not INFLUX_TEXT.search(response.text), response.text
    message: str = body["message"]
    return message


@pytest.fixture
def huge(api: ApiServer) -> Iterator[httpx.Client]:
    _, token = api.device()
    with api.client(token) as client:
        ok(client.post("/data", json=[
            {"variable": "big", "value": 1e300, "time": "2024-01-01T00:00:00Z"},
            {"variable": "big", "value": 1e300, "time": "2024-01-01T00:00:01Z"},
            {"variable": "neg", "value": -6e18, "time": "2024-01-01T00:00:00Z"},
            {"variable": "neg", "value": -6e18, "time": "2024-01-01T00:00:01Z"},
        ]))
        yield client


@pytest.mark.parametrize(("params", "expected"), [
    ({"query": "max", "variables": "big"}, 1e300),
    ({"query": "min", "variables": "big"}, 1e300),
    ({"query": "sum", "variables": "big"}, 2e300),
    ({"query": "avg", "variables": "big"}, 1e300),
    ({"query": "sum", "variables": "neg"}, -1.2e19),  # beyond 64-bit integers: a float
    ({"query": "min", "variables": "neg"}, -6e18),
    ({"query": "count", "variables": "big"}, 2),
])
def test_numbers_beyond_64_bits_answer_200_with_the_right_number(
        huge: httpx.Client, params: dict[str, str], expected: float) -> None:
    result = ok(huge.get("/data", params=params))
    assert result == expected and not isinstance(result, bool)


@pytest.mark.parametrize("function", ["avg", "sum", "min", "max"])
def test_aggregates_of_huge_numbers_answer_200(huge: httpx.Client, function: str) -> None:
    result = ok(huge.get("/data", params={
        "query": "aggregate", "function": function, "interval": "1 hour",
        "start_date": "2023-12-31", "variables": ["big", "neg"]}))
    values = {p["variable"]: p["value"] for p in result}
    big = 2e300 if function == "sum" else 1e300
    neg = -1.2e19 if function == "sum" else -6e18
    assert values == {"big": big, "neg": neg}
    points = ok(huge.get("/data", params={"variables": "big"}))
    assert [p["value"] for p in points] == [1e300, 1e300]


def test_the_data_page_survives_a_device_with_huge_numbers(api: ApiServer) -> None:
    device_id, token = api.device()
    now = time.time_ns()
    many = [{"variable": "big", "value": 1e300 if i % 2 else -1e300,
             "time": format_iso_ms(now - (150 - i) * 20 * 10**9)} for i in range(150)]
    few = [{"variable": "few", "value": 9e18, "time": format_iso_ms(now - 60 * 10**9)}]
    with api.client(token) as device:
        ok(device.post("/data", json=many + few))
    with httpx.Client(base_url=api.url, headers={"admin-token": api.state.admin_token}) as admin:
        means = ok(admin.get(f"/admin/devices/{device_id}/series", params={"variable": "big"}))
        assert means["interval"] == "1 minute" and means["points"]
        assert all(abs(p["value"]) <= 1e300 for p in means["points"])
        raw = ok(admin.get(f"/admin/devices/{device_id}/series", params={"variable": "few"}))
        assert [p["value"] for p in raw["points"]] == [9e18]
        variables = ok(admin.get(f"/admin/devices/{device_id}/variables"))
        assert {p["variable"] for p in variables} == {"big", "few"}


@pytest.mark.parametrize("point_id", ["not-hex", "zz" * 12, "0" * 40, "",
                                      "ffffffffffffffff0000000000", "7fffffffffffffffabcdef0100"])
def test_put_with_an_id_that_is_not_ours_answers_4xx_naming_id(
        client: httpx.Client, point_id: str) -> None:
    response = client.put("/data", json=[{"id": point_id, "value": 1}])
    assert response.status_code in (400, 404), response.text
    assert "id" in response.json()["message"]
    assert not INFLUX_TEXT.search(response.text), response.text
    # The keep-alive connection is still good for the next request.
    assert client.get("/data").status_code == 200


@pytest.mark.parametrize("name", ["variable", "variables", "variables[]", "variable[0]"])
@pytest.mark.parametrize("text", ["a\x00b", "a\rb", "\x00", "\r\n"])
def test_nul_and_cr_in_a_variable_filter_answer_400_naming_it(
        client: httpx.Client, name: str, text: str) -> None:
    for query in ("default", "last_value", "sum", "count"):
        response = client.get(f"/data?{quote(name)}={quote(text)}&query={query}")
        refused(response, 400, "variables")
        response = client.delete(f"/data?{quote(name)}={quote(text)}")
        refused(response, 400, "variables")


@pytest.mark.parametrize("name", ["groups", "values"])
@pytest.mark.parametrize("text", ["a\x00b", "a\rb", "\x00", "\r\n", "a\x00\r\n'\"\\b"])
def test_nul_and_cr_in_groups_and_values_match_exactly(
        client: httpx.Client, name: str, text: str) -> None:
    """Groups and values may hold any character, so the filter finds the point instead."""
    ok(client.post("/data", json=[{"variable": "s", "value": text, "group": text},
                                  {"variable": "s", "value": "other", "group": "other"}]))
    for query in ("default", "last_value", "first_item", "count"):
        result = ok(client.get(f"/data?{name}={quote(text)}&query={query}"))
        if query == "count":
            assert result == 1
        else:
            assert [(p["value"], p["group"]) for p in result] == [(text, text)]


@pytest.mark.parametrize("value", [2**53, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30,
                                   -(2**63), -(2**63) - 1, -(2**64)])
def test_integers_of_every_size_are_numbers_alike(client: httpx.Client, value: int) -> None:
    """Every finite JSON number is stored as a 64-bit float: 2**63 is treated as 2**64 is."""
    ok(client.post("/data", content=f'{{"variable":"n","value":{value}}}'.encode(),
                   headers={"content-type": "application/json"}))
    (point,) = get(client, {"variables": "n"})
    assert point["value"] == float(value)
    assert ok(client.get("/data", params={"query": "max", "variables": "n"})) == float(value)


@pytest.mark.parametrize("stamp", ["2024-01-02T03-04:05.123Z", "2024-01-02T03+04:05.123Z"])
def test_a_time_whose_hour_reads_as_a_zone_is_refused_naming_time(
        client: httpx.Client, stamp: str) -> None:
    # Python reads "03-04" as 03:00 at UTC-04:00: an aware time the parser must refuse.
    response = client.post("/data", json={"variable": "t", "value": 1, "time": stamp})
    assert response.status_code == 400, response.text
    assert "time" in response.text
    response = client.get("/data", params={"start_date": stamp})
    assert response.status_code == 400, response.text
    assert "start_date" in response.text


def test_numbers_json_cannot_hold_are_refused_naming_value(client: httpx.Client) -> None:
    for text in ("1e400", "-1e400", "1" + "0" * 400):
        response = client.post("/data", content=f'{{"variable":"n","value":{text}}}'.encode(),
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert not INFLUX_TEXT.search(response.text)


# -- the sweep ----------------------------------------------------------------------------

HOSTILE = [
    "", "\x00", "a\x00b", "a\rb", "\r\n", "\t\x1b[31m\x7f", "'", '"', "\\", "\\'",
    "x' OR 1=1 --", "x\") OR (\"device\" =~ /.*/", "/.*/", "a\\nb;%00", "x" * 5000, "é" * 2000,
    "😀é中文\u2028\ufeff\ufffd", "0", "-0", "-1", "1.5", "1e300", "-1e300", "1e-300", "NaN",
    "-Infinity", "9" * 30, "9" * 5000, str(2**63), str(2**64), str(-(2**63) - 1), "0x10",
    "true", "null", "[]", "ff" * 12, "f" * 26, "f" * 28, "7fffffffffffffff" + "0" * 10,
    "g" * 26, "1 day", "-1 day", "0 days", "1.5 hours", "99999999999 weeks",
    "9" * 30 + " days", "2262-04-12", "2262-04-11", "1969-12-31", "0000-01-01",
    "9999-12-31T23:59:59Z", "2024-01-02T03:04:05Z", "2024-02-30", "2024-01-02 03:04:05+99:00",
    "1700000000000", "ascending", "aggregate", "last_value", "avg", "1 hour",
]
SCALARS = ["qty", "skip", "ordination", "start_date", "end_date", "query", "function",
           "interval", "details", "detail"]
LISTS = ["variable", "variables", "group", "groups", "serie", "series", "id", "ids",
         "value", "values"]
KINDS = ["default", "defaultQ", "last_item", "last_value", "last_location", "first_item",
         "first_value", "first_location", "count", "sum", "avg", "min", "max",
         "aggregate&function=avg&interval=1%20hour", "aggregate&function=count&interval=1s"]
FILTER_VALUES = ["a\x00b", "a\rb", "x' OR 1=1 --", "\\'", "x" * 5000, "1e300", "-0",
                 "99999999999 weeks"]


def _q(name: str, value: str) -> str:
    return f"{quote(name)}={quote(value)}"


def single_queries(names: list[str] = SCALARS + LISTS) -> list[str]:
    """Every parameter (and alias) alone with every hostile value."""
    return [_q(name, value) for name, value in itertools.product(names, HOSTILE)]


def get_queries() -> Iterator[str]:
    yield from single_queries()
    for name, value in itertools.product(["variables", "groups", "ids", "values"],
                                         HOSTILE[:16] + FILTER_VALUES):
        yield f"{_q(name + '[]', value)}&{_q(name + '[]', 'x')}"
        yield f"{_q(name + '[1]', value)}&{_q(name + '[0]', '0')}"
    for kind, name, value in itertools.product(
            KINDS, ["variables", "groups", "values", "start_date"], FILTER_VALUES):
        yield f"query={kind}&{_q(name, value)}"
    for name, value in itertools.product(["function", "interval", "qty", "skip"], HOSTILE):
        yield f"query=aggregate&function=sum&interval=1%20day&{_q(name, value)}"
    rng = random.Random(12)  # several hostile parameters at once, the same ones every run
    for _ in range(150):
        names = rng.sample(SCALARS + LISTS, rng.randint(2, 6))
        yield "&".join(_q(n, rng.choice(HOSTILE)) for n in names)


JSON_VALUES: list[Any] = [
    *HOSTILE[:17], 1e300, -1e300, 2**63, 2**64, -(2**63) - 1, 10**30, -0.0, 0, 1.5, True,
    None, [], {}, [1], {"lat": 1e300, "lng": 0}, {"lat": "1", "lng": "2"},
    {"type": "Point", "coordinates": [1e300, -1e300]}, {"coordinates": [1]},
    {"x": "\x00", "y": [None, 1e300]},
]
PUT_FIELDS = ["id", "value", "unit", "group", "serie", "location", "metadata", "variable",
              "time", "device", "origin"]


def put_bodies(real_id: str) -> Iterator[Any]:
    for name, value in itertools.product(PUT_FIELDS, JSON_VALUES):
        yield [{"id": real_id, "value": 1, name: value}]
    for value in JSON_VALUES:
        yield value
        yield [value]
        yield [{"id": value, "unit": "u"}]


def check(response: httpx.Response, what: str) -> str | None:
    if response.status_code >= 500:
        return f"{what}: {response.status_code} {response.text[:200]}"
    if INFLUX_TEXT.search(response.text):
        return f"{what}: InfluxDB's text: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return f"{what}: not JSON: {response.text[:200]}"
    if response.status_code >= 400 and (body.get("status") is not False
                                        or not body.get("message")):
        return f"{what}: an error without a message: {response.text[:200]}"
    return None


def sweep(api: ApiServer, token: str, requests: list[tuple[str, str, Any]]) -> list[str]:
    def run(part: list[tuple[str, str, Any]]) -> list[str]:
        problems = []
        client = api.client(token)
        for method, url, body in part:
            what = f"{method} {url[:200]!r} {str(body)[:100]}"
            try:
                response = client.request(method, url, json=body) if body is not None else (
                    client.request(method, url))
            except httpx.TransportError as exc:  # the server dropped the connection
                problems.append(f"{what}: {exc!r}")
                client.close()
                client = api.client(token)
                continue
            problem = check(response, what)
            if problem:
                problems.append(problem)
        client.close()
        return problems

    parts = [requests[i::4] for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return [p for found in pool.map(run, parts) for p in found]


def seed(client: httpx.Client) -> str:
    ok(client.post("/data", json=[
        {"variable": "n", "value": 1e300, "time": "2024-01-01T00:00:00Z"},
        {"variable": "n", "value": -6e18, "time": "2024-01-01T00:00:01Z"},
        {"variable": "n", "value": -6e18, "time": "2024-01-01T00:00:02Z"},
        {"variable": "s", "value": "a\x00b\rc", "group": "g\x00\r", "unit": "'\\"},
        {"variable": "b", "value": True, "location": {"lat": 1, "lng": 2}},
        {"variable": "m", "metadata": {"k": [1, "\x00"]}},
    ]))
    return str(ok(client.get("/data", params={"variables": "s"}))[0]["id"])


def test_no_parameter_value_answers_5xx_or_influxdb_text(make_api: Any) -> None:
    # Thousands of requests of one device: its fair share (api/fairness.py) is not the
    # subject here, every answer's content is.
    api = make_api(http_requests_per_second=0, http_concurrency=0,
                   http_read_points_per_second=0, http_read_seconds_per_second=0)
    _, token = api.device()
    with api.client(token) as client:
        real_id = seed(client)
    queries = list(get_queries())
    requests: list[tuple[str, str, Any]] = [("GET", f"/data?{q}", None) for q in queries]
    requests += [("PUT", "/data", body) for body in put_bodies(real_id)]
    problems = sweep(api, token, requests)
    # DELETE takes the same parameters; it runs on data of its own.
    _, deleter = api.device()
    with api.client(deleter) as client:
        seed(client)
    deletes: list[tuple[str, str, Any]] = [("DELETE", f"/data?{q}", None)
                                           for q in single_queries(SCALARS + LISTS[1::2])]
    problems += sweep(api, deleter, deletes)
    assert not problems, f"{len(problems)} bad answers of {len(requests) + len(deletes)}:\n" + (
        "\n".join(problems[:40]))
