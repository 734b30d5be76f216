"""Our lines read back without InfluxDB (bridge/influx/lines.py): what current values and
the spool's drain rely on. Every field survives, for hostile text and both versions."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from bridge.influx.lines import parse_line
from bridge.influx.schema import encode_point, row_to_point, row_to_stored
from bridge.model.points import Point, generated_group
from support.schema_v1 import encode_point_v1

HOSTILE = ['quote " and \' both', "back\\slash \\", "comma, and space", "a=b", "new\nline",
           "emoji 🌡️ ünïcødé 中文", "trailing\\", "\\,\\ \\=", "~b64~looks encoded", '"', ""]
T = 1_704_067_200_123_456_789
DEV = "6b0abdb07231163020356b4b"


def points(text: str) -> list[Point]:
    variable = text.replace("\n", "") or "v"
    return [
        Point(DEV, variable, T, T + 50_000_123, text or "g", value=text, unit=text[:25],
              lat=52.5, lng=-13.25, metadata=orjson.dumps({"k": text}).decode(),
              slot=2),
        Point(DEV, variable, T, T, generated_group(T), value=21.5),
        Point(DEV, variable, T + 7, T, generated_group(T), value=-3),
        Point(DEV, variable, T, T - 10**9, generated_group(T - 10**9), value=False),
        Point(DEV, variable, T, T - 10**9, generated_group(T - 10**9)),
    ]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_line_reads_back_as_the_point_it_encodes(text: str) -> None:
    for p in points(text):
        row = parse_line(encode_point(p))
        back = row_to_stored(row)
        # the receive time is kept to the microsecond (the API shows milliseconds)
        assert back == dataclasses.replace(p, created_ns=back.created_ns)
        assert back.created_ns // 1000 == p.created_ns // 1000


@pytest.mark.parametrize("text", HOSTILE)
def test_version_1_lines_read_back_too(text: str) -> None:
    for p in points(text):
        row = parse_line(encode_point_v1(p))
        assert row_to_point(row, details=True) == row_to_point(
            parse_line(encode_point(p)), details=True)


def test_what_is_not_a_line_of_ours() -> None:
    for line in ("", "cpu value=1 1", "data value=1 1", "data,device=x value=1"):
        with pytest.raises((ValueError, KeyError, IndexError)):
            parse_line(line)
