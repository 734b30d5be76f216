"""Query strings in every list form the TagoIO SDKs send: ``k=a&k=b`` (Python SDK),
``k[]=a`` and ``k[0]=a&k[1]=b`` (the JS SDK's qs)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

_BRACKETED = re.compile(r"^([^\[\]]+)\[(\d*)\]$")


def query_lists(query_string: str) -> dict[str, list[str]]:
    indexed: dict[str, list[tuple[int, int, str]]] = {}
    for order, (key, value) in enumerate(parse_qsl(query_string, keep_blank_values=True)):
        match = _BRACKETED.match(key)
        name = match[1] if match else key
        position = int(match[2]) if match and match[2] else order
        indexed.setdefault(name, []).append((position, order, value))
    return {name: [v for _, _, v in sorted(items)] for name, items in indexed.items()}
