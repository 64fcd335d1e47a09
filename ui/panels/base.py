"""The shape every list panel shares: a header with search, a table, and a real empty state."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any, Generic, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProxyStyle,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.changes import Changes
from services.errors import AppError
from ui.table_model import Column, RowTableModel
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

R = TypeVar("R")


def field_form(keys: Sequence[str]) -> tuple[QFormLayout, dict[str, QLabel]]:
    """A detail pane's "Key: value" rows: selectable, wrapping values, "—" until filled."""
    form = QFormLayout()
    fields: dict[str, QLabel] = {}
    for key in keys:
        label = QLabel("—")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fields[key] = label
        form.addRow(f"{key}:", label)
    return form, fields


class Prepared:
    """Rows loaded on a worker with their search text already folded (off the GUI thread):
    a list of rows, or a model's own storage of them (the Customers panel's columns)."""

    def __init__(self, rows: Any, haystack: list[str]) -> None:
        self.rows = rows
        self.haystack = haystack


#: More changed rows than this in one update reload the whole list instead (a sync's pages).
MAX_PATCH = 500

_HEADER_ARROW = QStyle.PrimitiveElement.PE_IndicatorHeaderArrow
_ARROW_UP = QStyle.PrimitiveElement.PE_IndicatorArrowUp
_ARROW_DOWN = QStyle.PrimitiveElement.PE_IndicatorArrowDown
_ASCENDING = Qt.SortOrder.AscendingOrder


class SortArrowStyle(QProxyStyle):
    """The sort arrow reads the same on every platform: ▲ ascending, ▼ descending.

    QHeaderView tells the style `SortDown` for ascending, and Fusion draws it ▼ on Linux
    but ▲ elsewhere, so a newest-first list showed ▲ here. Draw from the header's order.
    """

    def drawPrimitive(self, element: Any, option: Any, painter: Any, widget: Any = None) -> None:
        if element == _HEADER_ARROW and isinstance(widget, QHeaderView):
            ascending = widget.sortIndicatorOrder() == _ASCENDING
            element = _ARROW_UP if ascending else _ARROW_DOWN
        super().drawPrimitive(element, option, painter, widget)


class EmptyState(QWidget):
    """A centred explanation of why a list is empty and what to do about it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("emptyState")
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel()
        self.title.setObjectName("emptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel()
        self.hint.setObjectName("emptyHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setFixedWidth(560)  # wrapped text needs a width to compute its height
        self.action = QPushButton()
        self.action.setVisible(False)
        layout.addWidget(self.title)
        layout.addWidget(self.hint, 0, Qt.AlignmentFlag.AlignHCenter)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.action)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)

    def show_message(self, title: str, hint: str) -> None:
        self.title.setText(title)
        self.hint.setText(hint)
        # A wrapped label's height is not re-laid out inside a hidden stack page; reserve it.
        self.hint.setMinimumHeight(max(0, self.hint.heightForWidth(self.hint.width())))


class ListPanel(QWidget, Generic[R]):
    """A searchable, sortable list loaded off the GUI thread.

    Subclasses give the columns, how to load rows, the text searched, and the empty-state words.
    """

    #: Emitted after rows arrived and were shown, with their count.
    rows_loaded = Signal(int)
    #: Emitted when loading failed with an expected error, with its message.
    load_failed = Signal(str)
    #: Emitted with the selected row (or None) whenever the selection changes.
    row_selected = Signal(object)
    #: Emitted with the row the user activated (double-click or Enter).
    row_activated = Signal(object)
    #: Emitted when a reload, search or sort kept the selected row: the row as it is now, and
    #: whether it changed (a panel then refreshes its detail in place, never blanks it).
    selection_kept = Signal(object, bool)
    #: Emitted when the user changed data here that other panels show (a link issued,
    #: credits granted, an invoice finalized): the window refreshes every panel.
    changed_elsewhere = Signal()
    #: Emitted to show a row of another panel: the panel's name and the row's key (its id).
    open_requested = Signal(str, object)
    #: Emitted after `apply_changes` updated rows in place, with how many it re-read.
    rows_patched = Signal(int)

    title = ""
    noun = ("row", "rows")
    search_placeholder = "Search… (Ctrl+F)"
    empty_title = "Nothing here yet"
    empty_hint = ""
    #: The row field that `row_key` returns, read fast over every row when rows are patched.
    key_attr: str | None = None
    #: A long list's first load reads this many rows first (`load_first_screen`): the screen
    #: and a margin, painted while the whole list loads (Anki's browser fetches what it
    #: shows). 0: the whole list in one load.
    first_screen_rows = 0

    def __init__(
        self,
        tasks: TaskRunner,
        load: Callable[[], Any],
        columns: Sequence[Column[R]],
        search_text: Callable[[R], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._load = load
        self._loading = False
        self._reload_pending = False
        self._loaded_once = False
        self._first_screen_asked = False
        self._select_after_load: Callable[[R], bool] | None = None
        self._kept: R | None = None  # the selected row while the model resets
        self._kept_scroll: tuple[int, int] | None = None
        self._restoring = False
        self._stale = False  # changes arrived while hidden: reload when shown
        self._patching = False
        self._patch_keys: set[object] = set()
        self._key_fn: Callable[[R], object] | None = None
        self.model: RowTableModel[R] = self.make_model(columns, search_text)

        heading = QLabel(self.title)
        heading.setObjectName("panelTitle")
        self.count_label = QLabel("Loading…")
        self.count_label.setObjectName("countLabel")
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.search_placeholder)
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(380)
        self.search.setToolTip("Type to filter the list (Ctrl+F). Esc clears.")
        self.search.textChanged.connect(self._on_search_text_changed)

        header = QHBoxLayout()
        header.addWidget(heading)
        header.addSpacing(12)
        header.addWidget(self.count_label)
        header.addStretch(1)
        self.toolbar = QHBoxLayout()
        header.addLayout(self.toolbar)
        header.addWidget(self.search)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        # Start unsorted (the service's order): clear the indicator first, because enabling
        # sorting sorts at once by the indicator (column 0, descending, by default).
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.model.clear_sort()
        self._arrow_style = SortArrowStyle()  # kept: the header does not own its style
        self.table.horizontalHeader().setStyle(self._arrow_style)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setWordWrap(False)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        self.table.activated.connect(self._on_table_activated)
        # A reset (reload, search, sort) forgets the view's selection: keep it by the row's key.
        self.model.modelAboutToBeReset.connect(self._on_model_about_to_be_reset)
        self.model.modelReset.connect(self._on_model_reset)

        # "Only …" from an Overview chart: said above the list, with the way back.
        self.scope_label = QLabel()
        self.scope_label.setObjectName("scopeLabel")
        self.scope_label.setStyleSheet("font-weight: 600;")
        self.scope_clear = QPushButton("Show all")
        self.scope_clear.setToolTip("Back to the whole list")
        self.scope_clear.clicked.connect(self._on_scope_clear_clicked)
        self.scope_bar = QWidget()
        self.scope_bar.setObjectName("scopeBar")
        scope_row = QHBoxLayout(self.scope_bar)
        scope_row.setContentsMargins(0, 4, 0, 4)
        scope_row.addWidget(QLabel("Showing only:"))
        scope_row.addWidget(self.scope_label)
        scope_row.addWidget(self.scope_clear)
        scope_row.addStretch(1)
        self.scope_bar.setVisible(False)

        self.empty = EmptyState()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(header)
        layout.addWidget(self.scope_bar)
        layout.addWidget(self.stack, 1)
        self.empty.show_message("Loading…", "")
        self.stack.setCurrentWidget(self.empty)

    # ---- public
    def refresh(self) -> None:
        """Reload rows from the local database in the background."""
        self._stale = False
        if self._loading:
            self._reload_pending = True  # e.g. a filter changed while loading: load again after
            return
        self._loading = True
        self._reload_pending = False
        self._patch_keys.clear()  # what changed so far is in what this load reads
        if not self._loaded_once:
            self.count_label.setText("Loading…")
            if self.first_screen_rows and not self._first_screen_asked:
                self._first_screen_asked = True  # then the whole list (still "loading")
                self._tasks.run(
                    self, self.load_first_screen, self._on_first_screen_ok,
                    self._on_first_screen_err,
                )  # fmt: skip
                return
        self._tasks.run(self, self._load_prepared, self._on_load_ok, self._on_load_err)

    @property
    def loaded(self) -> bool:
        """The whole list has been loaded at least once (not just its first screen)."""
        return self._loaded_once

    def load_first_screen(self) -> Any:
        """Worker side: the first `first_screen_rows` rows, in the list's order."""
        raise NotImplementedError

    def _load_prepared(self) -> Any:
        """Worker side: the rows, and their search text folded here rather than on the GUI
        thread (a list of rows; any other result, e.g. the audit log's, goes on as it is)."""
        rows = self._load()
        if isinstance(rows, list):
            return Prepared(rows, self.model.haystack(rows))
        return rows

    def put_beside(self, pane: QWidget, sizes: tuple[int, int], *, stretch: bool = True) -> None:
        """The list on the left and `pane` (a detail, a ledger) on its right, in a splitter
        under the toolbar; with `stretch` the list takes three parts of any extra width."""
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.removeWidget(self.stack)
        splitter = QSplitter()
        splitter.addWidget(self.stack)
        splitter.addWidget(pane)
        if stretch:
            splitter.setStretchFactor(0, 3)
            splitter.setStretchFactor(1, 1)
        splitter.setSizes(list(sizes))
        layout.addWidget(splitter, 1)

    # ---- changes (Anki's operation_did_execute with its OpChanges)
    def rows_changed(self, changes: Changes) -> Set[object] | None:
        """The keys of this list's rows that `changes` touches; empty: none; None: reload all.

        This default reloads on unknown changes only; each panel names what it shows."""
        return None if changes.everything else frozenset()

    def load_rows_by_key(self, keys: Set[object]) -> Mapping[object, R | None]:
        """Worker side: the rows for `keys` as they are now (None: gone, or not in this list
        as filtered). Panels whose `rows_changed` names keys implement it."""
        raise NotImplementedError

    def apply_changes(self, changes: Changes) -> None:
        """Bring the list up to date with what changed: the rows named, re-read and replaced
        in place; the whole list when it cannot say which rows or they are too many. A page
        not shown only remembers that it is stale and reloads when it is shown."""
        keys = self.rows_changed(changes)
        if keys is not None and not keys:
            return
        if self.off_screen():
            self._stale = True
            return
        if keys is None or len(keys) > MAX_PATCH or not self._loaded_once or self._stale:
            self.refresh()
            return
        self.patch_rows(keys)

    @property
    def stale(self) -> bool:
        return self._stale

    def off_screen(self) -> bool:
        """A page the shown window does not show now (another panel is in front)."""
        return self.window().isVisible() and not self.isVisible()

    def on_shown(self) -> None:
        """The window shows this page: reload if changes arrived while it was hidden."""
        if self._stale:
            self.refresh()

    def patch_rows(self, keys: Set[object]) -> None:
        """Re-read only the rows with these keys (off the GUI thread) and replace them."""
        if self._loading or self._patching:
            self._patch_keys.update(keys)  # after the load or patch in flight
            return
        self._patching = True
        wanted = frozenset(keys)
        self._tasks.run(
            self, lambda: self.load_rows_by_key(wanted), self._on_patch_ok, self._on_patch_err
        )

    def _key_of(self) -> Callable[[R], object]:
        # One function for the panel's life: the model keeps its index of rows by key while
        # the key function stays the same.
        if self._key_fn is None:
            self._key_fn = operator.attrgetter(self.key_attr) if self.key_attr else self.row_key
        return self._key_fn

    def _on_patch_ok(self, updates: Mapping[object, R | None]) -> None:
        self._patching = False
        current = self.current_row()
        reset = self.model.update_rows(updates, self._key_of())
        # Replaced in place: the selection stayed; its detail is refreshed if it changed.
        # (A reset restores the selection by key and says so itself.)
        if not reset and current is not None and self.row_key(current) in updates:
            now = self.current_row()
            if now is not None:
                self.selection_kept.emit(now, now != current)
        self._update_view()
        self.rows_patched.emit(len(updates))
        self._next_patch()

    def _on_patch_err(self, exc: BaseException) -> None:
        self._patching = False
        if not isinstance(exc, AppError):
            raise exc
        self.refresh()  # the whole list, then: it says why if that fails too

    def _next_patch(self) -> None:
        if not self._patch_keys:
            return
        keys, self._patch_keys = self._patch_keys, set()
        if len(keys) > MAX_PATCH:
            self.refresh()
        else:
            self.patch_rows(keys)

    def refresh_then_select(self, predicate: Callable[[R], bool]) -> None:
        """Reload, then select the first row matching `predicate` (e.g. the one just saved)."""
        self._select_after_load = predicate
        self.refresh()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def current_row(self) -> R | None:
        index = self.table.currentIndex()
        if not index.isValid() or not self.table.selectionModel().isRowSelected(index.row()):
            return None
        return self.model.row_at(index.row())

    def select_where(self, predicate: Callable[[R], bool]) -> bool:
        """Select the first shown row matching `predicate` (e.g. the customer just created)."""
        for i, row in enumerate(self.model.visible_rows()):
            if predicate(row):
                self.table.selectRow(i)
                return True
        return False

    def make_model(
        self, columns: Sequence[Column[R]], search_text: Callable[[R], str]
    ) -> RowTableModel[R]:
        """The table model (a panel with a large list brings its own, e.g. Customers)."""
        return RowTableModel(columns, search_text)

    def shown_position(self, key: object) -> int | None:
        """Where the row whose `row_key` is `key` is shown, or None; a model may know faster."""
        for i, row in enumerate(self.model.visible_rows()):
            if self.row_key(row) == key:
                return i
        return None

    def column_widths(self) -> Sequence[int]:
        """Initial widths in pixels, by column; subclasses override."""
        return ()

    def row_key(self, row: R) -> object:
        """What identifies a row across reloads (e.g. its Stripe id); subclasses override."""
        return row

    def reveal(self, key: object) -> None:
        """Reload and select the row whose key is `key`, clearing anything that hides it."""
        self.clear_filters()
        self.refresh_then_select(lambda r: self.row_key(r) == key)

    def clear_filters(self) -> None:
        """Show every row (subclasses with filters of their own clear those too)."""
        self.search.clear()
        self.clear_scope()

    def show_only(self, label: str, predicate: Callable[[R], bool] | None) -> None:
        """Show only the rows behind an Overview bar, saying so above the list (`label`)."""
        self.search.clear()
        self.scope_label.setText(label)
        self.scope_bar.setVisible(True)
        self.model.set_only(predicate)
        self._update_view()

    def clear_scope(self) -> None:
        """Back from `show_only` to every row."""
        if not self.scope_bar.isVisible():
            return
        self.scope_bar.setVisible(False)
        self.model.set_only(None)
        self._update_view()

    def _on_scope_clear_clicked(self) -> None:
        self.clear_scope()

    # ---- slots
    def _on_first_screen_ok(self, rows: Any) -> None:
        self._loading = False
        self.refresh()  # the whole list, on a worker while this part is painted
        if not self._loaded_once:
            self.model.set_rows(rows)
            self._set_column_widths()
            self._update_view()

    def _on_first_screen_err(self, exc: BaseException) -> None:
        self._loading = False
        if not isinstance(exc, AppError):
            raise exc
        self.refresh()  # the whole list says why, if it fails too

    def _set_column_widths(self) -> None:
        if not self.table.property("widthsSet"):
            for col, width in enumerate(self.column_widths()):
                self.table.setColumnWidth(col, width)
            self.table.setProperty("widthsSet", True)

    def _on_load_ok(self, rows: Any) -> None:
        self._loading = False
        self._loaded_once = True
        # A reload keeps where the user was looking: the same rows, mostly in the same order.
        bars = (self.table.verticalScrollBar(), self.table.horizontalScrollBar())
        self._kept_scroll = (bars[0].value(), bars[1].value())
        try:
            if isinstance(rows, Prepared):
                self.model.set_rows(rows.rows, rows.haystack)
            else:
                self.model.set_rows(rows)
        finally:
            self._kept_scroll = None
        self._set_column_widths()
        self._update_view()
        wanted, self._select_after_load = self._select_after_load, None
        if wanted is not None and not self.select_where(wanted) and self.search.text():
            self.search.clear()  # the row just saved may not match the search: show it anyway
            self.select_where(wanted)
        self.rows_loaded.emit(self.model.total_count)
        if self._reload_pending:
            self.refresh()
        else:
            self._next_patch()

    def _on_load_err(self, exc: BaseException) -> None:
        self._loading = False
        if not isinstance(exc, AppError):
            raise exc
        self.count_label.setText("")
        self.empty.show_message("Could not load this list", str(exc))
        self.stack.setCurrentWidget(self.empty)
        self.load_failed.emit(str(exc))

    def _on_model_about_to_be_reset(self) -> None:
        self._kept = self.current_row()

    def _on_model_reset(self) -> None:
        kept, self._kept = self._kept, None
        if kept is None:
            self.row_selected.emit(None)
            return
        i = self.shown_position(self.row_key(kept))
        if i is not None:
            row = self.model.row_at(i)
            self._restoring = True  # the same row: no "selection changed", no blank detail
            try:
                self.table.selectRow(i)
            finally:
                self._restoring = False
            if self._kept_scroll is not None:
                self.table.doItemsLayout()  # the scroll ranges, before setting the values
                self.table.verticalScrollBar().setValue(self._kept_scroll[0])
                self.table.horizontalScrollBar().setValue(self._kept_scroll[1])
            else:
                self.table.scrollTo(self.model.index(i, 0))
            self.selection_kept.emit(row, row != kept)
            return
        self.row_selected.emit(None)  # it is gone, or filtered out

    def _on_table_current_row_changed(self, current: Any, _previous: Any) -> None:
        if self._restoring:
            return
        self.row_selected.emit(self.model.row_at(current.row()) if current.isValid() else None)

    def _on_table_activated(self, index: Any) -> None:
        if index.isValid():
            self.row_activated.emit(self.model.row_at(index.row()))

    def _on_search_text_changed(self, text: str) -> None:
        self.model.set_filter(text)
        self._update_view()

    def _update_view(self) -> None:
        total = self.model.total_count
        shown = self.model.rowCount()
        one, many = self.noun
        if self._loading and not self._loaded_once:
            # At most the first screen is here: no count yet, and no search or scope result
            # from a part of the list (it would miss rows); the whole list brings both.
            self.count_label.setText("Loading…")
            if total and not self.search.text().strip() and not self.scope_bar.isVisible():
                self.stack.setCurrentWidget(self.table)
            else:
                self.empty.show_message(f"Loading {many}…", "")
                self.stack.setCurrentWidget(self.empty)
            return
        if total == 0:
            self.count_label.setText(f"No {many}")
            self.empty.show_message(self.empty_title, self.empty_hint)
            self.stack.setCurrentWidget(self.empty)
        elif shown == 0 and self.scope_bar.isVisible() and not self.search.text().strip():
            self.count_label.setText(f"0 of {total:,} {one if total == 1 else many}")
            self.empty.show_message(
                f"No {many} to show: {self.scope_label.text()}",
                "“Show all” above lists every one again.",
            )
            self.stack.setCurrentWidget(self.empty)
        elif shown == 0:
            self.count_label.setText(f"0 of {total:,} {one if total == 1 else many}")
            self.empty.show_message(
                f"No {many} match “{self.search.text().strip()}”",
                "Search looks at every column shown. Clear the search box (Esc) to see all.",
            )
            self.stack.setCurrentWidget(self.empty)
        else:
            noun = one if total == 1 else many
            text = f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}"
            self.count_label.setText(text)
            self.stack.setCurrentWidget(self.table)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.search.text():
            self.search.clear()
            return
        super().keyPressEvent(event)
