"""AnswerCache's rules, on a fake clock (pure logic; the end-to-end behaviour against the
real services is in test_versions.py)."""

from __future__ import annotations

import asyncio

from bridge.readcache.answers import Answer, AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def get(cache: AnswerCache, device_id: str, key: str, version: int,
        asked: list[str] | None = None) -> Answer | None:
    """``cache.lookup`` with the device's data version now being ``version``."""
    async def current(device: str) -> int | None:
        if asked is not None:
            asked.append(device)
        return version

    return asyncio.run(cache.lookup(device_id, key, current))


def points(n: int, tag: str = "") -> list[dict[str, object]]:
    return [{"variable": f"v{i}", "value": tag} for i in range(n)]


def test_an_answer_is_served_only_at_the_version_it_was_read_at() -> None:
    cache = AnswerCache(max_age=60, max_points=1000)
    cache.put("dev", "q", 7, points(2, "old"))
    assert get(cache, "dev", "q", 7) == points(2, "old")
    assert get(cache, "dev", "q", 8) is None
    assert get(cache, "dev", "other query", 7) is None
    assert get(cache, "other device", "q", 7) is None
    assert (cache.hits, cache.misses) == (1, 3)
    asked: list[str] = []
    get(cache, "dev", "other query", 7, asked)
    get(cache, "dev", "q", 7, asked)
    assert asked == ["dev"]  # the registry is asked only where an answer is kept


def test_an_answer_expires_at_its_max_age() -> None:
    clock = Clock()
    cache = AnswerCache(max_age=5, max_points=1000, clock=clock)
    cache.put("dev", "q", 1, 42)
    clock.now += 4.9
    assert get(cache, "dev", "q", 1) == 42
    clock.now += 0.1
    asked: list[str] = []
    assert get(cache, "dev", "q", 1, asked) is None and asked == []  # too old: not even asked


def test_a_zero_max_age_keeps_nothing() -> None:
    cache = AnswerCache(max_age=0, max_points=1000)
    cache.put("dev", "q", 1, points(1))
    assert len(cache) == 0 and get(cache, "dev", "q", 1) is None


def test_least_recently_used_answers_go_first_when_over_the_point_budget() -> None:
    cache = AnswerCache(max_age=60, max_points=100)
    for key in "abcdefghij":
        cache.put("dev", key, 1, points(10))
    assert cache.points == 100 and len(cache) == 10  # exactly the budget: all kept
    assert get(cache, "dev", "a", 1) is not None  # now "b" is the least recently used
    cache.put("dev", "k", 1, points(10))
    assert cache.points == 100
    assert get(cache, "dev", "b", 1) is None
    assert get(cache, "dev", "a", 1) is not None
    cache.put("dev", "l", 1, points(10))
    assert get(cache, "dev", "c", 1) is None and get(cache, "dev", "k", 1) is not None


def test_an_answer_over_a_tenth_of_the_budget_is_not_kept() -> None:
    cache = AnswerCache(max_age=60, max_points=100)
    cache.put("dev", "big", 1, points(11))
    cache.put("dev", "fits", 1, points(10))
    assert get(cache, "dev", "big", 1) is None
    assert get(cache, "dev", "fits", 1) is not None


def test_replacing_an_answer_counts_its_points_once() -> None:
    cache = AnswerCache(max_age=60, max_points=100)
    cache.put("dev", "q", 1, points(5))
    cache.put("dev", "q", 2, points(3, "new"))
    assert cache.points == 3 and len(cache) == 1
    assert get(cache, "dev", "q", 2) == points(3, "new")
    cache.clear()
    assert cache.points == 0 and get(cache, "dev", "q", 2) is None


def test_a_caller_reordering_its_answer_does_not_change_the_kept_one() -> None:
    cache = AnswerCache(max_age=60, max_points=100)
    answer = points(3)
    cache.put("dev", "q", 1, answer)
    answer.reverse()
    served = get(cache, "dev", "q", 1)
    assert isinstance(served, list)
    served.sort(key=lambda p: str(p["variable"]), reverse=True)
    assert get(cache, "dev", "q", 1) == points(3)
