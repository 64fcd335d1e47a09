"""Invoices: who owes what, filtered and totalled, with the selected invoice's lines, payments
and history, and the admin actions (new draft, finalize, charge, void, uncollectible, send)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import replace
from datetime import datetime, timedelta

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from services.changes import Changes
from services.context import AppContext
from services.errors import AppError, ValidationError
from services.invoice_rules import InvoiceAction, InvoiceState, permission_for, why_not
from services.invoices import (
    OVERDUE,
    ChargeResult,
    InvoiceDetail,
    InvoiceFilter,
    InvoiceListRow,
    totals,
)
from services.permissions import Permission
from services.validation import amount_in_minor_units
from ui.dialogs import ask_first, denied_tooltip
from ui.formatting import format_amount, format_date, format_datetime
from ui.invoice_dialogs import ChargeDialog, NewInvoiceDialog
from ui.panels.base import ListPanel, field_form
from ui.table_model import Column
from ui.tasks import TaskRunner

ANY_STATUS = "Any status"
_STATUS_CHOICES = [
    (ANY_STATUS, None),
    ("Draft", "draft"),
    ("Open", "open"),
    ("Overdue", OVERDUE),
    ("Paid", "paid"),
    ("Uncollectible", "uncollectible"),
    ("Void", "void"),
]
_GREEN = QColor("#1b7a34")
_RED = QColor("#b3261e")
_GREY = QColor("#7a7a7a")


def _status_text(r: InvoiceListRow) -> str:
    return "Overdue" if r.overdue else r.status.capitalize()


def _status_colour(r: InvoiceListRow) -> QColor | None:
    if r.overdue or r.status == "uncollectible":
        return _RED
    return {"paid": _GREEN, "void": _GREY, "draft": _GREY}.get(r.status)


_CREATED: Column[InvoiceListRow] = Column(
    "Created", lambda r: format_date(r.created), sort_key=lambda r: r.created
)

COLUMNS: list[Column[InvoiceListRow]] = [
    Column("Number", lambda r: r.number or "(draft)"),
    Column("Customer", lambda r: r.customer_name or r.customer_id),
    Column("Status", _status_text, foreground=_status_colour),
    Column("Total", lambda r: format_amount(r.total, r.currency), lambda r: r.total, numeric=True),
    Column(
        "Paid",
        lambda r: format_amount(r.amount_paid, r.currency),
        lambda r: r.amount_paid,
        numeric=True,
    ),
    Column(
        "Still owed",
        lambda r: format_amount(r.amount_remaining, r.currency) if r.status == "open" else "—",
        lambda r: r.amount_remaining if r.status == "open" else -1,
        numeric=True,
        tooltip=lambda r: "What the customer still has to pay on an open invoice.",
    ),
    _CREATED,
    Column("Due", lambda r: format_date(r.due_date), sort_key=lambda r: r.due_date or 0),
    Column("Stripe id", lambda r: r.stripe_id),
]


def _search_text(row: InvoiceListRow) -> str:
    status = "overdue" if row.overdue else ""
    return (
        f"{row.number} {row.customer_name} {row.customer_id} {row.status} {status} {row.stripe_id}"
    )


def _parse_day(text: str, label: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValidationError(f"{label} must be a date like 2026-11-30, not {text!r}.") from None


class InvoiceDetailPane(QFrame):
    """The selected invoice: amounts, lines, payments, history, links and the actions."""

    FIELDS = ("Customer", "Status", "Total", "Paid", "Still owed", "Created", "Due", "Collection")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.setMinimumWidth(290)
        self.title = QLabel("Select an invoice")
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        self.stripe_id = QLabel()
        self.stripe_id.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel()
        self.note.setObjectName("errorText")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        form, self.fields = field_form(self.FIELDS)
        self.lines = self._section()
        self.payments = self._section()
        self.history = self._section()
        self.open_page = QPushButton("Open invoice page")
        self.open_page.setToolTip("Stripe's page where the customer can see and pay the invoice")
        self.open_pdf = QPushButton("Open PDF")
        self.open_page.clicked.connect(lambda: self._open(self.detail_url("page")))
        self.open_pdf.clicked.connect(lambda: self._open(self.detail_url("pdf")))
        links = QHBoxLayout()
        links.addWidget(self.open_page)
        links.addWidget(self.open_pdf)
        links.addStretch(1)
        self.action_row = QHBoxLayout()
        self.action_row2 = QHBoxLayout()

        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.addWidget(self.title)
        layout.addWidget(self.stripe_id)
        layout.addWidget(self.note)
        layout.addLayout(self.action_row)
        layout.addLayout(self.action_row2)
        layout.addLayout(form)
        layout.addLayout(links)
        for heading, widget in (
            ("Lines", self.lines), ("Payments", self.payments), ("History", self.history),
        ):  # fmt: skip
            caption = QLabel(heading)
            caption.setObjectName("sectionTitle")
            caption.setStyleSheet("font-weight: 600; margin-top: 8px;")
            layout.addWidget(caption)
            layout.addWidget(widget)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.detail: InvoiceDetail | None = None
        self.show_detail(None)

    @staticmethod
    def _section() -> QLabel:
        label = QLabel("—")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def detail_url(self, which: str) -> str:
        d = self.detail
        if d is None:
            return ""
        return d.hosted_invoice_url if which == "page" else d.invoice_pdf

    @staticmethod
    def _open(url: str) -> None:
        if url:
            QDesktopServices.openUrl(QUrl(url))

    def show_loading(self, row: InvoiceListRow) -> None:
        self.title.setText(f"Invoice {row.number or '(draft)'}")
        self.stripe_id.setText(row.stripe_id)
        self.payments.setText("Loading from Stripe…")

    def show_detail(self, d: InvoiceDetail | None) -> None:
        self.detail = d
        self.open_page.setEnabled(bool(d and d.hosted_invoice_url))
        self.open_pdf.setEnabled(bool(d and d.invoice_pdf))
        if d is None:
            self.title.setText("Select an invoice")
            self.stripe_id.setText("")
            self.note.setVisible(False)
            for label in (*self.fields.values(), self.lines, self.payments, self.history):
                label.setText("—")
            return
        if not d.hosted_invoice_url:
            self.open_page.setToolTip("A draft has no invoice page yet: finalize it first.")
        self.title.setText(f"Invoice {d.number or '(draft)'}")
        self.stripe_id.setText(d.stripe_id)
        self.note.setText(d.note)
        self.note.setVisible(bool(d.note))

        def money(amount: int) -> str:
            return format_amount(amount, d.currency)

        status = "Open — overdue" if d.overdue else d.status.capitalize()
        if d.status == "open" and d.attempt_count:
            tries = "attempt" if d.attempt_count == 1 else "attempts"
            status += f" ({d.attempt_count} failed payment {tries})"
        values = {
            "Customer": f"{d.customer_name or '(no name)'} ({d.customer_id})",
            "Status": status,
            "Total": f"{money(d.total)} {d.currency.upper()}",
            "Paid": money(d.amount_paid),
            "Still owed": money(d.amount_remaining) if d.status == "open" else "—",
            "Created": format_date(d.created),
            "Due": format_date(d.due_date),
            "Collection": (
                "Customer pays by link (emailed)"
                if d.collection_method == "send_invoice"
                else "Charge the saved card"
            ),
        }
        for key, value in values.items():
            self.fields[key].setText(value)
        lines = [f"{li.quantity} x {li.description} — {money(li.amount)}" for li in d.lines]
        if d.more_lines:
            lines.append(f"… and {d.more_lines} more")
        self.lines.setText("\n".join(lines) or "No lines yet")
        if not d.payments_known:
            self.payments.setText("Not known right now (Stripe could not be reached).")
        else:
            self.payments.setText(
                "\n".join(
                    f"{format_datetime(p.paid_at or p.created)} — {p.status}: "
                    f"{money(p.amount_paid)} of {money(p.amount_requested)}"
                    for p in d.payments
                )
                or "No payments"
            )
        self.history.setText(
            "\n".join(f"{format_datetime(h.at)}  {h.who}: {h.text}" for h in reversed(d.history))
            or "Nothing recorded yet"
        )


class InvoicesPanel(ListPanel[InvoiceListRow]):
    title = "Invoices"
    noun = ("invoice", "invoices")
    search_placeholder = "Search number, customer, status or Stripe id (Ctrl+F)"
    empty_title = "No invoices yet"
    empty_hint = (
        "Invoices appear here after a sync from Stripe (File ▸ Sync from Stripe, Ctrl+R). "
        "Admins can create one with New draft."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        self._ctx = ctx
        self._filter = InvoiceFilter()
        self._scope: InvoiceFilter | None = None  # an Overview drill-down, filtered in SQL
        self._charging: set[str] = set()
        super().__init__(tasks, self._load_rows, COLUMNS, _search_text, parent)
        self._by_customer: dict[str, list[str]] | None = None  # invoice ids, by customer shown
        self.model.modelReset.connect(self._on_model_reset_forget_index)
        self.search.setMinimumWidth(300)
        # Newest first, and say so in the header.
        self.table.sortByColumn(COLUMNS.index(_CREATED), Qt.SortOrder.DescendingOrder)
        role = ctx.actor.role
        self._can = {
            p: ctx.authority.can(p)
            for p in (
                Permission.CREATE_INVOICE,
                Permission.FINALIZE_INVOICE,
                Permission.CHARGE_INVOICE,
                Permission.VOID_INVOICE,
            )
        }
        self._denied = {p: denied_tooltip(role, p) for p in self._can}

        # ---- filters (in SQL, by the service) and totals of what is shown
        self.status_combo = QComboBox()
        for text, value in _STATUS_CHOICES:
            self.status_combo.addItem(text, value)
        self.status_combo.currentIndexChanged.connect(self._on_filters_changed)
        self.customer_filter = QLineEdit()
        self.customer_filter.setPlaceholderText("Customer name, email or id")
        self.since = QLineEdit()
        self.since.setPlaceholderText("from YYYY-MM-DD")
        self.until = QLineEdit()
        self.until.setPlaceholderText("to YYYY-MM-DD")
        self.min_total = QLineEdit()
        self.min_total.setPlaceholderText("min total")
        self.max_total = QLineEdit()
        self.max_total.setPlaceholderText("max total")
        for edit in (self.customer_filter, self.since, self.until, self.min_total, self.max_total):
            edit.setClearButtonEnabled(True)
            # As you type, like search; a half-typed date or amount is said wrong only once
            # the field is left (or Enter).
            edit.textChanged.connect(lambda _text: self._on_filters_changed(typing=True))
            edit.editingFinished.connect(self._on_filters_changed)
        for edit in (self.since, self.until):
            edit.setFixedWidth(130)
            edit.setToolTip("Created on or after / up to and including this day")
        for edit in (self.min_total, self.max_total):
            edit.setFixedWidth(95)
            edit.setToolTip("Invoice total, e.g. 100.00")
        self.customer_filter.setMinimumWidth(200)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show:"))
        for widget in (
            self.status_combo, self.customer_filter, self.since, self.until, self.min_total,
            self.max_total,
        ):  # fmt: skip
            filters.addWidget(widget)
        filters.addStretch(1)
        self.totals_label = QLabel()
        self.totals_label.setObjectName("totalsLabel")
        self.totals_label.setStyleSheet("font-weight: 600; padding: 4px 0;")
        self.filter_error = QLabel()
        self.filter_error.setObjectName("errorText")

        # ---- actions
        self.new_button = QPushButton("New draft…")
        self.new_button.setShortcut(QKeySequence("Ctrl+N"))
        self.new_button.clicked.connect(self.new_draft)
        self.toolbar.addWidget(self.new_button)
        if not self._can[Permission.CREATE_INVOICE]:
            self.new_button.setEnabled(False)
            self.new_button.setToolTip(self._denied[Permission.CREATE_INVOICE])
        else:
            self.new_button.setToolTip("Create a draft invoice for a customer (Ctrl+N)")
        self.detail = InvoiceDetailPane()
        self.finalize_button = QPushButton("Finalize")
        self.charge_button = QPushButton("Charge…")
        self.send_button = QPushButton("Send")
        self.void_button = QPushButton("Void")
        self.uncollectible_button = QPushButton("Mark uncollectible")
        self.finalize_button.clicked.connect(self.finalize_selected)
        self.charge_button.clicked.connect(self.charge_selected)
        self.send_button.clicked.connect(self.send_selected)
        self.void_button.clicked.connect(self.void_selected)
        self.uncollectible_button.clicked.connect(self.mark_uncollectible_selected)
        for button in (self.finalize_button, self.charge_button, self.send_button):
            self.detail.action_row.addWidget(button)
        for button in (self.void_button, self.uncollectible_button):
            self.detail.action_row2.addWidget(button)
        self.detail.action_row.addStretch(1)
        self.detail.action_row2.addStretch(1)
        self.action_status = QLabel()
        self.action_status.setWordWrap(True)
        self.action_status.setObjectName("hintText")

        # ---- layout: filters above, list | detail, totals below the list
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.removeWidget(self.stack)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.stack, 1)
        left_layout.addWidget(self.totals_label)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([780, 300])
        layout.insertLayout(1, filters)
        layout.insertWidget(2, self.filter_error)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.action_status)
        self.filter_error.setVisible(False)
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(self._on_self_selection_kept)
        self._update_buttons()

    def column_widths(self) -> Sequence[int]:
        return (118, 125, 112, 86, 82, 86, 86, 86, 200)

    key_attr = "stripe_id"

    def row_key(self, row: InvoiceListRow) -> object:
        return row.stripe_id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        if changes.everything:
            return None
        if not changes.customers:
            return changes.invoices
        # A renamed customer: the rows that show that name are re-read too.
        by_customer = self._invoices_by_customer()
        named = [i for c in changes.customers for i in by_customer.get(c, ())]
        return changes.invoices.union(named) if named else changes.invoices

    def _invoices_by_customer(self) -> dict[str, list[str]]:
        # Built once per load (a burst asks every frame), from the rows held.
        if self._by_customer is None:
            index: dict[str, list[str]] = {}
            for row in self.model.all_rows():
                index.setdefault(row.customer_id, []).append(row.stripe_id)
            self._by_customer = index
        return self._by_customer

    def _on_model_reset_forget_index(self) -> None:
        self._by_customer = None

    def load_rows_by_key(self, keys: Set[object]) -> Mapping[object, InvoiceListRow | None]:
        ids = tuple(sorted(str(k) for k in keys))
        flt = replace(self._listed_filter(), ids=ids, limit=None)
        found = {row.stripe_id: row for row in self._ctx.invoices.invoices(flt)}
        return {key: found.get(str(key)) for key in keys}

    def clear_filters(self) -> None:
        for edit in (self.customer_filter, self.since, self.until, self.min_total, self.max_total):
            edit.clear()
        self.status_combo.setCurrentIndex(0)
        super().clear_filters()

    # ---- loading
    def _load_rows(self) -> list[InvoiceListRow]:
        return self._ctx.invoices.invoices(self._listed_filter())

    def _listed_filter(self) -> InvoiceFilter:
        scope = self._scope
        if scope is None:
            return self._filter
        return replace(
            self._filter,
            currency=scope.currency,
            paid_since=scope.paid_since,
            paid_until=scope.paid_until,
            days_overdue=scope.days_overdue,
        )

    def show_filtered(self, label: str, scope: InvoiceFilter) -> None:
        """Only the invoices behind an Overview bar (paid on a day, or aged), from the mirror."""
        for edit in (self.customer_filter, self.since, self.until, self.min_total, self.max_total):
            edit.clear()
        self.status_combo.setCurrentIndex(0)
        self._filter = InvoiceFilter()
        self._scope = scope
        self.show_only(label, None)
        self.refresh()

    def clear_scope(self) -> None:
        if self._scope is not None:
            self._scope = None
            self.refresh()
        super().clear_scope()

    def _on_filters_changed(self, *_args: object, typing: bool = False) -> None:
        try:
            since = _parse_day(self.since.text(), "From")
            until = _parse_day(self.until.text(), "To")
            low = self.min_total.text().strip()
            high = self.max_total.text().strip()
            flt = InvoiceFilter(
                status=self.status_combo.currentData(),
                customer=self.customer_filter.text().strip() or None,
                since=int(since.timestamp()) if since else None,
                until=int((until + timedelta(days=1)).timestamp()) if until else None,
                min_total=amount_in_minor_units(low, "usd") if low else None,
                max_total=amount_in_minor_units(high, "usd") if high else None,
            )
        except AppError as exc:
            if not typing:
                self.filter_error.setText(str(exc))
                self.filter_error.setVisible(True)
            return
        self.filter_error.setVisible(False)
        if flt != self._filter:
            self._filter = flt
            self.refresh()

    def _update_view(self) -> None:
        super()._update_view()
        shown = self.model.visible_rows()
        if not shown:
            self.totals_label.setText("")
            return
        parts = [t.describe() for t in totals(shown)]
        self.totals_label.setText("Shown: " + "   |   ".join(parts))
        self.totals_label.setToolTip(
            "Outstanding is what open invoices (overdue included) still owe; drafts are not "
            "owed yet, and void or uncollectible invoices will not be collected. Currencies are "
            "never added together."
        )

    # ---- selection
    def _on_self_row_selected(self, row: InvoiceListRow | None) -> None:
        self.detail.show_detail(None)
        self._update_buttons()
        if row is None:
            return
        self.detail.show_loading(row)
        self._load_detail(row.stripe_id)

    def _on_self_selection_kept(self, row: InvoiceListRow, changed: bool) -> None:
        if changed:  # its own invoice changed (an event, or our own action): refresh in place
            self._load_detail(row.stripe_id)

    def _load_detail(self, invoice_id: str) -> None:
        self._tasks.run(
            self,
            lambda: self._ctx.invoices.detail(invoice_id),
            self._on_detail_loaded,
            self._on_detail_failed,
        )

    def _on_detail_loaded(self, detail: InvoiceDetail) -> None:
        current = self.current_row()
        if current is None or current.stripe_id != detail.stripe_id:
            return  # the selection moved on while this loaded
        self.detail.show_detail(detail)
        self._update_buttons()

    def _on_detail_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.detail.show_detail(None)
        self.detail.title.setText(str(exc))

    # ---- what may be done to the selected invoice, and why not
    def _reason(self, action: InvoiceAction) -> str:
        """'' when the action is possible, else why not (shown on hover): who may, then what the
        invoice allows (services.invoice_rules, which the service also checks)."""
        d = self.detail.detail
        permission = permission_for(action)
        if not self._can[permission]:
            return self._denied[permission]
        if d is None:
            return "Select an invoice first."
        return why_not(action, InvoiceState(d.status, d.collection_method, bool(d.lines)))

    def _update_buttons(self) -> None:
        d = self.detail.detail
        reasons = {
            self.finalize_button: self._reason(InvoiceAction.FINALIZE),
            self.charge_button: self._reason(InvoiceAction.CHARGE),
            self.send_button: self._reason(InvoiceAction.SEND),
            self.void_button: self._reason(InvoiceAction.VOID),
            self.uncollectible_button: self._reason(InvoiceAction.MARK_UNCOLLECTIBLE),
        }
        if d is not None and not reasons[self.charge_button] and d.stripe_id in self._charging:
            reasons[self.charge_button] = "A charge of this invoice is in progress."
        hints = {
            self.finalize_button: "Number the draft and make it payable (lines can no longer "
            "change).",
            self.charge_button: "Charge the customer's saved card (asks for confirmation).",
            self.send_button: "Stripe emails the invoice with its payment link to the customer.",
            self.void_button: "Cancel the invoice: the customer no longer owes it.",
            self.uncollectible_button: "Record it as a bad debt; it can still be paid later.",
        }
        for button, reason in reasons.items():
            button.setEnabled(not reason)
            button.setToolTip(reason or hints[button])

    # ---- actions
    def new_draft(self) -> None:
        if not self._can[Permission.CREATE_INVOICE]:
            return
        d = self.detail.detail
        dialog = NewInvoiceDialog(self._ctx, self._tasks, d.customer_id if d else "", self)
        dialog.created.connect(self._on_changed)
        dialog.open()

    def charge_selected(self) -> None:
        d = self.detail.detail
        if d is None or not self.charge_button.isEnabled():
            return
        dialog = ChargeDialog(self._ctx, self._tasks, d.stripe_id, self)
        dialog.charge_started.connect(self._on_charge_started)
        dialog.charge_finished.connect(self._on_charge_finished)
        dialog.open()

    def finalize_selected(self) -> None:
        self._confirm_then(
            "Finalize this draft? It gets a number and becomes payable; its lines can no "
            "longer change.",
            "Finalize",
            lambda s, i, k: s.finalize(i, k),
            "finalized",
        )

    def send_selected(self) -> None:
        self._confirm_then(
            "Have Stripe email this invoice with its payment link to the customer?",
            "Send",
            lambda s, i, k: s.send(i, k),
            "sent to the customer",
        )

    def void_selected(self) -> None:
        self._confirm_then(
            "Void this invoice? The customer will no longer owe it. This cannot be undone.",
            "Void",
            lambda s, i, k: s.void(i, k),
            "voided",
        )

    def mark_uncollectible_selected(self) -> None:
        self._confirm_then(
            "Mark this invoice uncollectible (a bad debt)? It can still be paid later.",
            "Mark uncollectible",
            lambda s, i, k: s.mark_uncollectible(i, k),
            "marked uncollectible",
        )

    def _confirm_then(
        self,
        question: str,
        verb: str,
        call: Callable[..., InvoiceDetail],
        done: str,
    ) -> None:
        d = self.detail.detail
        if d is None:
            return
        # No key of our own: the request journal re-uses an unconfirmed identical request's.
        invoice_id, key = d.stripe_id, None

        def go() -> None:
            self.action_status.setText(f"{verb}: waiting for Stripe…")
            self._tasks.run(
                self,
                lambda: call(self._ctx.invoices, invoice_id, key),
                lambda detail: self._on_action_done(detail, done),
                self._on_action_failed,
            )

        self.confirm_box = ask_first(
            self, f"{verb} invoice",
            f"Invoice {d.number or d.stripe_id} — {d.customer_name or d.customer_id}, "
            f"{format_amount(d.total, d.currency)}.\n\n{question}",
            verb, go,
        )  # fmt: skip

    def _on_action_done(self, detail: InvoiceDetail, done: str) -> None:
        self.action_status.setText(f"Invoice {detail.number or detail.stripe_id} {done}.")
        current = self.current_row()
        if current is not None and current.stripe_id == detail.stripe_id:
            self.detail.show_detail(detail)  # what Stripe answered, at once and in place
            self._update_buttons()
        self._on_changed(detail)

    def _on_action_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.action_status.setText(f"Nothing changed: {exc}")
        self.load_failed.emit(f"Nothing changed: {exc}")
        self.refresh()

    def _on_changed(self, detail: InvoiceDetail) -> None:
        self.refresh_then_select(lambda r: r.stripe_id == detail.stripe_id)

    def _on_charge_started(self, invoice_id: str) -> None:
        self._charging.add(invoice_id)
        self._update_buttons()

    def _on_charge_finished(self, result: ChargeResult) -> None:
        self._charging.discard(result.invoice_id)
        self.action_status.setText(result.message)
        self.refresh_then_select(lambda r: r.stripe_id == result.invoice_id)
        current = self.current_row()
        if current is not None and current.stripe_id == result.invoice_id:
            self._load_detail(result.invoice_id)
        self._update_buttons()
