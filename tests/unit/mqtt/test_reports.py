"""What a device reads on its errors topic."""

from __future__ import annotations

import orjson

from bridge.errors import FieldError
from bridge.mqtt.reports import MAX_FIELD_ERRORS, report


def test_a_report_lists_a_bounded_number_of_errors() -> None:
    errors = [FieldError("variable", "is required", index=i) for i in range(5000)]
    body = orjson.loads(report("devices/x/data", "m" * 50_000, errors, left_out=7))
    assert len(body["errors"]) == MAX_FIELD_ERRORS
    assert body["more_errors"] == 5000 - MAX_FIELD_ERRORS
    assert body["reports_left_out"] == 7 and len(body["message"]) <= 1000
    assert body["topic"] == "devices/x/data"
