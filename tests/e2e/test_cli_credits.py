"""`admin-app credits consume|show|grant --expires|overdraft` as a product's script runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from services.database import open_database
from services.models import Customer
from tests.e2e.test_cli import _env


def _cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**_env(tmp_path), "BILLING_ADMIN_DB": url}
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_consume_spends_once_per_key_and_exits_2_when_short(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'books.sqlite3'}"
    db = open_database(url)
    now = int(time.time())
    Customer.insert(stripe_id="cus_cli", created=now, raw={}, synced_at=now, name="Cli").execute()
    db.close()

    granted = _cli(tmp_path, url, "credits", "grant", "--customer", "cus_cli", "--credits", "100",
                   "--reason", "trial", "--expires", "2099-06-30")  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    assert "expiring at the end of 2099-06-30" in granted.stdout
    bad = _cli(tmp_path, url, "credits", "grant", "--customer", "cus_cli", "--credits", "5",
               "--reason", "r", "--expires", "30/06/2099")  # fmt: skip
    assert (bad.returncode, bad.stderr.strip()) == (
        2, "admin-app: An expiry date is YYYY-MM-DD, not '30/06/2099'.",
    )  # fmt: skip

    args = ["credits", "consume", "--customer", "cus_cli", "--credits", "40", "--key", "ord-1"]
    first = _cli(tmp_path, url, *args, "--reference", "order 1", "--json")
    assert first.returncode == 0, first.stderr
    spend = json.loads(first.stdout)
    assert (spend["credits"], spend["available"], spend["replayed"]) == (40, 60, False)
    assert spend["allocations"] == [{"credits": 40, "lot_id": 1, "lot_kind": "grant"}]
    again = _cli(tmp_path, url, *args, "--json")
    assert json.loads(again.stdout)["entry_id"] == spend["entry_id"]
    assert json.loads(again.stdout)["replayed"] is True
    reused = _cli(tmp_path, url, "credits", "consume", "--customer", "cus_cli", "--credits", "41",
                  "--key", "ord-1")  # fmt: skip
    assert reused.returncode == 2
    assert "already used to spend 40 credits" in reused.stderr
    short = _cli(tmp_path, url, "credits", "consume", "--customer", "cus_cli", "--credits", "61",
                 "--key", "ord-2")  # fmt: skip
    assert short.returncode == 2
    assert "has 60 available, 61 asked" in short.stderr
    assert len(short.stderr.strip().splitlines()) == 1

    shown = _cli(tmp_path, url, "credits", "show", "--customer", "cus_cli")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "cus_cli: 60 credits available (paid 0, promotional 60)"
    assert lines[1] == "  next expiry: 60 credits at 2099-06-30 23:59 UTC"
    assert "spend" in shown.stdout

    allowed = _cli(tmp_path, url, "credits", "overdraft", "--customer", "cus_cli", "--limit",
                   "10", "--reason", "good customer")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    over = _cli(tmp_path, url, "credits", "consume", "--customer", "cus_cli", "--credits", "70",
                "--key", "ord-3")  # fmt: skip
    assert over.returncode == 0, over.stderr
    assert "-10 available" in over.stdout
