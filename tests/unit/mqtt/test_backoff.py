"""Reconnect backoff: capped, and jittered so a fleet of bridges does not come back in step."""

from __future__ import annotations

import random

import pytest

from bridge.mqtt.backoff import Backoff


def waits(seed: int, n: int = 12) -> list[float]:
    backoff = Backoff(0.5, 15.0, random.Random(seed))
    return [backoff.next() for _ in range(n)]


def test_waits_stay_between_the_first_wait_and_the_cap() -> None:
    for seed in range(50):
        assert all(0.5 <= w <= 15.0 for w in waits(seed))


def test_the_cap_is_reached() -> None:
    assert max(waits(1, 40)) == 15.0


def test_two_bridges_do_not_reconnect_in_step() -> None:
    """Ten bridges that lost the broker at the same moment: their first waits differ, and
    so do their retries; a plain doubling backoff would give all ten the same instants."""
    firsts = [waits(seed, 1)[0] for seed in range(10)]
    assert len({round(w, 3) for w in firsts}) == 10
    assert waits(1) != waits(2)


def test_the_same_seed_gives_the_same_waits() -> None:
    assert waits(7) == waits(7)


def test_reset_starts_small_again() -> None:
    backoff = Backoff(0.5, 15.0, random.Random(3))
    for _ in range(20):
        backoff.next()
    backoff.reset()
    assert backoff.next() <= 1.5  # between the first wait and three times it


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
