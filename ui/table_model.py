"""One table model for every list panel: rows are plain tuples from services, columns are specs.

`data()` does no I/O and no per-call enum lookups (roles are cached at module level, see FACTS.md).
Filtering is a Python scan over a precomputed lowercase haystack per row, then a model reset:
milliseconds at 100k rows, where QSortFilterProxyModel takes a second per keystroke.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

R = TypeVar("R")

_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_HORIZONTAL = Qt.Orientation.Horizontal
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_ASCENDING = Qt.SortOrder.AscendingOrder

AnyIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Column(Generic[R]):
    """How one column shows and sorts a row."""

    title: str
    display: Callable[[R], str]
    sort_key: Callable[[R], Any] | None = None  # default: the displayed text
    numeric: bool = False  # right-aligned
    tooltip: Callable[[R], str] | None = None
    foreground: Callable[[R], Any] | None = None  # a QColor or None


class RowTableModel(QAbstractTableModel, Generic[R]):
    """A read-only table of `rows`, filtered by text over `search_text(row)`."""

    def __init__(self, columns: Sequence[Column[R]], search_text: Callable[[R], str]) -> None:
        super().__init__()
        self._columns = list(columns)
        self._search_text = search_text
        self._all: list[R] = []
        self._haystack: list[str] = []
        self._rows: list[R] = []
        self._filter = ""
        self._only: Callable[[R], bool] | None = None
        self._sort: tuple[int, Qt.SortOrder] | None = None
        # For `update_rows`, built on first use: row key -> index in `_all` (with the key
        # function it was built with), and id(row) -> index in `_rows` (the rows shown).
        self._where: dict[Any, int] | None = None
        self._where_key: Callable[[R], Any] | None = None
        self._shown: dict[int, int] | None = None

    # ---- the data
    def haystack(self, rows: Sequence[R]) -> list[str]:
        """The folded search text of `rows` (pure Python: a worker thread may build it)."""
        search_text = self._search_text
        return [search_text(r).casefold() for r in rows]

    def set_rows(self, rows: Sequence[R], haystack: list[str] | None = None) -> None:
        """Show `rows`; `haystack`, from `haystack(rows)` on a worker, saves the GUI thread
        building it."""
        self.beginResetModel()
        self._all = list(rows)
        self._where = None
        self._haystack = self.haystack(self._all) if haystack is None else haystack
        self._apply()
        self.endResetModel()

    def update_rows(self, updates: Mapping[Any, R | None], key: Callable[[R], Any]) -> bool:
        """Put the rows in `updates` (by `key`; None: gone) in place of the ones held.

        Rows that stay where they are and stay shown (under the search, the scope and the sort)
        are replaced in place with one `dataChanged` each: the view, its selection and scroll
        are untouched. A row added, removed, shown, hidden or moved by the sort makes one reset
        over the rows already held (no reload). Returns True when it reset.
        """
        if not updates:
            return False
        if self._where is None or self._where_key is not key:
            self._where = {k: i for i, k in enumerate(map(key, self._all))}
            self._where_key = key
        index = self._where
        where = {k: index[k] for k in updates if k in index}
        added = [row for k, row in updates.items() if row is not None and k not in where]
        gone = [i for k, i in where.items() if updates[k] is None]
        terms = self._filter.split()
        moved: list[tuple[R, R]] = []  # (old, new) rows replaced in place
        structural = bool(added or gone)
        for k, i in where.items():
            new = updates[k]
            if new is None:
                continue
            old, old_hay = self._all[i], self._haystack[i]
            hay = self._search_text(new).casefold()
            self._all[i], self._haystack[i] = new, hay
            if not structural:
                shown_before = self._shows(old, old_hay, terms)
                if shown_before != self._shows(new, hay, terms) or (
                    shown_before and self._sort is not None and self._sort_moves(old, new)
                ):
                    structural = True
                elif shown_before:
                    moved.append((old, new))
        if structural:
            self.beginResetModel()
            self._where = None
            for i in sorted(gone, reverse=True):
                del self._all[i], self._haystack[i]
            if added:  # newest first, as the services list them
                self._all[:0] = added
                self._haystack[:0] = [self._search_text(r).casefold() for r in added]
            self._apply()
            self.endResetModel()
            return True
        if self._shown is None:
            self._shown = {id(row): i for i, row in enumerate(self._rows)}
        shown = self._shown
        places = []
        for old, new in moved:
            i = shown.pop(id(old))
            self._rows[i] = new
            shown[id(new)] = i
            places.append(i)
        # A signal per row, not one over the span: the view repaints only rows it shows, so a
        # change far off screen paints nothing (a span signal repainted the whole viewport on
        # every update of a burst: 85 ms stalls instead of 40, bench/stall.py).
        last = len(self._columns) - 1
        for i in sorted(places):
            self.dataChanged.emit(self.index(i, 0), self.index(i, last))
        return False

    def _shows(self, row: R, hay: str, terms: list[str]) -> bool:
        if self._only is not None and not self._only(row):
            return False
        return all(term in hay for term in terms)

    def _sort_moves(self, old: R, new: R) -> bool:
        assert self._sort is not None
        col = self._columns[self._sort[0]]
        sort_key = col.sort_key or col.display
        return bool(sort_key(old) != sort_key(new))

    def set_filter(self, text: str) -> None:
        text = text.strip().casefold()  # as services.browse.fold: Straße finds STRASSE
        if text == self._filter:
            return
        self.beginResetModel()
        self._filter = text
        self._apply()
        self.endResetModel()

    def set_only(self, predicate: Callable[[R], bool] | None) -> None:
        """Show only rows where `predicate` holds (the Overview's drill-downs); None: all."""
        self.beginResetModel()
        self._only = predicate
        self._apply()
        self.endResetModel()

    def clear_sort(self) -> None:
        """Back to the order the rows were given in (from the next `set_rows` on)."""
        self._sort = None

    @property
    def total_count(self) -> int:
        return len(self._all)

    def row_at(self, row: int) -> R:
        return self._rows[row]

    def all_rows(self) -> list[R]:
        """Every row held, shown or hidden by the search or scope."""
        return list(self._all)

    def visible_rows(self) -> list[R]:
        return list(self._rows)

    def _apply(self) -> None:
        self._shown = None
        rows, hays = self._all, self._haystack
        if self._only is not None:
            mask = list(map(self._only, rows))
            rows, hays = list(compress(rows, mask)), list(compress(hays, mask))
        # One C-level pass per term over a shrinking list: ~5 ms per term at 100k rows, where
        # a Python-level all(...) per row costs ~40 ms (bench/table_filter.py).
        for term in self._filter.split():
            mask = list(map(operator.contains, hays, repeat(term)))
            rows = list(compress(rows, mask))
            hays = list(compress(hays, mask))
        self._rows = list(rows)
        if self._sort is not None:
            self._sort_rows(*self._sort)

    def _sort_rows(self, column: int, order: Qt.SortOrder) -> None:
        col = self._columns[column]
        key = col.sort_key or col.display
        self._rows.sort(key=key, reverse=order != _ASCENDING)

    # ---- Qt's side
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        col = self._columns[index.column()]
        if role == _DISPLAY:
            return col.display(self._rows[index.row()])
        if role == _ALIGN:
            return _RIGHT if col.numeric else _LEFT
        if role == _TOOLTIP and col.tooltip is not None:
            return col.tooltip(self._rows[index.row()])
        if role == _FOREGROUND and col.foreground is not None:
            return col.foreground(self._rows[index.row()])
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation == _HORIZONTAL and role == _DISPLAY and 0 <= section < len(self._columns):
            return self._columns[section].title
        if orientation == _HORIZONTAL and role == _ALIGN and 0 <= section < len(self._columns):
            return _RIGHT if self._columns[section].numeric else _LEFT
        return None

    def sort(self, column: int, order: Qt.SortOrder = _ASCENDING) -> None:
        if not 0 <= column < len(self._columns):
            return
        # A reset rather than layoutChanged: no persistent indexes to remap at 100k rows.
        self.beginResetModel()
        self._sort = (column, order)
        self._shown = None
        self._sort_rows(column, order)
        self.endResetModel()
