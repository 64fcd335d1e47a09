"""`GET /healthz` for the headless listener (`admin-app listen --health-port N`).

Answers 200 with JSON when the listener can do its job — the database answers, Stripe answers,
the receiver is up, `stripe listen` forwards (when this listener runs it), the last catch-up
worked — and 503 with the same JSON, its `problems` saying what is wrong, otherwise. Also in
the JSON: the last event received and the last applied, the catch-up cursor's lag, the last
reconcile, and this listener's heartbeat. Loopback only (127.0.0.1), GET only, no secrets.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import peewee

from services.catchup import CatchUp
from services.errors import AppError, ConfigurationError
from services.listener import ListenerService
from services.models import WebhookEvent, scalar_sql
from services.reconcile import last_result
from services.stripe_gateway import StripeGateway
from services.stripe_listen import ListenState

log = logging.getLogger(__name__)

#: Stripe is asked at most this often, however often /healthz is polled.
STRIPE_CHECK_S = 5.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _iso(seconds: float | None) -> str | None:
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class HealthCheck:
    """Builds the /healthz answer: `(healthy, body)`."""

    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        listener: ListenerService,
        catch_up: CatchUp,
        *,
        runs_stripe_cli: bool,
        stripe_every_s: float = STRIPE_CHECK_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._listener = listener
        self._catch_up = catch_up
        self._runs_cli = runs_stripe_cli
        self._clock = clock
        self._stripe_every = stripe_every_s
        self._stripe_lock = threading.Lock()
        self._stripe_checked = 0.0
        self._stripe_problem: str | None = None

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        problems: list[str] = []
        body: dict[str, Any] = {}
        now = self._clock()
        body["database"] = self._database(problems)
        body["stripe"] = self._stripe(problems, now)
        state = self._listener.state
        body["receiver"] = {"ok": state.receiving, "port": state.port,
                            "problem": state.receiver_problem or None}  # fmt: skip
        if not state.receiving:
            problems.append(f"the webhook receiver is not running ({state.receiver_problem})")
        listen_ok = not self._runs_cli or state.listen.state is ListenState.FORWARDING
        body["stripe_listen"] = {
            "run_here": self._runs_cli, "state": state.listen.state.value,
            "message": state.listen.message or None, "ok": listen_ok,
        }  # fmt: skip
        if not listen_ok:
            problems.append(state.listen.line())
        body["last_event"] = {"at": _iso(state.last_event_at), "what": state.last_event or None}
        body["catch_up"] = {
            "last_at": _iso(state.catch_up_at),
            "problem": state.catch_up_problem or None,
            "note": state.catch_up.gap_note if state.catch_up else None,
        }
        if state.catch_up_problem:
            problems.append(f"catch-up failed: {state.catch_up_problem}")
        if body["database"]["ok"]:
            self._from_database(body, now)
        heartbeat = self._listener.heartbeat
        body["heartbeat"] = {"problem": (heartbeat.problem or None) if heartbeat else None}
        if heartbeat is not None and heartbeat.problem:
            problems.append(heartbeat.problem)
        body["status"] = "unhealthy" if problems else "ok"
        body["problems"] = problems
        return not problems, body

    def _database(self, problems: list[str]) -> dict[str, Any]:
        try:
            version = scalar_sql(self._db, "SELECT max(version) FROM schema_version")
            return {"ok": True, "schema_version": version}
        except peewee.PeeweeException as exc:
            problem = f"the database does not answer: {_first_line(exc)}"
            problems.append(problem)
            if not self._db.in_transaction():
                self._db.close()  # reconnect on the next look
            return {"ok": False, "problem": problem}

    def _stripe(self, problems: list[str], now: float) -> dict[str, Any]:
        with self._stripe_lock:
            if now - self._stripe_checked >= self._stripe_every or self._stripe_checked == 0.0:
                try:
                    self._gateway.check_connection()
                    self._stripe_problem = None
                except AppError as exc:
                    self._stripe_problem = f"Stripe does not answer: {_first_line(exc)}"
                self._stripe_checked = now
            problem, checked = self._stripe_problem, self._stripe_checked
        if problem:
            problems.append(problem)
        return {"ok": problem is None, "checked_at": _iso(checked), "problem": problem,
                "mode": self._gateway.mode.value}  # fmt: skip

    def _from_database(self, body: dict[str, Any], now: float) -> None:
        """The stored facts; a failure here is already reported by the database check."""
        try:
            received = WebhookEvent.select(peewee.fn.MAX(WebhookEvent.received_at)).scalar()
            applied = (
                WebhookEvent.select(peewee.fn.MAX(WebhookEvent.received_at))
                .where(WebhookEvent.status == "applied")
                .scalar()
            )
            body["events"] = {
                "last_received_at": _iso(received / 1000) if received else None,
                "last_applied_at": _iso(applied / 1000) if applied else None,
            }
            cursor = self._catch_up.cursor()
            body["catch_up"]["cursor"] = _iso(cursor) if cursor else None
            body["catch_up"]["cursor_lag_s"] = int(now - cursor) if cursor else None
            body["reconcile"] = dict(last_result(self._db) or {}) or None
        except peewee.PeeweeException as exc:
            log.info("healthz: stored facts unavailable: %s", exc)
        finally:
            if not self._db.in_transaction():
                self._db.close()  # this handler thread's connection


class HealthServer:
    """`GET /healthz` on 127.0.0.1:`port` (0: any free port), in a daemon thread."""

    def __init__(self, check: Callable[[], tuple[bool, dict[str, Any]]], port: int) -> None:
        self._check = check
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def start(self) -> None:
        check = self._check

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a slow client holds a thread briefly, not for good

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("healthz: " + format, *args)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/healthz":
                    self._answer(404, {"status": "not found", "problems": ["try /healthz"]})
                    return
                try:
                    healthy, body = check()
                except Exception as exc:  # a bug must still answer, and say so
                    log.exception("healthz failed")
                    problem = f"health check failed: {exc}"
                    healthy, body = False, {"status": "unhealthy", "problems": [problem]}
                self._answer(200 if healthy else 503, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        try:
            self._server = Server(("127.0.0.1", self._requested_port), Handler)
        except OSError as exc:
            raise ConfigurationError(
                f"The health port {self._requested_port} on 127.0.0.1 is not free: "
                f"{exc.strerror or exc}"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="healthz", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
