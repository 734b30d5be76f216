"""api.fairness.DeviceLimits with a hand-moved clock."""

from __future__ import annotations

import pytest

from api.fairness import HOLD_MAX, DeviceLimits
from bridge.errors import TooManyRequests


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, **changes: float) -> DeviceLimits:
    values = {"requests_per_second": 2.0, "requests_burst": 3.0, "concurrency": 2,
              "read_points_per_second": 100.0, "read_points_burst": 500.0, **changes}
    return DeviceLimits(clock=clock, **values)  # type: ignore[arg-type]


def refused(lim: DeviceLimits, device: str = "d", reads: bool = False) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as info, lim.request(device, reads=reads):
        pass
    return info.value


def test_requests_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    lim = limits(clock, concurrency=0)
    for _ in range(3):
        with lim.request("d", reads=False):
            pass
    exc = refused(lim)
    assert exc.retry_after == 1 and str(exc) == "Too many requests (Retry-After: 1)"
    assert exc.hold == pytest.approx(0.5)
    with lim.request("other", reads=False):  # another device is untouched
        pass
    clock.now += 0.5
    with lim.request("d", reads=False):
        pass
    refused(lim)


def test_requests_in_flight() -> None:
    clock = Clock()
    lim = limits(clock, requests_per_second=0)
    with lim.request("d", reads=False), lim.request("d", reads=True):
        assert refused(lim).retry_after == 1
    with lim.request("d", reads=False):  # released again
        pass


def test_reads_spend_the_budget_and_wait_for_it() -> None:
    clock = Clock()
    lim = limits(clock, requests_per_second=0, concurrency=0)
    with lim.request("d", reads=True):
        lim.charge_reads("d", 10_000)
    exc = refused(lim, reads=True)
    assert exc.retry_after == 96  # (10,000 - 500 + 1) / 100 per second
    assert exc.hold == HOLD_MAX
    with lim.request("d", reads=False):  # a write is not a read
        pass
    clock.now += 96
    with lim.request("d", reads=True):
        lim.charge_reads("d", 0)  # an empty answer still costs 1


def test_reads_spend_their_time() -> None:
    clock = Clock()
    lim = limits(clock, requests_per_second=0, concurrency=0, read_points_per_second=0,
                 read_seconds_per_second=0.5, read_seconds_burst=2.0)
    with lim.request("d", reads=True), lim.timed("d"):
        clock.now += 3.0  # a count over years of history: one point, three seconds
    exc = refused(lim, reads=True)
    assert exc.retry_after == 2  # 1 s of debt at 0.5 s per second
    with lim.request("d", reads=False):  # a write spends no read time
        clock.now += 10.0
    with lim.request("d", reads=True):  # refilled meanwhile
        pass
    with lim.request("d", reads=True), pytest.raises(RuntimeError), lim.timed("d"):
        clock.now += 60.0  # the store failed after a minute: not the device's cost
        raise RuntimeError("InfluxDB is unreachable")
    with lim.request("d", reads=True):
        pass


def test_zero_turns_limits_off() -> None:
    lim = limits(Clock(), requests_per_second=0, concurrency=0, read_points_per_second=0)
    with lim.request("d", reads=True), lim.request("d", reads=True), \
            lim.request("d", reads=True):
        lim.charge_reads("d", 10**9)
    with lim.request("d", reads=True):
        pass


def test_state_is_bounded_and_keeps_devices_in_flight() -> None:
    lim = DeviceLimits(requests_per_second=1, requests_burst=1, concurrency=1,
                       read_points_per_second=1, read_points_burst=1, clock=Clock(),
                       remembered=3)
    with lim.request("busy", reads=False):
        for i in range(10):
            with lim.request(f"d{i}", reads=False):
                pass
        assert len(lim._devices) == 3 and "busy" in lim._devices
    refused(lim, "busy")  # its bucket was kept: spent
