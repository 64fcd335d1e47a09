"""The issue, as an operator meets it: a proxy loses Stripe's answer three times (the request
was applied each time), the command fails with exit 5, and the operator runs it again.

Before the request journal every run made a fresh idempotency key: two customers with one
email, two draft invoices, two payable Checkout sessions with only one tracked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.helpers.dropping_proxy import DroppingProxy

REUSE = "re-using the key of the unconfirmed run at"


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[DroppingProxy]:
    with DroppingProxy(sandbox.url) as p:
        yield p


def _run(tmp_path: Path, proxy: DroppingProxy, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_ADMIN_DB")
    }
    env["BILLING_ADMIN_HOME"] = str(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return subprocess.run(
        [sys.executable, "-m", "admin_app", "--api-base", proxy.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _journal(tmp_path: Path, proxy: DroppingProxy, *flags: str) -> list[dict[str, Any]]:
    listed = _run(tmp_path, proxy, "journal", *flags, "--json")
    assert listed.returncode == 0, listed.stderr
    entries: list[dict[str, Any]] = json.loads(listed.stdout)
    return entries


def _lost_then_rerun(
    tmp_path: Path, proxy: DroppingProxy, path: str, *command: str
) -> subprocess.CompletedProcess[str]:
    """Run `command` with three lost answers (exit 5), check the journal, run it again."""
    proxy.drop(path, count=3)
    first = _run(tmp_path, proxy, *command)
    assert first.returncode == 5, first.stderr
    assert REUSE not in first.stderr
    [unknown] = _journal(tmp_path, proxy)
    assert unknown["outcome"] == "unknown"
    again = _run(tmp_path, proxy, *command)
    assert again.returncode == 0, again.stderr
    assert REUSE in again.stderr
    assert unknown["idempotency_key"] in again.stderr
    assert _journal(tmp_path, proxy) == []  # nothing unconfirmed any more
    [done] = [e for e in _journal(tmp_path, proxy, "--all") if e["id"] == unknown["id"]]
    assert (done["outcome"], done["attempts"]) == ("succeeded", 2)
    assert done["idempotency_key"] == unknown["idempotency_key"]
    return again


def test_a_rerun_after_lost_answers_makes_one_customer_one_draft_one_checkout(
    tmp_path: Path, proxy: DroppingProxy, stripe_client: stripe.StripeClient
) -> None:
    added = _lost_then_rerun(
        tmp_path, proxy, "/v1/customers",
        "customers", "add", "--email", "dup@example.com", "--name", "Dup", "--json",
    )  # fmt: skip
    customer = json.loads(added.stdout)["id"]
    in_stripe = stripe_client.v1.customers.list({"email": "dup@example.com"}).data
    assert [c.id for c in in_stripe] == [customer]
    entry = next(e for e in _journal(tmp_path, proxy, "--all") if e["action"] == "customer.create")
    assert entry["object_id"] == customer

    made = _lost_then_rerun(
        tmp_path, proxy, "/v1/invoices",
        "invoices", "create", "--customer", customer, "--amount", "2500", "--currency", "usd",
        "--description", "Consulting", "--json",
    )  # fmt: skip
    invoice = json.loads(made.stdout)["id"]
    drafts = stripe_client.v1.invoices.list({"customer": customer}).data
    assert [i.id for i in drafts] == [invoice]
    assert [li.amount for li in drafts[0].lines.data] == [2500]  # the line, once

    issued = _lost_then_rerun(
        tmp_path, proxy, "/v1/checkout/sessions",
        "topup", "create", "--customer", customer, "--credits", "500", "--json",
    )  # fmt: skip
    session = json.loads(issued.stdout)["checkout_session"]
    sessions = stripe_client.v1.checkout.sessions.list({"customer": customer}).data
    assert [s.id for s in sessions] == [session]
    tracked = _run(tmp_path, proxy, "topups", "list", "--json")
    assert [t["checkout_session"] for t in json.loads(tracked.stdout)] == [session]


def test_a_definite_refusal_then_a_rerun_gets_a_new_key(
    tmp_path: Path, proxy: DroppingProxy, sandbox: SandboxServer
) -> None:
    import urllib.parse
    import urllib.request

    form = urllib.parse.urlencode({"path_prefix": "/v1/customers", "status": "400"}).encode()
    with urllib.request.urlopen(sandbox.url + "/_sandbox/faults", data=form, timeout=10) as r:
        r.read()
    command = ("customers", "add", "--email", "refused@example.com")
    refused = _run(tmp_path, proxy, *command)
    assert refused.returncode == 4, refused.stderr
    assert _journal(tmp_path, proxy) == []  # a refusal is definite: nothing unconfirmed
    again = _run(tmp_path, proxy, *command)
    assert again.returncode == 0, again.stderr
    assert REUSE not in again.stderr
    entries = _journal(tmp_path, proxy, "--all")
    assert sorted(e["outcome"] for e in entries) == ["failed", "succeeded"]
    assert len({e["idempotency_key"] for e in entries}) == 2


def test_idempotency_key_is_used_verbatim_and_validated(
    tmp_path: Path, proxy: DroppingProxy, stripe_client: stripe.StripeClient
) -> None:
    key = "script-2026-12-01-customer-7"
    command = ("customers", "add", "--email", "script@example.com", "--idempotency-key", key)
    made = _run(tmp_path, proxy, *command)
    assert made.returncode == 0, made.stderr
    [entry] = _journal(tmp_path, proxy, "--all")
    assert entry["idempotency_key"] == key
    again = _run(tmp_path, proxy, *command)  # the same key: Stripe replays, one customer
    assert again.returncode == 0, again.stderr
    assert len(stripe_client.v1.customers.list({"email": "script@example.com"}).data) == 1

    other = _run(tmp_path, proxy, "customers", "add", "--email", "x@example.com",
                 "--idempotency-key", key)  # fmt: skip
    assert other.returncode == 2
    assert "already used for a different request" in other.stderr
    too_long = _run(tmp_path, proxy, "customers", "add", "--email", "y@example.com",
                    "--idempotency-key", "k" * 256)  # fmt: skip
    assert too_long.returncode == 2
    assert "at most 255" in too_long.stderr
    assert "Traceback" not in too_long.stderr + other.stderr
    assert stripe_client.v1.customers.list({"email": "x@example.com"}).data == []
    assert stripe_client.v1.customers.list({"email": "y@example.com"}).data == []
    assert len(_journal(tmp_path, proxy, "--all")) == 1


def test_forget_resolves_an_unconfirmed_entry_by_hand(tmp_path: Path, proxy: DroppingProxy) -> None:
    proxy.drop("/v1/customers", count=3)
    lost = _run(tmp_path, proxy, "customers", "add", "--email", "gone@example.com")
    assert lost.returncode == 5
    listed = _run(tmp_path, proxy, "journal")
    assert "unknown" in listed.stdout
    assert "customer.create" in listed.stdout
    [entry] = _journal(tmp_path, proxy)
    no_reason = _run(tmp_path, proxy, "journal", "forget", str(entry["id"]))
    assert no_reason.returncode == 2
    forgot = _run(tmp_path, proxy, "journal", "forget", str(entry["id"]), "--reason",
                  "created by hand in the dashboard")  # fmt: skip
    assert forgot.returncode == 0, forgot.stderr
    assert _journal(tmp_path, proxy) == []
    audit = _run(tmp_path, proxy, "audit", "list", "--action", "journal.forget", "--json")
    [row] = json.loads(audit.stdout)
    assert row["reason"] == "created by hand in the dashboard"
    assert row["idempotency_key"] == entry["idempotency_key"]
