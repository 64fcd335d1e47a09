"""The cold-start baseline: a bare QMainWindow + QTableView over the same customers, nothing else.

`python -m bench.bare_window DB_PATH OUT_FILE`: reads the listed customers' columns with sqlite3
(the same rows and order as the app), shows them in a plain table model, and writes OUT_FILE as
`ui.first_paint` does (first paint with rows, and RSS), then exits.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QTableView

from ui.first_paint import rss_bytes

_DISPLAY = Qt.ItemDataRole.DisplayRole
_SQL = (
    "SELECT stripe_id, COALESCE(name, ''), COALESCE(email, ''), COALESCE(phone, ''), "
    "COALESCE(currency, ''), balance, created, deleted, COALESCE(metadata, '') FROM customer "
    "WHERE deleted = 0 ORDER BY created DESC, id DESC"
)


class _Model(QAbstractTableModel):
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.rows = rows

    def rowCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 6

    def data(self, index: Any, role: int = _DISPLAY) -> Any:
        if role == _DISPLAY and index.isValid():
            return str(self.rows[index.row()][index.column()])
        return None


class _Probe(QObject):
    def __init__(self, model: _Model, out: Path) -> None:
        super().__init__()
        self.model, self.out = model, out

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self.model.rowCount() and not self.out.exists():
            record = {"first_paint": time.time(), "rows": self.model.rowCount(),
                      "rss_at_first_paint": rss_bytes(), "rss_settled": rss_bytes()}  # fmt: skip
            part = self.out.with_name(self.out.name + ".part")
            part.write_text(json.dumps(record), encoding="utf-8")
            part.replace(self.out)  # whole, never half-written
            QTimer.singleShot(0, QApplication.quit)
        return False


def main(argv: list[str]) -> int:
    db_path, out = Path(argv[0]), Path(argv[1])
    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    model = _Model([])
    table = QTableView()
    table.setModel(model)
    probe = _Probe(model, out)
    table.viewport().installEventFilter(probe)
    window.setCentralWidget(table)
    window.resize(1280, 800)
    window.show()

    def load() -> None:
        rows = sqlite3.connect(db_path).execute(_SQL).fetchall()
        model.beginResetModel()
        model.rows = rows
        model.endResetModel()

    QTimer.singleShot(0, load)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
