"""Credits: an append-only ledger, paid top-ups through Stripe Checkout, and admin grants.

The rule this project was started for: purchased credits are added **only** after a verified,
paid Stripe event, exactly once. In code that means:

* `_credit_purchase` is the one and only place that writes a `purchase` entry. It runs inside
  the event pipeline's transaction for a `checkout.session.completed` (paid) or
  `checkout.session.async_payment_succeeded` event, after the session was re-read from Stripe
  and checked against the top-up (amount, currency, customer, metadata).
* The ledger's unique (kind, source) index, with source = the top-up id, makes a second purchase
  entry for the same top-up impossible — not a check-then-insert, a constraint.
* Free credits are `grant` entries from `CreditService.grant`: admins only, a reason required,
  audited. Nothing on the top-up path can write one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import peewee

from services import changes, lots, validation
from services.audit import Authority
from services.errors import NotFound, ValidationError
from services.events import (
    INVOICE,
    Handler,
    HandlerContext,
    Ignore,
    Status,
    event_object,
    flag_event,
    via,
)
from services.invoice_credits import (
    InvoiceReversals,
    claw_back,
    read_reversals,
    reversals_of_payment,
    sells_credits,
)
from services.journal import Journal
from services.mirror import parse_credits
from services.models import CreditEntry, Customer, Price, Product, TopUp, tuples
from services.money import format_amount
from services.permissions import Permission
from services.pricing import pricing_at
from services.settings import Settings
from services.stripe_gateway import StripeGateway, StripeMode
from services.topup_status import TopUpStatus

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe

log = logging.getLogger(__name__)

T = TypeVar("T")

SYSTEM = "stripe"  # the "operator" of entries written by verified Stripe events
EXPIRY_S = 24 * 3600


class TopUpRow(NamedTuple):
    topup_id: str
    customer_id: str
    customer_name: str
    credits: int
    amount: int
    currency: str
    status: str
    url: str
    issued_by: str
    issued_at: int
    expires_at: int
    paid_at: int | None
    checkout_session_id: str
    flagged: str


class LedgerRow(NamedTuple):
    id: int
    customer_id: str
    amount: int
    kind: str
    source: str
    operator: str
    reason: str
    created_at: int


@dataclass(frozen=True)
class TopUpLink:
    topup: TopUpRow
    email_text: str


def topup_id_for(idempotency_key: str) -> str:
    """The top-up id follows from the dialog's idempotency key: a retried request (same key)
    reaches Stripe with the same metadata, gets the same session back, and stores nothing new."""
    return "tu_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def _row(t: TopUp, name: str = "") -> TopUpRow:
    return TopUpRow(
        t.topup_id, t.customer_id, name, t.credits, t.amount, t.currency, t.status, t.url or "",
        t.issued_by, t.issued_at, t.expires_at, t.paid_at, t.checkout_session_id, t.flagged or "",
    )  # fmt: skip


def email_text(row: TopUpRow, customer_name: str) -> str:
    greeting = f"Hello {customer_name}," if customer_name else "Hello,"
    expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.expires_at))
    return (
        f"{greeting}\n\n"
        f"here is your secure payment link for {row.credits:,} credits "
        f"({format_amount(row.amount, row.currency)}):\n\n{row.url}\n\n"
        f"The link is valid until {expires}. Your credits are added as soon as the payment "
        f"is confirmed.\n\nThank you!"
    )


class CreditService:
    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        settings: Settings,
        journal: Journal | None = None,
        settings_now: Callable[[], Settings] | None = None,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        # The return pages in force when a link is made (on a shared database, the team's).
        self._settings_now = settings_now or (lambda: settings)
        self._journal = journal or Journal(db, authority)
        # Called with the customer's id after every new spend this app makes (automatic
        # top-ups hook in here; spends through the SQL function are found by the listener).
        self.after_spend: Callable[[str], object] | None = None

    # ---- reading
    def balance(self, customer_id: str) -> int:
        """The credits available to spend now (expired lots excluded; see `balances`)."""
        self._authority.require(Permission.BROWSE, "credits.show", customer_id)
        return lots.balances(self._db, customer_id).available

    def ledger(self, customer_id: str) -> list[LedgerRow]:
        self._authority.require(Permission.BROWSE, "credits.show", customer_id)
        query = (
            CreditEntry.select(
                CreditEntry.id,
                CreditEntry.customer_id,
                CreditEntry.amount,
                CreditEntry.kind,
                peewee.fn.COALESCE(CreditEntry.source, ""),
                CreditEntry.operator,
                peewee.fn.COALESCE(CreditEntry.reason, ""),
                CreditEntry.created_at,
            )
            .where(CreditEntry.customer_id == customer_id)
            .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc())
        )
        rows = [LedgerRow._make(t) for t in tuples(query)]
        if not rows and not Customer.select().where(Customer.stripe_id == customer_id).exists():
            raise NotFound(
                f"No customer {customer_id} in the local mirror. Sync from Stripe first."
            )
        return rows

    def topups(
        self,
        *,
        status: str | None = None,
        customer_id: str | None = None,
        limit: int | None = 5000,
    ) -> list[TopUpRow]:
        self._authority.require(Permission.BROWSE, "topups.list")
        query = (
            TopUp.select(TopUp, peewee.fn.COALESCE(Customer.name, Customer.email, "").alias("n"))
            .join(Customer, peewee.JOIN.LEFT_OUTER, on=(Customer.stripe_id == TopUp.customer_id))
            .order_by(TopUp.issued_at.desc(), TopUp.id.desc())
            .limit(limit)
        )
        if status:
            query = query.where(TopUp.status == status)
        if customer_id:
            query = query.where(TopUp.customer_id == customer_id)
        return [_row(t, getattr(t, "n", "") or "") for t in query]

    def credit_packs(self) -> list[tuple[str, str, int, int, str]]:
        """Active credit packs: (product id, name, credits, amount, currency)."""
        self._authority.require(Permission.BROWSE, "products.list")
        packs: list[tuple[str, str, int, int, str]] = []
        for product in Product.select().where(
            (Product.active == True) & Product.credits.is_null(False)  # noqa: E712
        ):
            price = Price.get_or_none(Price.stripe_id == product.default_price_id)
            # A recurring price is a credit plan (a subscription), not a pack to top up with.
            if (
                price is not None
                and price.active
                and price.unit_amount
                and product.credits
                and price.type != "recurring"
            ):
                packs.append(
                    (
                        product.stripe_id,
                        product.name,
                        product.credits,
                        price.unit_amount,
                        price.currency,
                    )
                )
        return sorted(packs, key=lambda p: p[2])

    # ---- top-ups
    def custom_limits(self) -> tuple[int, int]:
        """The smallest and largest custom top-up, in credits (the team's pricing)."""
        pricing = pricing_at(None)
        return pricing.minimum, pricing.maximum

    def quote_custom(self, credits: int) -> tuple[int, str]:
        """The price of `credits` custom credits at the team's price, within its limits.

        Never from this machine's settings file: see `services.pricing`."""
        p = pricing_at(None)
        if not p.minimum <= credits <= p.maximum:
            raise ValidationError(
                f"Custom top-ups are {p.minimum:,} to {p.maximum:,} credits, not {credits:,}."
            )
        return credits * p.unit_amount, p.currency

    def issue_topup(
        self,
        customer_id: str,
        idempotency_key: str | None = None,
        *,
        pack_product_id: str | None = None,
        credits: int | None = None,
        save_card: bool = False,
    ) -> TopUpLink:
        """Create a Checkout Session for a credit pack or a custom number of credits.

        Nothing is credited here: the link only asks for payment. Without `idempotency_key`
        the request journal picks one, so re-running after a lost answer replays the same
        session instead of making a second payable one. `save_card` asks Checkout to keep the
        card for off-session charges (`setup_future_usage=off_session`: automatic top-ups).
        """
        if (pack_product_id is None) == (credits is None):
            raise ValidationError("Choose either a credit pack or a number of credits.")
        self._authority.require(Permission.ISSUE_TOPUP_LINK, "topup.issue", customer_id)
        customer = Customer.get_or_none(Customer.stripe_id == customer_id)
        if customer is None or customer.deleted:
            raise NotFound(f"No customer {customer_id} in the local mirror. Sync first.")
        line_item: Any
        if pack_product_id is not None:
            pack = next((p for p in self.credit_packs() if p[0] == pack_product_id), None)
            if pack is None:
                raise ValidationError(f"{pack_product_id} is not an active credit pack.")
            _pid, _name, credits, amount, currency = pack
            price_id = Product.get(Product.stripe_id == pack_product_id).default_price_id
            line_item = {"price": price_id, "quantity": 1}
        else:
            assert credits is not None
            credits = validation.positive_int(credits, "Credits", maximum=10**9)
            amount, currency = self.quote_custom(credits)
            line_item = {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": f"{credits:,} credits"},
                },
                "quantity": 1,
            }
        success = self._settings_now().topup_success_url
        if not success and self._gateway.mode is not StripeMode.SANDBOX:
            raise ValidationError(
                "Set the top-up success URL in Settings first: Stripe needs a page to send "
                "the customer to after paying."
            )
        args = {"customer": customer_id, "pack": pack_product_id, "credits": credits,
                "amount": amount, "currency": currency}  # fmt: skip
        if save_card:
            args["save_card"] = True
        with self._journal.attempt(
            "topup.issue", args, key=idempotency_key, target=customer_id,
            summary=f"Top-up link: {credits:,} credits for {customer_id}",
        ) as attempt:  # fmt: skip
            topup_id, session_id = self._create_session(
                customer_id, attempt.key, attempt.started_at, line_item, credits, amount,
                currency, pack_product_id, save_card=save_card,
            )  # fmt: skip
            attempt.answered(session_id)
        row = _row(TopUp.get(TopUp.topup_id == topup_id), customer.name or customer.email or "")
        return TopUpLink(row, email_text(row, customer.name or ""))

    def _create_session(
        self,
        customer_id: str,
        idempotency_key: str,
        started_at: int,
        line_item: Any,
        credits: int,
        amount: int,
        currency: str,
        pack_product_id: str | None,
        *,
        save_card: bool = False,
    ) -> tuple[str, str]:
        """The Checkout Session and its top-up row: (top-up id, session id).

        The top-up id follows from the key."""
        pages = self._settings_now()
        success, cancel = pages.topup_success_url, pages.topup_cancel_url
        topup_id = topup_id_for(idempotency_key)
        # From the key's first use, so a re-run with the same key sends the same parameters.
        expires_at = started_at + EXPIRY_S - 60  # Stripe allows at most 24 h
        metadata = {"topup_id": topup_id, "credits": str(credits)}
        params: dict[str, Any] = {
            "mode": "payment",
            "customer": customer_id,
            "line_items": [line_item],
            "metadata": metadata,
            "client_reference_id": topup_id,
            "expires_at": expires_at,
            "payment_intent_data": {"metadata": metadata},
        }
        if save_card:  # the customer's card, kept for automatic top-ups (off-session)
            params["payment_intent_data"]["setup_future_usage"] = "off_session"
        if success:
            params["success_url"] = success
        if cancel:
            params["cancel_url"] = cancel
        audit = {"credits": credits, "amount": amount, "currency": currency,
                 "pack": pack_product_id, **({"save_card": True} if save_card else {})}  # fmt: skip
        with self._authority.action(
            Permission.ISSUE_TOPUP_LINK, "topup.issue", target=topup_id, params=audit,
            stripe_first=True,
        ) as record:  # fmt: skip
            record.idempotency_key = idempotency_key
            typed: stripe.params.checkout.SessionCreateParams = params  # type: ignore[assignment]
            session = self._gateway.call(
                lambda c: c.v1.checkout.sessions.create(typed, {"idempotency_key": idempotency_key})
            )
            record.stripe_request_id = getattr(session.last_response, "request_id", None)
            record.params["checkout_session"] = session.id
            with record.writes():
                self._store_topup(
                    topup_id, customer_id, credits, amount, currency, pack_product_id, session,
                    expires_at,
                )  # fmt: skip
                changes.note(topups=[topup_id])
        return topup_id, session.id

    def _store_topup(
        self, topup_id: str, customer_id: str, credits: int, amount: int, currency: str,
        pack_product_id: str | None, session: Any, expires_at: int,
    ) -> None:  # fmt: skip
        TopUp.insert(
            topup_id=topup_id,
            customer_id=customer_id,
            credits=credits,
            amount=amount,
            currency=currency,
            product_id=pack_product_id,
            status=TopUpStatus.OPEN.value,
            checkout_session_id=session.id,
            url=session.url,
            issued_by=self._authority.actor.login,
            issued_at=int(time.time()),
            expires_at=int(session.expires_at or expires_at),
        ).on_conflict_ignore().execute()  # a retry with the same key stores nothing new

    def expire_topup(self, topup_id: str, idempotency_key: str | None = None) -> TopUpRow:
        """Expire an open link in Stripe, so it can no longer be paid."""
        self._authority.require(Permission.ISSUE_TOPUP_LINK, "topup.expire", topup_id)
        with (
            self._journal.attempt(
                "topup.expire", {"topup": topup_id}, key=idempotency_key, target=topup_id,
                summary=f"Expire top-up link {topup_id}",
            ) as attempt,
            self._authority.action(
                Permission.ISSUE_TOPUP_LINK, "topup.expire", target=topup_id, stripe_first=True
            ) as record,
        ):  # fmt: skip
            topup = TopUp.get_or_none(TopUp.topup_id == topup_id)
            if topup is None:
                raise NotFound(f"No top-up {topup_id}.")
            if topup.status != TopUpStatus.OPEN.value:
                raise ValidationError(f"{topup_id} is {topup.status}, not open: nothing to expire.")
            record.idempotency_key = attempt.key
            session = self._gateway.call(
                lambda c: c.v1.checkout.sessions.expire(
                    topup.checkout_session_id, options={"idempotency_key": attempt.key}
                )
            )
            attempt.answered(session.id)
            record.stripe_request_id = getattr(session.last_response, "request_id", None)
            with record.writes():
                TopUp.update(status=TopUpStatus.EXPIRED.value, url=None).where(
                    (TopUp.topup_id == topup_id) & (TopUp.status == TopUpStatus.OPEN.value)
                ).execute()
                changes.note(topups=[topup_id])
        return _row(TopUp.get(TopUp.topup_id == topup_id))

    # ---- grants
    def grant(
        self, customer_id: str, credits: int, reason: str, expires_at: int | None = None
    ) -> LedgerRow:
        """Free credits (admins): a `grant` entry with its reason, audited. Never a purchase.

        `expires_at` (seconds; see `lots.parse_expiry_date`): what is left then expires."""
        reason = validation.text(reason, "A reason", max_len=500, required=True)
        credits = validation.positive_int(credits, "Credits", maximum=10_000_000)
        now = int(time.time())
        if expires_at is not None and expires_at <= now:
            raise ValidationError("A grant's expiry must be in the future.")
        params: dict[str, object] = {"credits": credits}
        if expires_at is not None:
            params["expires_at"] = expires_at
        with self._authority.action(
            Permission.GRANT_CREDITS, "credits.grant", target=customer_id, params=params,
            reason=reason,
        ):  # fmt: skip
            if not Customer.select().where(Customer.stripe_id == customer_id).exists():
                raise NotFound(f"No customer {customer_id} in the local mirror.")
            with self._db.atomic():
                lots.lock(self._db, customer_id)
                CreditEntry.create(
                    customer_id=customer_id,
                    amount=credits,
                    kind="grant",
                    source=None,
                    operator=self._authority.actor.login,
                    reason=reason,
                    created_at=now,
                    expires_at=expires_at,
                )
                lots.absorb(self._db, customer_id)
            changes.note(credits=[customer_id])
        return self.ledger(customer_id)[0]

    def balances(self, customer_id: str) -> lots.Balances:
        """Available (paid + promotional - overdraft), pending and the next expiry."""
        self._authority.require(Permission.BROWSE, "credits.show", customer_id)
        return lots.balances(self._db, customer_id)

    def consume(
        self, customer_id: str, credits: int, idempotency_key: str, reference: str = ""
    ) -> lots.Spend:
        """Spend credits exactly once per key: see `services.lots.LotService.consume`.

        A new spend (not a replay of its key) then runs `after_spend`, which never raises: the
        spend is done whatever the low-balance check finds."""
        spend = self.lot_service.consume(customer_id, credits, idempotency_key, reference)
        if self.after_spend is not None and not spend.replayed:
            self.after_spend(customer_id)
        return spend

    @property
    def lot_service(self) -> lots.LotService:
        """Lots, overdraft limits, the purchase-expiry setting and the expiry run."""
        return lots.LotService(self._db, self._authority)


# ---- applying Stripe's events ------------------------------------------------------------


def _find_topup(session: Mapping[str, Any]) -> TopUp | None:
    topup = TopUp.get_or_none(TopUp.checkout_session_id == session.get("id"))
    if topup is None:
        ref = (session.get("metadata") or {}).get("topup_id") or session.get("client_reference_id")
        topup = TopUp.get_or_none(TopUp.topup_id == ref) if ref else None
    return topup


def _mismatch(topup: TopUp, session: Mapping[str, Any]) -> str:
    """Why this session does not pay for this top-up ("" when it does)."""
    metadata = session.get("metadata") or {}
    problems = []
    if session.get("amount_total") != topup.amount:
        problems.append(f"amount {session.get('amount_total')} ≠ {topup.amount}")
    if (session.get("currency") or "").lower() != topup.currency:
        problems.append(f"currency {session.get('currency')} ≠ {topup.currency}")
    customer = session.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    if customer != topup.customer_id:
        problems.append(f"customer {customer} ≠ {topup.customer_id}")
    if metadata.get("topup_id") != topup.topup_id or metadata.get("credits") != str(topup.credits):
        problems.append("metadata does not match the top-up")
    problems.append(_price_problem(topup))
    return "; ".join(p for p in problems if p)


def _price_problem(topup: TopUp) -> str:
    """Why the top-up's own amount is not what its credits cost when it was issued ("" if it
    is): the team's price for a custom top-up, the pack's Stripe price for a pack."""
    amount = format_amount(topup.amount, topup.currency)
    if topup.product_id is None:
        p = pricing_at(topup.issued_at)
        expected = topup.credits * p.unit_amount
        if topup.currency != p.currency or topup.amount != expected:
            return (
                f"{topup.credits:,} credits cost {format_amount(expected, p.currency)} at the "
                f"team's price when issued, not {amount}"
            )
        if not p.minimum <= topup.credits <= p.maximum:
            return f"{topup.credits:,} credits is outside the team's limits ({p.describe()})"
        return ""
    product = Product.get_or_none(Product.stripe_id == topup.product_id)
    priced = (
        Price.select()
        .where(
            (Price.product_id == topup.product_id)
            & (Price.unit_amount == topup.amount)
            & (Price.currency == topup.currency)
        )
        .exists()
    )
    if product is None or product.credits != topup.credits or not priced:
        return f"{topup.credits:,} credits for {amount} is not a price of pack {topup.product_id}"
    return ""


def _flag_event(event: Mapping[str, Any], why: str) -> None:
    flag_event(str(event.get("id") or ""), why)


@dataclass(frozen=True)
class _TopUpTruth:
    """What Stripe says now about one top-up's payment: its session, re-read, and the refunds
    and disputes of its payment. `session` is None when the payment is not a Checkout payment."""

    session: dict[str, Any] | None
    refunds: list[dict[str, Any]]
    disputes: list[dict[str, Any]]
    #: Not a Checkout payment but an invoice's that sold credits: its refunds and disputes.
    invoice: InvoiceReversals | None = None


def _read_reversals(
    ctx: HandlerContext, payment_intent: object
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The refunds and the disputes of one payment, as Stripe has them now."""
    if not isinstance(payment_intent, str) or not payment_intent:
        return [], []
    refunds = ctx.gateway.call(
        lambda c: c.v1.refunds.list({"payment_intent": payment_intent, "limit": 100})
    )
    disputes = ctx.gateway.call(
        lambda c: c.v1.disputes.list({"payment_intent": payment_intent, "limit": 100})
    )
    return (
        [r.to_dict(for_json=True) for r in refunds.data],
        [d.to_dict(for_json=True) for d in disputes.data],
    )


def _read(ctx: HandlerContext, fn: Callable[[stripe.StripeClient], T], object_id: str) -> T:
    """Re-read an event's object; one Stripe does not have is no payment of this account's."""
    try:
        return ctx.gateway.call(fn)
    except NotFound as exc:
        raise Ignore(f"Stripe has no {object_id} in this account: not one of our payments") from exc


def _event_object_id(event: Mapping[str, Any], prefixes: tuple[str, ...], what: str) -> str:
    """The id of the event's object: `data.object`, or a v2 thin event's `related_object`."""
    object_id = str(event_object(event).get("id") or "")
    if not object_id.startswith(prefixes):
        raise Ignore(f"the event carries no {what} id")
    return object_id


def _fetch_from_session(ctx: HandlerContext, event: Mapping[str, Any]) -> _TopUpTruth:
    session_id = _event_object_id(event, ("cs_",), "Checkout Session")
    # Re-read: the payload may be old (events arrive in any order) and only Stripe is the truth.
    fresh = _read(ctx, lambda c: c.v1.checkout.sessions.retrieve(session_id), session_id)
    session: dict[str, Any] = fresh.to_dict(for_json=True)
    return _TopUpTruth(session, *_read_reversals(ctx, session.get("payment_intent")))


def _truth_of_charge(ctx: HandlerContext, charge_id: str) -> _TopUpTruth:
    charge = _read(ctx, lambda c: c.v1.charges.retrieve(charge_id), charge_id)
    payment_intent = charge.payment_intent
    if not isinstance(payment_intent, str) or not payment_intent:
        return _TopUpTruth(None, [], [])
    # Found through the session, not our own row: a refund may arrive before the payment did.
    listed = ctx.gateway.call(
        lambda c: c.v1.checkout.sessions.list({"payment_intent": payment_intent, "limit": 1})
    )
    if not listed.data:
        return _TopUpTruth(None, [], [], reversals_of_payment(ctx, payment_intent))
    session: dict[str, Any] = listed.data[0].to_dict(for_json=True)
    return _TopUpTruth(session, *_read_reversals(ctx, payment_intent))


def _fetch_from_charge(ctx: HandlerContext, event: Mapping[str, Any]) -> _TopUpTruth:
    return _truth_of_charge(ctx, _event_object_id(event, ("ch_", "py_"), "charge"))


def _fetch_from_dispute(ctx: HandlerContext, event: Mapping[str, Any]) -> _TopUpTruth:
    dispute_id = _event_object_id(event, ("dp_", "du_"), "dispute")
    dispute = _read(ctx, lambda c: c.v1.disputes.retrieve(dispute_id), dispute_id)
    charge = dispute.charge
    charge_id = charge if isinstance(charge, str) else getattr(charge, "id", "")
    if not charge_id:
        raise Ignore(f"dispute {dispute_id} names no charge")
    return _truth_of_charge(ctx, charge_id)


def _write_purchase(
    customer_id: str, credits: int, source: str, topup_id: str | None, reason: str, now: int
) -> bool:
    """THE ONLY CODE THAT WRITES A PURCHASE ENTRY. Runs inside the event's transaction.

    `source` is what was paid — a top-up id, or an invoice id for credit packs sold on an
    invoice — and the ledger's unique (kind, source) index allows one purchase per source, so
    however often and in whatever order the events come, it is credited once. Returns False
    when it was already credited.
    """
    db = CreditEntry._meta.database
    lots.lock(db, customer_id)  # the customer's ledger, until the event's transaction ends
    try:
        with db.atomic():  # a savepoint: a duplicate rolls back only this
            CreditEntry.insert(
                customer_id=customer_id,
                amount=credits,
                kind="purchase",
                source=source,
                topup_id=topup_id,
                operator=SYSTEM,
                reason=reason,
                created_at=now,
                expires_at=lots.purchase_expiry(now),
            ).execute()
    except peewee.IntegrityError:
        return False
    lots.absorb(db, customer_id)  # the purchase's lot
    changes.note(credits=[customer_id])
    return True


def _credit_purchase(topup: TopUp, session: Mapping[str, Any], now: int) -> bool:
    """Credit a paid top-up (once) and mark it credited."""
    if not _write_purchase(
        topup.customer_id, topup.credits, topup.topup_id, topup.topup_id,
        f"Checkout {session.get('id')} paid", now,
    ):  # fmt: skip
        return False
    TopUp.update(
        status=TopUpStatus.CREDITED.value,
        paid_at=TopUp.paid_at if topup.paid_at else now,
        credited_at=now,
        payment_intent_id=session.get("payment_intent"),
        url=None,
    ).where(TopUp.id == topup.id).execute()
    return True


class _Reversal(NamedTuple):
    """Money taken back from a paid top-up: a refund, or a dispute the merchant lost."""

    source: str  # re_… / dp_…: the clawback entry's unique source
    amount: int
    created: int
    reason: str


def _reversals(topup: TopUp, truth: _TopUpTruth) -> list[_Reversal]:
    found = [
        _Reversal(r["id"], int(r.get("amount") or 0), int(r.get("created") or 0),
                  f"Refund {r['id']} of {topup.topup_id}")
        for r in truth.refunds
        if r.get("status") in ("succeeded", "pending") and r.get("id")
    ] + [
        _Reversal(d["id"], int(d.get("amount") or 0), int(d.get("created") or 0),
                  f"Dispute {d['id']} of {topup.topup_id} lost ({d.get('reason') or 'no reason'})")
        for d in truth.disputes
        if d.get("status") == "lost" and d.get("id")
    ]  # fmt: skip
    return sorted(found, key=lambda r: (r.created, r.source))


def _claw_back(topup: TopUp, truth: _TopUpTruth, now: int) -> bool:
    """One clawback entry per refund or lost dispute (unique by its id), each the share of the
    credits it took back: the same reversals give the same entries whatever order their events
    came in, and together they never take more than the top-up gave. Also flags the top-up
    while a dispute is open. True when anything changed."""
    reversed_amount = clawed = 0
    wrote = False
    for reversal in _reversals(topup, truth):
        reversed_amount += reversal.amount
        target = min(topup.credits, round(topup.credits * reversed_amount / topup.amount))
        take, clawed = target - clawed, target
        if take <= 0:
            continue
        try:
            lots.lock(topup._meta.database, topup.customer_id)
            with topup._meta.database.atomic():
                CreditEntry.insert(
                    customer_id=topup.customer_id, amount=-take, kind="clawback",
                    source=reversal.source, topup_id=topup.topup_id, operator=SYSTEM,
                    reason=reversal.reason, created_at=now,
                ).execute()  # fmt: skip
            wrote = True
            lots.absorb(topup._meta.database, topup.customer_id)  # drawn from the lots
            changes.note(credits=[topup.customer_id])
        except peewee.IntegrityError:
            continue  # clawed back already
    refunded = sum(
        int(r.get("amount") or 0)
        for r in truth.refunds
        if r.get("status") in ("succeeded", "pending")
    )
    lost = any(d.get("status") == "lost" for d in truth.disputes)
    status = (
        TopUpStatus.DISPUTED
        if lost
        else TopUpStatus.REFUNDED
        if refunded >= topup.amount
        else TopUpStatus.CREDITED
    )
    open_disputes = [
        d["id"] for d in truth.disputes
        if d.get("status") in ("needs_response", "under_review", "warning_needs_response",
                               "warning_under_review")
    ]  # fmt: skip
    flagged = topup.flagged
    if open_disputes:
        flagged = f"dispute {', '.join(open_disputes)} open: these credits may be taken back"
    elif flagged and flagged.startswith("dispute "):
        flagged = None  # the dispute closed (won, or lost and clawed back above)
    TopUp.update(refunded_amount=refunded, status=status.value, flagged=flagged).where(
        TopUp.id == topup.id
    ).execute()
    return wrote or flagged != topup.flagged


def _settle(_ctx: HandlerContext, event: Mapping[str, Any], truth: _TopUpTruth) -> Status:
    """Bring one top-up to what Stripe says now, whichever of its events this is.

    Every top-up event (completed, async succeeded/failed, expired, refunded) lands here with
    the session and refunds re-read from Stripe, and acts on what it *read*, never on the
    event's type or payload: any order, replay or forged status event ends the same way.
    """
    session = truth.session
    if session is None:
        # Not a top-up; an invoice that sold credits gives back the share refunded or lost.
        return Status.APPLIED if claw_back(truth.invoice, int(time.time())) else Status.IGNORED
    topup = _find_topup(session)
    if topup is not None:
        changes.note(topups=[topup.topup_id])  # re-read whatever this settles it to
    if topup is None:
        if str(event.get("type", "")).startswith("checkout.session."):
            _flag_event(
                event, f"Checkout session {session.get('id')} belongs to no top-up: not credited"
            )
        return Status.IGNORED
    problem = _mismatch(topup, session)
    if problem:
        _flag_event(event, f"{topup.topup_id}: {problem}: not credited")
        TopUp.update(flagged=problem).where(TopUp.id == topup.id).execute()
        return Status.IGNORED
    now = int(time.time())
    if session.get("payment_status") == "paid":
        # Paid always credits, whatever the local status says (a forged or early "expired"
        # must not eat a real payment); the unique ledger index keeps it to once.
        credited = _credit_purchase(topup, session, now)
        clawed = _claw_back(TopUp.get_by_id(topup.id), truth, now)
        return Status.APPLIED if credited or clawed else Status.IGNORED
    read = session.get("status")
    new_status: TopUpStatus | None = None
    if read == "expired":
        new_status = TopUpStatus.EXPIRED
    elif read == "complete" and event.get("type") == "checkout.session.async_payment_failed":
        new_status = TopUpStatus.FAILED  # completed, unpaid, and Stripe says the debit failed
    elif read == "complete" and session.get("payment_status") == "unpaid":
        new_status = TopUpStatus.PENDING  # an asynchronous payment (bank debit) still settling
    elif event.get("type") == "checkout.session.expired":
        _flag_event(event, f"the event says expired, but Stripe says {topup.topup_id} is {read}")
        return Status.IGNORED
    if new_status is None:
        return Status.IGNORED  # still open
    # Only forward: open → pending, and open or pending → expired or failed.
    settling = [TopUpStatus.OPEN]
    if new_status is not TopUpStatus.PENDING:
        settling.append(TopUpStatus.PENDING)
    changed = (
        TopUp.update(status=new_status.value, url=None)
        .where((TopUp.id == topup.id) & TopUp.status.in_([s.value for s in settling]))
        .execute()
    )
    return Status.APPLIED if changed else Status.IGNORED


SESSION = Handler(_fetch_from_session, _settle)
CHARGE = Handler(_fetch_from_charge, _settle)


def settle_topup(ctx: HandlerContext, topup_id: str) -> Status:
    """Settle one top-up from what Stripe says now, outside any event (reconcile's repair).

    Exactly the webhook path — the session and its refunds and disputes re-read, then `_settle`
    in one transaction — so a repair racing a late webhook still credits once (the ledger's
    unique index decides)."""
    topup = TopUp.get_or_none(TopUp.topup_id == topup_id)
    if topup is None:
        raise NotFound(f"No top-up {topup_id}.")
    event = {
        "id": None,  # no stored event to flag
        "type": "reconcile.repair",
        "data": {"object": {"id": topup.checkout_session_id, "object": "checkout.session"}},
    }
    truth = _fetch_from_session(ctx, event)
    with ctx.db.atomic():
        return _settle(ctx, event, truth)


DISPUTE = Handler(_fetch_from_dispute, _settle)

# ---- credit packs sold on invoices


@dataclass(frozen=True)
class _InvoiceTruth:
    """The invoice as Stripe has it now (for the mirror) and, if it is paid, the credit packs
    on its lines: (product id, credits per pack, quantity)."""

    invoice: dict[str, Any]
    packs: list[tuple[str, int, int]]
    reversals: InvoiceReversals | None = None  # when it sells credits: refunds and disputes


def _fetch_invoice(ctx: HandlerContext, event: Mapping[str, Any]) -> _InvoiceTruth:
    data: dict[str, Any] = INVOICE.fetch(ctx, event)
    if data.get("deleted") or data.get("status") != "paid":
        return _InvoiceTruth(data, [])
    invoice_id = str(data["id"])
    lines = ctx.gateway.call(lambda c: c.v1.invoices.line_items.list(invoice_id, {"limit": 100}))
    credits_of: dict[str, int | None] = {}
    packs: list[tuple[str, int, int]] = []
    for line in lines.auto_paging_iter():
        raw_line = line.to_dict(for_json=True)
        if not sells_credits(raw_line):  # a proration, or a free trial's $0 period
            continue
        pricing = raw_line.get("pricing") or {}
        product_id = (pricing.get("price_details") or {}).get("product")
        if not isinstance(product_id, str) or not product_id:
            continue
        if product_id not in credits_of:  # the pack's size as Stripe says now, not the mirror
            credits_of[product_id] = _pack_credits(ctx, product_id)
        credits = credits_of[product_id]
        if credits:
            packs.append((product_id, credits, int(line.quantity or 1)))
    # Read with the payment, so a refund whose event came first is taken back now.
    return _InvoiceTruth(data, packs, read_reversals(ctx, data) if packs else None)


def _pack_credits(ctx: HandlerContext, product_id: str) -> int | None:
    product = ctx.gateway.call(lambda c: c.v1.products.retrieve(product_id))
    metadata: dict[str, Any] = product.to_dict(for_json=True).get("metadata") or {}
    return parse_credits(metadata.get("credits"))


def _apply_invoice(ctx: HandlerContext, event: Mapping[str, Any], truth: _InvoiceTruth) -> Status:
    """Mirror the invoice; if it is paid and sells credit packs, credit them once (keyed by the
    invoice) through the one purchase writer."""
    status = INVOICE.apply(ctx, event, truth.invoice)
    if not truth.packs:
        return status
    customer = truth.invoice.get("customer")
    customer_id = customer.get("id") if isinstance(customer, Mapping) else customer
    credits = sum(per * quantity for _p, per, quantity in truth.packs)
    invoice_id = str(truth.invoice["id"])
    what = ", ".join(f"{q} x {per:,}-credit pack" for _p, per, q in truth.packs)
    number = truth.invoice.get("number") or invoice_id
    now = int(time.time())
    wrote = _write_purchase(
        str(customer_id), credits, invoice_id, None, f"Invoice {number} paid: {what}", now,
    )  # fmt: skip
    clawed = claw_back(truth.reversals, now)
    return Status.APPLIED if wrote or clawed else status


PAID_INVOICE = Handler(_fetch_invoice, _apply_invoice)


#: The credits issue's part of the event routing table: every top-up event settles the top-up.
CREDIT_ROUTES: list[tuple[str, Handler]] = [
    ("checkout.session.completed", SESSION),
    ("checkout.session.async_payment_succeeded", SESSION),
    ("checkout.session.async_payment_failed", SESSION),
    ("checkout.session.expired", SESSION),
    ("charge.refunded", CHARGE),
    # A dispute opens (flag: the credits are at risk), and closes won (unflag) or lost (claw
    # back, like a refund). Funds withdrawn/reinstated and updates settle the same way.
    ("charge.dispute.*", DISPUTE),
    # The same as a v2 thin event (an event destination with the thin payload style): its
    # related_object names the dispute, which is re-read like any other.
    ("v1.charge.dispute.*", DISPUTE),
    # Credit packs sold on invoices: credited once the invoice is paid, keyed by the invoice.
    ("invoice.paid", PAID_INVOICE),
    ("invoice.payment_succeeded", PAID_INVOICE),
    ("invoice_payment.paid", via("invoice_payment", "invoice", "invoice", PAID_INVOICE)),
]
