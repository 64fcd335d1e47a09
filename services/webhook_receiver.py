"""The loopback HTTP receiver that `stripe listen --forward-to` (or Stripe) posts events to.

`http.server.ThreadingHTTPServer` in a daemon thread (QtHttpServer drops callbacks and answers
200 on errors: FACTS.md). One thread per connection and a socket timeout, so a slow or stuck
client cannot block other deliveries. It answers 200 only after the event is committed.

| answer | when |
|---|---|
| 200 | stored and applied, ignored (unknown type), or a duplicate |
| 400 | bad or missing `Stripe-Signature`, wrong secret, tampered body, stale timestamp |
| 404 / 405 / 411 / 413 | wrong path / not POST / no Content-Length / body over 1 MiB |
| 500 | the handler failed: recorded as `failed`, Stripe retries, an admin can replay |
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe

from services.errors import AppError, ConfigurationError
from services.events import EventPipeline, Result, Source

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
WEBHOOK_PATH = "/webhooks/stripe"
DEFAULT_PORT = 4242
MAX_BODY = 1024 * 1024  # 1 MiB: Stripe's events are far smaller
TOLERANCE_S = 300  # Stripe's default: a signature older than 5 minutes is refused
CLIENT_TIMEOUT_S = 10.0

SecretsFn = Callable[[], Sequence[str]]


def verify(payload: bytes, header: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The event if `header` is a valid signature of `payload` by any of `secrets`.

    Several secrets can be valid at once: the one from `stripe listen`, a configured endpoint
    secret, and one being rotated.

    Raises:
        ValueError: with the reason, for a 400.
    """
    if not secrets:
        raise ValueError("no webhook signing secret is configured")
    text = payload.decode("utf-8")  # UnicodeDecodeError is a ValueError
    last: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_S)
        except stripe.SignatureVerificationError as exc:
            last = exc
            continue
        event = json.loads(text)
        if not isinstance(event, dict):
            raise ValueError("the body is not a JSON object")
        return event
    raise ValueError(f"signature verification failed: {getattr(last, 'user_message', last)}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # `stripe listen` forwards concurrently and never retries: a burst must wait, not be reset
    # (the stdlib's backlog of 5 reset one of 20 concurrent deliveries).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], pipeline: EventPipeline, secrets: SecretsFn):
        self.pipeline = pipeline
        self.secrets = secrets
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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT_S  # a stuck client ties up only its own thread, briefly

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != WEBHOOK_PATH:
            self._answer(404, "not found")
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
        self._answer(405, "POST only", extra={"Allow": "POST"})

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _method_not_allowed

    def _answer(
        self, status: int, message: str, *, close: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"status": status, "message": message}).encode()
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
        self, pipeline: EventPipeline, secrets: SecretsFn, port: int = DEFAULT_PORT
    ) -> None:
        self._pipeline = pipeline
        self._secrets = secrets
        self._requested_port = port
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
            server = _Server(("127.0.0.1", self._requested_port), self._pipeline, self._secrets)
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
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        log.info("Webhook receiver stopped")
