"""The CSV writer both the window and the CLI use, and customer search in any script and case."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import peewee
import pytest

from services.audit import AuditFilter, AuditLog, Authority
from services.browse import BrowseService
from services.errors import PermissionDenied, ValidationError
from services.export import CUSTOMERS, ExportService, decimal_amount, neutralize, to_text
from services.models import Customer
from services.operators import OperatorService
from services.permissions import Role
from tests.helpers.known_rows import EVIL_NAME, T0, T0_ISO, seed


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1 415 555 0100", "'+1 415 555 0100"),
        ("-2.10", "'-2.10"),  # as text (a name, an email) it is guarded like any text
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
    ],
)
def test_text_cells_that_a_spreadsheet_would_run_get_an_apostrophe(text: str, cell: str) -> None:
    assert neutralize(text) == cell


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(-210, "usd", "-2.10"), (5, "eur", "0.05"), (123456, "usd", "1234.56"),
     (1500, "jpy", "1500"), (-1500, "JPY", "-1500"), (0, "", "0.00")],
)  # fmt: skip
def test_money_is_a_plain_decimal_in_the_currencys_minor_unit(
    amount: int, currency: str, text: str
) -> None:
    assert decimal_amount(amount, currency) == text


def test_a_customer_named_like_a_formula_is_exported_as_text(
    database: peewee.Database, authority: Authority
) -> None:
    seed(database)
    rows = BrowseService(database, authority).customers()
    table = list(csv.reader(io.StringIO(to_text(CUSTOMERS, rows))))
    by_id = {r[0]: r for r in table[1:]}
    assert by_id["cus_evil"][1] == "'" + EVIL_NAME
    assert by_id["cus_usd"] == [
        "cus_usd", "Ada Lovelace", "ada@example.com", "'+44 20 7946 0001", "-2.10", "usd", T0_ISO,
    ]  # fmt: skip
    assert by_id["cus_jpy"][4:6] == ["1500", "jpy"]
    assert table[0] == ["id", "name", "email", "phone", "balance", "currency", "created"]


def test_a_file_export_is_audited_and_needs_the_export_permission(
    database: peewee.Database, authority: Authority, tmp_path: Path
) -> None:
    seed(database)
    rows = BrowseService(database, authority).customers()
    out = tmp_path / "exports" / "customers.csv"
    assert ExportService(authority).to_file(out, CUSTOMERS, rows) == 3
    assert out.read_text(encoding="utf-8").startswith("id,name,")
    assert [p.name for p in out.parent.iterdir()] == ["customers.csv"]  # no temporary file left
    (record,) = AuditLog(database, authority).records(AuditFilter(action="customers.export"))
    assert (record.target, record.params, record.outcome) == (str(out), {"rows": 3}, "ok")

    OperatorService(database, authority).add("sam", Role.SUPPORT, "Sam")
    from services.operators import sign_in

    support = Authority(database, sign_in(database, "sam"))
    with pytest.raises(PermissionDenied):
        ExportService(support).to_file(tmp_path / "s.csv", CUSTOMERS, rows)
    assert not (tmp_path / "s.csv").exists()


def test_an_unwritable_path_is_a_clear_error_and_leaves_nothing(
    authority: Authority, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "file").write_text("x")  # a file where a folder should be
    with pytest.raises(ValidationError, match="Cannot write"):
        ExportService(authority).to_file(folder / "file" / "out.csv", CUSTOMERS, [])
    assert [p.name for p in folder.iterdir()] == ["file"]


NAMES = ["Ünïcödé Müller", "Åsa Öberg", "ǅemal Hodžić", "Straße GmbH", "Ωμέγα Σοφία",
         "Дмитрий Иванов", "İlkay Şahin", "plain ascii"]  # fmt: skip


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("ünïcödé", ["Ünïcödé Müller"]),
        ("ÜNÏCÖDÉ", ["Ünïcödé Müller"]),
        ("åsa", ["Åsa Öberg"]),
        ("ÅSA", ["Åsa Öberg"]),
        ("ǆemal", ["ǅemal Hodžić"]),
        ("ǄEMAL", ["ǅemal Hodžić"]),
        ("STRASSE", ["Straße GmbH"]),
        ("σοφία", ["Ωμέγα Σοφία"]),
        ("ΣΟΦΊΑ", ["Ωμέγα Σοφία"]),
        ("дмитрий", ["Дмитрий Иванов"]),
        ("PLAIN", ["plain ascii"]),
        ("hodžić@", []),
    ],
)
def test_search_folds_case_the_same_on_sqlite_and_postgresql(
    database: peewee.Database, authority: Authority, search: str, found: list[str]
) -> None:
    with database.atomic():
        for i, name in enumerate(NAMES):
            Customer.insert(
                stripe_id=f"cus_{i}", created=T0 + i, raw={}, synced_at=T0, name=name,
                email=f"c{i}@example.com",
            ).execute()  # fmt: skip
    rows = BrowseService(database, authority).find_customers(search)
    assert [r.name for r in rows] == found


def test_search_text_longer_than_any_name_is_refused(
    database: peewee.Database, authority: Authority
) -> None:
    with pytest.raises(ValidationError, match="too long"):
        BrowseService(database, authority).find_customers("a" * 120_000)
