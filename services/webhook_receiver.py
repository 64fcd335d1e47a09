"""The loopback HTTP receiver that `stripe listen --forward-to` (or Stripe) posts events to.

`http.server.ThreadingHTTPServer` in a daemon thread (QtHttpServer drops callbacks and answers
200 on errors: FACTS.md). At most `MAX_CONNECTIONS` threads serve connections at once; each read
waits at most `CLIENT_TIMEOUT_S` and a whole request must arrive within `REQUEST_DEADLINE_S`, so
a slow or stuck client (slowloris) holds one slot briefly and cannot grow the thread count.
It answers 200 only after the event is committed, and every refusal has a status line.

| answer | when |
|---|---|
| 200 | stored and applied, ignored (unknown type), or a duplicate |
| 400 | bad or missing `Stripe-Signature`, wrong secret, tampered body, a timestamp more than 5 |
|     | minutes old or in the future, JSON nested deeper than `MAX_DEPTH`, a request line or |
|     | headers that cannot be parsed, Transfer-Encoding, two Content-Lengths |
| 404 / 405 / 411 / 413 | wrong path / any method but POST / no Content-Length / body over 1 MiB |
| 431 | a header line over 64 KiB, or over 100 headers |
| 500 | the handler failed: recorded as `failed`, Stripe retries, an admin can replay |
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from services.errors import AppError, ConfigurationError
from services.events import EventPipeline, Result, Source

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
WEBHOOK_PATH = "/webhooks/stripe"
DEFAULT_PORT = 4242
MAX_BODY = 1024 * 1024  # 1 MiB: Stripe's events are far smaller
TOLERANCE_S = 300  # Stripe's default: a signature older than 5 minutes is refused
CLIENT_TIMEOUT_S = 10.0  # one read (and an idle keep-alive connection)
REQUEST_DEADLINE_S = 30.0  # a whole request, however it trickles in
MAX_DEPTH = 64  # Stripe's events nest about 10 deep; Python's parser fails near 1000

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP method (RFC 9110 token)
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET_RE = re.compile(r"[\[\]{}]")

SecretsFn = Callable[[], Sequence[str]]


def verify(payload: bytes, header: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The event if `header` is a valid signature of `payload` by any of `secrets`.

    Several secrets can be valid at once: the one from `stripe listen`, a configured endpoint
    secret, and one being rotated.

    Raises:
        ValueError: with the reason, for a 400.
    """
    import stripe  # here, not at start-up: the window paints before Stripe's code is loaded

    if not secrets:
        raise ValueError("no webhook signing secret is configured")
    text = payload.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if too_deep(text, MAX_DEPTH):
        # Refused before parsing: json.loads would raise RecursionError deep in the C parser.
        raise ValueError(f"the body nests deeper than {MAX_DEPTH} levels")
    last: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_S)
        except stripe.SignatureVerificationError as exc:
            last = exc
            continue
        _refuse_future_timestamp(header)
        event = json.loads(text)
        if not isinstance(event, dict):
            raise ValueError("the body is not a JSON object")
        return event
    raise ValueError(f"signature verification failed: {getattr(last, 'user_message', last)}")


def too_deep(text: str, limit: int) -> bool:
    """Whether the JSON `text` nests arrays/objects more than `limit` deep (strings skipped)."""
    depth = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_future_timestamp(header: str) -> None:
    """stripe-python refuses old timestamps only; a signed one from the future is as suspect."""
    items = [item.strip() for item in header.split(",")]
    stamps = [item[2:] for item in items if item.startswith("t=")]
    try:
        signed_at = int(stamps[0].strip())
    except (IndexError, ValueError):
        raise ValueError("the signature has no timestamp") from None
    if signed_at > time.time() + TOLERANCE_S:
        raise ValueError("signature verification failed: the timestamp is in the future")


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each waiting no longer than the request's deadline allows."""

    def __init__(self, sock: socket.socket, handler: _Handler) -> None:
        super().__init__()
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(min(remaining, self._handler.server.client_timeout_s))
        return self._sock.recv_into(buffer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # `stripe listen` forwards concurrently and never retries: a burst must wait, not be reset
    # (the stdlib's backlog of 5 reset one of 20 concurrent deliveries).
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        pipeline: EventPipeline,
        secrets: SecretsFn,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self.pipeline = pipeline
        self.secrets = secrets
        self.client_timeout_s = client_timeout_s
        self.request_deadline_s = request_deadline_s
        # At most this many connections are served at once; the next ones wait in the
        # kernel's backlog until a slot frees (no thread per connection without limit).
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up is routine; anything else is a bug worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("webhook connection from %s dropped", client_address, exc_info=True)
        else:
            log.exception("webhook connection from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Errors before the version is known still get a status line (the stdlib's HTTP/0.9
    # default answers garbage with a bare body, or nothing).
    default_request_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT_S  # a stuck client ties up only its own thread, briefly
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        """One request, read within the deadline; anything unparsable gets a 4xx, not a hang-up."""
        self.deadline = time.monotonic() + self.server.request_deadline_s
        self.command = self.requestline = ""
        self.request_version = self.default_request_version
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self._answer(414, "request line too long", close=True)
                return
            if not self._request_line_ok() or not self.parse_request():
                return
            if self.headers.defects or self.headers.get_payload():
                # A line that is not "Name: value" ends the stdlib's header parsing silently,
                # dropping the headers after it (Content-Length, Stripe-Signature).
                self._answer(400, "headers cannot be parsed", close=True)
                return
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self._method_not_allowed()
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _request_line_ok(self) -> bool:
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            self.close_connection = True  # a stray empty line: nothing to answer
            return False
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self._answer(400, "bad request line", close=True)
            return False
        if not _TOKEN_RE.match(words[0]):
            self._answer(400, "bad request method", close=True)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's header errors (431, 505, …), answered like ours and then closed."""
        self._answer(code, message or HTTPStatus(code).phrase, close=True)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != WEBHOOK_PATH:
            self._answer(404, "not found")
            return
        if self.headers.get("Transfer-Encoding") is not None:
            self._answer(400, "Transfer-Encoding is not supported: send Content-Length", close=True)
            return
        lengths = self.headers.get_all("Content-Length") or []
        if len(set(lengths)) > 1:
            self._answer(400, "conflicting Content-Length headers", close=True)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._answer(411, "Content-Length required")
            return
        try:
            length = int(length_text)
        except ValueError:
            self._answer(400, "bad Content-Length")
            return
        if length < 0 or length > MAX_BODY:
            # Drain a moderately large body so the sender can read our answer; beyond that,
            # hang up without reading.
            if 0 < length <= 8 * MAX_BODY:
                self._discard(length)
            self._answer(413, "body too large", close=True)
            return
        try:
            payload = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        header = self.headers.get("Stripe-Signature")
        if not header:
            self._answer(400, "missing Stripe-Signature header")
            return
        try:
            event = verify(payload, header, list(self.server.secrets()))
        except ValueError as exc:
            log.warning("Refused a webhook delivery: %s", exc)
            self._answer(400, str(exc))
            return
        try:
            result = self.server.pipeline.receive(event, Source.RECEIVER)
        except AppError as exc:
            self._answer(400, str(exc))
            return
        except Exception:
            log.exception("Storing event %s failed", event.get("id"))
            self._answer(500, "could not store the event")
            return
        if result is Result.FAILED:
            self._answer(500, "stored; the handler failed and it will be retried")
        else:
            self._answer(200, result.value)

    def _discard(self, length: int) -> None:
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
        except (TimeoutError, OSError):
            return

    def _method_not_allowed(self) -> None:
        # Any body it sent is unread: close rather than parse it as the next request.
        self._answer(405, "POST only", extra={"Allow": "POST"}, close=True)

    def _answer(
        self, status: int, message: str, *, close: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"status": status, "message": message}).encode()
        # Writing gets its own time: the request's deadline may be all but spent.
        self.connection.settimeout(self.server.client_timeout_s)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s - %s", self.address_string(), format % args)


class WebhookReceiver:
    """Starts and stops the receiver; binds 127.0.0.1 only."""

    def __init__(
        self,
        pipeline: EventPipeline,
        secrets: SecretsFn,
        port: int = DEFAULT_PORT,
        *,
        client_timeout_s: float = CLIENT_TIMEOUT_S,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self._pipeline = pipeline
        self._secrets = secrets
        self._requested_port = port
        self._timeouts = (client_timeout_s, request_deadline_s)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            server = _Server(
                ("127.0.0.1", self._requested_port), self._pipeline, self._secrets, *self._timeouts
            )
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot listen for webhooks on 127.0.0.1:{self._requested_port}: "
                f"{exc.strerror or exc}. Is another Billing Admin listening there?"
            ) from None
        server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        log.info("Webhook receiver listening on %s", self.url)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        # serve_forever looks for shutdown() only between its 0.5 s polls, and every stop
        # waited for one. A shut listening socket is readable at once: the loop wakes, its
        # accept fails harmlessly until shutdown() has set the flag, then it ends.
        with contextlib.suppress(OSError):
            server.socket.shutdown(socket.SHUT_RDWR)
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        log.info("Webhook receiver stopped")
