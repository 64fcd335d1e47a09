"""The Customers panel's table model: 300,000 customers, searched as you type within a frame.

What it holds (see `services.browse.CustomerColumns`): one list or array per field, a casefolded
search text per customer (the haystack, built off the GUI thread after the first paint), and the
current sort as a permutation of row numbers. What is shown is a list of row numbers; display
strings are made in `data()` for the rows Qt paints, never for every row.

A keystroke filters with one C-level `str.__contains__` pass per term. When the new query extends
the one before ("ann" → "anna", "anna" → "anna k") only the previous matches are scanned, and the
matches of the queries typed on the way are kept, so deleting back is a lookup. The view is told
with one layout change that keeps the selection, not a reset.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import compress, repeat
from typing import Any, overload

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from services.browse import FIELD_SEPARATOR as _FIELDS
from services.browse import CustomerColumns, CustomerRow
from ui.formatting import format_amount, format_date
from ui.table_model import RowTableModel

_DISPLAY = Qt.ItemDataRole.DisplayRole
_ALIGN = Qt.ItemDataRole.TextAlignmentRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_HORIZONTAL = Qt.Orientation.Horizontal
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_ASCENDING = Qt.SortOrder.AscendingOrder

AnyIndex = QModelIndex | QPersistentModelIndex

TITLES = ("Name", "Email", "Phone", "Balance", "Created", "Stripe id")
_BALANCE = 3
_BALANCE_TIP = "Stripe customer balance. Negative: credit toward future invoices."
#: How many queries typed on the way are remembered (their matches), for narrowing and deleting.
_TRAIL = 32


def haystacks(columns: CustomerColumns) -> list[str]:
    """What search looks at, per customer: Stripe id, name, email, phone and metadata, casefolded.

    The text of `ui.customer_picker.customer_search_text` with the fields in another order (no
    term spans two fields either way: terms hold no whitespace), folded as `services.browse.fold`
    (Straße finds STRASSE). Kept as str: `in` on bytes measured 4-6x slower. Pure: runs on a
    worker thread.
    """
    return [
        f"{t} {m}".casefold().replace(_FIELDS, " ")
        for t, m in zip(columns.text, columns.metadata_text, strict=True)
    ]


def load_with_haystacks(
    batches: Iterable[Sequence[tuple[Any, ...]]],
) -> tuple[CustomerColumns, list[str]]:
    """The customers (`BrowseService.customer_batches`) as columns, with their haystacks.

    Built batch by batch on a worker: each batch's metadata goes into its haystacks and is
    never kept in the columns (as `drop_metadata` would leave them, without ~10 MB of JSON
    text held until the whole search index was built, and the holes it left when dropped).
    The haystacks are the same strings `haystacks` makes.
    """
    columns = CustomerColumns.empty()
    hay: list[str] = []
    for batch in batches:
        start = len(columns)
        columns.extend(batch, metadata=False)
        hay += [
            f"{t} {row[8]}".casefold().replace(_FIELDS, " ")
            for t, row in zip(columns.text[start:], batch, strict=True)
        ]
    return columns, hay


_SEPARATOR = "\x1f"  # ASCII unit separator: never in a haystack (fields, JSON escape it)


def relocated(texts: list[str]) -> list[str]:
    """The same strings, copied so they lie one after the other in memory, in this order.

    A scan in sort order then reads memory in order: at 300,000 customers sorted by name it
    took 100 ms of CPU per first keystroke over strings allocated in load order, 42 ms over
    strings laid out in sort order. If the separator occurs in a text, the strings as given.
    """
    copied = _SEPARATOR.join(texts).split(_SEPARATOR)
    return copied if len(copied) == len(texts) else texts


def terms_of(text: str) -> tuple[str, ...]:
    """The search box's text as the terms every shown row must contain (casefolded)."""
    return tuple(text.strip().casefold().split())


def narrows(before: tuple[str, ...], after: tuple[str, ...]) -> bool:
    """True when every row matching `after` also matches `before`.

    So it is when each earlier term lies inside some later term: "ann" inside "anna".
    """
    return all(any(old in new for new in after) for old in before)


def _no_text(_row: CustomerRow) -> str:
    return ""


class VisibleRows(Sequence[CustomerRow]):
    """The shown customers, as rows made when read (an export or a scan stops early)."""

    def __init__(self, columns: CustomerColumns, shown: Sequence[int]) -> None:
        self._columns = columns
        self._view = shown

    def __len__(self) -> int:
        return len(self._view)

    @overload
    def __getitem__(self, i: int) -> CustomerRow: ...
    @overload
    def __getitem__(self, i: slice) -> list[CustomerRow]: ...
    def __getitem__(self, i: int | slice) -> CustomerRow | list[CustomerRow]:
        if isinstance(i, slice):
            return [self._columns.row(r) for r in self._view[i]]
        return self._columns.row(self._view[i])

    def __iter__(self) -> Iterator[CustomerRow]:
        row = self._columns.row
        return map(row, self._view)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def _sort_key(row: CustomerRow, column: int) -> Any:
    """One customer's key under column `column`'s sort (as `CustomerTableModel._sort_keys`)."""
    if column == 0:
        return row.name.lower()
    if column == 1:
        return row.email.lower()
    if column == 2:
        return row.phone
    if column == 3:
        return row.balance
    if column == 4:
        return row.created
    return row.stripe_id


class CustomerTableModel(RowTableModel[CustomerRow]):
    """The customers, filtered by text and sorted by a column, for a `QTableView`.

    A `RowTableModel` to the panel around it (same methods), with its own storage.
    """

    def __init__(self) -> None:
        super().__init__((), _no_text)
        self._cols = CustomerColumns.empty()
        self._hay: list[str] | None = None
        self._only: Callable[[CustomerRow], bool] | None = None
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._order: Sequence[int] = range(0)  # every row number, in the sort's order
        self._order_hay: list[str] | None = None  # haystacks in that order
        self._order_rows: list[int] | None = None  # `_order` as a list
        self._moved = False  # the haystacks were copied in some sort's order
        self._terms: tuple[str, ...] = ()
        # The queries typed on the way to this one, each narrowing the one before, with their
        # matches (row numbers and haystacks, in the sort's order).
        self._trail: list[tuple[tuple[str, ...], list[int], list[str]]] = []
        self._view: Sequence[int] = range(0)  # row numbers shown, in order
        self._formatters: tuple[Callable[[int], str], ...] = self._make_formatters()

    # ---- loading
    def set_rows(
        self, rows: CustomerColumns | Sequence[CustomerRow], haystack: list[str] | None = None
    ) -> None:
        """Show these customers (in the given order unless sorted), keeping the filter.

        `haystack`: their search text, built with them off the GUI thread; without it,
        `set_haystacks` brings it later, or a search builds it when it needs it."""
        columns = rows if isinstance(rows, CustomerColumns) else CustomerColumns.from_rows(rows)
        if haystack is not None and len(haystack) != len(columns):
            haystack = None
        self.beginResetModel()
        self._cols = columns
        self._formatters = self._make_formatters()
        self._hay = haystack
        self._moved = False
        self._reorder()
        self._refilter()
        self.endResetModel()

    @property
    def columns(self) -> CustomerColumns:
        return self._cols

    @property
    def has_haystacks(self) -> bool:
        return self._hay is not None

    def set_haystacks(self, columns: CustomerColumns, hay: list[str]) -> bool:
        """Take haystacks built elsewhere for `columns`; False if other rows came since."""
        if columns is not self._cols or len(hay) != len(columns):
            return False
        if self._hay is None:
            self._hay = hay
            self._order_hay = None
            columns.drop_metadata()  # the haystacks hold it now; no other build is under way
        return True

    def update_rows(
        self, updates: Mapping[Any, CustomerRow | None], key: Callable[[CustomerRow], Any]
    ) -> bool:
        """Put these customers (by Stripe id; None: gone) in place of the ones held.

        Changed customers are rewritten in their columns and search text, then the sort and the
        search run again as one layout change (selection and scroll stay). A customer added or
        gone is one reset over the rows held (no reload). Returns True when it reset.
        """
        del key  # always the Stripe id here
        if not updates:
            return False
        cols = self._cols
        found = cols.text.find_prefixed([f"{k}{_FIELDS}" for k in updates])
        where = {prefix[:-1]: i for prefix, i in found.items()}
        replaced = {where[str(k)]: r for k, r in updates.items() if r and str(k) in where}
        gone = sorted((where[str(k)] for k, r in updates.items() if r is None and str(k) in where),
                      reverse=True)  # fmt: skip
        added = [r for k, r in updates.items() if r is not None and str(k) not in where]
        if not (replaced or gone or added):
            return False
        if self._hay is None:
            # A search-text build may be under way for these columns: it is for the old rows
            # now, so it is dropped (`set_haystacks` refuses other columns); built when needed.
            cols = self._cols = cols.copy()
        hay = self._hay

        def hay_of(row: CustomerRow, i: int) -> str:
            return f"{cols.text[i]} {row.metadata_text}".casefold().replace(_FIELDS, " ")

        before = {i: (cols.row(i), hay[i] if hay is not None else None) for i in replaced}
        for i, row in replaced.items():
            cols.put(i, row)
            if hay is not None:
                hay[i] = hay_of(row, i)
        for i in gone:
            cols.delete(i)
            if hay is not None:
                del hay[i]
        if added:
            cols.prepend(added)
            if hay is not None:
                hay[:0] = [hay_of(row, i) for i, row in enumerate(added)]
        self._formatters = self._make_formatters()
        if gone or added:
            self.beginResetModel()
            self._reorder()
            self._refilter()
            self.endResetModel()
            return True
        # The search's remembered matches hold the old search text: forget them (the next
        # keystroke scans once), and the sort's copy of the search text unless it is `hay`.
        self._trail = []
        if self._order_hay is not hay:
            self._order_hay = None
        if all(self._stays(old, old_hay, row, hay[i] if hay is not None else None)
               for i, (old, old_hay) in before.items() for row in (replaced[i],)):  # fmt: skip
            # Shown where it was, or hidden as it was: one dataChanged per shown row.
            view = self._view
            place = {r: p for p, r in enumerate(view)} if len(replaced) > 8 else None
            last = len(TITLES) - 1
            for i in sorted(replaced):
                try:
                    at = place[i] if place is not None else view.index(i)
                except (KeyError, ValueError):
                    continue  # not shown
                self.dataChanged.emit(self.index(at, 0), self.index(at, last))
            return False
        self._relayout(self._reorder_and_refilter)
        return False

    def _stays(
        self, old: CustomerRow, old_hay: str | None, new: CustomerRow, new_hay: str | None
    ) -> bool:
        """Whether a customer changed from `old` to `new` keeps its place in the view."""
        if self._only is not None and self._only(old) != self._only(new):
            return False
        if self._sort is not None:
            column = self._sort[0]
            if _sort_key(old, column) != _sort_key(new, column):
                return False
        if self._terms:
            if old_hay is None or new_hay is None:
                return False
            return all(t in old_hay for t in self._terms) == all(t in new_hay for t in self._terms)
        return True

    # ---- what is shown
    def set_filter(self, text: str) -> None:
        terms = terms_of(text)
        if terms == self._terms:
            return
        self._relayout(lambda: self._filter_to(terms))

    def set_only(self, predicate: Callable[[CustomerRow], bool] | None) -> None:
        """Show only rows where `predicate` holds (the Overview's drill-downs); None: all."""
        self.beginResetModel()
        self._only = predicate
        self._reorder()
        self._refilter()
        self.endResetModel()

    def clear_sort(self) -> None:
        """Back to the order the rows were given in."""
        if self._sort is not None:
            self._sort = None
            self._relayout(self._reorder_and_refilter)

    def sort(self, column: int, order: Qt.SortOrder = _ASCENDING) -> None:
        if not 0 <= column < len(TITLES) or self._sort == (column, order):
            return
        self._sort = (column, order)
        self._relayout(self._reorder_and_refilter)

    @property
    def total_count(self) -> int:
        return len(self._cols)

    def row_at(self, row: int) -> CustomerRow:
        return self._cols.row(self._view[row])

    def visible_rows(self) -> VisibleRows:  # type: ignore[override]
        return VisibleRows(self._cols, self._view)

    def position_of(self, stripe_id: str) -> int | None:
        """Where the customer `stripe_id` is shown, or None (filtered out, or unknown)."""
        try:
            return self._view.index(self._cols.index_of(stripe_id))
        except ValueError:
            return None

    # ---- the work
    def _haystacks(self) -> list[str]:
        if self._hay is None:
            self._hay = haystacks(self._cols)  # a search before the background build finished
        return self._hay

    def _ordered_haystacks(self) -> list[str]:
        if self._order_hay is None:
            hay, order = self._haystacks(), self._order
            if isinstance(order, range) and not self._moved:
                self._order_hay = hay
            else:
                self._order_hay = relocated(list(map(hay.__getitem__, order)))
                self._moved = True
                if len(order) == len(hay):  # a permutation: keep one copy of the strings
                    where = sorted(range(len(order)), key=order.__getitem__)
                    self._hay = list(map(self._order_hay.__getitem__, where))
        return self._order_hay

    def _ordered_rows(self) -> list[int]:
        if self._order_rows is None:
            # Fresh int objects in this order, for the same reason as `relocated`.
            self._order_rows = array("q", self._order).tolist()
        return self._order_rows

    def _reorder(self) -> None:
        """The sort's permutation of every row number (after an Overview drill-down's cut)."""
        n = len(self._cols)
        order: Sequence[int] = range(n)
        if self._sort is not None:
            column, direction = self._sort
            keys = self._sort_keys(column)
            order = sorted(order, key=keys.__getitem__, reverse=direction != _ASCENDING)
        if self._only is not None:
            keep, row = self._only, self._cols.row
            order = [r for r in order if keep(row(r))]
        self._order = order
        self._order_hay = None
        self._order_rows = None
        self._trail = []

    def _sort_keys(self, column: int) -> Sequence[Any]:
        c = self._cols
        if column in (0, 1):  # name, email: in any case
            return [f.lower() for f in c.column(column + 1)]
        if column == 2:
            return c.column(3)
        if column == 3:
            return c.balance
        if column == 4:
            return c.created
        return c.column(0)

    def _reorder_and_refilter(self) -> None:
        self._reorder()
        if self._hay is not None:
            self._ordered_haystacks()  # the copy in the new order now, not at the next keystroke
        self._refilter()

    def _refilter(self) -> None:
        terms, self._terms = self._terms, ()
        self._filter_to(terms)

    def _filter_to(self, terms: tuple[str, ...]) -> None:
        self._terms = terms
        if not terms:
            self._view = self._order
            return
        trail = self._trail
        while trail and not narrows(trail[-1][0], terms):
            trail.pop()  # a different search, or deleting back past it
        if trail and trail[-1][0] == terms:
            self._view = trail[-1][1]  # deleting back: already known
            return
        if trail:
            _, rows, hays = trail[-1]
        else:
            rows, hays = self._ordered_rows(), self._ordered_haystacks()
        # One C-level pass per term over a shrinking list (bench/search_panel.py).
        for term in terms:
            mask = list(map(operator.contains, hays, repeat(term)))
            rows = list(compress(rows, mask))
            hays = list(compress(hays, mask))
        trail.append((terms, rows, hays))
        del trail[:-_TRAIL]
        self._view = rows

    def _relayout(self, change: Callable[[], None]) -> None:
        """Apply `change` to what is shown as one layout change that keeps selection and current."""
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        shown = self._view
        rows = [shown[p.row()] if 0 <= p.row() < len(shown) else -1 for p in before]
        change()
        shown = self._view
        where: dict[int, int] = {}
        after = []
        for p, r in zip(before, rows, strict=True):
            if r not in where:
                try:
                    where[r] = shown.index(r) if r >= 0 else -1
                except ValueError:
                    where[r] = -1
            at = where[r]
            after.append(self.index(at, p.column()) if at >= 0 else QModelIndex())
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _make_formatters(self) -> tuple[Callable[[int], str], ...]:
        c = self._cols
        text, balance, currency, created = c.text, c.balance, c.currency, c.created

        def field(k: int) -> Callable[[int], str]:
            return lambda r: text[r].split(_FIELDS)[k]

        return (
            lambda r: text[r].split(_FIELDS)[1] or "(no name)",
            field(2),
            field(3),
            lambda r: format_amount(balance[r], currency[r] or "usd"),
            lambda r: format_date(created[r]),
            field(0),
        )

    # ---- Qt's side
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._view)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(TITLES)

    def data(self, index: AnyIndex, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        if role == _DISPLAY:
            return self._formatters[index.column()](self._view[index.row()])
        if role == _ALIGN:
            return _RIGHT if index.column() == _BALANCE else _LEFT
        if role == _TOOLTIP and index.column() == _BALANCE:
            return _BALANCE_TIP
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation == _HORIZONTAL and 0 <= section < len(TITLES):
            if role == _DISPLAY:
                return TITLES[section]
            if role == _ALIGN:
                return _RIGHT if section == _BALANCE else _LEFT
        return None
