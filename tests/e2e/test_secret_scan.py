"""A whole session with known secrets, then a search of every file the app wrote for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from admin_app.paths import AppPaths
from admin_app.wiring import Options, build_runtime
from services.configuration import ConfigChange
from services.errors import AuthenticationFailed
from services.stripe_gateway import StripeGateway
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from tests.e2e.test_cli import _env

KEY = "sk_test_51ScanMeIfYouCanKnownKey000000000001"
NEW_KEY = "sk_test_51ScanMeIfYouCanKnownKey000000000002"
# Built at run time so no literal in the source looks like a real secret.
WEBHOOK = "whsec_" + "ScanMeIfYouCanKnownWebhookSecret0001"
SECRETS = (KEY, NEW_KEY, WEBHOOK)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_secrets_appear_in_no_database_log_or_config_file(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.seed_demo()
    home = tmp_path / "home"
    # 1. The GUI, verbose, with the key in the environment: connection check, panels, dialogs.
    env = _env(tmp_path) | {"STRIPE_SECRET_KEY": KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK}
    shots = subprocess.run(
        [sys.executable, "-m", "admin_app", "-v", "--api-base", sandbox.url,
         "--screenshot", str(tmp_path / "shots")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shots.returncode == 0, shots.stderr
    for secret in SECRETS:
        assert secret not in shots.stdout + shots.stderr

    # 2. In process: sync, change the key in Settings, and hit a Stripe error.
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)
    paths = AppPaths(home / "config", home / "data", home / "logs")
    runtime = build_runtime(Options(api_base=sandbox.url), paths)
    try:
        ctx = runtime.require_context()
        ctx.sync.pull(SyncTarget.ALL)
        ctx.config.apply(ConfigChange(secret_key=NEW_KEY, webhook_secret=WEBHOOK))
        bad = StripeGateway(f"sk_live_{KEY[8:]}", api_base=sandbox.url)
        with pytest.raises(AuthenticationFailed):
            bad.check_connection()
    finally:
        runtime.close()

    written = _files(home)
    names = {p.name for p in written}
    assert "billing-admin.sqlite3" in names
    assert "billing-admin.log" in names
    assert "settings.json" in names
    for path in written:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret[:12]}… found in {path}"
