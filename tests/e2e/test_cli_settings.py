"""`admin-app settings` and `admin-app secrets`, run as an operator runs them.

Every setting of the Settings dialog round-trips; bad input is exit 2, one line, and changes
nothing; each change is audited. A secret is read from stdin and never appears on any process's
command line (checked in /proc/*/cmdline for the whole run), in the log, the settings file or
the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import _env
from tests.helpers.file_keyring import FILE_VAR

REPO = Path(__file__).resolve().parents[2]


def _run(
    tmp_path: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args],
        env=env or _env(tmp_path), input=stdin, capture_output=True, text=True, timeout=120,
        check=False, cwd=REPO,
    )  # fmt: skip


def _show(tmp_path: Path) -> dict[str, Any]:
    result = _run(tmp_path, "settings", "show", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _settings_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / "config" / "settings.json"


def test_every_setting_round_trips_and_is_audited(tmp_path: Path) -> None:
    before = _show(tmp_path)
    assert set(before) == {
        "database-url", "api-base", "stripe-cli", "webhook-port", "topup-success-url",
        "topup-cancel-url", "credit-price", "credit-currency", "credit-min", "credit-max",
        "purchase-expiry-months",
    }  # fmt: skip
    assert before["webhook-port"] == {
        "value": None,
        "scope": "machine",
        "stored_in": str(_settings_file(tmp_path)),
    }
    assert before["credit-price"]["value"] == "0.10"
    assert before["credit-price"]["scope"] == "team"

    cli = tmp_path / "stripe"
    cli.write_text("#!/bin/sh\n")
    cli.chmod(0o755)
    db = f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"
    wanted = {
        "webhook-port": "4343",
        "stripe-cli": str(cli),
        "api-base": "http://127.0.0.1:12111",
        "topup-success-url": "https://example.com/thanks?s={CHECKOUT_SESSION_ID}",
        "topup-cancel-url": "https://example.com/cancelled",
        "credit-currency": "eur",
        "credit-price": "0.25",
        "credit-max": "5000",
        "credit-min": "10",
        "purchase-expiry-months": "6",
        "database-url": db,  # last: from here on the commands would open that database
    }
    for key, value in wanted.items():
        result = _run(tmp_path, "settings", "set", key, value)
        assert result.returncode == 0, (key, result.stderr)
        assert result.stdout.startswith(f"{key} = {value}")
    # The database URL points elsewhere now; read the first database again to compare.
    env = _env(tmp_path) | {
        "BILLING_ADMIN_DB": f"sqlite:///{tmp_path / 'home/data/sandbox.sqlite3'}"
    }
    shown = json.loads(_run(tmp_path, "settings", "show", "--json", env=env).stdout)
    assert {k: v["value"] for k, v in shown.items()} == wanted
    saved = json.loads(_settings_file(tmp_path).read_text())
    assert saved["webhook_port"] == 4343
    assert saved["database_url"] == db
    assert "credit_price" not in saved  # the team's prices are the database's

    result = _run(tmp_path, "settings", "unset", "credit-price", env=env)
    assert result.returncode == 0, result.stderr
    assert "now 0.10" in result.stdout or "now 0.1" in result.stdout
    assert _run(tmp_path, "settings", "unset", "webhook-port", env=env).returncode == 0
    assert json.loads(_settings_file(tmp_path).read_text())["webhook_port"] is None

    audit = _run(tmp_path, "audit", "list", "--action", "settings.change", "--json", env=env)
    rows = json.loads(audit.stdout)
    targets = {r["target"] for r in rows if r["outcome"] == "ok"}
    assert {"webhook-port", "database-url", "topup-success-url", "stripe-cli"} <= targets
    pricing = _run(tmp_path, "audit", "list", "--action", "pricing.set", "--json", env=env)
    assert len(json.loads(pricing.stdout)) == 5  # currency, price, max, min, and the unset


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("webhook-port", "99", "between 1024 and 65535"),
        ("webhook-port", "http", "must be a number"),
        ("api-base", "http://127.0.0.1@evil.example", "user name or password"),
        ("database-url", "mysql://db/x", "must start with sqlite:///"),
        ("database-url", "postgresql://u:hunter2@db/x", "~/.pgpass"),
        ("stripe-cli", "/nonexistent/stripe", "not an executable file"),
        ("topup-success-url", "http://example.com/thanks", "must be an https:// address"),
        ("credit-price", "0.001", "0.001"),
        ("credit-min", "1", "at least 0.50"),
        ("credit-max", "50", "larger than the largest"),
        ("credit-currency", "euro", "three-letter code"),
        ("no-such-key", "x", "the settings are: database-url"),
        ("webhook-port", " ", "Give webhook-port a value"),
    ],
)
def test_bad_input_is_exit_2_one_line_and_nothing_saved(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    assert _run(tmp_path, "settings", "set", "webhook-port", "5000").returncode == 0
    file_before = _settings_file(tmp_path).read_bytes()
    shown_before = _show(tmp_path)
    result = _run(tmp_path, "settings", "set", key, value)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "hunter2" not in result.stderr
    assert _settings_file(tmp_path).read_bytes() == file_before
    assert _show(tmp_path) == shown_before


def _watch_cmdlines(secret: bytes, stop: threading.Event, seen: list[bytes]) -> None:
    """Every process's command line, over and over, until `stop`: any holding `secret`."""
    while not stop.is_set():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"secrets\0set" in cmdline:
                seen.append(b"the command itself")
            if secret in cmdline:
                seen.append(cmdline)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux's /proc")
def test_a_secret_comes_from_stdin_into_the_keyring_and_is_never_on_a_command_line(
    tmp_path: Path,
) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = _env(tmp_path) | {
        "PYTHON_KEYRING_BACKEND": "tests.helpers.file_keyring.FileKeyring",
        FILE_VAR: str(keyring_file),
    }
    secret = "whsec_" + "StdinOnlyWebhookSecret0042"
    seen: list[bytes] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_cmdlines, args=(secret.encode(), stop, seen))
    watcher.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "admin_app", "secrets", "set", "webhook-secret"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=REPO,
        )  # fmt: skip
        out, err = proc.communicate(secret + "\n", timeout=120)
    finally:
        stop.set()
        watcher.join()
    assert proc.returncode == 0, err
    assert "whsec_…0042" in out
    assert secret not in out + err
    assert b"the command itself" in seen, "the watcher never saw the command run"
    assert [s for s in seen if s != b"the command itself"] == []
    assert json.loads(keyring_file.read_text()) == {"billing-admin/STRIPE_WEBHOOK_SECRET": secret}
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"
    audit = _run(tmp_path, "audit", "list", "--action", "settings.change", "--json", env=env)
    (row,) = json.loads(audit.stdout)
    assert row["target"] == "STRIPE_WEBHOOK_SECRET"
    assert "whsec_…0042" in json.dumps(row, ensure_ascii=False)

    # Not a Stripe key: exit 2, one line, the keyring keeps what it had.
    bad = _run(tmp_path, "secrets", "set", "stripe-key", stdin="pk_test_123456789\n", env=env)
    assert bad.returncode == 2
    assert "publishable key" in bad.stderr
    assert len(json.loads(keyring_file.read_text())) == 1
    empty = _run(tmp_path, "secrets", "set", "stripe-key", stdin="", env=env)
    assert empty.returncode == 2
    assert "never as an argument" in empty.stderr


def test_without_a_keyring_it_names_the_environment_variable(tmp_path: Path) -> None:
    key = "sk_test_" + "NoKeyringHere0000000001"
    result = _run(tmp_path, "secrets", "set", "stripe-key", stdin=key + "\n")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "No usable OS keyring" in line
    assert "STRIPE_SECRET_KEY" in line
    assert "/etc/billing-admin/listen.env" in line
    assert key not in result.stderr
    assert os.environ.get("STRIPE_SECRET_KEY") != key
