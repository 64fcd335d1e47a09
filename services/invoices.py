"""Invoices: browse the mirror, see one in detail, and act on it in Stripe (admins).

Every action goes to Stripe first with the user action's idempotency key, is audited (one row,
whatever the outcome), and then refreshes the mirror. Charging is the dangerous one, so:

* One idempotency key per user action (a dialog, a CLI run). A retry after a timeout or a 5xx
  repeats the same request: Stripe replays its answer instead of charging again.
* One charge of an invoice at a time in this process (`_InFlight`): a double-click, or a second
  window of the same app, is refused at once with "already in progress".
* Across machines, Stripe itself refuses to pay a paid invoice; that answer is reported as
  "already paid" after re-reading the invoice, not as an error.
* The charge's Stripe calls run before the audit transaction opens, so no database write lock
  is held while Stripe takes its time (SQLite transactions lock up front here).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import peewee

from services import validation
from services.audit import Authority
from services.errors import (
    AppError,
    NotFound,
    PaymentDeclined,
    StripeRefused,
    StripeUnreachable,
    ValidationError,
)
from services.invoice_rules import InvoiceAction, InvoiceState, why_not
from services.journal import Journal
from services.mirror import upsert
from services.models import AuditRecord, Customer, Invoice, Price, WebhookEvent, tuples
from services.money import format_amount
from services.permissions import Permission
from services.stripe_gateway import StripeGateway

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe

log = logging.getLogger(__name__)

STATUSES = ("draft", "open", "paid", "uncollectible", "void")
OVERDUE = "overdue"  # not a Stripe status: open and past its due date
ACTION_CHARGE = "invoice.charge"
MAX_AMOUNT = 99_999_999

# Stripe's decline codes in words a finance clerk can pass on to the customer.
DECLINE_WORDS = {
    "generic_decline": "the card was declined (the bank gave no reason)",
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "lost_card": "the card was reported lost",
    "stolen_card": "the card was reported stolen",
    "incorrect_cvc": "the card's security code is wrong",
    "incorrect_number": "the card number is wrong",
    "processing_error": "the card could not be processed; trying again later may work",
    "do_not_honor": "the bank refused the payment",
    "test_mode_live_card": "a real card was used with a test key",
}

_ACTION_WORDS = {
    "invoice.create": "Draft created",
    "invoice.finalize": "Finalized",
    ACTION_CHARGE: "Charge",
    "invoice.void": "Voided",
    "invoice.mark_uncollectible": "Marked uncollectible",
    "invoice.send": "Sent to the customer",
}

_EVENT_WORDS = {
    "invoice.created": "Created in Stripe",
    "invoice.updated": "Updated in Stripe",
    "invoice.finalized": "Finalized",
    "invoice.paid": "Paid",
    "invoice.payment_succeeded": "Payment succeeded",
    "invoice.payment_failed": "Payment failed",
    "invoice.payment_action_required": "Customer must confirm the payment",
    "invoice.voided": "Voided",
    "invoice.marked_uncollectible": "Marked uncollectible",
    "invoice.sent": "Sent to the customer",
}


class InvoiceListRow(NamedTuple):
    stripe_id: str
    number: str
    customer_id: str
    customer_name: str
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    created: int
    due_date: int | None
    overdue: bool


class InvoiceTotal(NamedTuple):
    """Sums of the shown invoices in one currency (money is never added across currencies).

    `outstanding` is what is still owed: the `amount_remaining` of *open* invoices only (overdue
    ones included) — a draft is not owed yet, a void or uncollectible one will not be collected.
    `open_invoices` says how many invoices it covers."""

    currency: str
    invoices: int
    total: int
    amount_paid: int
    outstanding: int
    open_invoices: int

    def describe(self) -> str:
        """One line for a footer or a command's output."""
        noun = "invoice" if self.invoices == 1 else "invoices"
        owed_on = (
            "no open invoices"
            if not self.open_invoices
            else f"on {self.open_invoices:,} open invoice{'s' if self.open_invoices != 1 else ''}"
        )
        return (
            f"{self.invoices:,} {noun} in {self.currency.upper()}: total "
            f"{format_amount(self.total, self.currency)} · paid "
            f"{format_amount(self.amount_paid, self.currency)} · outstanding "
            f"{format_amount(self.outstanding, self.currency)} ({owed_on})"
        )


class InvoiceListing(NamedTuple):
    rows: list[InvoiceListRow]
    totals: list[InvoiceTotal]


@dataclass(frozen=True)
class InvoiceFilter:
    status: str | None = None  # a Stripe status, or "overdue"
    customer: str | None = None  # a customer id, or text in the customer's name or email
    since: int | None = None  # created at or after (seconds)
    until: int | None = None  # created before (seconds)
    min_total: int | None = None  # minor units
    max_total: int | None = None
    limit: int | None = 20_000  # None: all
    # The Overview's drill-downs: one currency, paid in [paid_since, paid_until), and open
    # invoices whose days overdue (services.overview.days_overdue) are in [low, high or ∞].
    currency: str | None = None
    paid_since: int | None = None
    paid_until: int | None = None
    days_overdue: tuple[int, int | None] | None = None
    ids: tuple[str, ...] | None = None  # only these invoices (a window updating changed rows)


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    quantity: int
    amount: int
    currency: str
    price_id: str


@dataclass(frozen=True)
class PaymentInfo:
    """One InvoicePayment (pinned API version: invoices have no payment_intent/charge)."""

    payment_id: str
    status: str  # open, paid, canceled
    amount_requested: int
    amount_paid: int
    currency: str
    created: int
    paid_at: int | None
    payment_intent_id: str


@dataclass(frozen=True)
class HistoryEntry:
    at: int  # seconds since the epoch
    who: str  # an operator login, or "Stripe"
    text: str


@dataclass(frozen=True)
class InvoiceDetail:
    stripe_id: str
    number: str
    customer_id: str
    customer_name: str
    status: str
    collection_method: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    created: int
    due_date: int | None
    hosted_invoice_url: str
    invoice_pdf: str
    description: str
    attempt_count: int
    lines: tuple[InvoiceLine, ...]
    more_lines: int  # lines not shown (only the first ones are embedded)
    payments: tuple[PaymentInfo, ...]
    payments_known: bool  # False when Stripe could not be asked
    history: tuple[HistoryEntry, ...]
    synced_at: int
    note: str = ""  # e.g. "Stripe unreachable: showing the local copy"

    @property
    def overdue(self) -> bool:
        return self.status == "open" and bool(self.due_date) and (self.due_date or 0) < time.time()


@dataclass(frozen=True)
class DraftLine:
    """A catalog price (`price_id`), or a custom line (`description`, `amount`, `currency`)."""

    price_id: str | None = None
    description: str = ""
    amount: int = 0  # minor units, custom lines only
    currency: str = ""
    quantity: int = 1


@dataclass(frozen=True)
class InvoiceDraft:
    customer_id: str
    lines: tuple[DraftLine, ...]
    memo: str = ""  # the invoice's description, shown to the customer
    send_invoice: bool = False  # email it to pay by link, instead of charging the saved card
    days_until_due: int = 30


@dataclass(frozen=True)
class PaymentMethodInfo:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None

    def label(self) -> str:
        text = f"{self.brand.capitalize() or 'Card'} •••• {self.last4}"
        if self.exp_month and self.exp_year:
            text += f" (expires {self.exp_month:02d}/{self.exp_year})"
        return text


@dataclass(frozen=True)
class ChargePreview:
    """What the confirmation shows: who, how much, and which card."""

    invoice_id: str
    number: str
    customer_id: str
    customer_name: str
    status: str
    amount: int  # what a charge would take now (amount remaining)
    currency: str
    payment_method: PaymentMethodInfo | None
    hosted_invoice_url: str


class ChargeOutcome(enum.Enum):
    PAID = "paid"
    ALREADY_PAID = "already paid"
    DECLINED = "declined"
    REQUIRES_AUTHENTICATION = "requires authentication"
    NO_PAYMENT_METHOD = "no payment method"
    UNREACHABLE = "Stripe unreachable"
    IN_PROGRESS = "in progress"


@dataclass(frozen=True)
class ChargeResult:
    invoice_id: str
    outcome: ChargeOutcome
    message: str  # plain words for the clerk
    amount: int = 0
    currency: str = ""
    decline_code: str = ""
    hosted_invoice_url: str = ""


class ChargeDeclined(PaymentDeclined):
    """The card was declined; the invoice stays open."""

    def __init__(self, result: ChargeResult, *, request_id: str | None = None) -> None:
        super().__init__(result.message, request_id=request_id)
        self.result = result


class ChargeNeedsAuthentication(StripeRefused):
    """The bank wants the customer to confirm (3D Secure): only they can, on the hosted page."""

    def __init__(self, result: ChargeResult, *, request_id: str | None = None) -> None:
        super().__init__(result.message, request_id=request_id)
        self.result = result


class NoPaymentMethod(StripeRefused):
    """The customer has no saved card to charge."""

    def __init__(self, result: ChargeResult, *, request_id: str | None = None) -> None:
        super().__init__(result.message, request_id=request_id)
        self.result = result


class ChargeUnreachable(StripeUnreachable):
    """No answer from Stripe; retrying with the same key is safe."""

    def __init__(self, result: ChargeResult, *, request_id: str | None = None) -> None:
        super().__init__(result.message, request_id=request_id)
        self.result = result


class ChargeInProgress(ValidationError):
    """Another charge of the same invoice is running in this app right now."""

    def __init__(self, result: ChargeResult) -> None:
        super().__init__(result.message)
        self.result = result


def charge_result_of(exc: BaseException) -> ChargeResult | None:
    """The outcome carried by a charge error, if it is one."""
    result = getattr(exc, "result", None)
    return result if isinstance(result, ChargeResult) else None


def totals(rows: Iterable[InvoiceListRow]) -> list[InvoiceTotal]:
    """Per-currency sums of `rows` (cheap enough for every filter change in the panel)."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        s = sums.setdefault(r.currency, [0, 0, 0, 0, 0])
        s[0] += 1
        s[1] += r.total
        s[2] += r.amount_paid
        if r.status == "open":  # overdue invoices are open too
            s[3] += r.amount_remaining
            s[4] += 1
    return [InvoiceTotal(cur, *s) for cur, s in sorted(sums.items())]


def decline_words(code: str) -> str:
    return DECLINE_WORDS.get(code, f"the card was declined ({code})" if code else "declined")


def _request_id(obj: Any) -> str | None:
    return getattr(getattr(obj, "last_response", None), "request_id", None)


def _overdue_between(low: int, high: int | None, now: int) -> Any:
    """Open invoices `low` to `high` days overdue, a started day counting as one (0: not due)."""
    day = 86_400
    is_open = Invoice.status == "open"
    if low <= 0:
        not_due = Invoice.due_date.is_null() | (Invoice.due_date >= now)
        if high == 0:
            return is_open & not_due
        low = 1
    else:
        not_due = None
    # days overdue >= low  <=>  due < now - (low - 1) days; <= high  <=>  due >= now - high days
    late = Invoice.due_date.is_null(False) & (Invoice.due_date < now - (low - 1) * day)
    if high is not None:
        late = late & (Invoice.due_date >= now - high * day)
    return is_open & (late if not_due is None else (late | not_due))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _line(raw: Mapping[str, Any]) -> InvoiceLine:
    price = _get(raw, "pricing", "price_details", "price") or _get(raw, "price", "id") or ""
    return InvoiceLine(
        description=str(raw.get("description") or ""),
        quantity=int(raw.get("quantity") or 1),
        amount=int(raw.get("amount") or 0),
        currency=str(raw.get("currency") or ""),
        price_id=str(price),
    )


def _payment(raw: Mapping[str, Any]) -> PaymentInfo:
    return PaymentInfo(
        payment_id=str(raw.get("id") or ""),
        status=str(raw.get("status") or ""),
        amount_requested=int(raw.get("amount_requested") or 0),
        amount_paid=int(raw.get("amount_paid") or 0),
        currency=str(raw.get("currency") or ""),
        created=int(raw.get("created") or 0),
        paid_at=_get(raw, "status_transitions", "paid_at"),
        payment_intent_id=_id_of(_get(raw, "payment", "payment_intent")),
    )


def _card_of(pm: Any) -> PaymentMethodInfo | None:
    if not isinstance(pm, Mapping):
        return None
    card = pm.get("card") or {}
    return PaymentMethodInfo(
        payment_method_id=str(pm.get("id") or ""),
        brand=str(card.get("brand") or pm.get("type") or ""),
        last4=str(card.get("last4") or "????"),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
    )


class _InFlight:
    """Invoice ids being charged right now in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def claim(self, invoice_id: str) -> bool:
        with self._lock:
            if invoice_id in self._ids:
                return False
            self._ids.add(invoice_id)
            return True

    def release(self, invoice_id: str) -> None:
        with self._lock:
            self._ids.discard(invoice_id)

    def __contains__(self, invoice_id: object) -> bool:
        with self._lock:
            return invoice_id in self._ids


class InvoiceService:
    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        journal: Journal | None = None,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        self._journal = journal or Journal(db, authority)
        self._in_flight = _InFlight()

    # ---- reading
    def invoices(self, flt: InvoiceFilter | None = None) -> list[InvoiceListRow]:
        """Invoices in the local mirror matching `flt`, newest first."""
        self._authority.require(Permission.BROWSE, "invoices.list")
        flt = flt or InvoiceFilter()
        now = int(time.time())
        query = (
            Invoice.select(
                Invoice.stripe_id,
                peewee.fn.COALESCE(Invoice.number, ""),
                Invoice.customer_id,
                peewee.fn.COALESCE(Customer.name, Customer.email, ""),
                peewee.fn.COALESCE(Invoice.status, ""),
                Invoice.currency,
                Invoice.total,
                Invoice.amount_due,
                Invoice.amount_paid,
                Invoice.amount_remaining,
                Invoice.created,
                Invoice.due_date,
            )
            .join(Customer, peewee.JOIN.LEFT_OUTER, on=(Customer.stripe_id == Invoice.customer_id))
            .order_by(Invoice.created.desc(), Invoice.id.desc())
            .limit(flt.limit)
        )
        if flt.status == OVERDUE:
            query = query.where(
                (Invoice.status == "open") & Invoice.due_date.is_null(False)
                & (Invoice.due_date < now)
            )  # fmt: skip
        elif flt.status:
            query = query.where(Invoice.status == flt.status)
        if flt.customer and flt.customer.strip():
            text = flt.customer.strip()
            query = query.where(
                (Invoice.customer_id == text) | Customer.name.contains(text)
                | Customer.email.contains(text)
            )  # fmt: skip
        if flt.since is not None:
            query = query.where(Invoice.created >= flt.since)
        if flt.until is not None:
            query = query.where(Invoice.created < flt.until)
        if flt.min_total is not None:
            query = query.where(Invoice.total >= flt.min_total)
        if flt.max_total is not None:
            query = query.where(Invoice.total <= flt.max_total)
        if flt.currency:
            query = query.where(Invoice.currency == flt.currency.lower())
        if flt.paid_since is not None:
            query = query.where(Invoice.paid_at >= flt.paid_since)
        if flt.paid_until is not None:
            query = query.where(Invoice.paid_at < flt.paid_until)
        if flt.days_overdue is not None:
            query = query.where(_overdue_between(*flt.days_overdue, now))
        if flt.ids is not None:
            query = query.where(Invoice.stripe_id.in_(flt.ids))
        # The driver's tuples as they come: every column here is a plain text or integer, and
        # peewee's per-field conversion was most of the time at 20,000 rows (bench/overview.py).
        cursor = self._db.execute_sql(*query.sql())  # type: ignore[no-untyped-call]
        return [
            InvoiceListRow._make((*t, t[4] == "open" and t[11] is not None and int(t[11]) < now))
            for t in cursor.fetchall()
        ]

    def listing(self, flt: InvoiceFilter | None = None) -> InvoiceListing:
        rows = self.invoices(flt)
        return InvoiceListing(rows, totals(rows))

    def detail(self, invoice_id: str, *, refresh: bool = True) -> InvoiceDetail:
        """One invoice with its lines, payments and history.

        With `refresh`, the invoice and its InvoicePayments are read from Stripe first (and the
        mirror updated); when Stripe cannot be reached the local copy is shown, saying so.
        """
        self._authority.require(Permission.BROWSE, "invoice.show", invoice_id)
        payments: list[dict[str, Any]] | None = None
        lines: list[dict[str, Any]] | None = None
        note = ""
        if refresh:
            try:
                fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
                raw = fresh.to_dict(for_json=True)
                payments = self._gateway.call(
                    lambda c: [
                        p.to_dict(for_json=True)
                        for p in c.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
                    ]
                )
                if (_get(raw, "lines", "total_count") or 0) > len(_get(raw, "lines", "data") or []):
                    lines = self._gateway.call(
                        lambda c: [
                            li.to_dict(for_json=True)
                            for li in c.v1.invoices.line_items.list(
                                invoice_id, {"limit": 100}
                            ).auto_paging_iter()
                        ]
                    )
                with self._db.atomic():
                    upsert(Invoice, [raw])
            except StripeUnreachable as exc:
                note = f"Stripe could not be reached, so this is the local copy. ({exc})"
            except NotFound:
                if not Invoice.select().where(Invoice.stripe_id == invoice_id).exists():
                    raise
                note = "Stripe no longer has this invoice; this is the local copy."
        row = Invoice.get_or_none(Invoice.stripe_id == invoice_id)
        if row is None:
            raise NotFound(f"No invoice {invoice_id} in the local mirror. Sync from Stripe first.")
        return self._detail_of(row, lines, payments, note)

    def _detail_of(
        self,
        row: Invoice,
        lines: Sequence[Mapping[str, Any]] | None,
        payments: Sequence[Mapping[str, Any]] | None,
        note: str,
    ) -> InvoiceDetail:
        raw = row.raw or {}
        embedded = _get(raw, "lines", "data") or []
        all_lines = list(lines) if lines is not None else list(embedded)
        total_count = int(_get(raw, "lines", "total_count") or len(all_lines))
        customer = Customer.get_or_none(Customer.stripe_id == row.customer_id)
        name = (customer.name or customer.email or "") if customer is not None else ""
        name = name or str(raw.get("customer_name") or raw.get("customer_email") or "")
        return InvoiceDetail(
            stripe_id=row.stripe_id,
            number=row.number or "",
            customer_id=row.customer_id,
            customer_name=name,
            status=row.status or "",
            collection_method=str(raw.get("collection_method") or "charge_automatically"),
            currency=row.currency,
            total=row.total,
            amount_due=row.amount_due,
            amount_paid=row.amount_paid,
            amount_remaining=row.amount_remaining,
            created=row.created,
            due_date=row.due_date,
            hosted_invoice_url=row.hosted_invoice_url or "",
            invoice_pdf=str(raw.get("invoice_pdf") or ""),
            description=str(raw.get("description") or ""),
            attempt_count=int(raw.get("attempt_count") or 0),
            lines=tuple(_line(li) for li in all_lines),
            more_lines=max(0, total_count - len(all_lines)),
            payments=tuple(_payment(p) for p in (payments or ())),
            payments_known=payments is not None,
            history=self._history(row.stripe_id, raw),
            synced_at=row.synced_at,
            note=note,
        )

    def _history(self, invoice_id: str, raw: Mapping[str, Any]) -> tuple[HistoryEntry, ...]:
        """What happened, from the audit log (here) and the stored Stripe events (there)."""
        entries: list[HistoryEntry] = []
        audit = AuditRecord.select().where(AuditRecord.target == invoice_id)
        for a in audit:
            words = _ACTION_WORDS.get(a.action, a.action)
            params = a.params or {}
            if a.outcome == "ok":
                text = f"{words}: {params['outcome']}" if params.get("outcome") else words
            else:
                text = f"{words} — {a.outcome}: {a.error or ''}".rstrip(": ")
            entries.append(HistoryEntry(a.at // 1000, a.operator, text))
        events = WebhookEvent.select(WebhookEvent.type, WebhookEvent.created).where(
            WebhookEvent.object_id == invoice_id
        )
        seen_types = set()
        for event_type, created in tuples(events):
            seen_types.add(event_type)
            entries.append(
                HistoryEntry(int(created), "Stripe", _EVENT_WORDS.get(event_type, event_type))
            )
        if not seen_types:
            # No events stored (e.g. synced from before this database listened): Stripe's own
            # timestamps still tell the story.
            transitions = raw.get("status_transitions") or {}
            for key, text in (
                ("finalized_at", "Finalized"),
                ("paid_at", "Paid"),
                ("voided_at", "Voided"),
                ("marked_uncollectible_at", "Marked uncollectible"),
            ):
                if transitions.get(key):
                    entries.append(HistoryEntry(int(transitions[key]), "Stripe", text))
            if raw.get("created"):
                entries.append(HistoryEntry(int(raw["created"]), "Stripe", "Created in Stripe"))
        entries.sort(key=lambda e: e.at)
        return tuple(entries)

    # ---- creating
    def validate(self, draft: InvoiceDraft) -> tuple[InvoiceDraft, str]:
        """The draft, cleaned, and its currency; raises `ValidationError` saying what to fix."""
        customer = Customer.get_or_none(Customer.stripe_id == draft.customer_id.strip())
        if customer is None or customer.deleted:
            raise ValidationError(
                f"No customer {draft.customer_id!r} in the local mirror (sync first?)."
            )
        if not draft.lines:
            raise ValidationError("Add at least one line: a catalog price or a custom amount.")
        cleaned: list[DraftLine] = []
        currencies: set[str] = set()
        for n, line in enumerate(draft.lines, start=1):
            quantity = validation.positive_int(line.quantity, f"Line {n}: quantity", maximum=9999)
            if line.price_id:
                price = Price.get_or_none(Price.stripe_id == line.price_id.strip())
                if price is None or not price.active or price.unit_amount is None:
                    raise ValidationError(f"Line {n}: {line.price_id} is not an active price.")
                currencies.add(price.currency)
                cleaned.append(DraftLine(price_id=price.stripe_id, quantity=quantity))
                continue
            description = validation.text(
                line.description, f"Line {n}: a description", max_len=500, required=True
            )
            code = validation.currency(line.currency)
            if not 0 < line.amount <= MAX_AMOUNT:
                raise ValidationError(
                    f"Line {n}: the amount must be more than zero and at most 999,999.99."
                )
            currencies.add(code)
            cleaned.append(DraftLine(None, description, line.amount, code, 1))
        if len(currencies) != 1:
            raise ValidationError(
                "All lines of one invoice must be in the same currency, not "
                + ", ".join(sorted(c.upper() for c in currencies))
                + "."
            )
        days = validation.positive_int(draft.days_until_due, "Days until due", maximum=365)
        memo = validation.text(draft.memo, "Memo", max_len=500)
        return (
            InvoiceDraft(customer.stripe_id, tuple(cleaned), memo, draft.send_invoice, days),
            currencies.pop(),
        )

    def create_draft(
        self, draft: InvoiceDraft, idempotency_key: str | None = None
    ) -> InvoiceDetail:
        """Create a draft invoice with its lines in Stripe (admins), then mirror it."""
        draft, currency = self.validate(draft)
        params: stripe.params.InvoiceCreateParams = {
            "customer": draft.customer_id,
            "currency": currency,
            "pending_invoice_items_behavior": "exclude",
            "collection_method": "send_invoice" if draft.send_invoice else "charge_automatically",
        }
        if draft.send_invoice:
            params["days_until_due"] = draft.days_until_due
        if draft.memo:
            params["description"] = draft.memo
        audit = {"customer": draft.customer_id, "currency": currency, "lines": len(draft.lines)}
        args = {"invoice": dict(params), "lines": [asdict(line) for line in draft.lines]}
        self._authority.require(Permission.CREATE_INVOICE, "invoice.create", draft.customer_id)
        with (
            self._journal.attempt(
                "invoice.create", args, key=idempotency_key, target=draft.customer_id,
                summary=f"New draft invoice for {draft.customer_id} ({len(draft.lines)} lines, "
                f"{currency})",
            ) as attempt,
            self._authority.action(
                Permission.CREATE_INVOICE, "invoice.create", target=draft.customer_id,
                params=audit, stripe_first=True,
            ) as record,
        ):  # fmt: skip
            key = record.idempotency_key = attempt.key
            invoice = self._gateway.call(
                lambda c: c.v1.invoices.create(params, {"idempotency_key": attempt.key})
            )
            attempt.answered(invoice.id)
            record.target = invoice.id
            record.stripe_request_id = _request_id(invoice)
            for n, line in enumerate(draft.lines):
                item: stripe.params.InvoiceItemCreateParams = {
                    "customer": draft.customer_id,
                    "invoice": invoice.id,
                }
                if line.price_id:
                    item["pricing"] = {"price": line.price_id}
                    item["quantity"] = line.quantity
                else:
                    item.update(
                        {"amount": line.amount, "currency": currency,
                         "description": line.description}
                    )  # fmt: skip
                self._add_item(item, f"{key}-line-{n}")
            fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice.id))
            record.params["total"] = fresh.total
            with record.writes():
                upsert(Invoice, [fresh.to_dict(for_json=True)])
        return self.detail(invoice.id, refresh=False)

    def _add_item(self, item: stripe.params.InvoiceItemCreateParams, key: str) -> None:
        self._gateway.call(lambda c: c.v1.invoice_items.create(item, {"idempotency_key": key}))

    # ---- simple transitions
    def finalize(self, invoice_id: str, idempotency_key: str | None = None) -> InvoiceDetail:
        """Draft → open: numbered, payable, with a hosted page and PDF."""
        return self._transition(
            Permission.FINALIZE_INVOICE, "invoice.finalize", invoice_id, idempotency_key,
            lambda c, key: c.v1.invoices.finalize_invoice(invoice_id, {}, {"idempotency_key": key}),
        )  # fmt: skip

    def void(self, invoice_id: str, idempotency_key: str | None = None) -> InvoiceDetail:
        """Open or uncollectible → void: the customer no longer owes it. Cannot be undone."""
        return self._transition(
            Permission.VOID_INVOICE, "invoice.void", invoice_id, idempotency_key,
            lambda c, key: c.v1.invoices.void_invoice(invoice_id, {}, {"idempotency_key": key}),
        )  # fmt: skip

    def mark_uncollectible(
        self, invoice_id: str, idempotency_key: str | None = None
    ) -> InvoiceDetail:
        """Open → uncollectible (a bad debt); it can still be paid later."""
        return self._transition(
            Permission.VOID_INVOICE, "invoice.mark_uncollectible", invoice_id, idempotency_key,
            lambda c, key: c.v1.invoices.mark_uncollectible(
                invoice_id, {}, {"idempotency_key": key}
            ),
        )  # fmt: skip

    def send(self, invoice_id: str, idempotency_key: str | None = None) -> InvoiceDetail:
        """Stripe emails the open invoice (collection by link) to the customer."""
        return self._transition(
            Permission.FINALIZE_INVOICE, "invoice.send", invoice_id, idempotency_key,
            lambda c, key: c.v1.invoices.send_invoice(invoice_id, {}, {"idempotency_key": key}),
        )  # fmt: skip

    def _transition(
        self,
        permission: Permission,
        action: str,
        invoice_id: str,
        idempotency_key: str | None,
        call: Callable[[stripe.StripeClient, str], Any],
    ) -> InvoiceDetail:
        self._authority.require(permission, action, invoice_id)
        self._check_rules(InvoiceAction(action), invoice_id)
        words = _ACTION_WORDS.get(action, action)
        try:
            with (
                self._journal.attempt(
                    action, {"invoice": invoice_id}, key=idempotency_key, target=invoice_id,
                    summary=f"{words}: {invoice_id}",
                ) as attempt,
                self._authority.action(
                    permission, action, target=invoice_id, stripe_first=True
                ) as record,
            ):  # fmt: skip
                record.idempotency_key = attempt.key
                invoice = self._gateway.call(lambda c: call(c, attempt.key))
                attempt.answered(invoice.id)
                record.stripe_request_id = _request_id(invoice)
                record.params = {"status": invoice.status}
                with record.writes():
                    upsert(Invoice, [invoice.to_dict(for_json=True)])
        except StripeRefused:
            self._refresh_quietly(invoice_id)  # the mirror was probably stale; show the truth
            raise
        return self.detail(invoice_id, refresh=False)

    def _check_rules(self, action: InvoiceAction, invoice_id: str) -> None:
        """Refuse, before anything is sent, what the invoice's state (read fresh from Stripe:
        the mirror may be behind) does not allow, with the reason the panel shows too."""
        fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
        raw = fresh.to_dict(for_json=True)
        lines = raw.get("lines")
        state = InvoiceState(
            str(raw.get("status") or ""), str(raw.get("collection_method") or ""),
            not isinstance(lines, Mapping) or bool(lines.get("data")),
        )  # fmt: skip
        reason = why_not(action, state)
        if not reason:
            return
        with self._db.atomic():
            upsert(Invoice, [raw])  # the mirror was behind: show the truth
        refused = ValidationError(f"Nothing was sent to Stripe: {reason}")
        self._authority.record_failure(action.value, refused, target=invoice_id)
        raise refused

    def _refresh_quietly(self, invoice_id: str) -> None:
        try:
            fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
            with self._db.atomic():
                upsert(Invoice, [fresh.to_dict(for_json=True)])
        except AppError as exc:
            log.info("Could not refresh %s after a refusal: %s", invoice_id, exc)

    # ---- charging
    def charge_preview(self, invoice_id: str) -> ChargePreview:
        """Who would be charged how much on which card, read fresh from Stripe."""
        self._authority.require(Permission.BROWSE, "invoice.show", invoice_id)
        invoice = self._gateway.call(
            lambda c: c.v1.invoices.retrieve(
                invoice_id,
                {"expand": ["customer", "customer.invoice_settings.default_payment_method",
                            "default_payment_method"]},
            )
        )  # fmt: skip
        raw = invoice.to_dict(for_json=True)
        expanded = raw.get("customer")
        customer: Mapping[str, Any] = expanded if isinstance(expanded, Mapping) else {}
        pm = _card_of(raw.get("default_payment_method")) or _card_of(
            _get(customer, "invoice_settings", "default_payment_method")
        )
        return ChargePreview(
            invoice_id=invoice_id,
            number=str(raw.get("number") or ""),
            customer_id=_id_of(raw.get("customer")),
            customer_name=str(customer.get("name") or customer.get("email") or ""),
            status=str(raw.get("status") or ""),
            amount=int(raw.get("amount_remaining") or 0),
            currency=str(raw.get("currency") or ""),
            payment_method=pm,
            hosted_invoice_url=str(raw.get("hosted_invoice_url") or ""),
        )

    def in_flight(self, invoice_id: str) -> bool:
        """True while a charge of `invoice_id` runs in this process."""
        return invoice_id in self._in_flight

    def charge(self, invoice_id: str, idempotency_key: str | None = None) -> ChargeResult:
        """Charge the invoice with the customer's default payment method (admins).

        Returns the result when the invoice ends paid (now, or already before). Raises, each
        carrying a `ChargeResult`: `ChargeDeclined` (the invoice stays open),
        `ChargeNeedsAuthentication`, `NoPaymentMethod`, `ChargeUnreachable` (retry with the same
        key: it cannot charge twice) and `ChargeInProgress`. Every attempt is audited.
        """
        self._authority.require(Permission.CHARGE_INVOICE, ACTION_CHARGE, invoice_id)
        if not self._in_flight.claim(invoice_id):
            busy = ChargeInProgress(
                ChargeResult(
                    invoice_id, ChargeOutcome.IN_PROGRESS,
                    "This invoice is being charged right now. Wait for that result; nothing "
                    "more was sent to Stripe.",
                )
            )  # fmt: skip
            self._authority.record_failure(ACTION_CHARGE, busy, target=invoice_id)
            busy.audited = True
            raise busy
        try:
            with self._journal.attempt(
                ACTION_CHARGE, {"invoice": invoice_id}, key=idempotency_key, target=invoice_id,
                summary=f"Charge {invoice_id}",
            ) as attempt:  # fmt: skip
                fresh, result, error, request_id = self._attempt(invoice_id, attempt.key)
                if result.outcome in (ChargeOutcome.PAID, ChargeOutcome.ALREADY_PAID):
                    attempt.answered(invoice_id)
                params: dict[str, Any] = {"outcome": result.outcome.value}
                if result.decline_code:
                    params["decline_code"] = result.decline_code
                if result.amount:
                    params.update(amount=result.amount, currency=result.currency)
                with self._authority.action(
                    Permission.CHARGE_INVOICE, ACTION_CHARGE, target=invoice_id, params=params
                ) as record:
                    record.idempotency_key = attempt.key
                    record.stripe_request_id = request_id
                    if fresh is not None:
                        upsert(Invoice, [fresh])
                    if error is not None:
                        raise error
            return result
        finally:
            self._in_flight.release(invoice_id)

    def _attempt(
        self, invoice_id: str, key: str
    ) -> tuple[dict[str, Any] | None, ChargeResult, AppError | None, str | None]:
        """Talk to Stripe: (fresh invoice or None, result, error to raise or None, request id)."""
        try:
            current = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
        except StripeUnreachable as exc:
            return None, *self._unreachable(invoice_id, exc)
        raw = current.to_dict(for_json=True)
        amount, currency = int(raw.get("amount_remaining") or 0), str(raw.get("currency") or "")
        hosted = str(raw.get("hosted_invoice_url") or "")
        if current.status == "paid":
            return raw, self._already_paid(raw), None, _request_id(current)
        if current.status not in ("open", "uncollectible"):
            words = {"draft": "is still a draft: finalize it first",
                     "void": "was voided and can no longer be paid"}  # fmt: skip
            reason = words.get(current.status or "", f"is {current.status}")
            return (
                raw,
                self._result(raw, ChargeOutcome.DECLINED, ""),
                ValidationError(
                    f"Nothing was charged: invoice {raw.get('number') or invoice_id} {reason}."
                ),
                None,
            )
        try:
            paid = self._gateway.call(
                lambda c: c.v1.invoices.pay(invoice_id, {}, {"idempotency_key": key})
            )
        except StripeUnreachable as exc:
            return None, *self._unreachable(invoice_id, exc, amount, currency)
        except PaymentDeclined as exc:
            cause = exc.__cause__
            code = getattr(cause, "code", None) or ""
            if code == "invoice_payment_intent_requires_action":
                result = ChargeResult(
                    invoice_id, ChargeOutcome.REQUIRES_AUTHENTICATION,
                    "Not charged: the customer's bank wants the customer to confirm this payment "
                    "themselves (3D Secure). Send them the invoice link; they pay and confirm "
                    f"there: {hosted}",
                    amount, currency, "authentication_required", hosted,
                )  # fmt: skip
                error: AppError = ChargeNeedsAuthentication(result, request_id=exc.request_id)
            else:
                stripe_error = getattr(cause, "error", None)
                decline = getattr(stripe_error, "decline_code", None) or code or "card_declined"
                result = ChargeResult(
                    invoice_id, ChargeOutcome.DECLINED,
                    f"Declined: {decline_words(decline)} ({decline}). Nothing was charged and "
                    "the invoice stays open. Ask the customer for another card, or send them "
                    "the invoice link.",
                    amount, currency, decline, hosted,
                )  # fmt: skip
                error = ChargeDeclined(result, request_id=exc.request_id)
            return self._reread(invoice_id, raw), result, error, exc.request_id
        except StripeRefused as exc:
            again = self._reread(invoice_id, raw)
            if again.get("status") == "paid":  # paid meanwhile, e.g. from another machine
                return again, self._already_paid(again), None, exc.request_id
            message = str(getattr(exc.__cause__, "user_message", "") or exc)
            if "payment method" in message or "payment source" in message:
                result = ChargeResult(
                    invoice_id, ChargeOutcome.NO_PAYMENT_METHOD,
                    "Not charged: the customer has no saved card. Send them the invoice link "
                    f"to pay, or ask them to add a card: {hosted}",
                    amount, currency, "", hosted,
                )  # fmt: skip
                return (
                    again,
                    result,
                    NoPaymentMethod(result, request_id=exc.request_id),
                    (exc.request_id),
                )
            return again, self._result(again, ChargeOutcome.DECLINED, ""), exc, exc.request_id
        fresh = paid.to_dict(for_json=True)
        result = ChargeResult(
            invoice_id, ChargeOutcome.PAID,
            f"Paid: {format_amount(amount, currency)} was charged to the customer's card. "
            f"Invoice {fresh.get('number') or invoice_id} is paid.",
            amount, currency, "", hosted,
        )  # fmt: skip
        return fresh, result, None, _request_id(paid)

    def _reread(self, invoice_id: str, fallback: dict[str, Any]) -> dict[str, Any]:
        try:
            fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
        except AppError:
            return fallback
        data: dict[str, Any] = fresh.to_dict(for_json=True)
        return data

    @staticmethod
    def _result(raw: Mapping[str, Any], outcome: ChargeOutcome, message: str) -> ChargeResult:
        return ChargeResult(
            str(raw.get("id") or ""), outcome, message, int(raw.get("amount_remaining") or 0),
            str(raw.get("currency") or ""), "", str(raw.get("hosted_invoice_url") or ""),
        )  # fmt: skip

    @staticmethod
    def _already_paid(raw: Mapping[str, Any]) -> ChargeResult:
        paid = format_amount(int(raw.get("amount_paid") or 0), str(raw.get("currency") or ""))
        return ChargeResult(
            str(raw.get("id") or ""), ChargeOutcome.ALREADY_PAID,
            f"Already paid ({paid}): nothing more was charged. The list has been refreshed.",
            int(raw.get("amount_paid") or 0), str(raw.get("currency") or ""), "",
            str(raw.get("hosted_invoice_url") or ""),
        )  # fmt: skip

    @staticmethod
    def _unreachable(
        invoice_id: str, exc: StripeUnreachable, amount: int = 0, currency: str = ""
    ) -> tuple[ChargeResult, AppError, str | None]:
        result = ChargeResult(
            invoice_id, ChargeOutcome.UNREACHABLE,
            "Stripe did not answer, so this attempt's outcome is unknown. Try again: the retry "
            "repeats the very same request, so the customer is charged at most once.",
            amount, currency,
        )  # fmt: skip
        return result, ChargeUnreachable(result, request_id=exc.request_id), exc.request_id
