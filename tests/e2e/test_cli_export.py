"""`--csv` on every list and show command, `--output FILE`, the `--limit` notice, and bad input
that must be one stderr line and exit 2 (never a traceback, never a file written)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.known_rows import EVIL_NAME, T0_ISO, seeded_database


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_ADMIN_DB")
    }
    env["BILLING_ADMIN_HOME"] = str(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args],
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return seeded_database(tmp_path_factory.mktemp("export") / "known.sqlite3")


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("command", "header", "usd_row", "jpy_row"),
    [
        (
            ["customers", "list"],
            "id,name,email,phone,balance,currency,created",
            ["cus_usd", "Ada Lovelace", "ada@example.com", "'+44 20 7946 0001", "-2.10", "usd",
             T0_ISO],
            ["cus_jpy", "山田 花子", "hanako@example.jp", "", "1500", "jpy",
             "2025-12-01T09:29:00+00:00"],
        ),
        (
            ["products", "list"],
            "id,name,active,credits,price,amount,currency,prices,created",
            ["prod_usd", "Pack USD", "true", "500", "price_usd", "10.00", "usd", "1", T0_ISO],
            ["prod_jpy", "Pack JPY", "true", "", "price_jpy", "1500", "jpy", "1", T0_ISO],
        ),
        (
            ["invoices", "list"],
            "id,number,customer,customer_name,status,overdue,total,amount_due,amount_paid,"
            "amount_remaining,currency,created,due_date",
            ["in_usd", "USD-0001", "cus_usd", "Ada Lovelace", "paid", "false", "25.99", "25.99",
             "25.99", "0.00", "usd", T0_ISO, ""],
            ["in_jpy", "JPY-0001", "cus_jpy", "山田 花子", "open", "true", "1500", "1500", "0",
             "1500", "jpy", "2025-12-01T09:29:00+00:00", "2025-12-02T09:30:00+00:00"],
        ),
        (
            ["topups", "list"],
            "id,customer,customer_name,credits,amount,currency,status,issued_by,issued_at,"
            "expires_at,paid_at,checkout_session,flagged",
            ["tu_usd", "cus_usd", "Ada Lovelace", "500", "50.00", "usd", "credited", "test",
             T0_ISO, "2025-12-02T09:29:00+00:00", "2025-12-01T09:40:00+00:00", "cs_usd", ""],
            ["tu_jpy", "cus_jpy", "山田 花子", "100", "1500", "jpy", "open", "test",
             "2025-12-01T09:29:00+00:00", "2025-12-02T09:28:00+00:00", "", "cs_jpy", ""],
        ),
    ],
)  # fmt: skip
def test_each_money_list_exports_decimal_amounts_with_their_currency(
    tmp_path: Path,
    db_url: str,
    command: list[str],
    header: str,
    usd_row: list[str],
    jpy_row: list[str],
) -> None:
    result = _run(tmp_path, "--db", db_url, *command, "--csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == header
    rows = _rows(result.stdout)
    assert usd_row in rows
    assert jpy_row in rows


@pytest.mark.parametrize(
    ("command", "header", "row"),
    [
        (["credits", "list"], "customer,customer_name,email,credits,entries,last_change",
         ["cus_usd", "Ada Lovelace", "ada@example.com", "290", "2", "2025-12-01T09:31:00+00:00"]),
        (["credits", "show", "--customer", "cus_usd"],
         "id,time,customer,credits,kind,source,operator,reason",
         ["2", "2025-12-01T09:31:00+00:00", "cus_usd", "-210", "clawback", "re_1", "stripe", ""]),
        (["events", "list"],
         "id,type,object,created,received_at,source,status,attempts,last_error,flagged",
         ["evt_1", "customer.updated", "cus_usd", T0_ISO, T0_ISO, "receiver", "applied", "1",
          "", ""]),
        (["customers", "show", "cus_jpy"], "id,name,email,phone,balance,currency,created",
         ["cus_jpy", "山田 花子", "hanako@example.jp", "", "1500", "jpy",
          "2025-12-01T09:29:00+00:00"]),
    ],
)  # fmt: skip
def test_credits_events_and_show_commands_export_csv(
    tmp_path: Path, db_url: str, command: list[str], header: str, row: list[str]
) -> None:
    result = _run(tmp_path, "--db", db_url, *command, "--csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == header
    assert row in _rows(result.stdout)


def test_audit_list_exports_csv_and_records_each_export(tmp_path: Path, db_url: str) -> None:
    _run(tmp_path, "--db", db_url, "products", "list", "--csv")
    result = _run(tmp_path, "--db", db_url, "audit", "list", "--csv", "--action", "products.export")
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows[0][:6] == ["time_utc", "operator", "role", "action", "target", "outcome"]
    assert rows[1][3:6] == ["products.export", "stdout", "ok"]
    assert rows[1][0].endswith("+00:00")


def test_a_formula_in_a_name_is_neutralized(tmp_path: Path, db_url: str) -> None:
    result = _run(tmp_path, "--db", db_url, "customers", "list", "--csv")
    assert result.returncode == 0, result.stderr
    (evil,) = [r for r in _rows(result.stdout) if r[0] == "cus_evil"]
    assert evil[1] == "'" + EVIL_NAME  # shown as text, never run as a formula
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in result.stdout
    # …while a negative amount stays a plain number a spreadsheet can add up.
    assert ",-2.10,usd," in result.stdout


def test_output_file_holds_the_same_bytes_as_stdout(tmp_path: Path, db_url: str) -> None:
    out = tmp_path / "exports" / "invoices.csv"
    written = _run(tmp_path, "--db", db_url, "invoices", "list", "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert written.stderr.strip() == f"Wrote 2 rows to {out}."
    printed = _run(tmp_path, "--db", db_url, "invoices", "list", "--csv")
    assert out.read_bytes() == printed.stdout.encode("utf-8").replace(b"\n", b"\r\n")
    assert out.read_bytes().startswith(b"id,number,")  # no byte-order mark


def test_a_list_cut_short_by_limit_says_so_and_limit_0_means_all(
    tmp_path: Path, db_url: str
) -> None:
    cut = _run(tmp_path, "--db", db_url, "customers", "list", "--csv", "--limit", "2")
    assert cut.returncode == 0, cut.stderr
    assert len(_rows(cut.stdout)) == 1 + 2
    assert cut.stderr.strip() == (
        "admin-app: showing 2 of 3 customers; use --limit N to see more (--limit 0: all)"
    )
    everything = _run(tmp_path, "--db", db_url, "customers", "list", "--csv", "--limit", "0")
    assert len(_rows(everything.stdout)) == 1 + 3
    assert everything.stderr == ""
    text = _run(tmp_path, "--db", db_url, "invoices", "list", "--limit", "1")
    assert "showing 1 of 2 invoices" in text.stderr
    assert len(text.stdout.splitlines()) == 2  # one invoice, one currency total


def test_a_support_login_may_not_export(tmp_path: Path, db_url: str) -> None:
    from services.database import open_database
    from services.identity import current_login
    from services.models import Operator

    url = seeded_database(tmp_path / "support.sqlite3")
    db = open_database(url)
    Operator.update(role="support").where(Operator.login == current_login(db)).execute()
    db.close()
    result = _run(tmp_path, "--db", url, "customers", "list", "--output", str(tmp_path / "c.csv"))
    assert result.returncode == 3
    assert "'export' is needed" in result.stderr
    assert not (tmp_path / "c.csv").exists()


def test_credits_of_an_unknown_customer_is_an_error(tmp_path: Path, db_url: str) -> None:
    result = _run(tmp_path, "--db", db_url, "credits", "show", "--customer", "cus_nope")
    assert result.returncode == 4  # as `customers show cus_nope`: no such customer
    assert result.stderr.strip() == (
        "admin-app: No customer cus_nope in the local mirror. Sync from Stripe first."
    )


def test_bad_command_lines_are_one_line_exit_2_and_write_nothing(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("these are my notes, not a database\n" * 10)
    before = not_sqlite.read_bytes()
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    cases = [
        ["--db", f"sqlite:///{tmp_path}/a%00b.db", "customers", "list"],
        ["--db", f"sqlite:///{not_sqlite}", "customers", "list"],
        ["--db", "postgresql://127.0.0.1:notaport/x", "customers", "list"],
        ["--db", "postgresql://127.0.0.1:99999/x", "customers", "list"],
        ["--db", empty, "customers", "list", "--search", "a" * 120_000],
        ["--db", empty, "customers", "list", "--json", "--output", str(tmp_path / "x.csv")],
    ]
    _run(tmp_path, "--db", empty, "whoami")  # the database exists before the bad search
    listing = sorted(p.name for p in tmp_path.iterdir())
    for args in cases:
        result = _run(tmp_path, *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (args[:2], result.stderr)
        assert len(lines) == 1, (args[:2], result.stderr)
        assert lines[0].startswith("admin-app: "), lines
        assert result.stdout == ""
    assert not_sqlite.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
