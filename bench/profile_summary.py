"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) by function: self time
(the function was on top of the stack) and total time (anywhere on the stack), as a
percentage of all samples. Usage: python bench/profile_summary.py FILE [TOP]"""

from __future__ import annotations

import re
import sys
from collections import Counter

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    func, path = m.groups()
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})"


def summarise(path: str, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    samples = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        stack, count = m.group(1), int(m.group(2))
        frames = [_short(f) for f in stack.split(";") if f]
        frames = [f for f in frames if not f.startswith("process ") and not
                  f.startswith("thread ")]
        if not frames:
            continue
        samples += count
        self_c[frames[-1]] += count
        for f in set(frames):
            total_c[f] += count
    pct = (lambda c: [(k, 100 * v / samples) for k, v in c.most_common(top)]) if samples else (
        lambda c: [])
    return {"self": pct(self_c), "total": pct(total_c), "samples": samples}  # type: ignore


def main() -> None:
    res = summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
    print(f"samples: {res['samples']}")
    for kind in ("self", "total"):
        print(f"\n{kind} %:")
        for name, p in res[kind]:
            print(f"  {p:5.1f}  {name}")


if __name__ == "__main__":
    main()
