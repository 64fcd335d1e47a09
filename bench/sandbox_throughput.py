"""Requests per second through stripe-python against the sandbox, next to a bare baseline.

The baseline is a stdlib ``ThreadingHTTPServer`` (HTTP/1.1 keep-alive) answering a constant
JSON body, hit through a ``requests.Session`` the same way, so the ratio shows what the
sandbox (validation, store, JSON) and stripe-python cost on top of plain HTTP on this machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
import stripe

from bench.results import Line, Result
from stripe_sandbox import SandboxServer

TARGET_RPS = 500
_BODY = b'{"id": "cus_baseline", "object": "customer"}'


class _ConstantHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the sandbox does; otherwise both sit at ~25 req/s

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_BODY)))
        self.end_headers()
        self.wfile.write(_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _rate(call: Callable[[], object], duration: float, threads: int = 1) -> float:
    """Run ``call`` in ``threads`` threads for ``duration`` seconds; return calls/second."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(i: int) -> None:
        start.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            call()
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start.wait()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - began)


def _baseline(duration: float, threads: int) -> float:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ConstantHandler)
    httpd.daemon_threads = True
    server_thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    server_thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/customers/cus_baseline"
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def get() -> object:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        return session.get(url).json()

    try:
        return _rate(get, duration, threads)
    finally:
        for session in sessions:
            session.close()
        httpd.shutdown()
        httpd.server_close()
        server_thread.join()


def _sandbox_rates(duration: float, threads: int) -> dict[str, float]:
    with SandboxServer() as server:
        local = threading.local()
        clients: list[stripe.StripeClient] = []
        lock = threading.Lock()

        def client() -> stripe.StripeClient:
            c = getattr(local, "client", None)
            if c is None:
                c = local.client = stripe.StripeClient(
                    "sk_test_bench", base_addresses={"api": server.url}
                )
                with lock:
                    clients.append(c)
            return c

        customer_id = client().v1.customers.create({"name": "Bench"}).id
        return {
            "customers.retrieve, 1 thread": _rate(
                lambda: client().v1.customers.retrieve(customer_id), duration
            ),
            "customers.list(limit=1), 1 thread": _rate(
                lambda: client().v1.customers.list({"limit": 1}), duration
            ),
            f"customers.retrieve, {threads} threads": _rate(
                lambda: client().v1.customers.retrieve(customer_id), duration, threads
            ),
        }


def run(duration: float = 2.0, threads: int = 4, quick: bool = False) -> list[Line]:
    """Measure and return printable result lines.

    Args:
        duration: Seconds per measurement.
        threads: Client threads for the concurrent measurements.
        quick: Half a second per measurement.
    """
    if quick:
        duration = 0.5
    base_single = _baseline(duration, 1)
    base_multi = _baseline(duration, threads)
    rates = _sandbox_rates(duration, threads)
    lines: list[Line] = [
        f"baseline (stdlib server + requests.Session), 1 thread: {base_single:8.0f} req/s",
        f"baseline (stdlib server + requests.Session), {threads} threads: {base_multi:8.0f} req/s",
    ]
    for label, rate in rates.items():
        base = base_multi if "threads" in label else base_single
        verdict = "ok" if rate >= TARGET_RPS else f"BELOW TARGET {TARGET_RPS}"
        text = (
            f"sandbox via stripe-python, {label}: {rate:8.0f} req/s "
            f"({rate / base:.2f}x baseline) {verdict}"
        )
        lines.append(
            Result(f"sandbox via stripe-python, {label}", round(rate, 1), "req/s",
                   round(base, 1), round(rate / base, 3), f">= {TARGET_RPS} req/s",
                   rate >= TARGET_RPS, text)
        )  # fmt: skip
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
