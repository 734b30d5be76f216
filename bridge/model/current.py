"""Candidates for current values: per device, variable and kind, the newest point of a
write. ``item`` is any point, ``value`` one with a value, ``location`` one with a
location (``last_item``, ``last_value``, ``last_location``). Newest means the latest
time, then the highest slot; the registry keeps a candidate only if it is at least as new
as what it holds (``bridge/registry/current.py``)."""

from __future__ import annotations

from bridge.model.points import Point

KINDS = ("item", "value", "location")
QUERY_KINDS = {"last_item": "item", "last_value": "value", "last_location": "location"}
Key = tuple[str, str, str]  # device, variable, kind
Candidates = dict[Key, Point]


def candidates(points: list[Point]) -> Candidates:
    """The newest point per device, variable and kind. Runs for every stored point, so
    the common case (every point has a value and no location: the value's candidate is
    the item's) takes one dict look-up per point."""
    items: dict[tuple[str, str], Point] = {}
    plain = True
    for p in points:
        key = (p.device, p.variable)
        held = items.get(key)
        if held is None or p.time_ns > held.time_ns or (
                p.time_ns == held.time_ns and p.slot >= held.slot):
            items[key] = p
        if p.value is None or p.lat is not None:
            plain = False
    if not plain:
        out: Candidates = {}
        for p in points:
            offer(out, p)
        return out
    out = {}
    for (device, variable), p in items.items():
        out[(device, variable, "item")] = out[(device, variable, "value")] = p
    return out


def offer(into: Candidates, p: Point) -> None:
    """Make ``p`` the candidate of each of its kinds where it is newer."""
    for kind in KINDS:
        if (kind == "value" and p.value is None) or (kind == "location" and p.lat is None):
            continue
        key = (p.device, p.variable, kind)
        held = into.get(key)
        if held is None or (p.time_ns, p.slot) >= (held.time_ns, held.slot):
            into[key] = p


def merge(into: Candidates, more: Candidates) -> None:
    """Add a later write's candidates (a tie goes to the later one, as in InfluxDB)."""
    for key, p in more.items():
        held = into.get(key)
        if held is None or (p.time_ns, p.slot) >= (held.time_ns, held.slot):
            into[key] = p
