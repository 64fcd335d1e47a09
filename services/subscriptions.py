"""Subscriptions: browse the mirror, see one in detail, and change it in Stripe (admins).

Reading is from the local mirror (`services.mirror.subscription_row`: items, amount per
interval, MRR contribution, the period end from the items as the pinned API version has them);
the detail re-reads the subscription, its invoices and its next invoice from Stripe.

Every change is one user action with one idempotency key, fixed when the key is made (the
request journal's, or `--idempotency-key`): Stripe is called first, outside any database
transaction, then the outcome and the audit row are written in one short transaction. Each
action has a preview that says what will happen in money before anyone confirms it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import peewee

from services import validation
from services.audit import Authority
from services.errors import AppError, NotFound, StripeRefused, StripeUnreachable, ValidationError
from services.invoice_credits import is_proration
from services.invoices import HistoryEntry
from services.journal import Attempt, Journal
from services.mirror import MRR_STATUSES, monthly, upsert
from services.models import (
    AuditRecord,
    Customer,
    Invoice,
    Price,
    Product,
    Subscription,
    WebhookEvent,
    tuples,
)
from services.money import format_amount
from services.permissions import Permission
from services.stripe_gateway import StripeGateway, StripeMode

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe

log = logging.getLogger(__name__)

STATUSES = (
    "trialing", "active", "past_due", "unpaid", "paused", "incomplete", "incomplete_expired",
    "canceled",
)  # fmt: skip
#: The CLI's words for Stripe's `proration_behavior`.
PRORATIONS = {"create": "create_prorations", "none": "none", "always": "always_invoice"}
PAUSE_BEHAVIORS = ("void", "keep_as_draft", "mark_uncollectible")
COLLECTION_METHODS = ("charge_automatically", "send_invoice")
#: Statuses after which nothing more can change (no preview, no actions).
ENDED = ("canceled", "incomplete_expired")
MAX_QUANTITY = 10_000
#: A test clock may advance at most two billing intervals at a time: steps of one, in days.
_STEP_DAYS = {"day": 1, "week": 7, "month": 28, "year": 365}
MAX_TRIAL_DAYS = 730  # Stripe's limit on trial_period_days

#: What each status means, in the words a finance clerk would use.
STATUS_MEANING = {
    "trialing": "In a free trial: nothing is charged until the trial ends.",
    "active": "Paid up; renews at the end of each period.",
    "past_due": "The latest renewal is not paid yet; Stripe retries the payment.",
    "unpaid": "Renewals failed and retries are over: invoices are created but not charged.",
    "paused": "Paused: no invoices until it is resumed.",
    "incomplete": "The first payment has not gone through yet.",
    "incomplete_expired": "The first payment never went through: ended.",
    "canceled": "Ended: no more invoices.",
}

_EVENT_WORDS = {
    "customer.subscription.created": "Created in Stripe",
    "customer.subscription.updated": "Updated in Stripe",
    "customer.subscription.deleted": "Canceled (ended)",
    "customer.subscription.paused": "Paused",
    "customer.subscription.resumed": "Resumed",
    "customer.subscription.trial_will_end": "Trial ends in 3 days",
    "customer.subscription.pending_update_applied": "Pending change applied",
    "customer.subscription.pending_update_expired": "Pending change expired",
    "invoice.created": "Invoice created",
    "invoice.finalized": "Invoice finalized",
    "invoice.paid": "Invoice paid",
    "invoice.payment_succeeded": "Payment succeeded",
    "invoice.payment_failed": "Payment FAILED",
    "invoice.voided": "Invoice voided",
    "invoice.marked_uncollectible": "Invoice marked uncollectible",
}

_ACTION_WORDS = {
    "subscription.create": "Created",
    "subscription.update": "Price or quantity changed",
    "subscription.cancel": "Canceled now",
    "subscription.cancel_at_period_end": "Set to cancel at period end",
    "subscription.undo_cancel": "Pending cancellation undone",
    "subscription.pause": "Collection paused",
    "subscription.resume": "Resumed",
}


def interval_label(interval: str | None, count: int) -> str:
    """`month`, `3 months`, `year`… ("" for a subscription without items)."""
    if not interval:
        return ""
    return interval if count <= 1 else f"{count} {interval}s"


class SubscriptionRow(NamedTuple):
    stripe_id: str
    customer_id: str
    customer_name: str
    status: str
    plan: str  # the items' product names (or price ids), joined
    price_ids: str  # space-separated
    currency: str
    amount: int  # per interval, every item, minor units
    interval: str  # "month", "3 months"
    mrr: int  # contribution to MRR per month (0 unless active or past due)
    quantity: int
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    trial_end: int | None
    pause_collection: str  # the behavior while collection is paused, "" when not paused
    collection_method: str
    created: int

    @property
    def cancels_at(self) -> int | None:
        """When a pending cancellation takes effect (None when none is pending)."""
        if self.status in ENDED:
            return None
        if self.cancel_at:
            return self.cancel_at
        return self.current_period_end if self.cancel_at_period_end else None

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True)
class ItemInfo:
    item_id: str
    price_id: str
    product_id: str
    product_name: str
    quantity: int
    unit_amount: int
    amount: int  # unit amount times quantity, per interval
    currency: str
    interval: str
    credits: int | None  # a credit plan's credits per paid period (product metadata[credits])
    current_period_start: int | None
    current_period_end: int | None


@dataclass(frozen=True)
class PreviewLine:
    description: str
    amount: int
    proration: bool


@dataclass(frozen=True)
class UpcomingInvoice:
    """The next invoice as Stripe previews it now."""

    currency: str
    total: int
    amount_due: int
    lines: tuple[PreviewLine, ...]
    next_payment_attempt: int | None


@dataclass(frozen=True)
class SubscriptionInvoice:
    stripe_id: str
    number: str
    status: str
    currency: str
    total: int
    amount_paid: int
    created: int


@dataclass(frozen=True)
class SubscriptionDetail:
    row: SubscriptionRow
    items: tuple[ItemInfo, ...]
    upcoming: UpcomingInvoice | None
    upcoming_note: str  # why there is no preview ("" when there is one)
    invoices: tuple[SubscriptionInvoice, ...]
    history: tuple[HistoryEntry, ...]
    note: str = ""  # e.g. "Stripe unreachable: showing the local copy"
    test_clock: str = ""  # the customer's test clock (test mode and the sandbox), if any


class PriceChoice(NamedTuple):
    """A recurring catalog price a subscription can be made of."""

    price_id: str
    product_id: str
    product_name: str
    unit_amount: int
    currency: str
    interval: str
    credits: int | None

    @property
    def label(self) -> str:
        text = f"{self.product_name} — {format_amount(self.unit_amount, self.currency)} / "
        text += self.interval
        if self.credits:
            text += f" ({self.credits:,} credits each period)"
        return text


@dataclass(frozen=True)
class SubscriptionDraft:
    customer_id: str
    price_id: str
    quantity: int = 1
    trial_days: int = 0
    collection_method: str = "charge_automatically"
    days_until_due: int = 30  # send_invoice only


@dataclass(frozen=True)
class MoneyPreview:
    """What an action will do in money, in words for the confirmation (and the amounts)."""

    text: str
    due_now: int  # charged (or invoiced) now; negative: credited to the customer's balance
    currency: str
    proration_date: int | None = None  # the time the prorations were computed for


@dataclass(frozen=True)
class SubscriptionFigures:
    """MRR, active subscriptions and churn in one currency (the Overview's figures).

    The mirror keeps each subscription's current state, not its history, so the figures at the
    end of the previous period are estimates: today's amounts of the subscriptions that had
    started and not yet ended by then."""

    currency: str
    mrr: int
    mrr_before: int
    active: int
    active_before: int
    trialing: int
    new: int  # started in the period
    new_before: int
    churned: int  # ended (canceled) in the period
    churned_before: int

    def to_json(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "mrr": {"now": self.mrr, "before": self.mrr_before},
            "active": {"now": self.active, "before": self.active_before},
            "trialing": self.trialing,
            "new": {"now": self.new, "before": self.new_before},
            "churned": {"now": self.churned, "before": self.churned_before},
        }


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else "—"


def _request_id(obj: Any) -> str | None:
    return getattr(getattr(obj, "last_response", None), "request_id", None)


def _upcoming(raw: Mapping[str, Any]) -> UpcomingInvoice:
    lines = tuple(
        PreviewLine(str(li.get("description") or ""), int(li.get("amount") or 0), is_proration(li))
        for li in (_get(raw, "lines", "data") or [])
        if isinstance(li, Mapping)
    )
    return UpcomingInvoice(
        currency=str(raw.get("currency") or ""),
        total=int(raw.get("total") or 0),
        amount_due=int(raw.get("amount_due") or 0),
        lines=lines,
        next_payment_attempt=raw.get("next_payment_attempt") or raw.get("period_end"),
    )


def subscription_rows(
    *,
    status: str | None = None,
    customer_id: str | None = None,
    price_id: str | None = None,
    subscription_id: str | None = None,
    limit: int | None = 20_000,
) -> list[SubscriptionRow]:
    """Subscriptions in the local mirror, newest first (the caller checks permission)."""
    if status and status not in STATUSES:
        raise ValidationError(f"Unknown status {status!r}: use one of {', '.join(STATUSES)}.")
    query = (
        Subscription.select(
            Subscription.stripe_id,
            Subscription.customer_id,
            peewee.fn.COALESCE(Customer.name, Customer.email, ""),
            Subscription.status,
            Subscription.product_ids,
            Subscription.price_ids,
            peewee.fn.COALESCE(Subscription.currency, ""),
            Subscription.amount,
            Subscription.billing_interval,
            Subscription.interval_count,
            Subscription.mrr,
            Subscription.quantity,
            Subscription.current_period_end,
            Subscription.cancel_at_period_end,
            Subscription.cancel_at,
            Subscription.canceled_at,
            Subscription.ended_at,
            Subscription.trial_end,
            peewee.fn.COALESCE(Subscription.pause_collection, ""),
            peewee.fn.COALESCE(Subscription.collection_method, ""),
            Subscription.created,
        )
        .join(
            Customer,
            peewee.JOIN.LEFT_OUTER,
            on=(Customer.stripe_id == Subscription.customer_id),
        )
        .order_by(Subscription.created.desc(), Subscription.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Subscription.status == status)
    if customer_id:
        query = query.where(Subscription.customer_id == customer_id.strip())
    if price_id:
        query = query.where(Subscription.price_ids.contains(f" {price_id.strip()} "))
    if subscription_id:
        query = query.where(Subscription.stripe_id == subscription_id)
    names = dict(tuples(Product.select(Product.stripe_id, Product.name)))
    # Plain rows, without peewee's per-value conversion (three times the query at 20,000).
    sql, params = query.sql()
    rows = []
    for t in Subscription._meta.database.execute_sql(sql, params).fetchall():
        products = [p for p in str(t[4] or "").split() if p]
        prices = str(t[5] or "").strip()
        plan = ", ".join(names.get(p, p) for p in products) or prices
        rows.append(
            SubscriptionRow(
                t[0],
                t[1],
                t[2] or "",
                t[3],
                plan,
                prices,
                t[6],
                int(t[7] or 0),
                interval_label(t[8], int(t[9] or 1)),
                int(t[10] or 0),
                int(t[11] or 0),
                t[12],
                bool(t[13]),
                t[14],
                t[15],
                t[16],
                t[17],
                t[18],
                t[19],
                int(t[20]),
            )
        )
    return rows


class SubscriptionService:
    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        journal: Journal | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        self._journal = journal or Journal(db, authority)
        self._clock = clock

    # ---- reading the mirror
    def subscriptions(
        self,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        price_id: str | None = None,
        subscription_id: str | None = None,
        limit: int | None = 20_000,
    ) -> list[SubscriptionRow]:
        """Subscriptions in the local mirror, newest first."""
        self._authority.require(Permission.BROWSE, "subscriptions.list")
        return subscription_rows(
            status=status, customer_id=customer_id, price_id=price_id,
            subscription_id=subscription_id, limit=limit,
        )  # fmt: skip

    def row(self, subscription_id: str) -> SubscriptionRow:
        for row in self.subscriptions(subscription_id=subscription_id, limit=1):
            return row
        raise NotFound(f"No subscription {subscription_id} in the local mirror. Sync first.")

    def price_choices(self) -> list[PriceChoice]:
        """Active recurring prices of active products (the create and change dialogs' picker)."""
        self._authority.require(Permission.BROWSE, "products.list")
        query = (
            Price.select(
                Price.stripe_id,
                Price.product_id,
                Product.name,
                Price.unit_amount,
                Price.currency,
                Price.raw,
                Product.credits,
            )
            .join(Product, on=(Product.stripe_id == Price.product_id))
            .where(
                (Price.type == "recurring")
                & (Price.active == True)  # noqa: E712 (a peewee expression)
                & (Product.active == True)  # noqa: E712
                & Price.unit_amount.is_null(False)
            )
        )
        choices = []
        for price_id, product_id, name, unit, currency, raw, credits in tuples(query):
            recurring = (raw or {}).get("recurring") or {}
            interval = interval_label(
                recurring.get("interval"), int(recurring.get("interval_count") or 1)
            )
            choices.append(
                PriceChoice(price_id, product_id, name, int(unit or 0), currency, interval, credits)
            )
        return sorted(choices, key=lambda c: (c.product_name.casefold(), c.unit_amount))

    # ---- the detail
    def detail(self, subscription_id: str, *, refresh: bool = True) -> SubscriptionDetail:
        """One subscription: items, next invoice (previewed by Stripe), invoices and history.

        With `refresh` the subscription and its invoices are re-read from Stripe first (and the
        mirror updated); when Stripe cannot be reached the local copy is shown, saying so."""
        self._authority.require(Permission.BROWSE, "subscription.show", subscription_id)
        note = ""
        upcoming: UpcomingInvoice | None = None
        upcoming_note = "Not asked: showing the local copy."
        if refresh:
            try:
                sub = self._gateway.call(lambda c: c.v1.subscriptions.retrieve(subscription_id))
                invoices = self._gateway.call(
                    lambda c: [
                        i.to_dict(for_json=True)
                        for i in c.v1.invoices.list({"subscription": subscription_id, "limit": 24})
                    ]
                )
                with self._db.atomic():
                    upsert(Subscription, [sub.to_dict(for_json=True)])
                    upsert(Invoice, invoices)
                upcoming, upcoming_note = self._preview_next(sub.to_dict(for_json=True))
            except StripeUnreachable as exc:
                note = f"Stripe could not be reached, so this is the local copy. ({exc})"
            except NotFound:
                if (
                    not Subscription.select()
                    .where(Subscription.stripe_id == subscription_id)
                    .exists()
                ):
                    raise
                note = "Stripe no longer has this subscription; this is the local copy."
        row = self.row(subscription_id)
        record = Subscription.get(Subscription.stripe_id == subscription_id)
        return SubscriptionDetail(
            row=row,
            items=tuple(self._items(record.items or [])),
            upcoming=upcoming,
            upcoming_note="" if upcoming is not None else upcoming_note,
            invoices=tuple(self._invoices(subscription_id)),
            history=tuple(self._history(subscription_id)),
            note=note,
            test_clock=str((record.raw or {}).get("test_clock") or ""),
        )

    def _preview_next(self, sub: Mapping[str, Any]) -> tuple[UpcomingInvoice | None, str]:
        subscription_id = str(sub["id"])
        if sub.get("status") in ENDED:
            return None, "Ended: there is no next invoice."
        items = (sub.get("items") or {}).get("data") or []
        ends = [i.get("current_period_end") for i in items if i.get("current_period_end")]
        cancel_at = sub.get("cancel_at") or (min(ends) if sub.get("cancel_at_period_end") and
                                              ends else None)  # fmt: skip
        if cancel_at and (not ends or cancel_at <= min(ends)):
            return None, f"None: it ends on {_day(int(cancel_at))}, before the next renewal."
        try:
            raw = self._gateway.call(
                lambda c: c.v1.invoices.create_preview({"subscription": subscription_id})
            )
        except StripeRefused as exc:
            return None, f"Stripe previews no next invoice: {exc}"
        return _upcoming(raw.to_dict(for_json=True)), ""

    def _items(self, items: Iterable[Mapping[str, Any]]) -> list[ItemInfo]:
        products = {
            sid: (name, credits)
            for sid, name, credits in tuples(
                Product.select(Product.stripe_id, Product.name, Product.credits)
            )
        }
        found = []
        for i in items:
            name, credits = products.get(str(i.get("product") or ""), ("", None))
            found.append(
                ItemInfo(
                    item_id=str(i.get("id") or ""),
                    price_id=str(i.get("price") or ""),
                    product_id=str(i.get("product") or ""),
                    product_name=name or str(i.get("nickname") or i.get("price") or ""),
                    quantity=int(i.get("quantity") or 0),
                    unit_amount=int(i.get("unit_amount") or 0),
                    amount=int(i.get("amount") or 0),
                    currency=str(i.get("currency") or ""),
                    interval=interval_label(i.get("interval"), int(i.get("interval_count") or 1)),
                    credits=credits,
                    current_period_start=i.get("current_period_start"),
                    current_period_end=i.get("current_period_end"),
                )
            )
        return found

    @staticmethod
    def _invoices(subscription_id: str) -> list[SubscriptionInvoice]:
        # JSONText keeps compact sorted JSON: the id appears as the invoice's
        # parent.subscription_details.subscription (no top-level `subscription` since 2025-03-31).
        needle = f'"subscription":"{subscription_id}"'
        query = (
            Invoice.select(
                Invoice.stripe_id,
                peewee.fn.COALESCE(Invoice.number, ""),
                peewee.fn.COALESCE(Invoice.status, ""),
                Invoice.currency,
                Invoice.total,
                Invoice.amount_paid,
                Invoice.created,
            )
            .where(Invoice.raw.contains(needle))
            .order_by(Invoice.created.desc(), Invoice.id.desc())
            .limit(100)
        )
        return [SubscriptionInvoice(*t) for t in tuples(query)]

    def _history(self, subscription_id: str) -> list[HistoryEntry]:
        invoice_ids = [i.stripe_id for i in self._invoices(subscription_id)]
        entries: list[HistoryEntry] = []
        events = (
            WebhookEvent.select(WebhookEvent.created, WebhookEvent.type, WebhookEvent.object_id)
            .where(WebhookEvent.object_id.in_([subscription_id, *invoice_ids]))
            .order_by(WebhookEvent.created)
        )
        for created, kind, object_id in tuples(events):
            if kind not in _EVENT_WORDS:
                continue
            what = _EVENT_WORDS[kind]
            entries.append(HistoryEntry(int(created), "Stripe", f"{what} ({object_id})"
                                        if object_id != subscription_id else what))  # fmt: skip
        audit = AuditRecord.select(
            AuditRecord.at, AuditRecord.operator, AuditRecord.action, AuditRecord.outcome,
            AuditRecord.error,
        ).where(AuditRecord.target == subscription_id)  # fmt: skip
        for at, operator, action, outcome, error in tuples(audit):
            if not action.startswith("subscription.") or action == "subscription.show":
                continue
            words = _ACTION_WORDS.get(action, action)
            text = words if outcome == "ok" else f"{words}: {outcome} ({error or ''})".rstrip()
            entries.append(HistoryEntry(int(at) // 1000, operator, text))
        return sorted(entries, key=lambda e: e.at)

    # ---- money previews (what the confirmation says)
    def preview_create(self, draft: SubscriptionDraft) -> MoneyPreview:
        """What creating `draft` does in money, from the catalog price."""
        self._authority.require(Permission.BROWSE, "subscription.preview", draft.customer_id)
        draft = self._validated(draft)
        choice = self._choice(draft.price_id)
        each = choice.unit_amount * draft.quantity
        money = format_amount(each, choice.currency)
        then = f"{money} every {choice.interval}"
        if draft.trial_days:
            until = _day(int(self._clock()) + draft.trial_days * 86_400)
            text = (f"No charge now: a free trial of {draft.trial_days} days (until {until}), "
                    f"then {then}.")  # fmt: skip
            due = 0
        elif draft.collection_method == "send_invoice":
            text = (f"The customer is sent an invoice for {money} now, due in "
                    f"{draft.days_until_due} days, then one for {then}.")  # fmt: skip
            due = each
        else:
            text = (f"The customer's saved card is charged {money} now, then {then}. "
                    "If the card is declined, nothing is created.")  # fmt: skip
            due = each
        if choice.credits:
            text += (f" Each paid period credits {choice.credits * draft.quantity:,} credits "
                     "(a credit plan).")  # fmt: skip
        return MoneyPreview(text + " (Before tax and discounts.)", due, choice.currency)

    def preview_change(
        self,
        subscription_id: str,
        *,
        price_id: str | None = None,
        quantity: int | None = None,
        proration: str = "create",
    ) -> MoneyPreview:
        """What changing the price or quantity does in money, as Stripe previews it now
        (`invoices/create_preview`); pass the preview's `proration_date` to `update`."""
        self._authority.require(Permission.BROWSE, "subscription.preview", subscription_id)
        behavior = self._proration(proration)
        record = self._record(subscription_id, billing=True)
        item_id, change = self._item_change(record, price_id, quantity)
        # No proration date: Stripe prorates as of now (the test clock's now, for a customer
        # on one) and says which moment it used, for the update to charge the same.
        params: dict[str, Any] = {
            "subscription": subscription_id,
            "subscription_details": {
                "items": [{"id": item_id, **change}],
                "proration_behavior": behavior,
            },
        }
        typed: stripe.params.InvoiceCreatePreviewParams = params  # type: ignore[assignment]
        raw = self._gateway.call(lambda c: c.v1.invoices.create_preview(typed))
        data = raw.to_dict(for_json=True)
        when = _get(data, "parent", "subscription_details", "subscription_proration_date")
        preview = _upcoming(data)
        cur = preview.currency or str(record.currency or "")
        prorated = sum(li.amount for li in preview.lines if li.proration)
        what = "upgrade" if prorated > 0 else "downgrade" if prorated < 0 else "change"
        next_on = _day(record.current_period_end)
        due = 0
        if behavior == "none":
            text = (f"No proration: the new price applies from the next renewal on {next_on} "
                    f"({format_amount(preview.total, cur)}).")  # fmt: skip
        elif behavior == "always_invoice":
            due = prorated
            if prorated > 0:
                text = (f"The customer is charged {format_amount(prorated, cur)} now for the "
                        f"{what}.")  # fmt: skip
            elif prorated < 0:
                credited = format_amount(-prorated, cur)
                text = (f"The customer is credited {credited} now for the {what} (to their "
                        "Stripe balance, used by the next invoices).")  # fmt: skip
            else:
                text = "Nothing is charged or credited now."
        else:
            if prorated:
                sign = "added to" if prorated > 0 else "taken off"
                text = (f"{format_amount(abs(prorated), cur)} for the {what} is {sign} the "
                        f"next invoice on {next_on}, which comes to "
                        f"{format_amount(preview.total, cur)}.")  # fmt: skip
            else:
                text = (
                    f"Nothing to prorate; the next invoice on {next_on} is "
                    + format_amount(preview.total, cur)
                    + "."
                )
        return MoneyPreview(text, due, cur, int(when) if isinstance(when, int) else None)

    def preview_cancel(self, subscription_id: str, *, at_period_end: bool) -> MoneyPreview:
        row = self.row(subscription_id)
        end = _day(row.current_period_end)
        if at_period_end:
            text = (f"It stays {row.status} until {end} and then ends: the customer is not "
                    "charged again. This can be undone until then.")  # fmt: skip
        else:
            text = (f"It ends now: the customer is not charged again, and gets no refund for "
                    f"the rest of the period (until {end}). This cannot be undone.")  # fmt: skip
        return MoneyPreview(text, 0, row.currency)

    def preview_pause(self, subscription_id: str, behavior: str = "void") -> MoneyPreview:
        row = self.row(subscription_id)
        words = {
            "void": "created and voided at once: the customer pays nothing while paused",
            "keep_as_draft": "kept as drafts: nothing is charged until you resume and "
                             "finalize them",
            "mark_uncollectible": "marked uncollectible: the customer pays nothing while "
                                  "paused, unless they choose to pay",
        }  # fmt: skip
        if behavior not in words:
            raise ValidationError(f"Pause behavior must be one of {', '.join(PAUSE_BEHAVIORS)}.")
        money = format_amount(row.amount, row.currency)
        return MoneyPreview(
            f"Renewal invoices ({money} every {row.interval}) are still {words[behavior]}.",
            0, row.currency,
        )  # fmt: skip

    def preview_resume(self, subscription_id: str) -> MoneyPreview:
        row = self.row(subscription_id)
        money = format_amount(row.amount, row.currency)
        if row.status == "paused":
            text = (f"It starts again now: the customer is charged {money} now for a new "
                    f"period, then every {row.interval}.")  # fmt: skip
            return MoneyPreview(text, row.amount, row.currency)
        return MoneyPreview(
            f"Collection resumes: the next renewal on {_day(row.current_period_end)} "
            f"({money}) is charged as usual. Invoices voided while paused stay voided.",
            0, row.currency,
        )  # fmt: skip

    # ---- changes (admins)
    def create(
        self, draft: SubscriptionDraft, idempotency_key: str | None = None
    ) -> SubscriptionRow:
        """Create a subscription in Stripe for a customer (admins; audited)."""
        draft = self._validated(draft)
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.create",
                                draft.customer_id)  # fmt: skip
        customer = Customer.get_or_none(Customer.stripe_id == draft.customer_id)
        if customer is None or customer.deleted:
            raise NotFound(f"No customer {draft.customer_id} in the local mirror. Sync first.")
        self._choice(draft.price_id)
        params: dict[str, Any] = {
            "customer": draft.customer_id,
            "items": [{"price": draft.price_id, "quantity": draft.quantity}],
            "collection_method": draft.collection_method,
        }
        if draft.collection_method == "send_invoice":
            params["days_until_due"] = draft.days_until_due
        if draft.trial_days:
            params["trial_period_days"] = draft.trial_days
        elif draft.collection_method == "charge_automatically":
            # A declined first payment refuses the request instead of leaving an `incomplete`
            # subscription behind.
            params["payment_behavior"] = "error_if_incomplete"
        args = {"customer": draft.customer_id, "price": draft.price_id,
                "quantity": draft.quantity, "trial_days": draft.trial_days,
                "collection_method": draft.collection_method}  # fmt: skip
        typed: stripe.params.SubscriptionCreateParams = params  # type: ignore[assignment]
        return self._act(
            "subscription.create", draft.customer_id, args, idempotency_key,
            f"Subscribe {draft.customer_id} to {draft.quantity} x {draft.price_id}",
            lambda c, a: c.v1.subscriptions.create(typed, {"idempotency_key": a.key}),
        )  # fmt: skip

    def update(
        self,
        subscription_id: str,
        *,
        price_id: str | None = None,
        quantity: int | None = None,
        proration: str = "create",
        proration_date: int | None = None,
        idempotency_key: str | None = None,
    ) -> SubscriptionRow:
        """Change the price or the quantity of a one-item subscription (admins; audited).

        `proration_date` should be the preview's, so the customer pays what was shown; without
        one Stripe prorates as of the request (a retry with the same key replays that answer)."""
        behavior = self._proration(proration)
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.update",
                                subscription_id)  # fmt: skip
        record = self._record(subscription_id, billing=True)
        item_id, change = self._item_change(record, price_id, quantity)
        args = {"subscription": subscription_id, **change, "proration": behavior}

        def call(c: stripe.StripeClient, attempt: Attempt) -> Any:
            params: dict[str, Any] = {
                "items": [{"id": item_id, **change}],
                "proration_behavior": behavior,
            }
            if proration_date and behavior != "none":
                params["proration_date"] = proration_date
            typed: stripe.params.SubscriptionUpdateParams = params  # type: ignore[assignment]
            return c.v1.subscriptions.update(subscription_id, typed,
                                             {"idempotency_key": attempt.key})  # fmt: skip

        what = f"price {price_id}" if price_id else f"quantity {quantity}"
        return self._act("subscription.update", subscription_id, args, idempotency_key,
                         f"Change {subscription_id} to {what}", call)  # fmt: skip

    def cancel(
        self,
        subscription_id: str,
        *,
        at_period_end: bool = False,
        idempotency_key: str | None = None,
    ) -> SubscriptionRow:
        """Cancel now, or at the end of the current period (admins; audited)."""
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.cancel",
                                subscription_id)  # fmt: skip
        record = self._record(subscription_id, live=True)
        if at_period_end:
            if record.cancel_at_period_end:
                raise ValidationError(f"{subscription_id} already cancels at the period end.")
            return self._act(
                "subscription.cancel_at_period_end", subscription_id,
                {"subscription": subscription_id}, idempotency_key,
                f"Cancel {subscription_id} at the period end",
                lambda c, a: c.v1.subscriptions.update(
                    subscription_id, {"cancel_at_period_end": True}, {"idempotency_key": a.key}
                ),
            )  # fmt: skip
        return self._act(
            "subscription.cancel", subscription_id, {"subscription": subscription_id},
            idempotency_key, f"Cancel {subscription_id} now",
            lambda c, a: c.v1.subscriptions.cancel(subscription_id, {}, {"idempotency_key": a.key}),
        )  # fmt: skip

    def undo_cancel(
        self, subscription_id: str, idempotency_key: str | None = None
    ) -> SubscriptionRow:
        """Withdraw a pending cancellation (at period end, or at a set time)."""
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.undo_cancel",
                                subscription_id)  # fmt: skip
        record = self._record(subscription_id, live=True)
        if not record.cancel_at_period_end and not record.cancel_at:
            raise ValidationError(f"{subscription_id} has no pending cancellation to undo.")
        params: dict[str, Any] = {"cancel_at_period_end": False}
        if record.cancel_at and not record.cancel_at_period_end:
            params = {"cancel_at": ""}
        typed: stripe.params.SubscriptionUpdateParams = params  # type: ignore[assignment]
        return self._act(
            "subscription.undo_cancel", subscription_id, {"subscription": subscription_id},
            idempotency_key, f"Undo the cancellation of {subscription_id}",
            lambda c, a: c.v1.subscriptions.update(subscription_id, typed,
                                                   {"idempotency_key": a.key}),
        )  # fmt: skip

    def pause(
        self, subscription_id: str, behavior: str = "void", idempotency_key: str | None = None
    ) -> SubscriptionRow:
        """Pause collection: renewals still make invoices, handled per `behavior`."""
        if behavior not in PAUSE_BEHAVIORS:
            raise ValidationError(f"Pause behavior must be one of {', '.join(PAUSE_BEHAVIORS)}.")
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.pause",
                                subscription_id)  # fmt: skip
        record = self._record(subscription_id, live=True, billing=True)
        if record.pause_collection:
            raise ValidationError(f"Collection of {subscription_id} is already paused.")
        pause: dict[str, Any] = {"pause_collection": {"behavior": behavior}}
        params: stripe.params.SubscriptionUpdateParams = pause  # type: ignore[assignment]
        return self._act(
            "subscription.pause", subscription_id,
            {"subscription": subscription_id, "behavior": behavior}, idempotency_key,
            f"Pause collection of {subscription_id} ({behavior})",
            lambda c, a: c.v1.subscriptions.update(subscription_id, params,
                                                   {"idempotency_key": a.key}),
        )  # fmt: skip

    def resume(self, subscription_id: str, idempotency_key: str | None = None) -> SubscriptionRow:
        """Resume collection (or a `paused` subscription)."""
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, "subscription.resume",
                                subscription_id)  # fmt: skip
        record = self._record(subscription_id, live=True)
        if record.status == "paused":

            def call(c: stripe.StripeClient, a: Attempt) -> Any:
                return c.v1.subscriptions.resume(subscription_id, {}, {"idempotency_key": a.key})

        elif record.pause_collection:
            params: stripe.params.SubscriptionUpdateParams = {"pause_collection": ""}

            def call(c: stripe.StripeClient, a: Attempt) -> Any:
                return c.v1.subscriptions.update(
                    subscription_id, params, {"idempotency_key": a.key}
                )

        else:
            raise ValidationError(f"{subscription_id} is not paused: nothing to resume.")
        return self._act("subscription.resume", subscription_id,
                         {"subscription": subscription_id}, idempotency_key,
                         f"Resume {subscription_id}", call)  # fmt: skip

    def _act(
        self,
        action: str,
        target: str,
        args: Mapping[str, Any],
        idempotency_key: str | None,
        summary: str,
        call: Callable[[stripe.StripeClient, Attempt], Any],
    ) -> SubscriptionRow:
        """One journalled, audited change: Stripe first (no transaction open), then the mirror
        and the audit row in one short transaction."""
        try:
            with self._journal.attempt(action, args, key=idempotency_key, target=target,
                                       summary=summary) as attempt:  # fmt: skip
                error: AppError | None = None
                sub: Any = None
                try:
                    sub = self._gateway.call(lambda c: call(c, attempt))
                except AppError as exc:
                    error = exc
                with self._authority.action(
                    Permission.MANAGE_SUBSCRIPTIONS, action, target=target,
                    params={k: v for k, v in args.items() if k != "subscription"},
                ) as record:  # fmt: skip
                    record.idempotency_key = attempt.key
                    if error is not None:
                        raise error
                    attempt.answered(sub.id)
                    record.target = sub.id
                    record.stripe_request_id = _request_id(sub)
                    record.params["status"] = sub.status
                    upsert(Subscription, [sub.to_dict(for_json=True)])
        except StripeRefused:
            if target.startswith("sub_"):
                self._refresh_quietly(target)  # the mirror was probably stale: show the truth
            raise
        return self.row(sub.id)

    def _refresh_quietly(self, subscription_id: str) -> None:
        try:
            fresh = self._gateway.call(lambda c: c.v1.subscriptions.retrieve(subscription_id))
            with self._db.atomic():
                upsert(Subscription, [fresh.to_dict(for_json=True)])
        except AppError as exc:
            log.info("Could not refresh %s after a refusal: %s", subscription_id, exc)

    # ---- checks
    def _validated(self, draft: SubscriptionDraft) -> SubscriptionDraft:
        if not draft.customer_id.strip().startswith("cus_"):
            raise ValidationError("Choose a customer (a Stripe id starting cus_).")
        if not draft.price_id.strip().startswith("price_"):
            raise ValidationError("Choose a recurring price (a Stripe id starting price_).")
        quantity = validation.positive_int(draft.quantity, "Quantity", maximum=MAX_QUANTITY)
        trial = int(draft.trial_days)
        if not 0 <= trial <= MAX_TRIAL_DAYS:
            raise ValidationError(f"A trial is 0 to {MAX_TRIAL_DAYS} days, not {trial}.")
        if draft.collection_method not in COLLECTION_METHODS:
            raise ValidationError(
                f"Collection method must be one of {', '.join(COLLECTION_METHODS)}."
            )
        days = validation.positive_int(draft.days_until_due, "Days until due", maximum=365)
        return SubscriptionDraft(draft.customer_id.strip(), draft.price_id.strip(), quantity,
                                 trial, draft.collection_method, days)  # fmt: skip

    def _choice(self, price_id: str) -> PriceChoice:
        choice = next((c for c in self.price_choices() if c.price_id == price_id), None)
        if choice is None:
            raise ValidationError(
                f"{price_id} is not an active recurring price in the catalog (sync products "
                "first, or pick one from the list)."
            )
        return choice

    @staticmethod
    def _proration(proration: str) -> str:
        behavior = PRORATIONS.get(proration, proration)
        if behavior not in PRORATIONS.values():
            raise ValidationError("Proration must be create, none or always.")
        return behavior

    def _record(
        self, subscription_id: str, *, live: bool = False, billing: bool = False
    ) -> Subscription:
        record = Subscription.get_or_none(Subscription.stripe_id == subscription_id)
        if record is None:
            raise NotFound(f"No subscription {subscription_id} in the local mirror. Sync first.")
        if record.status in ENDED:
            raise ValidationError(f"{subscription_id} is {record.status}: it cannot be changed.")
        if billing and record.status == "incomplete":
            # Stripe allows an incomplete subscription only its metadata, or to be canceled.
            raise ValidationError(
                f"{subscription_id} is incomplete (its first payment has not gone through): "
                "it can only be canceled."
            )
        if live and not record.items:
            raise ValidationError(f"{subscription_id} has no items.")
        return record

    def _item_change(
        self, record: Subscription, price_id: str | None, quantity: int | None
    ) -> tuple[str, dict[str, Any]]:
        if (price_id is None) == (quantity is None):
            raise ValidationError("Change either the price or the quantity.")
        items = record.items or []
        if len(items) != 1:
            raise ValidationError(
                f"{record.stripe_id} has {len(items)} items; only one-item subscriptions can "
                "be changed here (use the Stripe Dashboard)."
            )
        item = items[0]
        if price_id is not None:
            price_id = price_id.strip()
            if price_id == item.get("price"):
                raise ValidationError(f"{record.stripe_id} is already on {price_id}.")
            choice = self._choice(price_id)
            if choice.currency != (record.currency or choice.currency):
                raise ValidationError(
                    f"{price_id} is in {choice.currency.upper()}; the subscription bills in "
                    f"{str(record.currency).upper()}."
                )
            return str(item["id"]), {"price": price_id}
        assert quantity is not None
        quantity = validation.positive_int(quantity, "Quantity", maximum=MAX_QUANTITY)
        if quantity == item.get("quantity"):
            raise ValidationError(f"{record.stripe_id} already has quantity {quantity}.")
        return str(item["id"]), {"quantity": quantity}

    # ---- test clocks (test mode and the sandbox only)
    def advance_clock(
        self,
        subscription_id: str,
        days: int,
        *,
        on_step: Callable[[int, int], None] | None = None,
        poll_s: float = 0.5,
        timeout_s: float = 120.0,
    ) -> SubscriptionRow:
        """Move the subscription's test clock `days` ahead, in steps Stripe accepts (at most
        two billing intervals at a time), waiting for each step to finish; every renewal,
        retry, trial end and cancellation due in between runs in Stripe, and their events
        arrive as usual. Admins, audited; never in live mode (live customers have no clock)."""
        if self._gateway.mode is StripeMode.LIVE:
            raise ValidationError("Test clocks exist only with a test key or in the sandbox.")
        days = validation.positive_int(days, "Days", maximum=3 * 366)
        action = "subscription.advance_clock"
        self._authority.require(Permission.MANAGE_SUBSCRIPTIONS, action, subscription_id)
        # Many Stripe calls: no transaction is held meanwhile (the listener must write the
        # events they cause); the audit row is written at the end, as a sync's is.
        try:
            clock_id, steps = self._advance_clock(subscription_id, days, on_step, poll_s,
                                                  timeout_s)  # fmt: skip
            fresh = self._gateway.call(lambda c: c.v1.subscriptions.retrieve(subscription_id))
            with self._db.atomic():
                upsert(Subscription, [fresh.to_dict(for_json=True)])
        except AppError as exc:
            self._authority.record_failure(action, exc, target=subscription_id)
            raise
        done = {"days": days, "test_clock": clock_id, "steps": steps}
        self._authority.record(action, target=subscription_id, params=done)
        return self.row(subscription_id)

    def _advance_clock(
        self,
        subscription_id: str,
        days: int,
        on_step: Callable[[int, int], None] | None,
        poll_s: float,
        timeout_s: float,
    ) -> tuple[str, int]:
        sub = self._gateway.call(lambda c: c.v1.subscriptions.retrieve(subscription_id))
        clock_id = sub.test_clock if isinstance(sub.test_clock, str) else None
        if not clock_id:
            raise ValidationError(f"{subscription_id} is not on a test clock.")
        step = min((_STEP_DAYS.get(i.price.recurring.interval, 28)
                    * max(1, i.price.recurring.interval_count)
                    for i in sub["items"].data if i.price.recurring), default=28)  # fmt: skip
        clock = self._gateway.call(lambda c: c.v1.test_helpers.test_clocks.retrieve(clock_id))
        start = int(clock.frozen_time)
        target = start + days * 86_400
        now, steps = start, 0
        while now < target:
            now = min(target, now + step * 86_400)
            self._advance(clock_id, now)
            self._wait_ready(clock_id, poll_s, timeout_s)
            steps += 1
            if on_step is not None:
                on_step(now - start, target - start)
        return clock_id, steps

    def _advance(self, clock_id: str, when: int) -> None:
        self._gateway.call(
            lambda c: c.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": when})
        )

    def _wait_ready(self, clock_id: str, poll_s: float, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            clock = self._gateway.call(lambda c: c.v1.test_helpers.test_clocks.retrieve(clock_id))
            if clock.status == "ready":
                return
            if clock.status == "internal_failure" or time.monotonic() > deadline:
                raise StripeRefused(f"Test clock {clock_id} is {clock.status}, not ready.")
            time.sleep(poll_s)

    # ---- the Overview's figures
    def figures(
        self, currency: str, start: int, end: int, prev_start: int, prev_end: int
    ) -> SubscriptionFigures:
        """MRR, active subscriptions and churn; see `subscription_figures`."""
        self._authority.require(Permission.BROWSE, "overview.show")
        return subscription_figures(currency, start, end, prev_start, prev_end)


def subscription_figures(
    currency: str, start: int, end: int, prev_start: int, prev_end: int
) -> SubscriptionFigures:
    """MRR, active subscriptions and churn in `currency` for [start, end) and the period
    before, [prev_start, prev_end), from the mirror (the caller checks the permission). See
    `SubscriptionFigures` for what is estimated."""
    code = currency.lower()
    query = Subscription.select(
        Subscription.status, Subscription.amount, Subscription.billing_interval,
        Subscription.interval_count, Subscription.mrr, Subscription.created,
        Subscription.ended_at, Subscription.canceled_at, Subscription.trial_end,
    ).where(Subscription.currency == code)  # fmt: skip
    # Plain rows from the covering index (migration 12): no per-value conversion, no wide rows.
    sql, params = query.sql()
    found = Subscription._meta.database.execute_sql(sql, params).fetchall()
    mrr = mrr_before = active = active_before = trialing = 0
    new = new_before = churned = churned_before = 0
    for (
        status,
        amount,
        interval,
        count,
        contribution,
        created,
        ended,
        canceled,
        trial,
    ) in found:
        gone = ended or (canceled if status in ENDED else None)
        mrr += int(contribution or 0)
        active += status in MRR_STATUSES
        trialing += status == "trialing"
        new += start <= created < end
        new_before += prev_start <= created < prev_end
        if gone:
            churned += start <= gone < end and status not in ("incomplete_expired",)
            churned_before += prev_start <= gone < prev_end and status != "incomplete_expired"
        # Then: started, not yet ended, out of its trial, and a kind that bills.
        alive_then = created < prev_end and (not gone or gone >= prev_end)
        paying_then = not trial or trial < prev_end
        if alive_then and paying_then and status not in ("incomplete", "incomplete_expired"):
            active_before += 1
            mrr_before += monthly(int(amount or 0), interval, int(count or 1))
    return SubscriptionFigures(code, mrr, mrr_before, active, active_before, trialing,
                               new, new_before, churned, churned_before)  # fmt: skip


def customer_subscriptions(service: SubscriptionService, customer_id: str) -> list[SubscriptionRow]:
    """The customer detail's list: every subscription of one customer, newest first."""
    return service.subscriptions(customer_id=customer_id, limit=None)
