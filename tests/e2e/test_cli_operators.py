"""`admin-app whoami`, `operators …` and `audit …` as an admin would run them, and as a clerk."""

from __future__ import annotations

import csv
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import _env


def _run(tmp_path: Path, *args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *(["--db", db] if db else []), *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)],
                         indirect=True)  # fmt: skip
def test_operator_lifecycle_and_audit_from_the_command_line(tmp_path: Path, db_url: str) -> None:
    """Several people with roles: a shared PostgreSQL (SQLite is single-seat)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run(tmp_path, *args, db=db_url)

    who = run("whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["role"] == "admin"  # the first operator ever
    me = json.loads(who.stdout)["login"]  # the database login (session_user)

    assert (
        run("operators", "add", "jsmith", "--role", "support", "--name", "J Smith").returncode == 0
    )
    listed = json.loads(run("operators", "list", "--json").stdout)
    assert {(o["login"], o["role"], o["active"]) for o in listed} == {
        (me, "admin", True),
        ("jsmith", "support", True),
    }

    # The last admin cannot step down: exit 2, one line, nothing changed.
    refused = run("operators", "set-role", me, "finance")
    assert refused.returncode == 2
    assert "last active admin" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    assert run("operators", "set-role", "jsmith", "admin").returncode == 0
    assert run("operators", "set-role", me, "finance").returncode == 0

    # Now a finance clerk: managing operators is denied with exit 3 naming the permission.
    denied = run("operators", "deactivate", "jsmith")
    assert denied.returncode == 3
    assert denied.stderr.strip() == (
        "admin-app: Permission denied: 'manage operators' is needed (role admin); "
        "your role is finance."
    )

    audit = json.loads(run("audit", "list", "--json").stdout)
    actions = [(r["action"], r["outcome"]) for r in audit]
    assert actions[0] == ("operator.deactivate", "denied")
    assert ("operator.set_role", "failed") in actions
    assert actions[-1] == ("operator.bootstrap", "ok")

    out = tmp_path / "audit.csv"
    exported = run("audit", "export", str(out), "--action", "operator.set_role")
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


def test_on_sqlite_a_second_os_login_cannot_be_added(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    assert _run(tmp_path, "whoami").returncode == 0  # the first operator: this OS user
    refused = _run(tmp_path, "operators", "add", "jsmith", "--role", "support")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "single-seat" in lines[0]
    assert "PostgreSQL" in lines[0]
    listed = json.loads(_run(tmp_path, "operators", "list", "--json").stdout)
    assert [(o["login"], o["role"]) for o in listed] == [(me, "admin")]
    audit = json.loads(_run(tmp_path, "audit", "list", "--json").stdout)
    assert [(r["action"], r["outcome"]) for r in audit] == [
        ("operator.add", "failed"),
        ("operator.bootstrap", "ok"),
    ]


@pytest.mark.parametrize("target", ["folder", "file", "wal"])
@pytest.mark.parametrize("mode_bits", [0o020, 0o002], ids=["group", "others"])
def test_a_sqlite_database_others_can_write_is_refused_and_left_alone(
    tmp_path: Path, target: str, mode_bits: int
) -> None:
    folder = tmp_path / "shared"
    url = f"sqlite:///{folder / 'billing.sqlite3'}"
    assert _run(tmp_path, "whoami", db=url).returncode == 0
    path = {"folder": folder, "file": folder / "billing.sqlite3",
            "wal": folder / "billing.sqlite3-wal"}[target]  # fmt: skip
    path.touch()
    path.chmod(path.stat().st_mode | mode_bits)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    for args in (["whoami"], ["audit", "list"], ["--screenshot", str(tmp_path / "shots")]):
        refused = _run(tmp_path, *args, db=url)
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert f"{path} is writable by other users or groups" in lines[0]
        assert "single-seat" in lines[0]
        assert "PostgreSQL" in lines[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # The window said so too, in a window of its own.
    assert [p.name for p in (tmp_path / "shots").iterdir()] == ["cannot-start.png"]


def test_the_apps_own_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = subprocess.run(
        ["/bin/sh", "-c", 'umask 000 && exec "$0" -m admin_app whoami', sys.executable],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    home = tmp_path / "home"
    made = [p for p in home.rglob("*")]
    assert {p.name for p in made} >= {"data", "logs", "sandbox.sqlite3", "billing-admin.log"}
    for path in made:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"
