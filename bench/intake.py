"""Webhook intake: signed deliveries per second into the receiver, at 1 to 64 concurrent senders.

`stripe listen` forwards concurrently and never retries, so a burst must be answered, fast.
Ours: the real `WebhookReceiver` → `EventPipeline` on a SQLite file, twice: events of a type
with no handler (most of what `stripe listen` forwards: verify, then one INSERT with the final
status), and events of a type with a local handler (verify, store, claim, apply, mark applied:
the path of every mirrored or money event, minus its Stripe re-read). Baseline, in the same
run: a bare
`ThreadingHTTPServer` doing `stripe.Webhook.construct_event` + one INSERT per delivery.
Goal: >= 0.5x the baseline and >= 300 events/s, with 0 connection errors.
"""

from __future__ import annotations

import logging
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import stripe

from bench.delivery import Sender
from bench.results import Line, Result
from services.database import open_database
from services.events import EventPipeline, Handler, Status
from services.stripe_gateway import StripeGateway
from services.webhook_receiver import WebhookReceiver

SECRET = "whsec_bench_intake_secret_0001"
SENDERS = (1, 4, 16, 64)
SECONDS = 3.0


class _BareHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _BareServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event = stripe.Webhook.construct_event(
            body.decode(), self.headers["Stripe-Signature"], SECRET
        )
        with self.server.lock:
            self.server.db.execute(
                "INSERT OR IGNORE INTO event (id, body) VALUES (?, ?)", (event.id, body)
            )
            self.server.db.commit()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _BareServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS event (id TEXT PRIMARY KEY, body BLOB)")
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _BareHandler)


def _send(
    port: int, senders: int, seconds: float, tag: str, event_type: str = "bench.intake"
) -> tuple[float, float, int]:
    """(events/s, p95 ms, connection errors) for `senders` keep-alive senders over `seconds`."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(senders)
    end_at = [0.0]

    def send(n: int) -> None:
        sender = Sender(port, SECRET)
        mine: list[float] = []
        start.wait()
        i = 0
        while time.perf_counter() < end_at[0]:
            event = {"id": f"evt_{tag}_{n}_{i}", "object": "event", "type": event_type,
                     "created": int(time.time()), "livemode": False,
                     "data": {"object": {"id": f"obj_{i}", "object": "thing"}}}  # fmt: skip
            t0 = time.perf_counter()
            if sender.post(event):
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    errors[0] += 1
            i += 1
        sender.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    end_at[0] = time.perf_counter() + seconds + 0.2
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = len(latencies) / seconds
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000 if len(latencies) > 1 else 0.0
    return rate, p95, errors[0]


def _measure(
    serve: Callable[[], tuple[int, Callable[[], None]]],
    senders: int,
    tag: str,
    event_type: str = "bench.intake",
    seconds: float = SECONDS,
) -> tuple[float, float, int]:
    port, stop = serve()
    try:
        return _send(port, senders, seconds, tag, event_type)
    finally:
        stop()


def run(quick: bool = False) -> list[Line]:
    logging.getLogger("services.webhook_receiver").setLevel(logging.ERROR)
    senders_tried = (1, 16) if quick else SENDERS
    seconds = 1.0 if quick else SECONDS
    lines: list[Line] = []
    with tempfile.TemporaryDirectory(prefix="billing-admin-intake-") as tmp:
        root = Path(tmp)
        db = open_database(f"sqlite:///{root / 'ours.sqlite3'}")
        applied = Handler(lambda _c, _e: None, lambda _c, _e, _d: Status.APPLIED)
        pipeline = EventPipeline(
            db,
            StripeGateway("sk_test_unused", api_base="http://127.0.0.1:9"),
            [("bench.applied", applied)],
        )

        def ours() -> tuple[int, Callable[[], None]]:
            receiver = WebhookReceiver(pipeline, lambda: [SECRET], port=0)
            receiver.start()
            return receiver.port, receiver.stop

        def bare() -> tuple[int, Callable[[], None]]:
            server = _BareServer(root / "bare.sqlite3")
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()

            def stop() -> None:
                server.shutdown()
                server.server_close()
                server.db.close()

            return int(server.server_address[1]), stop

        try:
            for senders in senders_tried:
                b_rate, b_p95, b_err = _measure(bare, senders, f"b{senders}", seconds=seconds)
                for what, event_type in (("ignored", "bench.intake"), ("applied", "bench.applied")):
                    o_rate, o_p95, o_err = _measure(
                        ours, senders, f"{what}{senders}", event_type, seconds
                    )
                    ok = o_rate >= max(300, 0.5 * b_rate) and o_err == 0
                    text = (
                        f"intake {what}, {senders:2d} senders: {o_rate:6.0f} events/s, p95 "
                        f"{o_p95:6.1f} ms, {o_err} errors  (bare construct_event+INSERT: "
                        f"{b_rate:6.0f}/s, p95 {b_p95:6.1f} ms, {b_err} errors; ratio "
                        f"{o_rate / b_rate:.2f}x){'' if ok else '  BELOW GOAL'}"
                    )
                    lines.append(
                        Result(f"intake {what}, {senders} senders", round(o_rate, 1),
                               "events/s", round(b_rate, 1), round(o_rate / b_rate, 3),
                               ">= 300 events/s, ratio >= 0.5x, 0 errors", ok, text)
                    )  # fmt: skip
        finally:
            db.close()
    return lines
