"""The per-key token bucket behind error reports, log lines and per-device limits, on a
fake clock."""

from __future__ import annotations

from bridge.limits import Gate


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


def test_a_cost_takes_that_many_units_and_wait_says_how_long() -> None:
    clock = Clock()
    gate = Gate(every=0.01, burst=500, clock=clock)  # 100 units a second
    assert gate.passes("d", cost=400) == 0
    assert gate.passes("d", cost=400) is None  # only 100 left; nothing is taken
    assert abs(gate.wait("d", cost=400) - 3.0) < 1e-9
    clock.now += 3.0
    assert gate.passes("d", cost=400) == 1
    assert gate.wait("unknown", cost=1) == 0.0
