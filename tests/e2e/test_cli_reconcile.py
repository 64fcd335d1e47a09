"""`admin-app reconcile`: exit 0 when the books match, 6 with the findings, repair with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer
from tests.e2e.test_cli_invoices import _run


def test_reconcile_finds_repairs_and_exits_by_the_books(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    sandbox.seed_demo()
    assert _run(tmp_path, sandbox, "sync", "all").returncode == 0
    clean = _run(tmp_path, sandbox, "reconcile")
    assert clean.returncode == 0, clean.stdout
    assert "Books match" in clean.stdout
    assert "read" in clean.stderr  # progress, page by page
    # An invoice voided in Stripe behind the app's back (nothing listens here).
    listed = json.loads(_run(tmp_path, sandbox, "invoices", "list", "--status", "open",
                             "--json").stdout)  # fmt: skip
    invoice = listed[0]["id"]
    stripe_client.v1.invoices.void_invoice(invoice)
    found = _run(tmp_path, sandbox, "reconcile", "--json")
    assert found.returncode == 6
    report = json.loads(found.stdout)
    assert [(f["kind"], f["target"], f["severity"]) for f in report["findings"]] == [
        ("invoice differs from Stripe", invoice, "medium")
    ]
    as_csv = _run(tmp_path, sandbox, "reconcile", "--csv")
    assert as_csv.returncode == 6
    header, row = as_csv.stdout.splitlines()
    assert header == "severity,kind,target,customer_id,credits,amount,currency,summary,fix"
    assert row.startswith(f"medium,invoice differs from Stripe,{invoice},")
    no_reason = _run(tmp_path, sandbox, "reconcile", "--repair")
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    repaired = _run(tmp_path, sandbox, "reconcile", "--repair", "--reason", "voided by hand")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired 1" in repaired.stderr
    assert "Books match" in repaired.stdout
