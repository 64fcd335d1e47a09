"""`admin-app` as scripts and people run it: screenshots, the sandbox command, exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import stripe

from tests.conftest import TEST_KEY


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_ADMIN_DB")
    }
    env["BILLING_ADMIN_HOME"] = str(tmp_path / "home")
    env["QT_QPA_PLATFORM"] = "offscreen"
    # No OS keyring in a subprocess: the app must still start, in sandbox mode.
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


def _admin_app(
    tmp_path: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_screenshot_writes_every_panel(tmp_path: Path) -> None:
    out = tmp_path / "shots"
    result = _admin_app(tmp_path, "--screenshot", str(out))
    assert result.returncode == 0, result.stderr
    names = ("customers", "products", "invoices", "credits", "topups", "events", "audit",
             "settings", "operators")  # fmt: skip
    for name in names:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000, f"{name}.png looks blank"
    # Sandbox mode keeps its own database, apart from a real account's mirror.
    assert (tmp_path / "home" / "data" / "sandbox.sqlite3").exists()
    assert not (tmp_path / "home" / "data" / "billing-admin.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-such-flag"], "unrecognized arguments"),
        (["sandbox", "--port", "70000"], "port must be"),
        (["--db", "mysql://db/billing", "--screenshot", "x"], "database URL"),
        (["--api-base", "http://example.com", "--screenshot", "x"], "API address"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = _admin_app(tmp_path, *args, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_a_damaged_settings_file_is_one_clear_line(tmp_path: Path) -> None:
    settings = tmp_path / "home" / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text("{oops")
    result = _admin_app(tmp_path, "--screenshot", str(tmp_path / "s"), timeout=60)
    assert result.returncode == 2
    assert "damaged" in result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_command_prints_ready_first_and_serves_stripe_python(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "admin_app", "sandbox", "--port", "0", "--seed-demo"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("Sandbox ready: http://127.0.0.1:")
        url = first.removeprefix("Sandbox ready: ")
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": url})
        assert len(client.v1.customers.list({"limit": 5}).data) == 5
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_sandbox_on_a_busy_port_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = _admin_app(tmp_path, "sandbox", "--port", str(port), timeout=30)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_self_test_passes_and_says_what_it_checked(tmp_path: Path) -> None:
    result = _admin_app(tmp_path, "--self-test", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "self-test: ok"
    checked = {line.split()[1].rstrip(":") for line in lines if line.startswith("ok ")}
    assert checked == {"database", "keyring", "resources", "stripe", "window", "qt-binding"}
    assert "keeps None/True/False alive" in result.stdout


def test_pricing_is_shown_and_set_by_admins_only(tmp_path: Path) -> None:
    shown = _admin_app(tmp_path, "pricing", "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "$0.10 per credit, 100 to 100,000 credits"
    changed = _admin_app(
        tmp_path, "pricing", "set", "--price", "0.25", "--max", "50000", "--reason", "Q1 prices"
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "$0.25 per credit, 100 to 50,000 credits"
    bad = _admin_app(tmp_path, "pricing", "set", "--min", "100000", "--reason", "oops")
    assert bad.returncode == 2
    assert "larger than the largest" in bad.stderr
    assert json.loads(_admin_app(tmp_path, "pricing", "show", "--json").stdout) == {
        "currency": "usd", "maximum": 50000, "minimum": 100, "unit_amount": 25,
    }  # fmt: skip


def test_overview_prints_the_panels_figures(tmp_path: Path) -> None:
    shown = _admin_app(tmp_path, "overview", "--period", "7d", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert len(data["revenue"]["by_day"]) == 7
    assert data["revenue"]["total"] == {"now": 0, "before": 0, "change_percent": None}
    text = _admin_app(tmp_path, "overview", "--period", "2026-11-01..2026-11-30")
    assert text.returncode == 0, text.stderr
    assert "2026-11-01 to 2026-11-30" in text.stdout
    assert "Receivables" in text.stdout
    bad = _admin_app(tmp_path, "overview", "--period", "last week")
    assert bad.returncode == 2
    assert "use 7d, 30d, 90d, month" in bad.stderr
