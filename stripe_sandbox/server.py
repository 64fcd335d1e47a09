"""The HTTP server: a loopback-only ``ThreadingHTTPServer`` in a daemon thread."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from stripe_sandbox.api import Api
from stripe_sandbox.persistence import StateSaver, load_state
from stripe_sandbox.store import Store
from stripe_sandbox.webhooks import WebhookDispatcher
from stripe_sandbox.wire import ApiError, Response, encode_json, new_id

log = logging.getLogger("stripe_sandbox")

# Larger bodies are refused: nothing the emulated endpoints accept comes close.
MAX_BODY_BYTES = 1 << 20
# How long an idle keep-alive connection is kept open.
IDLE_TIMEOUT_SECONDS = 30


def _loopback_bind_address(host: str) -> tuple[str, socket.AddressFamily]:
    """Map an allowed host to the address to bind, refusing anything off this machine."""
    if host == "localhost":
        return "127.0.0.1", socket.AF_INET
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"The Stripe sandbox only binds to loopback addresses (127.0.0.1, localhost, ::1), "
            f"not {host!r}."
        )
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return str(address), family


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    api: Api

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, api: Api) -> None:
        self.address_family = family
        self.api = api
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake keep-alive handler threads blocked on idle client connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: stripe-python's requests session reuses one connection, which is
    # most of the difference between ~200 and 1000+ requests per second.
    protocol_version = "HTTP/1.1"
    server_version = "stripe-sandbox"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server: _HttpServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are logged once, at DEBUG, by _dispatch (without the Authorization header).
        pass

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            status = 413 if length > 0 else 400
            error = ApiError(status, "Invalid or too large Content-Length.")
            response = Response(status, encode_json(error.body(new_id("req"))))
        else:
            body = self.rfile.read(length) if length else b""
            try:
                response = self.server.api.handle(method, path, query, headers, body)
            except Exception:
                log.exception("sandbox bug handling %s %s", method, path)
                request_id = new_id("req")
                err = ApiError(500, "An unexpected error occurred in the Stripe sandbox.")
                err.type = "api_error"
                response = Response(500, encode_json(err.body(request_id)))
                response.headers["Request-Id"] = request_id
                response.headers["Stripe-Should-Retry"] = "false"
        # The Idempotency-Key is no secret; tests read it here to see what a client really sent.
        log.debug(
            "%s %s -> %d %s idempotency-key=%s (%.1f ms)",
            method,
            path,
            response.status,
            response.headers.get("Request-Id", "-"),
            headers.get("idempotency-key") or "-",
            (time.perf_counter() - started) * 1000,
        )
        self._send(response)  # logged first: a client that gave up still had its request run

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class SandboxServer:
    """A local, stateful Stripe API emulator on a loopback port.

    Args:
        host: Loopback address to bind (``127.0.0.1``, ``localhost`` or ``::1``).
        port: TCP port; 0 picks a free one (read it back from :attr:`port`).
        state_file: Optional JSON file: loaded on construction if it exists, saved while
            running (at most about once a second when something changed) and on stop.
        stable_port: With ``port`` 0, serve on the port the state file remembers when it is
            free (links issued earlier keep working), else on a free one, then remember it.

    Raises:
        ValueError: ``host`` is not a loopback address, or ``state_file`` is not a sandbox
            state file.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        *,
        stable_port: bool = False,
    ) -> None:
        self._bind_host, self._family = _loopback_bind_address(host)
        self._requested_port = port
        self._stable_port = stable_port
        self._store = Store()
        self._dispatcher = WebhookDispatcher(self._store)
        self._store.on_event = self._dispatcher.enqueue
        self._api = Api(self._store, self._dispatcher)
        self._state_path = Path(state_file) if state_file is not None else None
        self._saver: StateSaver | None = None
        if self._state_path is not None:
            load_state(self._store, self._state_path)
            self._saver = StateSaver(self._store, self._state_path)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    @property
    def port(self) -> int:
        """The bound port once started, else the requested one."""
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self._requested_port

    @property
    def url(self) -> str:
        """Base URL for ``stripe.StripeClient(base_addresses={"api": url})``."""
        host = f"[{self._bind_host}]" if self._family == socket.AF_INET6 else self._bind_host
        return f"http://{host}:{self.port}"

    @property
    def api(self) -> Api:
        """The request dispatcher (its ``sandbox_routes`` table can be extended)."""
        return self._api

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns once the socket is listening.

        Raises:
            OSError: The port is already in use (or otherwise cannot be bound).
        """
        with self._lifecycle:
            if self._httpd is not None:
                return
            httpd = self._bind()
            self._httpd = httpd
            with self._store.lock:
                # Hosted pages (Checkout, portal, invoices) link to this server.
                self._store.base_url = self.url
                if self._stable_port and self._store.port != self.port:
                    self._store.port = self.port
                    self._store.dirty = True
            self._dispatcher.start()
            if self._saver is not None:
                self._saver.start()
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="stripe-sandbox-http",
                daemon=True,
            )
            self._thread.start()
            log.info("Stripe sandbox listening on %s", self.url)

    def _bind(self) -> _HttpServer:
        remembered = self._store.port if self._stable_port and not self._requested_port else 0
        if remembered:
            try:
                return _HttpServer((self._bind_host, remembered), self._family, self._api)
            except OSError as exc:
                log.warning("Sandbox port %s is taken (%s): using a free one", remembered, exc)
        return _HttpServer((self._bind_host, self._requested_port), self._family, self._api)

    def stop(self) -> None:
        """Stop serving, join the threads and flush the state file. Safe to call twice."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            if httpd is None:
                return
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
            if thread is not None:
                thread.join()
            self._dispatcher.stop()
            if self._saver is not None:
                self._saver.stop()
            self._httpd = None
            self._thread = None

    def reset(self) -> None:
        """Drop all data: customers, products, prices, events, endpoints, idempotency cache."""
        self._api.reset()

    def seed_demo(self) -> dict[str, int]:
        """Seed the demo data unless already seeded.

        Returns:
            Counts created, e.g. ``{"customers": 60, "products": 6, "prices": 6}``; zeros
            when the data was already there.
        """
        return self._api.seed_demo()

    def deliveries(self) -> list[dict[str, Any]]:
        """The webhook delivery log (same as ``GET /_sandbox/deliveries``)."""
        return self._dispatcher.deliveries()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
