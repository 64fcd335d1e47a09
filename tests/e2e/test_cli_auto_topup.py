"""`admin-app topup create --save-card`, `credits auto-topup show|set|off`, `credits attention`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


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


def test_save_a_card_then_turn_auto_topup_on_and_off(
    tmp_path: Path, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    sandbox.seed_demo()
    assert _run(tmp_path, sandbox, "sync", "products").returncode == 0
    added = _run(tmp_path, sandbox, "customers", "add", "--email", "auto@example.com", "--json")
    assert added.returncode == 0, added.stderr
    customer = json.loads(added.stdout)["id"]
    pack = next(
        p.id
        for p in stripe_client.v1.products.list({"limit": 100}).data
        if p.metadata.to_dict().get("credits") == "500"
    )
    # No saved card yet: refused with one line, nothing stored.
    refused = _run(tmp_path, sandbox, "credits", "auto-topup", "set", "--customer", customer,
                   "--threshold", "200", "--pack", pack)  # fmt: skip
    assert refused.returncode == 2
    assert "no saved card" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    issued = _run(tmp_path, sandbox, "topup", "create", "--customer", customer, "--pack", pack,
                  "--save-card", "--json")  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    session = json.loads(issued.stdout)["checkout_session"]
    status, _, _ = call(
        sandbox.url, "POST", f"/_sandbox/checkout/sessions/{session}/pay",
        "card=4242424242424242", key=None,
    )  # fmt: skip
    assert status == 200
    assert len(stripe_client.v1.customers.payment_methods.list(customer).data) == 1
    on = _run(tmp_path, sandbox, "credits", "auto-topup", "set", "--customer", customer,
              "--threshold", "200", "--pack", pack, "--failure-limit", "2")  # fmt: skip
    assert on.returncode == 0, on.stderr
    assert "auto top-up on; below 200 credits" in on.stdout
    shown = _run(tmp_path, sandbox, "credits", "auto-topup", "show", "--customer", customer,
                 "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    config = json.loads(shown.stdout)
    assert (config["auto_topup"], config["threshold"], config["pack"]) == (True, 200, pack)
    assert config["failure_limit"] == 2
    bad = _run(tmp_path, sandbox, "credits", "auto-topup", "set", "--customer", customer,
               "--threshold", "-5")  # fmt: skip
    assert bad.returncode == 2
    attention = _run(tmp_path, sandbox, "credits", "attention", "--json")
    assert (attention.returncode, json.loads(attention.stdout)) == (0, [])
    off = _run(tmp_path, sandbox, "credits", "auto-topup", "off", "--customer", customer)
    assert off.returncode == 0, off.stderr
    assert "auto top-up off" in off.stdout
