"""Data point ids. An id is the point's storage key itself (time, a hash of the variable,
slot), so a lookup by id is an exact-time query, never a scan of the device's history
(docs/schema.md, "Ids and how they map to storage")."""

from __future__ import annotations

import hashlib
import re

_ID_RE = re.compile(r"^([0-9a-f]{16})([0-9a-f]{8})([0-9a-f]{1,4})$")


def _variable_hash(variable: str) -> int:
    return int.from_bytes(hashlib.blake2b(variable.encode("utf-8"), digest_size=4).digest(), "big")


def point_id(time_ns: int, variable: str, slot: int) -> str:
    """The id of the point stored at ``time_ns`` under ``variable`` and ``slot``."""
    return f"{time_ns:016x}{_variable_hash(variable):08x}{slot:x}"


def parse_point_id(point_id_text: str) -> tuple[int, int, int]:
    """(time_ns, variable hash, slot) from an id; ValueError when it is not one of ours."""
    match = _ID_RE.match(point_id_text)
    if match is None:
        raise ValueError("not a data point id")
    return int(match[1], 16), int(match[2], 16), int(match[3], 16)


def id_matches(point_id_text: str, variable: str, slot: int) -> bool:
    _, vhash, id_slot = parse_point_id(point_id_text)
    return vhash == _variable_hash(variable) and id_slot == slot
