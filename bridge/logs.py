"""One line per event, as ``key=value`` text or as JSON (``DEVICEDATA_LOG_FORMAT``).

Messages are written ``event=name key=value ...`` so the text form is already
structured; the JSON form parses those pairs into fields. Tokens never reach a log line:
nothing logs request headers, and errors about tokens never include them.
"""

from __future__ import annotations

import logging
import re
import sys
import time

import orjson

from bridge.settings import Settings

_PAIR = re.compile(r"(\w+)=(\S+)")
# Libraries that log every request at INFO; their lines add nothing ours do not say.
_QUIET = ("httpx", "httpcore", "uvicorn.access")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (f"{stamp}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
                f"logger={record.name} {record.getMessage()}")
        if record.exc_info:
            line += " exception=" + repr(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
        }
        pairs = dict(_PAIR.findall(message))
        out.update(pairs if pairs else {"message": message})
        if pairs and not message.startswith("event="):
            out["message"] = message
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
