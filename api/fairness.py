"""Per-device fairness on HTTP: request rate, requests in flight, and the cost of reads.

Every limit is per device, not per token (ten tokens of one device share one allowance),
and is checked right after authentication, before any work for the request:

- a request bucket: ``DEVICEDATA_HTTP_REQUESTS_PER_SECOND`` sustained, bursts of
  ``DEVICEDATA_HTTP_REQUESTS_BURST``;
- at most ``DEVICEDATA_HTTP_CONCURRENCY`` requests of one device in flight;
- a read budget of ``DEVICEDATA_HTTP_READ_POINTS_PER_SECOND`` points (bursts of
  ``DEVICEDATA_HTTP_READ_POINTS_BURST``): each GET, PUT or DELETE is charged, once
  answered, the points it returned, changed or removed (at least 1). A device in debt
  gets no read until the budget has refilled, so ``qty=10000`` loops slow to the budget;
- a read time budget, ``DEVICEDATA_HTTP_READ_SECONDS_PER_SECOND`` (bursts of
  ``DEVICEDATA_HTTP_READ_SECONDS_BURST``): the same requests are also charged the time
  they took, so a ``count`` or an ``aggregate`` over years of history (one point, half a
  second of InfluxDB) is bounded by what it costs, not by what it returns.

Past any of them the answer is 429 with ``Retry-After`` and TagoIO's wording. A refusal is
answered after a short pause (the Retry-After, at most ``HOLD_MAX`` s; ``api/errors.py``):
a client that ignores Retry-After then loops at a few requests a second per connection
instead of spending the server's CPU on refusals. Per-device state is kept for
``REMEMBERED`` devices, the least recently seen idle ones forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bridge.errors import TooManyRequests
from bridge.settings import Settings

REMEMBERED = 10_000
HOLD_MAX = 1.0  # seconds a refusal waits before it is sent


@dataclass(slots=True)
class _Device:
    requests: float
    reads: float
    seconds: float
    at: float
    inflight: int = 0


class DeviceLimits:
    def __init__(self, *, requests_per_second: float, requests_burst: float,
                 concurrency: int, read_points_per_second: float, read_points_burst: float,
                 read_seconds_per_second: float = 0.0, read_seconds_burst: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 remembered: int = REMEMBERED) -> None:
        """A rate of 0 (or a concurrency of 0) turns that limit off."""
        self.rate = requests_per_second
        self.burst = max(requests_burst, 1.0)
        self.concurrency = concurrency
        self.read_rate = read_points_per_second
        self.read_burst = max(read_points_burst, 1.0)
        self.time_rate = read_seconds_per_second
        self.time_burst = max(read_seconds_burst, 0.0)
        self.clock = clock
        self.remembered = remembered
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self.refused = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeviceLimits:
        return cls(requests_per_second=settings.http_requests_per_second,
                   requests_burst=settings.http_requests_burst,
                   concurrency=settings.http_concurrency,
                   read_points_per_second=settings.http_read_points_per_second,
                   read_points_burst=settings.http_read_points_burst,
                   read_seconds_per_second=settings.http_read_seconds_per_second,
                   read_seconds_burst=settings.http_read_seconds_burst)

    @contextmanager
    def request(self, device_id: str, *, reads: bool) -> Iterator[None]:
        """Admit one request of the device for the ``with`` block, or raise
        ``TooManyRequests``. ``reads``: the request is charged to the read budgets."""
        device = self._admit(device_id, reads)
        try:
            yield
        finally:
            device.inflight -= 1

    @contextmanager
    def timed(self, device_id: str) -> Iterator[None]:
        """Charge the device's read time the ``with`` block's time: the store's work for
        one read. Nothing when the block raised: an outage (or a refusal) is not the
        device's cost."""
        started = self.clock()
        yield
        device = self._devices.get(device_id)
        if device is not None and self.time_rate > 0:
            now = self.clock()
            self._refill(device, now)  # the budget refilled while it ran, up to its cap
            device.seconds -= now - started

    def charge_reads(self, device_id: str, points: int) -> None:
        """What a read returned, changed or removed; may leave the device in debt."""
        device = self._devices.get(device_id)
        if device is not None and self.read_rate > 0:
            device.reads -= max(1, points)

    def _admit(self, device_id: str, reads: bool) -> _Device:
        now = self.clock()
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = _Device(self.burst, self.read_burst,
                                                        self.time_burst, now)
            self._forget_idle()
        else:
            self._devices.move_to_end(device_id)
            self._refill(device, now)
        wait = 0.0
        if self.concurrency > 0 and device.inflight >= self.concurrency:
            wait = 1.0
        if self.rate > 0 and device.requests < 1:
            wait = max(wait, (1 - device.requests) / self.rate)
        if reads and self.read_rate > 0 and device.reads < 1:
            wait = max(wait, (1 - device.reads) / self.read_rate)
        if reads and self.time_rate > 0 and device.seconds < 0:
            wait = max(wait, -device.seconds / self.time_rate)
        if wait > 0:
            self.refused += 1
            raise TooManyRequests(wait, hold=min(wait, HOLD_MAX))
        if self.rate > 0:
            device.requests -= 1
        device.inflight += 1
        return device

    def _refill(self, device: _Device, now: float) -> None:
        elapsed = now - device.at
        if self.rate > 0:
            device.requests = min(self.burst, device.requests + elapsed * self.rate)
        if self.read_rate > 0:
            device.reads = min(self.read_burst, device.reads + elapsed * self.read_rate)
        if self.time_rate > 0:
            device.seconds = min(self.time_burst, device.seconds + elapsed * self.time_rate)
        device.at = now

    def _forget_idle(self) -> None:
        """Oldest first; a device with requests in flight is kept (its release needs it)."""
        excess = len(self._devices) - self.remembered
        for device_id in [d for d, state in self._devices.items() if not state.inflight]:
            if excess <= 0:
                return
            del self._devices[device_id]
            excess -= 1
