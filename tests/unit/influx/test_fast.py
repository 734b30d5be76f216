"""The one-pass path for plain messages (bridge/influx/fast.py) against the generic one
(validate_points + encode_points + candidates): the same bytes and candidates for every
payload it takes, and None for every payload it must leave to the generic path."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from bridge.errors import DeviceDataError
from bridge.influx.fast import encode_plain
from bridge.influx.schema import encode_point, encode_points, series_name
from bridge.model.current import candidates
from bridge.model.points import validate_points

DEV = "6b0abdb07231163020356b4b"
RECV = 1_800_000_000_123_456_789

VARIABLES = ["t", "temperature_sensor_07", "x" * 100, "x" * 101, "", "a b,c=d", "a\\b",
             "~b64~x", "é\u00a0", "tab\there", 5, None]
VALUES = [21.5, 20, 0, -0.0, 1e300, 2**63, 2**63 - 1, -(2**63), True, False, "ok", "",
          'q"\\', "x" * 6001, float("nan"), float("inf"), None, [1], {"a": 1}]
UNITS = ["C", "", "x" * 25, "x" * 26, 'q"\\ ,=', 7, None]
TIMES = ["2024-01-02T03:04:05.123Z", "2024-01-02T03:04:60.000Z", "2024-02-30T03:04:05.123Z",
         "1969-12-31T23:59:59.999Z", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05+00:00",
         "2024-01-02T03:04:05.123456789Z", "２024-01-02T03:04:05.123Z", 1704164645123, None,
         "not a time", "2024-01-02T03:04:05.1a3Z", "2024-01-02T03:04:05.١٢٣Z",
         "2024-13-02T03:04:05.123Z", "2024-01-02T03:04:05,123Z", "2024-01-02T03-04:05.123Z",
         "2262-04-11T23:47:16.854Z", "2262-04-11T23:47:16.853Z", "1677-09-21T00:12:43.145Z",
         "1677-09-21T00:12:44.000Z", "2024-01-02T03:04:5..123Z", "2024-01-02T03.04:05.123Z",
         "2024-01-02T03,59:05.123Z", "2024-W01-1T03:04:05.123Z"]
MISSING: Any = object()


def generic(payload: Any) -> Any:
    try:
        points = validate_points(payload, device_id=DEV, received_ns=RECV, max_points=100)
    except DeviceDataError as exc:
        return type(exc).__name__
    return (encode_points(points), len(points), candidates(points, encode_point),
            [series_name(p.variable, p.slot) for p in points])


def item(variable: Any, value: Any, unit: Any, time: Any) -> dict[str, Any]:
    out = {"variable": variable}
    for key, v in (("value", value), ("unit", unit), ("time", time)):
        if v is not MISSING:
            out[key] = v
    return out


def payloads() -> list[Any]:
    rng = random.Random(17)
    singles = [item(*combo) for combo in itertools.product(
        VARIABLES[:4] + VARIABLES[5:8], [*VALUES, MISSING], [*UNITS[:2], MISSING],
        [*TIMES[:1], MISSING])]
    singles += [item("v", 1, unit, time) for unit in UNITS for time in TIMES]
    out: list[Any] = list(singles)
    for _ in range(1500):
        size = rng.choice([1, 2, 3, 10])
        out.append([rng.choice(singles) for _ in range(size)])
    out += [[item("v", 1, "C", "2024-01-02T03:04:05.123Z")] * 2,  # needs a slot
            [{"variable": "v", "group": "g"}], [{"variable": "v", "location": {"lat": 1,
                                                                               "lng": 2}}],
            [], {}, [1], "text", [{"variable": "v", "foo": 1}], [item("v", MISSING, "C",
                                                                     MISSING)] * 3]
    return out


@pytest.mark.parametrize("chunk", range(8))
def test_the_fast_path_equals_the_generic_one(chunk: int) -> None:
    taken = 0
    for payload in payloads()[chunk::8]:
        fast = encode_plain(payload, DEV, RECV, 100)
        if fast is None:
            continue
        taken += 1
        assert fast == generic(payload), payload
    assert taken > 50


def test_what_the_fast_path_leaves_to_the_generic_one() -> None:
    left = [[item("v", 1, "C", "2024-01-02T03:04:05.123Z")] * 2, [{"variable": "v", "group": "g"}],
            {"variable": "v", "value": None}, {"variable": "v", "value": float("nan")},
            {"variable": "v", "time": "2024-01-02T03:04:05Z"}, [], [1], "x",
            {"variable": "v", "unit": "x" * 26}, {"variable": ""}, [{"variable": "v"}] * 101]
    for payload in left:
        assert encode_plain(payload, DEV, RECV, 100) is None, payload
    # and the common ones it takes
    for payload in ({"variable": "v", "value": 1}, [item("v", 2.5, "C", TIMES[0])] * 1,
                    [item(f"v{i}", i, "C", TIMES[0]) for i in range(10)]):
        assert encode_plain(payload, DEV, RECV, 100) is not None
