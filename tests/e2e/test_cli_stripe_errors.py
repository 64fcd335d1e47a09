"""A command that Stripe refuses prints one clear line on stderr; the gateway's record of the
refusal (type, status, request id) goes to the log file only."""

from __future__ import annotations

import re
from pathlib import Path

from stripe_sandbox import SandboxServer
from tests.e2e.test_cli_invoices import _run


def test_a_refused_command_prints_one_line_and_logs_the_details(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    for command in ("show", "charge"):
        result = _run(tmp_path, sandbox, "invoices", command, "in_missing")
        assert result.returncode == 4, result.stderr
        assert result.stderr.splitlines() == [
            "admin-app: Stripe has no such object: No such invoice: 'in_missing'"
        ]
    log = (tmp_path / "home" / "logs" / "billing-admin.log").read_text()
    logged = re.findall(r"Stripe error InvalidRequestError \(request (req_\w+), status 404\)", log)
    assert len(logged) >= 2  # one per command, with the request id support quotes to Stripe
    assert f"Stripe request id: {logged[-1]}" in log
