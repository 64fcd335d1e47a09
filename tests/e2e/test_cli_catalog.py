"""`admin-app customers show/add/edit`, `products list/add` and `portal-link` as scripts run
them: what they print, what reaches Stripe, and one clear line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer


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
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _one_line_exit_2(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_customers_add_show_and_edit(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    added = _run(
        tmp_path, sandbox, "customers", "add", "--email", "ada@example.com", "--name", "Ada",
        "--phone", "+4930123", "--metadata", "tier=gold", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    customer_id = made["id"]
    assert (made["email"], made["name"]) == ("ada@example.com", "Ada")
    in_stripe = stripe_client.v1.customers.retrieve(customer_id)
    assert (in_stripe.email, in_stripe.phone, in_stripe.to_dict()["metadata"]) == (
        "ada@example.com", "+4930123", {"tier": "gold"},
    )  # fmt: skip

    shown = _run(tmp_path, sandbox, "customers", "show", customer_id)
    assert shown.returncode == 0, shown.stderr
    assert f"Ada <ada@example.com>  {customer_id}" in shown.stdout
    assert "metadata: tier=gold" in shown.stdout
    as_json = json.loads(_run(tmp_path, sandbox, "customers", "show", customer_id, "--json").stdout)
    assert as_json["id"] == customer_id

    edited = _run(
        tmp_path, sandbox, "customers", "edit", customer_id, "--name", "Ada Lovelace",
        "--notes", "prefers email", "--metadata", "region=eu",
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert edited.stdout.strip() == f"Updated {customer_id}."
    in_stripe = stripe_client.v1.customers.retrieve(customer_id)
    assert in_stripe.name == "Ada Lovelace"
    assert in_stripe.to_dict()["metadata"] == {"tier": "gold", "region": "eu"}
    assert "prefers email" not in json.dumps(in_stripe.to_dict())  # notes stay local
    again = json.loads(_run(tmp_path, sandbox, "customers", "show", customer_id, "--json").stdout)
    assert again["name"] == "Ada Lovelace"

    _one_line_exit_2(_run(tmp_path, sandbox, "customers", "edit", customer_id), "Nothing to change")
    _one_line_exit_2(
        _run(tmp_path, sandbox, "customers", "add", "--email", "not-an-email"), "email"
    )
    missing = _run(tmp_path, sandbox, "customers", "show", "cus_nobody")
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1
    assert len(stripe_client.v1.customers.list({"limit": 100}).data) == 1


def test_products_add_and_list(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    added = _run(
        tmp_path, sandbox, "products", "add", "--name", "Starter pack", "--amount", "4500",
        "--currency", "usd", "--credits", "500", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    product = json.loads(added.stdout)
    in_stripe = stripe_client.v1.products.retrieve(product["id"])
    assert (in_stripe.name, in_stripe.to_dict()["metadata"]) == ("Starter pack", {"credits": "500"})
    assert product["credits"] == 500
    listed = _run(tmp_path, sandbox, "products", "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if product["id"] in row]
    assert "Starter pack" in line
    assert "$45.00" in line
    assert "500 credits" in line
    _one_line_exit_2(
        _run(tmp_path, sandbox, "products", "add", "--name", "X", "--amount", "-5",
             "--currency", "usd"),
        "amount",
    )  # fmt: skip
    _one_line_exit_2(
        _run(tmp_path, sandbox, "products", "add", "--name", "X", "--amount", "500",
             "--currency", "zzz"),
        "currency",
    )  # fmt: skip
    assert len(stripe_client.v1.products.list({"limit": 100}).data) == 1


def test_portal_link(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create({"email": "portal@example.com"})
    assert _run(tmp_path, sandbox, "sync", "customers").returncode == 0
    made = _run(
        tmp_path, sandbox, "portal-link", "--customer", customer.id,
        "--return-url", "https://example.com/account",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(sandbox.url)
    assert len(made.stdout.strip().splitlines()) == 1
    unknown = _run(tmp_path, sandbox, "portal-link", "--customer", "cus_nobody")
    assert unknown.returncode == 4, unknown.stderr
    # The gateway's warning (with the request id) comes first; the error is the last line.
    assert unknown.stderr.strip().splitlines()[-1] == (
        "admin-app: Stripe has no such object: No such customer: 'cus_nobody'"
    )
    assert "Traceback" not in unknown.stderr
