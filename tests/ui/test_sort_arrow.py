"""The sort arrow says which way a list is sorted: ▲ ascending (oldest first), ▼ descending."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from admin_app.paths import resources_dir
from ui.app import make_application
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner


def _arrow_points_down(image: QImage) -> bool:
    """Whether the drawn arrow is wider at its top (▼) than at its bottom (▲)."""
    widths = []
    for y in range(image.height()):
        dark = sum(1 for x in range(image.width()) if QColor(image.pixel(x, y)).lightness() < 160)
        if dark:
            widths.append(dark)
    assert len(widths) >= 3, "no arrow drawn"
    return widths[0] > widths[-1]


def _arrow(panel: ListPanel[int], tmp: Path) -> QImage:
    header = panel.table.horizontalHeader()
    left = header.sectionViewportPosition(0)
    width = header.sectionSize(0)
    image = header.grab().toImage()
    image.save(str(tmp / "header.png"))
    # The indicator sits at the section's right end; the title is at its left.
    return image.copy(left + width - 24, 0, 24, header.height())


def test_newest_first_shows_a_down_arrow(qtbot: QtBot, tasks: TaskRunner, tmp_path: Path) -> None:
    make_application(resources_dir())
    columns = [Column[int]("N", str, sort_key=lambda n: n)]
    panel: ListPanel[int] = ListPanel(tasks, lambda: [1, 2, 3], columns, str)
    qtbot.addWidget(panel)
    panel.resize(400, 300)
    panel.table.setColumnWidth(0, 200)
    panel.show()
    with qtbot.waitSignal(panel.rows_loaded, timeout=5000):
        panel.refresh()
    panel.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    assert [panel.model.row_at(i) for i in range(3)] == [3, 2, 1]
    assert _arrow_points_down(_arrow(panel, tmp_path))
    panel.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert not _arrow_points_down(_arrow(panel, tmp_path))
