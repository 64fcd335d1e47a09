"""Reconcile a 10,000-top-up account against the sandbox, next to the bare reads it needs.

The account: 10,000 paid Checkout sessions (one genuine paid session cloned in the sandbox's
store), each with its top-up and its purchase in a SQLite file — books that match. Ours: the
whole `Reconciler.run` (Stripe's sessions, refunds, disputes and invoices page by page, the
ledger and top-ups compared). Baseline, in the same run: only paging through the same lists
as raw JSON, which any reconcile must do. Goal: well under a minute (< 30 s here) and < 2x the
bare reads.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
import urllib.request
from pathlib import Path

import stripe

from bench.results import Line, Result
from services.audit import Authority
from services.database import open_database
from services.events import EventPipeline
from services.models import CreditEntry, TopUp
from services.operators import sign_in
from services.reconcile import Reconciler
from services.stripe_gateway import StripeGateway
from stripe_sandbox import SandboxServer

KEY = "sk_test_bench_reconcile"
TOPUPS = 10_000


def _paid_session(srv: SandboxServer, client: stripe.StripeClient) -> dict[str, object]:
    customer = client.v1.customers.create({"email": "bench@example.com"})
    metadata = {"topup_id": "tu_bench_0", "credits": "500"}
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment", "customer": customer.id, "metadata": metadata,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": 5000, "product_data": {"name": "500 credits"}}}],
        }
    )  # fmt: skip
    request = urllib.request.Request(
        f"{srv.url}/_sandbox/checkout/sessions/{session.id}/pay",
        data=b"card=4242424242424242", method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    stored = srv._store.get("checkout.session", session.id)
    assert stored is not None
    assert stored["payment_status"] == "paid"
    return stored


def _seed(srv: SandboxServer, client: stripe.StripeClient, count: int = TOPUPS) -> None:
    genuine = _paid_session(srv, client)
    now = int(time.time())
    topups, entries = [], []
    for n in range(count):
        session = copy.deepcopy(genuine)
        session["id"] = f"cs_test_bench{n:06d}"
        session["metadata"] = {"topup_id": f"tu_bench_{n}", "credits": "500"}
        srv._store.add(session)
        topups.append({
            "topup_id": f"tu_bench_{n}", "customer_id": str(session["customer"]), "credits": 500,
            "amount": 5000, "currency": "usd", "status": "credited",
            "checkout_session_id": session["id"], "issued_by": "bench", "issued_at": now,
            "expires_at": now + 3600, "paid_at": now, "credited_at": now,
        })  # fmt: skip
        entries.append({
            "customer_id": str(session["customer"]), "amount": 500, "kind": "purchase",
            "source": f"tu_bench_{n}", "topup_id": f"tu_bench_{n}", "operator": "stripe",
            "created_at": now,
        })  # fmt: skip
    for start in range(0, count, 500):
        TopUp.insert_many(topups[start : start + 500]).execute()
        CreditEntry.insert_many(entries[start : start + 500]).execute()


def _bare_reads(client: stripe.StripeClient) -> int:
    read = 0
    for path in ("/v1/checkout/sessions", "/v1/refunds", "/v1/disputes", "/v1/invoices"):
        after: dict[str, str] = {}
        while True:
            page = json.loads(client.raw_request("get", path, limit=100, **after).body)
            read += len(page["data"])
            if not page["has_more"]:
                break
            after = {"starting_after": page["data"][-1]["id"]}
    return read


def run(quick: bool = False) -> list[Line]:
    logging.getLogger("stripe_sandbox").setLevel(logging.WARNING)
    topups = 1_000 if quick else TOPUPS
    srv = SandboxServer(port=0)
    srv.start()
    try:
        client = stripe.StripeClient(KEY, base_addresses={"api": srv.url})
        with tempfile.TemporaryDirectory(prefix="billing-admin-reconcile-") as tmp:
            db = open_database(f"sqlite:///{Path(tmp) / 'books.sqlite3'}")
            try:
                authority = Authority(db, sign_in(db, "bench"))
                _seed(srv, client, topups)
                t0 = time.perf_counter()
                read = _bare_reads(client)
                bare = time.perf_counter() - t0
                gateway = StripeGateway(KEY, api_base=srv.url, sandbox=True)
                books = Reconciler(db, gateway, authority, EventPipeline(db, gateway))
                t0 = time.perf_counter()
                report = books.run(since=0)
                ours = time.perf_counter() - t0
            finally:
                db.close()
    finally:
        srv.stop()
    ok = report.matches and ours < 30 and ours < 2 * bare
    text = (
        f"reconcile, {topups:,} top-ups: {ours:5.1f} s, {len(report.findings)} findings  "
        f"(bare paging of the same {read:,} objects: {bare:5.1f} s; ratio "
        f"{ours / bare:.2f}x){'' if ok else '  BELOW GOAL'}"
    )
    return [
        Result(f"reconcile, {topups:,} top-ups", round(ours, 3), "s", round(bare, 3),
               round(ours / bare, 3), "books match, < 30 s and ratio < 2x", ok, text)
    ]  # fmt: skip
