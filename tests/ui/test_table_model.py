"""The shared table model: filtering, sorting, and Qt's model contract."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st
from PySide6.QtCore import Qt

from ui.table_model import Column, RowTableModel


class Row(NamedTuple):
    name: str
    amount: int


COLUMNS = [
    Column[Row]("Name", lambda r: r.name),
    Column[Row]("Amount", lambda r: str(r.amount), sort_key=lambda r: r.amount, numeric=True),
]


def _model(rows: list[Row]) -> RowTableModel[Row]:
    model: RowTableModel[Row] = RowTableModel(COLUMNS, lambda r: r.name)
    model.set_rows(rows)
    return model


def test_filter_matches_every_term_case_insensitively(qapp: object) -> None:
    model = _model([Row("Ada Lovelace", 3), Row("Grace Hopper", 1), Row("Ada Yonath", 2)])
    model.set_filter("ada  LOVE")
    assert [r.name for r in model.visible_rows()] == ["Ada Lovelace"]
    model.set_filter("")
    assert model.rowCount() == 3


def test_sort_uses_the_sort_key_and_survives_new_rows(qapp: object) -> None:
    model = _model([Row("a", 10), Row("b", 9), Row("c", 100)])
    model.sort(1, Qt.SortOrder.AscendingOrder)
    assert [r.amount for r in model.visible_rows()] == [9, 10, 100]
    model.set_rows([Row("d", 5), *model.visible_rows()])
    assert [r.amount for r in model.visible_rows()] == [5, 9, 10, 100]
    model.sort(1, Qt.SortOrder.DescendingOrder)
    assert model.data(model.index(0, 1)) == "100"
    assert model.data(model.index(0, 1), Qt.ItemDataRole.TextAlignmentRole) == int(
        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
    )


def test_model_contract(qtmodeltester: object, qapp: object) -> None:
    model = _model([Row(f"row {i}", i) for i in range(50)])
    qtmodeltester.check(model)  # type: ignore[attr-defined]


@given(
    names=st.lists(st.text(alphabet="abcAB xyz", max_size=8), max_size=40),
    query=st.text(alphabet="abcAB xyz", max_size=5),
)
def test_filter_agrees_with_a_plain_scan(qapp: object, names: list[str], query: str) -> None:
    model = _model([Row(n, i) for i, n in enumerate(names)])
    model.set_filter(query)
    terms = query.lower().split()
    expected = [n for n in names if all(t in n.lower() for t in terms)]
    assert [r.name for r in model.visible_rows()] == expected


def test_a_new_panel_keeps_the_services_order(
    qtbot: object, runtime: object, tasks: object
) -> None:
    from services.browse import CustomerRow
    from ui.panels.customers import CustomersPanel

    ctx = runtime.require_context()  # type: ignore[attr-defined]
    panel = CustomersPanel(ctx, tasks)  # type: ignore[arg-type]
    rows = [
        CustomerRow(f"cus_{n}", name, f"{n}@x.io", "", "usd", 0, 10 - n, False, "{}")
        for n, name in enumerate(["Bea", "Al", "Cy"])
    ]
    panel.model.set_rows(rows)
    assert panel.model.visible_rows() == rows  # newest first, as given: not sorted by name
    panel.deleteLater()
