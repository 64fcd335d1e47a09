"""A loopback HTTP proxy that loses answers: the request reaches Stripe, the reply never returns.

The sandbox's own faults answer *before* a request is applied (a retry then runs for real). The
case the request journal exists for is the opposite: Stripe did the work and a proxy, a flaky
network or a timeout ate the answer. `DroppingProxy.drop(...)` makes the next matching requests
go through to the sandbox, then closes the client's connection without a status line.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class DroppingProxy:
    """Forwards to `target`; `drop()` arms lost answers. Use as a context manager."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._lock = threading.Lock()
        self._rules: list[list[Any]] = []  # [method, path prefix, remaining]
        self.dropped = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                finally:
                    upstream.close()
                if proxy._take(self.command, self.path):
                    self.close_connection = True  # Stripe answered; the caller never hears it
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def drop(self, path_prefix: str, *, method: str = "POST", count: int = 1) -> None:
        """Lose the answers of the next `count` requests matching `method` and `path_prefix`."""
        with self._lock:
            self._rules.append([method, path_prefix, count])

    def _take(self, method: str, path: str) -> bool:
        with self._lock:
            for rule in self._rules:
                if rule[0] == method and path.startswith(rule[1]):
                    rule[2] -= 1
                    if rule[2] <= 0:
                        self._rules.remove(rule)
                    self.dropped += 1
                    return True
        return False

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
