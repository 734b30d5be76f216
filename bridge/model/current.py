"""Candidates for current values: per device, variable and kind, the newest point of a
write, as its line of line protocol (what the registry keeps; readers parse it back).
``item`` is any point, ``value`` one with a value, ``location`` one with a location
(``last_item``, ``last_value``, ``last_location``). Newest means the latest time, then
the highest slot; the registry keeps a candidate only if it is at least as new as what
it holds (``bridge/registry/current.py``)."""

from __future__ import annotations

from collections.abc import Callable

from bridge.model.points import Point

KINDS = ("item", "value", "location")
Key = tuple[str, str, str]  # device, variable, kind
Candidate = tuple[int, int, str]  # time_ns, slot, line
Candidates = dict[Key, Candidate]


def candidates(points: list[Point], encode: Callable[[Point], str]) -> Candidates:
    """The newest point per device, variable and kind; only those are encoded (again)."""
    newest: dict[Key, Point] = {}
    for p in points:
        for kind in KINDS:
            if (kind == "value" and p.value is None) or (kind == "location" and p.lat is None):
                continue
            key = (p.device, p.variable, kind)
            held = newest.get(key)
            if held is None or (p.time_ns, p.slot) >= (held.time_ns, held.slot):
                newest[key] = p
    lines: dict[int, str] = {}
    out: Candidates = {}
    for key, p in newest.items():
        line = lines.get(id(p))
        if line is None:
            line = lines[id(p)] = encode(p)
        out[key] = (p.time_ns, p.slot, line)
    return out


def merge(into: Candidates, more: Candidates) -> None:
    """Add a later write's candidates (a tie goes to the later one, as in InfluxDB)."""
    for key, c in more.items():
        held = into.get(key)
        if held is None or (c[0], c[1]) >= (held[0], held[1]):
            into[key] = c
