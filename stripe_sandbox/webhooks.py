"""Signed webhook delivery on a background thread, with bounded retries.

API requests only enqueue; one delivery thread POSTs each event to each matching endpoint,
signed exactly as Stripe signs (``Stripe-Signature: t=<ts>,v1=<hex HMAC-SHA256 of
"<ts>.<payload>">``), so ``stripe.Webhook.construct_event`` accepts the payload.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from stripe_sandbox.resources.webhook_endpoints import is_loopback_url
from stripe_sandbox.store import Store
from stripe_sandbox.wire import JsonDict, new_id

log = logging.getLogger("stripe_sandbox")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
# Retry delays after the first attempt: short and bounded, because this is a test double.
RETRY_DELAYS = (0.5, 1.0, 2.0)
TIMEOUT_SECONDS = 5.0
# The delivery log is for inspection, not an archive.
MAX_LOG = 5_000


def sign(payload: str, secret: str, timestamp: int) -> str:
    """Return the ``Stripe-Signature`` header value for a payload.

    Args:
        payload: The exact request body.
        secret: The endpoint's ``whsec_`` secret.
        timestamp: Unix seconds, also placed in the header.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(order=True)
class _Job:
    due: float
    order: int
    event_id: str
    endpoint_id: str
    attempt: int


class WebhookDispatcher:
    """Delivers events to webhook endpoints from one daemon thread.

    Args:
        store: The sandbox store (for endpoint URLs, secrets and current event bodies).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._order = itertools.count()
        self._log: list[JsonDict] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Bumped by clear(): a delivery started before a reset must not log afterwards.
        self._generation = 0

    def start(self) -> None:
        """Start the delivery thread."""
        with self._cond:
            self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="stripe-sandbox-webhooks", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; pending deliveries are dropped. Safe to call twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 1)
            self._thread = None

    def enqueue(self, event: JsonDict, endpoints: list[JsonDict]) -> None:
        """Schedule delivery of ``event`` to each endpoint; never blocks on the network."""
        now = time.monotonic()
        with self._cond:
            for endpoint in endpoints:
                heapq.heappush(
                    self._jobs, _Job(now, next(self._order), event["id"], endpoint["id"], 1)
                )
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget pending deliveries and the delivery log (used by reset)."""
        with self._cond:
            self._jobs.clear()
            self._log.clear()
            self._generation += 1

    def deliveries(self) -> list[JsonDict]:
        """A copy of the delivery log, oldest attempt first."""
        with self._cond:
            return [dict(entry) for entry in self._log]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._jobs or self._jobs[0].due > time.monotonic()
                ):
                    timeout = self._jobs[0].due - time.monotonic() if self._jobs else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                job = heapq.heappop(self._jobs)
                generation = self._generation
            self._deliver(job, generation)

    def _deliver(self, job: _Job, generation: int) -> None:
        with self._store.lock:
            event = self._store.get("event", job.event_id)
            endpoint = self._store.get("webhook_endpoint", job.endpoint_id)
            secret = self._store.endpoint_secrets.get(job.endpoint_id)
            if event is None or endpoint is None or secret is None:
                return
            if endpoint["status"] != "enabled":
                return
            payload = json.dumps(event, indent=2)
            url = endpoint["url"]
        status: int | None = None
        error: str | None = None
        started = time.time()
        try:
            status = post_signed(url, payload, sign(payload, secret, int(started)))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        log.debug(
            "webhook %s -> %s attempt %d: %s", job.event_id, url, job.attempt, status or error
        )
        retry = not ok and job.attempt <= len(RETRY_DELAYS)
        with self._cond:
            if generation != self._generation:
                return
            self._log.append(
                {
                    "id": new_id("whdel", 14),
                    "event": job.event_id,
                    "event_type": event["type"],
                    "endpoint": job.endpoint_id,
                    "url": url,
                    "attempt": job.attempt,
                    "status": status,
                    "error": error,
                    "succeeded": ok,
                    "will_retry": retry,
                    "created": int(started),
                }
            )
            del self._log[:-MAX_LOG]
            if retry:
                heapq.heappush(
                    self._jobs,
                    _Job(
                        time.monotonic() + RETRY_DELAYS[job.attempt - 1],
                        next(self._order),
                        job.event_id,
                        job.endpoint_id,
                        job.attempt + 1,
                    ),
                )
        if ok or not retry:
            with self._store.lock:
                current = self._store.get("event", job.event_id)
                if current is not None and current["pending_webhooks"] > 0:
                    # Stripe counts an event as no longer pending once delivered or given up.
                    if ok:
                        current["pending_webhooks"] -= 1
                    self._store.touch()


def post_signed(url: str, payload: str, signature: str, verify_tls: bool = False) -> int:
    """POST an event to a loopback URL as Stripe does; return the HTTP status.

    Args:
        url: http(s) URL on this machine.
        payload: The exact JSON body.
        signature: The ``Stripe-Signature`` header value.
        verify_tls: Check an https certificate (loopback development certificates are
            usually self-signed, so the sandbox does not by default).

    Raises:
        ValueError: The URL is not a loopback URL.
        OSError: Connection problems.
    """
    # Checked again at send time: the endpoint URL is re-read from the store.
    if not is_loopback_url(url):
        raise ValueError(f"refusing to deliver to a non-loopback URL: {url}")
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        # Loopback only, so a self-signed development certificate is acceptable.
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=TIMEOUT_SECONDS, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=TIMEOUT_SECONDS)
    try:
        body = payload.encode("utf-8")
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": signature,
                "Cache-Control": "no-cache",
                "Accept": "*/*; q=0.5, application/xml",
            },
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
