"""`admin-app whoami`, `operators …` and `audit …` as an admin would run them, and as a clerk."""

from __future__ import annotations

import csv
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import _env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operator_lifecycle_and_audit_from_the_command_line(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    who = _run(tmp_path, "whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["role"] == "admin"  # the first operator ever

    assert (
        _run(
            tmp_path, "operators", "add", "jsmith", "--role", "support", "--name", "J Smith"
        ).returncode
        == 0
    )
    listed = json.loads(_run(tmp_path, "operators", "list", "--json").stdout)
    assert {(o["login"], o["role"], o["active"]) for o in listed} == {
        (me, "admin", True),
        ("jsmith", "support", True),
    }

    # The last admin cannot step down: exit 2, one line, nothing changed.
    refused = _run(tmp_path, "operators", "set-role", me, "finance")
    assert refused.returncode == 2
    assert "last active admin" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    assert _run(tmp_path, "operators", "set-role", "jsmith", "admin").returncode == 0
    assert _run(tmp_path, "operators", "set-role", me, "finance").returncode == 0

    # Now a finance clerk: managing operators is denied with exit 3 naming the permission.
    denied = _run(tmp_path, "operators", "deactivate", "jsmith")
    assert denied.returncode == 3
    assert denied.stderr.strip() == (
        "admin-app: Permission denied: 'manage operators' is needed (role admin); "
        "your role is finance."
    )

    audit = json.loads(_run(tmp_path, "audit", "list", "--json").stdout)
    actions = [(r["action"], r["outcome"]) for r in audit]
    assert actions[0] == ("operator.deactivate", "denied")
    assert ("operator.set_role", "failed") in actions
    assert actions[-1] == ("operator.bootstrap", "ok")

    out = tmp_path / "audit.csv"
    exported = _run(tmp_path, "audit", "export", str(out), "--action", "operator.set_role")
    assert exported.returncode == 0, exported.stderr
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["outcome"] for r in rows} == {"ok", "failed"}
    assert all(r["action"] == "operator.set_role" for r in rows)


def test_bad_role_and_bad_date_are_exit_2(tmp_path: Path) -> None:
    bad_role = _run(tmp_path, "operators", "add", "x", "--role", "boss")
    assert bad_role.returncode == 2
    assert "Unknown role 'boss'" in bad_role.stderr
    bad_date = _run(tmp_path, "audit", "list", "--since", "yesterday")
    assert bad_date.returncode == 2
    assert "YYYY-MM-DD" in bad_date.stderr


def test_a_stranger_sees_no_data_and_is_told_whom_to_ask(tmp_path: Path) -> None:
    from services.database import open_database
    from services.operators import sign_in

    db_url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    db = open_database(db_url)
    sign_in(db, "the-installer")  # someone else installed it and became admin
    db.close()

    who = _run(tmp_path, "--db", db_url, "whoami")
    assert who.returncode == 3
    assert "not a Billing Admin operator yet" in who.stderr
    assert "operators add" in who.stderr

    shots = tmp_path / "shots"
    gui = _run(tmp_path, "--db", db_url, "--screenshot", str(shots))
    assert gui.returncode == 3
    assert [p.name for p in shots.iterdir()] == ["access-denied.png"]
