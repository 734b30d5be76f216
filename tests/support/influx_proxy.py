"""An HTTP proxy in front of InfluxDB that can pass writes through and then never answer:
the write is stored, but the bridge never learns it, so it never acknowledges. It can also
answer every query with a 500 in InfluxDB's own words, as a failing shard does."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class HoldingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.hold_writes = threading.Event()
        self.release = threading.Event()
        self.writes_held = 0
        self.delay = 0.0  # seconds added before every write is forwarded (a slow store)
        self.failing_queries = ""  # when set, every /query answers 500 with this error
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/query") and proxy.failing_queries:
                    error = json.dumps({"error": proxy.failing_queries}).encode()
                    self.send_response(500)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                if self.path.startswith("/write") and proxy.delay:
                    time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "authorization")}
                response = httpx.request(self.command, proxy.upstream + self.path,
                                         content=body, headers=headers, timeout=30)
                if self.path.startswith("/write") and proxy.hold_writes.is_set():
                    proxy.writes_held += 1
                    proxy.release.wait()  # stored upstream; the caller never hears of it
                    return
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in ("transfer-encoding", "content-length",
                                           "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
