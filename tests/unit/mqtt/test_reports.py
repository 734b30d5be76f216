"""The rate gate behind error reports and log lines, on a fake clock."""

from __future__ import annotations

import orjson

from bridge.errors import FieldError
from bridge.mqtt.reports import MAX_FIELD_ERRORS, Gate, report


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_per_interval_saying_how_many_were_held() -> None:
    clock = Clock()
    gate = Gate(every=1.0, burst=3, clock=clock)
    assert [gate.passes("a") for _ in range(5)] == [0, 0, 0, None, None]
    clock.now += 0.5
    assert gate.passes("a") is None
    clock.now += 0.6
    assert gate.passes("a") == 3  # held back since it last passed
    assert gate.passes("b") == 0  # another key has its own bucket


def test_the_gate_remembers_a_bounded_number_of_keys() -> None:
    gate = Gate(every=1.0, remembered=100, clock=Clock())
    for i in range(10_000):
        gate.passes(f"device-{i}")
    assert len(gate) == 100


def test_a_report_lists_a_bounded_number_of_errors() -> None:
    errors = [FieldError("variable", "is required", index=i) for i in range(5000)]
    body = orjson.loads(report("devices/x/data", "m" * 50_000, errors, left_out=7))
    assert len(body["errors"]) == MAX_FIELD_ERRORS
    assert body["more_errors"] == 5000 - MAX_FIELD_ERRORS
    assert body["reports_left_out"] == 7 and len(body["message"]) <= 1000
    assert body["topic"] == "devices/x/data"
