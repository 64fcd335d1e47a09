"""Subscriptions (Ctrl+8): every subscription in the mirror, what it bills, and its detail.

Finance reads and exports; admins create, change, cancel, pause and resume (each confirmed with
what happens in money, see `ui.subscription_dialogs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from services.changes import Changes
from services.context import AppContext
from services.errors import AppError
from services.permissions import Permission
from services.stripe_gateway import StripeMode
from services.subscriptions import (
    STATUS_MEANING,
    STATUSES,
    MoneyPreview,
    SubscriptionDetail,
    SubscriptionRow,
)
from ui.dialogs import SubmitDialog, ask_first, confirm_money_move, denied_tooltip
from ui.formatting import format_amount, format_date, format_datetime
from ui.panels.base import ListPanel, field_form
from ui.subscription_dialogs import (
    AdvanceClockDialog,
    CancelSubscriptionDialog,
    ChangeSubscriptionDialog,
    NewSubscriptionDialog,
)
from ui.table_model import Column
from ui.tasks import TaskRunner

ANY_STATUS = "Any status"
ANY_PRICE = "Any price"
_GREEN = QColor("#1b7a34")
_RED = QColor("#b3261e")
_GREY = QColor("#7a7a7a")
_AMBER = QColor("#8a6100")
_STATUS_COLOUR = {
    "active": _GREEN, "trialing": _AMBER, "past_due": _RED, "unpaid": _RED, "paused": _GREY,
    "incomplete": _AMBER, "incomplete_expired": _GREY, "canceled": _GREY,
}  # fmt: skip
_ID = Qt.ItemDataRole.UserRole


def _money(amount: int, currency: str) -> str:
    return format_amount(amount, currency) if currency else "—"


def _status(row: SubscriptionRow) -> str:
    text = row.status.replace("_", " ")
    if row.pause_collection:
        text += " · collection paused"
    return text


def _cancels(row: SubscriptionRow) -> str:
    """The *cancels at period end* marker: when a pending cancellation takes effect."""
    when = row.cancels_at
    return format_date(when) if when else ""


def _status_tip(row: SubscriptionRow) -> str:
    tip = STATUS_MEANING.get(row.status, row.status)
    if row.pause_collection:
        tip += f" Collection is paused: renewal invoices are {row.pause_collection}."
    return tip


COLUMNS: list[Column[SubscriptionRow]] = [
    Column("Customer", lambda r: r.customer_name or r.customer_id,
           sort_key=lambda r: (r.customer_name or r.customer_id).casefold()),
    Column("Plan", lambda r: r.plan, tooltip=lambda r: r.price_ids),
    Column("Status", _status, foreground=lambda r: _STATUS_COLOUR.get(r.status),
           tooltip=_status_tip),
    Column("Amount", lambda r: f"{_money(r.amount, r.currency)} / {r.interval or '—'}",
           sort_key=lambda r: r.amount, numeric=True),
    Column("MRR", lambda r: _money(r.mrr, r.currency), sort_key=lambda r: r.mrr, numeric=True,
           tooltip=lambda r: "Contribution to monthly recurring revenue (active and past due "
           "subscriptions; trials and ended ones add nothing)."),
    Column("Period end", lambda r: format_date(r.current_period_end),
           sort_key=lambda r: r.current_period_end or 0),
    Column("Cancels on", _cancels, sort_key=lambda r: r.cancels_at or 0, foreground=lambda _r: _RED,
           tooltip=lambda r: "Cancels at the end of the period: not charged again"
           if r.cancels_at else ""),
    Column("Created", lambda r: format_date(r.created), sort_key=lambda r: r.created),
    Column("Subscription", lambda r: r.stripe_id),
]  # fmt: skip


def _search_text(row: SubscriptionRow) -> str:
    return (
        f"{row.customer_name} {row.customer_id} {row.plan} {row.status} {row.stripe_id} "
        f"{row.price_ids} {'cancels' if row.cancels_at else ''}"
    )


def show_subscriptions(
    caption: QLabel, listing: QListWidget, rows: Sequence[SubscriptionRow]
) -> None:
    """A customer's subscriptions in a small list (the customer detail); double-click opens."""
    live = sum(1 for r in rows if not r.ended)
    caption.setText(
        f"Subscriptions: {len(rows):,}, {live:,} not ended" if rows else "Subscriptions: none"
    )
    listing.clear()
    for r in rows:
        marker = f" · cancels {format_date(r.cancels_at)}" if r.cancels_at else ""
        item = QListWidgetItem(
            f"{r.plan or r.price_ids} · {_status(r)} · {_money(r.amount, r.currency)} / "
            f"{r.interval or '—'}{marker}"
        )
        item.setData(_ID, r.stripe_id)
        item.setToolTip(f"{r.stripe_id} — double-click to open it in Subscriptions")
        listing.addItem(item)
    listing.setVisible(bool(rows))


class SubscriptionDetailPane(QFrame):
    """The selected subscription: fields from the mirror at once, then Stripe's fresh view
    (items, next invoice, invoices, history) when it arrives."""

    FIELDS = ("Customer", "Status", "Plan", "Amount", "MRR", "Period", "Cancels", "Trial",
              "Collection")  # fmt: skip

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.setMinimumWidth(320)
        self.title = QLabel("Select a subscription")
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        form, self.fields = field_form(self.FIELDS)
        self.items = self._section("Items")
        self.upcoming = self._section("Next invoice")
        self.invoices_caption = QLabel("Invoices")
        self.invoices_caption.setStyleSheet("font-weight: 600; margin-top: 6px;")
        self.invoices = QListWidget()
        self.invoices.setMaximumHeight(110)
        self.invoices.setToolTip("Double-click (or Enter) to open it in Invoices")
        self.history = self._section("History")
        self.note = QLabel("")
        self.note.setObjectName("hintText")
        self.note.setWordWrap(True)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addLayout(form)
        for caption, label in (self.items, self.upcoming):
            layout.addWidget(caption)
            layout.addWidget(label)
        layout.addWidget(self.invoices_caption)
        layout.addWidget(self.invoices)
        layout.addWidget(self.history[0])
        layout.addWidget(self.history[1])
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.row: SubscriptionRow | None = None

    @staticmethod
    def _section(title: str) -> tuple[QLabel, QLabel]:
        caption = QLabel(title)
        caption.setStyleSheet("font-weight: 600; margin-top: 6px;")
        text = QLabel("—")
        text.setWordWrap(True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return caption, text

    def show_row(self, row: SubscriptionRow | None) -> None:
        self.row = row
        self.note.setText("")
        if row is None:
            self.title.setText("Select a subscription")
            for label in (*self.fields.values(), self.items[1], self.upcoming[1],
                          self.history[1]):  # fmt: skip
                label.setText("—")
            self.invoices.clear()
            return
        self.title.setText(f"{row.plan or 'Subscription'} — {row.customer_name or row.customer_id}")
        period = f"renews {format_date(row.current_period_end)}"
        if row.ended:
            period = f"ended {format_date(row.ended_at or row.canceled_at)}"
        values = {
            "Customer": f"{row.customer_name or '(no name)'} ({row.customer_id})",
            "Status": f"{_status(row)} — {_status_tip(row)}",
            "Plan": f"{row.plan} ({row.price_ids})" if row.price_ids else "—",
            "Amount": f"{_money(row.amount, row.currency)} every {row.interval or '—'}"
            + (f" (quantity {row.quantity})" if row.quantity > 1 else ""),
            "MRR": _money(row.mrr, row.currency),
            "Period": period,
            "Cancels": f"on {format_date(row.cancels_at)}: not charged again"
            if row.cancels_at
            else "—",
            "Trial": f"until {format_date(row.trial_end)}" if row.trial_end else "—",
            "Collection": (row.collection_method or "—").replace("_", " "),
        }
        for key, value in values.items():
            self.fields[key].setText(value)
        self.items[1].setText("Loading from Stripe…")
        self.upcoming[1].setText("Loading from Stripe…")

    def show_detail(self, d: SubscriptionDetail) -> None:
        self.show_row(d.row)
        self.note.setText(d.note)
        self.items[1].setText(
            "\n".join(
                f"{i.quantity} x {i.product_name} — {format_amount(i.unit_amount, i.currency)} "
                f"/ {i.interval}; period {format_date(i.current_period_start)} – "  # noqa: RUF001
                f"{format_date(i.current_period_end)}"
                + (
                    f"\nCredit plan: {i.credits * i.quantity:,} credits each paid period"
                    if i.credits
                    else ""
                )
                for i in d.items
            )
            or "No items."
        )
        if d.upcoming is not None:
            u = d.upcoming
            lines = [f"{format_amount(u.amount_due, u.currency)} due on "
                     f"{format_date(u.next_payment_attempt)}"]  # fmt: skip
            lines += [
                f"  {format_amount(li.amount, u.currency)}  {li.description}"
                + (" (proration)" if li.proration else "")
                for li in u.lines
            ]
            self.upcoming[1].setText("\n".join(lines))
        else:
            self.upcoming[1].setText(d.upcoming_note or "—")
        self.invoices_caption.setText(
            f"Invoices: {len(d.invoices):,}" if d.invoices else "Invoices: none yet"
        )
        self.invoices.clear()
        for inv in d.invoices:
            item = QListWidgetItem(
                f"{inv.number or '(draft)'} · {inv.status} · "
                f"{format_amount(inv.total, inv.currency)} · {format_date(inv.created)}"
            )
            item.setData(_ID, inv.stripe_id)
            self.invoices.addItem(item)
        self.invoices.setVisible(bool(d.invoices))
        self.history[1].setText(
            "\n".join(f"{format_datetime(h.at)} — {h.who}: {h.text}" for h in d.history)
            or "Nothing recorded yet."
        )


class SubscriptionsPanel(ListPanel[SubscriptionRow]):
    title = "Subscriptions"
    noun = ("subscription", "subscriptions")
    search_placeholder = "Search customer, plan, status, id… (Ctrl+F)"
    empty_title = "No subscriptions yet"
    empty_hint = (
        "Subscriptions appear here after a sync from Stripe (Ctrl+R) and as Stripe's events "
        "arrive. Admins can subscribe a customer with New subscription…"
    )

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        # Filtered by status and price, with MRR per row: reloaded whole when a subscription
        # (or a customer it names) changed.
        if changes.everything or changes.subscriptions or changes.customers:
            return None
        return frozenset()

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        self._ctx = ctx
        self._status: str | None = None
        self._price: str | None = None
        super().__init__(tasks, self._load_rows, COLUMNS, _search_text, parent)
        self.status_combo = QComboBox()
        self.status_combo.addItem(ANY_STATUS, None)
        for status in STATUSES:
            self.status_combo.addItem(status.replace("_", " "), status)
        self.status_combo.currentIndexChanged.connect(self._on_status_combo_changed)
        self.price_combo = QComboBox()
        self.price_combo.addItem(ANY_PRICE, None)
        self.price_combo.setMinimumWidth(110)
        self.price_combo.currentIndexChanged.connect(self._on_price_combo_changed)
        self.new_button = QPushButton("New subscription…")
        self.change_button = QPushButton("Change…")
        self.cancel_button = QPushButton("Cancel…")
        # The rarer actions in a menu: the toolbar fits a 1280-pixel window with the search.
        self.more_button = QPushButton("More")
        self.more_menu = QMenu(self.more_button)
        self.more_button.setMenu(self.more_menu)
        self.undo_button = self.more_menu.addAction("Undo the pending cancellation")
        self.pause_button = self.more_menu.addAction("Pause collection…")
        self.resume_button = self.more_menu.addAction("Resume…")
        # Test mode and the sandbox: renewals happen when a test clock moves.
        self.clock_button = self.more_menu.addAction("Advance the test clock…")
        self.clock_button.setToolTip(
            "Move this subscription's test clock ahead: renewals, retries and cancellations "
            "due in between happen now (test mode and the sandbox only)"
        )
        self.clock_button.setVisible(ctx.mode is not StripeMode.LIVE)
        self.clock_button.setEnabled(False)
        self.clock_button.triggered.connect(lambda: self.advance_clock_of_selected())
        self.more_menu.setToolTipsVisible(True)
        self._can_manage = ctx.authority.can(Permission.MANAGE_SUBSCRIPTIONS)
        self.new_button.clicked.connect(lambda: self.new_subscription())
        self.change_button.clicked.connect(self.change_selected)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.undo_button.triggered.connect(lambda: self.undo_cancel_selected())
        self.pause_button.triggered.connect(lambda: self.pause_selected())
        self.resume_button.triggered.connect(lambda: self.resume_selected())
        self.action_buttons: tuple[QPushButton | QAction, ...] = (
            self.change_button, self.cancel_button, self.undo_button, self.pause_button,
            self.resume_button,
        )  # fmt: skip
        for widget in (self.status_combo, self.price_combo, self.new_button, self.change_button,
                       self.cancel_button, self.more_button):  # fmt: skip
            self.toolbar.addWidget(widget)
        self.search.setMinimumWidth(200)
        if not self._can_manage:
            reason = denied_tooltip(ctx.actor.role, Permission.MANAGE_SUBSCRIPTIONS)
            for button in (self.new_button, *self.action_buttons):
                button.setEnabled(False)
                button.setToolTip(reason)
        self.detail = SubscriptionDetailPane()
        self.detail.invoices.itemActivated.connect(
            lambda item: self.open_requested.emit("invoices", item.data(_ID))
        )
        self.put_beside(self.detail, (800, 360))
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(self._on_self_selection_kept)
        self.rows_loaded.connect(self._on_self_rows_loaded)
        self._on_self_row_selected(None)
        self._clock_of: dict[str, str] = {}  # subscription id → its test clock, once read
        #: The last confirmation asked, and the open dialog (kept so a test can press them).
        self.confirm_box: object = None
        self.dialog: QDialog | None = None

    def column_widths(self) -> Sequence[int]:
        return (140, 115, 150, 125, 80, 85, 85, 85, 200)

    def row_key(self, row: SubscriptionRow) -> object:
        return row.stripe_id

    def clear_filters(self) -> None:
        self.status_combo.setCurrentIndex(0)
        self.price_combo.setCurrentIndex(0)
        super().clear_filters()

    def _load_rows(self) -> list[SubscriptionRow]:
        return self._ctx.subscriptions.subscriptions(status=self._status, price_id=self._price)

    # ---- actions (admins)
    def new_subscription(self, customer_id: str = "") -> None:

        if not self._can_manage:
            return
        dialog = NewSubscriptionDialog(self._ctx, self._tasks, customer_id, self)
        self._open(dialog)

    def change_selected(self) -> None:

        row = self.current_row()
        if row is None or not self._can_manage or row.ended:
            return
        self._open(ChangeSubscriptionDialog(self._ctx, self._tasks, row, self))

    def cancel_selected(self) -> None:

        row = self.current_row()
        if row is None or not self._can_manage or row.ended:
            return
        self._open(CancelSubscriptionDialog(self._ctx, self._tasks, row, self))

    def advance_clock_of_selected(self) -> None:
        row = self.current_row()
        if row is None or not self._can_manage or not self._clock_of.get(row.stripe_id):
            return
        self._open(AdvanceClockDialog(self._ctx, self._tasks, row, self))

    def _open(self, dialog: SubmitDialog) -> None:
        self.dialog = dialog
        dialog.succeeded.connect(self._on_changed)
        dialog.open()

    def undo_cancel_selected(self) -> None:
        row = self.current_row()
        if row is None or not self._can_manage or not row.cancels_at:
            return
        self._confirm(
            row, "Undo the cancellation",
            f"It no longer ends on {format_date(row.cancels_at)}: the customer is charged "
            f"{_money(row.amount, row.currency)} again at each renewal.",
            "Undo cancellation",
            lambda: self._ctx.subscriptions.undo_cancel(row.stripe_id),
        )  # fmt: skip

    def pause_selected(self) -> None:
        row = self.current_row()
        if row is None or not self._can_manage or row.ended or row.pause_collection:
            return
        self._preview_then_confirm(
            row, "Pause collection", "Pause collection",
            lambda: self._ctx.subscriptions.preview_pause(row.stripe_id, "void"),
            lambda: self._ctx.subscriptions.pause(row.stripe_id, "void"),
        )  # fmt: skip

    def resume_selected(self) -> None:
        row = self.current_row()
        if row is None or not self._can_manage or not (row.pause_collection or
                                                        row.status == "paused"):  # fmt: skip
            return
        self._preview_then_confirm(
            row, "Resume", "Resume",
            lambda: self._ctx.subscriptions.preview_resume(row.stripe_id),
            lambda: self._ctx.subscriptions.resume(row.stripe_id),
        )  # fmt: skip

    def _preview_then_confirm(
        self,
        row: SubscriptionRow,
        title: str,
        verb: str,
        preview: Callable[[], MoneyPreview],
        act: Callable[[], object],
    ) -> None:
        self._tasks.run(
            self, preview, lambda p: self._confirm(row, title, p.text, verb, act),
            self._on_action_failed,
        )  # fmt: skip

    def _confirm(
        self, row: SubscriptionRow, title: str, text: str, verb: str, act: Callable[[], object]
    ) -> None:
        who = row.customer_name or row.customer_id
        self.confirm_box = ask_first(
            self, title, f"{title}: {row.plan} for {who} ({row.stripe_id}).\n\n{text}", verb,
            lambda: self._run(act) if confirm_money_move(self._ctx.mode, text, self) else None,
        )  # fmt: skip

    def _run(self, act: Callable[[], object]) -> None:
        for button in self.action_buttons:
            button.setEnabled(False)
        self._tasks.run(self, act, lambda _row: self._on_changed(_row), self._on_action_failed)

    def _on_changed(self, _row: object) -> None:
        self.changed_elsewhere.emit()

    def _on_action_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.load_failed.emit(f"Subscription not changed: {exc}")
        self._update_buttons(self.current_row())

    # ---- slots
    def _on_status_combo_changed(self, _index: int) -> None:
        self._status = self.status_combo.currentData()
        self.refresh()

    def _on_price_combo_changed(self, _index: int) -> None:
        self._price = self.price_combo.currentData()
        self.refresh()

    def _on_self_rows_loaded(self, _count: int) -> None:
        """Offer every price the shown subscriptions use (kept while a price filter is on)."""
        if self._price is not None:
            return
        known = {self.price_combo.itemData(i) for i in range(1, self.price_combo.count())}
        for row in self.model.visible_rows():
            for price in row.price_ids.split():
                if price not in known:
                    known.add(price)
                    label = f"{row.plan} ({price})" if len(row.price_ids.split()) == 1 else price
                    self.price_combo.addItem(label, price)

    def _update_buttons(self, row: SubscriptionRow | None) -> None:
        if not self._can_manage:
            return
        alive = row is not None and not row.ended
        # Stripe lets an incomplete subscription (first payment pending) only be canceled.
        billing = alive and bool(row and row.status != "incomplete")
        self.change_button.setEnabled(billing)
        self.cancel_button.setEnabled(alive)
        self.undo_button.setEnabled(alive and bool(row and row.cancels_at))
        self.pause_button.setEnabled(billing and not (row and row.pause_collection)
                                     and bool(row and row.status != "paused"))  # fmt: skip
        self.resume_button.setEnabled(
            alive and bool(row and (row.pause_collection or row.status == "paused"))
        )

    def _on_self_row_selected(self, row: SubscriptionRow | None) -> None:
        self._update_buttons(row)
        self.clock_button.setEnabled(
            self._can_manage and row is not None and bool(self._clock_of.get(row.stripe_id))
        )
        self.detail.show_row(row)
        if row is not None:
            self._load_detail(row)

    def _on_self_selection_kept(self, row: SubscriptionRow, changed: bool) -> None:
        self._update_buttons(row)
        if changed:
            self.detail.show_row(row)
            self._load_detail(row)

    def _load_detail(self, row: SubscriptionRow) -> None:
        def shown(detail: SubscriptionDetail) -> None:
            self._clock_of[row.stripe_id] = detail.test_clock
            if self.detail.row is not None and self.detail.row.stripe_id == row.stripe_id:
                self.detail.show_detail(detail)
                self.clock_button.setEnabled(self._can_manage and bool(detail.test_clock))

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, AppError):
                raise exc
            if self.detail.row is not None and self.detail.row.stripe_id == row.stripe_id:
                self.detail.note.setText(f"Not read from Stripe: {exc}")
                self.detail.items[1].setText("—")
                self.detail.upcoming[1].setText("—")

        self._tasks.run(self, lambda: self._ctx.subscriptions.detail(row.stripe_id), shown, failed)
