"""bridge.influx.generated: answers computed in Python for generated groups give numbers
the way every other answer does."""

from __future__ import annotations

from bridge.influx.generated import number


def test_huge_and_whole_numbers_come_back_as_elsewhere() -> None:
    rows = [{"value": 1e300}, {"value": 2.0}, {"value_str": "x"}]
    assert number(rows, "max") == 1e300 and isinstance(number(rows, "max"), float)
    assert number(rows, "min") == 2 and isinstance(number(rows, "min"), int)
    assert number(rows, "count") == 3
