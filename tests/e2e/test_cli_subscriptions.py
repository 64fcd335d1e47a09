"""`admin-app subscriptions …` as scripts run it: the money words on stderr, JSON on stdout, one
subscription per idempotency key, and the exit codes for bad input and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer
from tests.e2e.test_cli_invoices import _run


def test_subscriptions_from_the_command_line(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    client = stripe_client
    customer = client.v1.customers.create(
        {
            "name": "Cli Subscriber",
            "email": "subscriber@example.com",
            "payment_method": "pm_card_visa",
        }
    )
    pm = client.v1.customers.payment_methods.list(customer.id).data[0].id
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm}})
    product = client.v1.products.create({"name": "Cli plan"})
    monthly = client.v1.prices.create(
        {"product": product.id, "unit_amount": 1200, "currency": "usd",
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    assert _run(tmp_path, sandbox, "sync").returncode == 0

    args = ["subscriptions", "create", "--customer", "subscriber@example.com", "--price",
            monthly.id, "--quantity", "2", "--idempotency-key", "cli-sub-1", "--json"]  # fmt: skip
    made = _run(tmp_path, sandbox, *args)
    assert made.returncode == 0, made.stderr
    assert "The customer's saved card is charged $24.00 now, then $24.00 every month." in (
        made.stderr
    )
    created = json.loads(made.stdout)
    assert (created["status"], created["amount"], created["mrr"]) == ("active", 2400, 2400)
    again = _run(tmp_path, sandbox, *args)  # the same key: Stripe replays, nothing new
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == created["id"]
    assert len(client.v1.subscriptions.list({"customer": customer.id}).data) == 1

    sub = created["id"]
    changed = _run(tmp_path, sandbox, "subscriptions", "update", sub, "--quantity", "3",
                   "--proration", "none", "--json")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "No proration" in changed.stderr
    assert json.loads(changed.stdout)["quantity"] == 3

    ending = _run(tmp_path, sandbox, "subscriptions", "cancel", sub, "--at-period-end")
    assert ending.returncode == 0, ending.stderr
    assert "cancels at the period end" in ending.stdout
    assert _run(tmp_path, sandbox, "subscriptions", "cancel", sub, "--undo").returncode == 0
    paused = _run(tmp_path, sandbox, "subscriptions", "pause", sub)
    assert paused.returncode == 0, paused.stderr
    assert "voided" in paused.stderr
    assert _run(tmp_path, sandbox, "subscriptions", "resume", sub).returncode == 0
    assert client.v1.subscriptions.retrieve(sub).pause_collection is None

    shown = _run(tmp_path, sandbox, "subscriptions", "show", sub, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["items"][0]["quantity"] == 3
    assert detail["next_invoice"]["amount_due"] == 3600
    assert [h["what"] for h in detail["history"] if h["who"] != "Stripe"] == [
        "Created", "Created", "Price or quantity changed", "Set to cancel at period end",
        "Pending cancellation undone", "Collection paused", "Resumed",
    ]  # fmt: skip

    listed = _run(tmp_path, sandbox, "subscriptions", "list", "--status", "active", "--csv")
    assert listed.returncode == 0, listed.stderr
    assert sub in listed.stdout

    # Bad input exits 2 and changes nothing.
    same = _run(tmp_path, sandbox, "subscriptions", "update", sub, "--quantity", "3")
    assert (same.returncode, same.stderr.strip()) == (
        2, f"admin-app: {sub} already has quantity 3."
    )  # fmt: skip
    both = _run(tmp_path, sandbox, "subscriptions", "update", sub, "--quantity", "2",
                "--price", monthly.id)  # fmt: skip
    assert both.returncode == 2
    now = _run(tmp_path, sandbox, "subscriptions", "cancel", sub)
    assert now.returncode == 0, now.stderr
    assert _run(tmp_path, sandbox, "subscriptions", "pause", sub).returncode == 2
