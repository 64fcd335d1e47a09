"""`admin-app invoices …` as scripts run it: JSON with Stripe ids, and the charge exit codes
(0 paid, 4 declined with the reason on stderr, 5 Stripe unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer


def _post(sandbox: SandboxServer, path: str, **form: object) -> None:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(sandbox.url + path, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _run(tmp_path: Path, sandbox: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_ADMIN_DB")
    }
    env["BILLING_ADMIN_HOME"] = str(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return subprocess.run(
        [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _customer(client: stripe.StripeClient, sandbox: SandboxServer, card: str) -> str:
    customer = client.v1.customers.create({"name": "Cli Customer", "email": "cli@example.com"})
    _post(sandbox, f"/_sandbox/customers/{customer.id}/attach_card", card=card)
    return customer.id


def _open_invoice(tmp_path: Path, sandbox: SandboxServer, customer: str) -> str:
    made = _run(
        tmp_path, sandbox, "invoices", "create", "--customer", customer, "--amount", "2500",
        "--currency", "usd", "--description", "Consulting", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    invoice_id = str(json.loads(made.stdout)["id"])
    assert invoice_id.startswith("in_")
    finalized = _run(tmp_path, sandbox, "invoices", "finalize", invoice_id)
    assert finalized.returncode == 0, finalized.stderr
    assert "finalized" in finalized.stdout
    return invoice_id


def test_list_show_create_and_charge_exit_codes(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    sandbox.seed_demo()
    good = _customer(stripe_client, sandbox, "4242424242424242")
    poor = _customer(stripe_client, sandbox, "4000000000009995")
    synced = _run(tmp_path, sandbox, "sync", "all")
    assert synced.returncode == 0, synced.stderr
    assert "invoices: 33 seen" in synced.stdout

    listed = _run(tmp_path, sandbox, "invoices", "list", "--status", "open", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 9
    assert all(r["id"].startswith("in_") and r["status"] == "open" for r in rows)
    every = _run(tmp_path, sandbox, "invoices", "list")
    # Hand-computed from the demo data: one-off invoices 3,405 paid + 3,765 owed on open
    # invoices + 3,740 left on drafts, void and uncollectible ones (not owed) = 10,910;
    # subscription invoices 965 paid + 618 owed = 1,583.
    assert every.stdout.splitlines()[-1] == (
        "33 invoices in USD: total $12,493.00 · paid $4,370.00 · outstanding $4,383.00 "
        "(on 9 open invoices)"
    )

    declined = _open_invoice(tmp_path, sandbox, poor)
    result = _run(tmp_path, sandbox, "invoices", "charge", declined)
    assert result.returncode == 4
    assert "insufficient funds" in result.stderr
    assert "Traceback" not in result.stderr

    paid = _open_invoice(tmp_path, sandbox, good)
    _post(sandbox, "/_sandbox/faults", path_prefix=f"/v1/invoices/{paid}/pay", method="POST",
          status=500, count=3)  # fmt: skip
    result = _run(tmp_path, sandbox, "invoices", "charge", paid)
    assert result.returncode == 5, result.stderr
    assert "at most once" in result.stderr
    result = _run(tmp_path, sandbox, "invoices", "charge", paid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Paid")
    again = _run(tmp_path, sandbox, "invoices", "charge", paid)
    assert again.returncode == 0, again.stderr
    assert "Already paid" in again.stdout

    shown = _run(tmp_path, sandbox, "invoices", "show", paid, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (detail["id"], detail["status"], detail["amount_paid"]) == (paid, "paid", 2500)
    assert [p["status"] for p in detail["payments"]] == ["paid"]
    assert any("Charge" in h["what"] for h in detail["history"])

    bad = _run(tmp_path, sandbox, "invoices", "create", "--customer", good, "--amount", "100")
    assert bad.returncode == 2
    assert "--currency" in bad.stderr


def test_create_takes_an_email_that_names_one_customer(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    one = stripe_client.v1.customers.create({"name": "Wei Nwosu", "email": "wei@nwosu.example"})
    for _ in range(2):
        stripe_client.v1.customers.create({"email": "shared@example.com"})
    assert _run(tmp_path, sandbox, "sync", "customers").returncode == 0
    line = ("--amount", "2500", "--currency", "usd", "--description", "Consulting", "--json")
    made = _run(tmp_path, sandbox, "invoices", "create", "--customer", "Wei@Nwosu.example", *line)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["customer"] == one.id
    shared = _run(
        tmp_path, sandbox, "invoices", "create", "--customer", "shared@example.com", *line
    )
    assert shared.returncode == 2
    assert "2 customers have the email shared@example.com" in shared.stderr
    nobody = _run(tmp_path, sandbox, "invoices", "create", "--customer", "no@one.example", *line)
    assert nobody.returncode == 2
    assert "No customer with the email no@one.example" in nobody.stderr
