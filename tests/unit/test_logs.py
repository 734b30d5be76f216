"""Log lines: one per event, key=value or JSON, never a token."""

from __future__ import annotations

import json
import logging

from bridge.logs import JsonFormatter, TextFormatter


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("devicedata.bridge", logging.WARNING, __file__, 1, message, args,
                             None)


def test_text_is_one_key_value_line() -> None:
    line = TextFormatter().format(record("event=message_rejected device=%s reason=%s",
                                         "abc", "invalid"))
    assert "\n" not in line
    assert "level=warning logger=devicedata.bridge event=message_rejected device=abc" in line


def test_json_parses_the_pairs_into_fields() -> None:
    line = JsonFormatter().format(record("event=write_retry device=%s attempt=%d", "d1", 3))
    body = json.loads(line)
    assert body["event"] == "write_retry"
    assert body["device"] == "d1" and body["attempt"] == "3"
    assert body["level"] == "warning"
    assert json.loads(JsonFormatter().format(record("plain words")))["message"] == "plain words"
