"""The Customers panel's own model: the same search as before, made fast, and kept in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView, QWidget
from pytestqt.qtbot import QtBot

from services.browse import CustomerColumns, CustomerRow
from tests.helpers.qt import spin_until
from ui.customer_model import CustomerTableModel, haystacks, narrows, relocated
from ui.customer_picker import customer_search_text
from ui.first_paint import ENV_VAR, FirstPaintProbe, after_first_paint, install_from_environment
from ui.panels.customers import COLUMNS
from ui.table_model import RowTableModel
from ui.tasks import TaskRunner

_ASC, _DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder


def _row(i: int, name: str, email: str = "", phone: str = "", meta: str = "{}") -> CustomerRow:
    return CustomerRow(
        f"cus_{i:04d}X", name, email, phone, "usd" if i % 2 else "eur", (i % 7 - 3) * 125,
        1_700_000_000 + (i * 7919) % 1000, False, meta,
    )  # fmt: skip


TRICKY = [
    _row(1, "Straße Müller", "strasse@example.com"),
    _row(2, "STRASSE MUELLER", "S.MUELLER@EXAMPLE.COM", "+49 30 1234"),
    _row(3, "Ünïcödé Ünïcödé", "uni@example.org", meta='{"account_id":"acct-77"}'),
    _row(4, "ǅemal Ǆ", "dz@example.net"),
    _row(5, "", "no.name@example.com"),
    _row(6, "Åsa Lindqvist", "asa@EXAMPLE.com", "+46 8 555"),
    _row(7, "anna kowalski", "anna.k7@example.com"),
    _row(8, "Anna Kowalska", "ak@corp.example.net", meta='{"tier":"gold"}'),
    _row(9, "Ōta Kim", "ota@example.co.uk"),
    _row(10, "ﬁnance ﬂow", "fi@example.com"),  # ligatures casefold to "fi", "fl"
]

QUERIES = [
    "", "s", "st", "str", "stra", "straß", "straße", "strass", "STRASSE", "straße m", "straße mü",
    "straße m", "straße", "str", "", "ÜNÏ", "ünïcödé", "acct-77", "acct", "cus_0003", "CUS_000",
    "cus_0003x", "@example.com", "example.co", "example.co.uk", "  anna   kow ", "anna kowalsk",
    "kowalsk anna", "dž", "ǆ", "fi", "ﬁ", "fl", "gold", '"tier"', "+46", "zzz", "a", "",
]  # fmt: skip


def _old_model(rows: list[CustomerRow]) -> RowTableModel[CustomerRow]:
    """The search as it was: the shared model over the panel's columns and search text."""
    model: RowTableModel[CustomerRow] = RowTableModel(COLUMNS, customer_search_text)
    model.set_rows(rows)
    return model


def _new_model(rows: list[CustomerRow]) -> CustomerTableModel:
    model = CustomerTableModel()
    model.set_rows(CustomerColumns.from_rows(rows))
    return model


def _shown(model: RowTableModel[CustomerRow]) -> list[str]:
    return [r.stripe_id for r in model.visible_rows()]


def test_typing_and_deleting_back_shows_what_the_old_search_showed(qapp: object) -> None:
    old, new = _old_model(TRICKY), _new_model(TRICKY)
    for query in QUERIES:
        old.set_filter(query)
        new.set_filter(query)
        assert _shown(new) == _shown(old), query
        assert new.rowCount() == old.rowCount()


def test_every_sort_shows_what_the_old_sort_showed(qapp: object) -> None:
    """Ties stay in the service's order (newest first), whichever column was sorted before."""
    new = _new_model(TRICKY)
    for column in range(len(COLUMNS)):
        for order in (_ASC, _DESC):
            old = _old_model(TRICKY)
            old.sort(column, order)
            new.sort(column, order)
            for query in ("", "a", "an", "example", "ex", "straße", ""):
                old.set_filter(query)
                new.set_filter(query)
                assert _shown(new) == _shown(old), (column, order, query)


def test_display_strings_are_made_from_the_columns(qapp: object) -> None:
    new = _new_model(TRICKY)
    new.sort(0, _ASC)
    for row in range(new.rowCount()):
        customer = new.row_at(row)
        for column, spec in enumerate(COLUMNS):
            assert new.data(new.index(row, column)) == spec.display(customer)
    balance = new.index(0, 3)
    assert new.data(balance, Qt.ItemDataRole.TextAlignmentRole) == int(
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    )
    assert "credit toward future invoices" in new.data(balance, Qt.ItemDataRole.ToolTipRole)
    assert [new.headerData(c, Qt.Orientation.Horizontal) for c in range(6)] == [
        c.title for c in COLUMNS
    ]
    assert new.row_at(0) in TRICKY  # whole rows, metadata included, made on demand


def test_reloaded_rows_keep_the_filter_in_step(qapp: object) -> None:
    """Rows updated, inserted and removed while a search is active: the shown rows follow."""
    rows = list(TRICKY)
    old, new = _old_model(rows), _new_model(rows)
    for model in (old, new):
        model.sort(1, _ASC)
        model.set_filter("anna")
    assert len(_shown(new)) == 2
    renamed = rows[6]._replace(name="Hanne Nowak", email="hn@example.com")  # no longer "anna"
    added = _row(11, "Joanna Kanne")
    rows = [added, *rows[:6], renamed, *rows[8:]]  # row 8 (Anna Kowalska) removed
    for model in (old, new):
        model.set_rows(rows)
    assert _shown(new) == _shown(old) == [added.stripe_id]
    new.set_filter("anna ka")  # narrowing from the reloaded matches, not the stale ones
    old.set_filter("anna ka")
    assert _shown(new) == _shown(old) == [added.stripe_id]
    new.set_filter("hanne")  # the renamed row is found by its new name
    old.set_filter("hanne")
    assert _shown(new) == _shown(old) == [renamed.stripe_id]


def test_haystacks_built_for_older_rows_are_refused(qapp: object) -> None:
    new = _new_model(TRICKY)
    stale = new.columns
    new.set_rows(TRICKY[:3])
    assert not new.set_haystacks(stale, haystacks(stale))
    assert new.set_haystacks(new.columns, haystacks(new.columns))
    new.set_filter("straße")
    assert len(_shown(new)) == 2
    new.set_filter("acct-77")  # metadata: searched, though no longer kept beside the index
    assert [r.name for r in new.visible_rows()] == ["Ünïcödé Ünïcödé"]
    assert new.visible_rows()[0].metadata_text == ""


def test_model_contract_while_searching_and_sorting(qtmodeltester: object, qapp: object) -> None:
    new = _new_model([_row(i, f"name {i}", f"e{i}@example.com") for i in range(60)])
    new.sort(0, _DESC)
    new.set_filter("name 1")
    qtmodeltester.check(new)  # type: ignore[attr-defined]


def test_selection_follows_its_row_through_a_search_and_a_sort(qtbot: QtBot, qapp: object) -> None:
    new = _new_model(TRICKY)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(new)
    view.selectRow(7)  # Anna Kowalska
    wanted = new.row_at(7).stripe_id
    for step in (lambda: new.set_filter("anna"), lambda: new.sort(0, _DESC)):
        step()
        current = view.currentIndex()
        assert current.isValid()
        assert new.row_at(current.row()).stripe_id == wanted
        assert view.selectionModel().isRowSelected(current.row())
    new.set_filter("zzz")  # filtered out: nothing selected
    assert not view.selectionModel().hasSelection()
    assert new.position_of(wanted) is None
    new.set_filter("")
    assert new.position_of(wanted) is not None


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(alphabet="aAbßSsÜü é-", max_size=6), max_size=25),
    typed=st.lists(st.text(alphabet="aAbßsSüÜ é", max_size=4), max_size=6),
    column=st.integers(-1, 5),
)
def test_any_typing_agrees_with_the_old_search(
    qapp: object, names: list[str], typed: list[str], column: int
) -> None:
    rows = [_row(i, n) for i, n in enumerate(names)]
    old, new = _old_model(rows), _new_model(rows)
    if column >= 0:
        old.sort(column, _ASC)
        new.sort(column, _ASC)
    text = ""
    for piece in typed:  # grow, then cut back: narrowing and the remembered trail both run
        for query in (text + piece, text, text + piece):
            old.set_filter(query)
            new.set_filter(query)
            assert _shown(new) == _shown(old), query
        text += piece


def test_narrowing_is_only_claimed_when_it_holds() -> None:
    assert narrows(("ann",), ("anna",))
    assert narrows(("anna",), ("k", "anna"))
    assert narrows((), ("x",))
    assert not narrows(("anna",), ("ann",))
    assert not narrows(("anna", "k"), ("anna",))


def test_relocated_strings_are_equal_and_fall_back_when_the_separator_is_used() -> None:
    texts = ["b a", "", "ü x"]
    assert relocated(texts) == texts
    odd = ["a\x1fb", "c"]
    assert relocated(odd) is odd
    # The field separator never reaches a haystack: sorting can always lay them out anew.
    assert all("\x1f" not in h for h in haystacks(CustomerColumns.from_rows(TRICKY)))


def test_columns_round_trip_rows() -> None:
    columns = CustomerColumns.from_rows(TRICKY)
    assert [columns.row(i) for i in range(len(columns))] == TRICKY
    assert columns.metadata_text[0] is columns.metadata_text[1]  # "{}" shared, not per row


def test_the_window_callback_runs_after_the_first_paint(qtbot: QtBot) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    calls: list[bool] = []
    after_first_paint(widget, lambda: calls.append(widget.isVisible()))
    qtbot.wait(1)  # nothing paints a hidden widget
    assert calls == []
    widget.show()
    qtbot.waitUntil(lambda: calls == [True], timeout=5000)
    widget.update()
    spin_until(lambda: True)
    assert calls == [True]  # once


def test_first_paint_probe_records_rows_then_settles(
    qtbot: QtBot, tmp_path: Path, monkeypatch: object
) -> None:
    from ui.panels.base import ListPanel

    tasks = TaskRunner()
    panel: ListPanel[CustomerRow] = ListPanel(tasks, lambda: TRICKY, COLUMNS, customer_search_text)
    qtbot.addWidget(panel)
    out = tmp_path / "paint.json"
    monkeypatch.setenv(ENV_VAR, str(out))  # type: ignore[attr-defined]
    probe = install_from_environment(panel, tasks)
    assert isinstance(probe, FirstPaintProbe)
    panel.show()
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=5000)
    assert not out.exists()  # painted, but no rows yet: not the moment measured
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.refresh()
    spin_until(lambda: out.exists() and "settled" in json.loads(out.read_text()))
    record = json.loads(out.read_text())
    assert record["rows"] == len(TRICKY)
    assert record["first_paint"] <= record["settled"]
    assert record["rss_settled"] > 0
    tasks.shutdown()


@pytest.mark.parametrize("built", [True, False], ids=["search text built", "not yet"])
def test_changed_customers_are_taken_in_place_and_search_follows(built: bool) -> None:
    """What a burst of events does to the model (ListPanel.patch_rows → update_rows): a
    rename in place is one dataChanged; leaving the search or moving in the sort is one layout
    change; added or gone is one reset; search always sees the new text."""
    rows = list(TRICKY)
    model = CustomerTableModel()
    model.set_rows(rows)
    if built:
        assert model.set_haystacks(model.columns, haystacks(model.columns))
    model.set_filter("anna")
    shown = [r.stripe_id for r in model.visible_rows()]
    assert shown == [rows[6].stripe_id, rows[7].stripe_id]
    resets: list[int] = []
    layouts: list[int] = []
    changed: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.layoutChanged.connect(lambda: layouts.append(1))
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))

    # Renamed, still matching: in place.
    model.update_rows({rows[7].stripe_id: rows[7]._replace(name="Anna Kowalska-Nowak")}, str)
    if built:
        assert (resets, layouts, changed) == ([], [], [(1, 1)])
    assert model.visible_rows()[1].name == "Anna Kowalska-Nowak"
    # Renamed, still matching (Jo-anna), then out of the search: the row leaves the view.
    model.update_rows({rows[6].stripe_id: rows[6]._replace(name="Joanna K")}, str)
    assert resets == []
    assert [r.name for r in model.visible_rows()] == ["Joanna K", "Anna Kowalska-Nowak"]
    gone_from_search = rows[6]._replace(name="Jo K", email="jo@example.com")
    model.update_rows({rows[6].stripe_id: gone_from_search}, str)
    assert [r.name for r in model.visible_rows()] == ["Anna Kowalska-Nowak"]
    assert layouts
    # Added and gone: a reset over the rows held; search finds the new one at once.
    fresh = _row(99, "Anna New", "new@example.com")
    model.update_rows({fresh.stripe_id: fresh, rows[7].stripe_id: None}, str)
    assert resets == [1]
    assert [r.name for r in model.visible_rows()] == ["Anna New"]
    model.set_filter("")
    assert model.total_count == len(rows)  # one added, one gone
    assert model.visible_rows()[0].stripe_id == fresh.stripe_id  # newest first
    model.set_filter("kowalska-nowak")
    assert list(model.visible_rows()) == []
    model.set_filter("jo k")
    assert [r.name for r in model.visible_rows()] == ["Jo K"]
    # Sorted by name: a rename that moves the row is a layout change, not in place.
    model.set_filter("")
    model.sort(0, _ASC)
    layouts.clear()
    model.update_rows({rows[0].stripe_id: rows[0]._replace(name="Aaron First")}, str)
    names = [r.name for r in model.visible_rows()]
    assert layouts
    assert names.index("Aaron First") < names.index("Anna New")
