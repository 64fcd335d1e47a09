"""Low balance and automatic top-up: charge a customer's saved card when credits run low.

Per customer (support and admins, audited): a low-balance threshold, auto top-up on or off, the
credit pack to buy, and how many failures in a row turn it off. The rules:

* `AutoTopUpService.scan` looks at every customer with auto top-up on whose available balance
  (`CreditService.balance`) is below the threshold, and makes a **trigger** row: the pack, its
  price, and ONE idempotency key, fixed when the row is made. A partial unique index on
  `auto_topup_trigger (customer_id) WHERE status = 'in_flight'` lets the database, not a check
  in code, refuse a second trigger while one is in flight — however many spends, threads or
  machines race. The scan does not care how the balance fell: after every spend the app makes
  (`after_spend`) and periodically in the listener (spends made through the SQL function).
* The trigger is charged off-session: a PaymentIntent with `off_session=true`, `confirm=true`,
  the customer's saved default card (fixed on the trigger before the first call) and metadata
  naming the trigger. A retry after a lost answer sends the same request with the same key.
* Credits arrive ONLY from a verified `payment_intent.succeeded` event, after the
  PaymentIntent is re-read from Stripe and matches the trigger (status, amount, currency,
  customer, metadata) — through `services.credits._write_purchase`, keyed by the PaymentIntent
  id, so exactly once. Nothing the charge's answer says credits anything.
* A failure (the charge's 402 answer or a verified `payment_intent.payment_failed`) credits
  nothing, counts once per trigger, puts the customer on the *needs attention* list with the
  decline reason, and after N failures in a row turns auto top-up off. Support can then send a
  normal Checkout link.
* A refund or lost dispute of an auto top-up's charge claws back its share, like a top-up's.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import peewee

from services import validation
from services.audit import Authority
from services.credits import CHARGE, DISPUTE, CreditService, _write_purchase
from services.errors import AppError, NotFound, PaymentDeclined, StripeRefused, ValidationError
from services.events import (
    Handler,
    HandlerContext,
    Ignore,
    Status,
    event_object,
    flag_event,
)
from services.invoices import decline_words
from services.models import AutoTopUpSetting, AutoTopUpTrigger, CreditEntry, Customer, tuples
from services.money import format_amount
from services.permissions import Permission
from services.stripe_gateway import StripeGateway

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe

log = logging.getLogger(__name__)

IN_FLIGHT = "in_flight"
SUCCEEDED = "succeeded"
FAILED = "failed"

METADATA_KEY = "auto_topup_id"
SYSTEM = "stripe"
DEFAULT_FAILURE_LIMIT = 3
MAX_FAILURE_LIMIT = 20
MAX_THRESHOLD = 100_000_000
#: How often the listener scans for spends made by other systems (the SQL function).
SCAN_INTERVAL_S = 60.0
#: What a payment intent that is not an auto top-up gets (the old web app credited on these).
NOT_OURS = "a payment intent alone credits nothing: top-ups settle from their Checkout session"


@dataclass(frozen=True)
class AutoTopUpConfig:
    """One customer's low-balance settings (defaults when none were ever set)."""

    customer_id: str
    enabled: bool
    threshold: int
    pack_product_id: str | None
    failure_limit: int
    failures: int
    attention: str  # "" when the customer needs no attention
    attention_at: int | None
    updated_by: str
    updated_at: int | None
    in_flight: str  # the trigger in flight, or ""


class AttentionRow(NamedTuple):
    customer_id: str
    customer_name: str
    reason: str
    at: int
    failures: int
    failure_limit: int
    enabled: bool


class TriggerRow(NamedTuple):
    trigger_id: str
    customer_id: str
    status: str
    credits: int
    amount: int
    currency: str
    balance: int
    payment_intent_id: str
    created_at: int
    settled_at: int | None
    failure: str


@dataclass
class ScanReport:
    """What one scan did."""

    checked: int = 0
    triggered: list[str] = field(default_factory=list)
    charged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # left in flight: retried next scan

    def line(self) -> str:
        return (
            f"Auto top-up: {self.checked} customers checked, {len(self.triggered)} triggered, "
            f"{len(self.charged)} charged, {len(self.failed)} failed"
            + (f", {len(self.problems)} to retry" if self.problems else "")
            + "."
        )


def trigger_id_for(idempotency_key: str) -> str:
    return "atu_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def _config(customer_id: str, row: AutoTopUpSetting | None) -> AutoTopUpConfig:
    flight = AutoTopUpTrigger.get_or_none(
        (AutoTopUpTrigger.customer_id == customer_id) & (AutoTopUpTrigger.status == IN_FLIGHT)
    )
    in_flight = flight.trigger_id if flight is not None else ""
    if row is None:
        return AutoTopUpConfig(
            customer_id, False, 0, None, DEFAULT_FAILURE_LIMIT, 0, "", None, "", None, in_flight
        )
    return AutoTopUpConfig(
        customer_id, bool(row.enabled), int(row.threshold), row.pack_product_id,
        int(row.failure_limit), int(row.failures), row.attention or "", row.attention_at,
        row.updated_by, row.updated_at, in_flight,
    )  # fmt: skip


def _trigger_row(t: AutoTopUpTrigger) -> TriggerRow:
    return TriggerRow(
        t.trigger_id, t.customer_id, t.status, t.credits, t.amount, t.currency, t.balance,
        t.payment_intent_id or "", t.created_at, t.settled_at, t.failure or "",
    )  # fmt: skip


class AutoTopUpService:
    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        credits: CreditService,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        self._credits = credits

    # ---- reading
    def config(self, customer_id: str) -> AutoTopUpConfig:
        self._authority.require(Permission.BROWSE, "auto_topup.show", customer_id)
        row = AutoTopUpSetting.get_or_none(AutoTopUpSetting.customer_id == customer_id)
        if row is None and not Customer.select().where(Customer.stripe_id == customer_id).exists():
            raise NotFound(f"No customer {customer_id} in the local mirror. Sync first.")
        return _config(customer_id, row)

    def triggers(self, customer_id: str | None = None, limit: int = 50) -> list[TriggerRow]:
        """The newest automatic top-ups (of one customer, or all)."""
        self._authority.require(Permission.BROWSE, "auto_topup.show", customer_id)
        query = AutoTopUpTrigger.select().order_by(
            AutoTopUpTrigger.created_at.desc(), AutoTopUpTrigger.id.desc()
        )
        if customer_id:
            query = query.where(AutoTopUpTrigger.customer_id == customer_id)
        return [_trigger_row(t) for t in query.limit(limit)]

    def attention(self) -> list[AttentionRow]:
        """Customers whose automatic top-up failed: the decline, newest first."""
        self._authority.require(Permission.BROWSE, "auto_topup.attention")
        query = (
            AutoTopUpSetting.select(
                AutoTopUpSetting.customer_id,
                peewee.fn.COALESCE(Customer.name, Customer.email, ""),
                AutoTopUpSetting.attention,
                peewee.fn.COALESCE(AutoTopUpSetting.attention_at, 0),
                AutoTopUpSetting.failures,
                AutoTopUpSetting.failure_limit,
                AutoTopUpSetting.enabled,
            )
            .join(
                Customer,
                peewee.JOIN.LEFT_OUTER,
                on=(Customer.stripe_id == AutoTopUpSetting.customer_id),
            )
            .where(AutoTopUpSetting.attention.is_null(False))
            .order_by(AutoTopUpSetting.attention_at.desc(), AutoTopUpSetting.id.desc())
        )
        return [
            AttentionRow(c, n or "", r, int(a), int(f), int(lim), bool(e))
            for c, n, r, a, f, lim, e in tuples(query)
        ]

    # ---- changing (support and admins; audited)
    def configure(
        self,
        customer_id: str,
        *,
        enabled: bool,
        threshold: int,
        pack_product_id: str | None,
        failure_limit: int = DEFAULT_FAILURE_LIMIT,
        idempotency_key: str | None = None,
    ) -> AutoTopUpConfig:
        """Set a customer's threshold and auto top-up. Turning it on needs a credit pack and
        a saved card in Stripe (the newest saved card becomes the default if none is); it
        clears the failure count and the *needs attention* entry."""
        self._authority.require(Permission.MANAGE_AUTO_TOPUP, "auto_topup.set", customer_id)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int)
            or not (0 <= threshold <= MAX_THRESHOLD)
        ):
            raise ValidationError(
                f"The threshold must be a whole number of credits, 0 to {MAX_THRESHOLD:,}."
            )
        failure_limit = validation.positive_int(
            failure_limit, "The failure limit", maximum=MAX_FAILURE_LIMIT
        )
        customer = Customer.get_or_none(Customer.stripe_id == customer_id)
        if customer is None or customer.deleted:
            raise NotFound(f"No customer {customer_id} in the local mirror. Sync first.")
        pack = None
        if pack_product_id:
            pack = next((p for p in self._credits.credit_packs() if p[0] == pack_product_id), None)
            if pack is None:
                raise ValidationError(f"{pack_product_id} is not an active credit pack.")
        if enabled and pack is None:
            raise ValidationError("Choose the credit pack auto top-up buys.")
        card = self._saved_card(customer_id, idempotency_key) if enabled else None
        params: dict[str, Any] = {
            "enabled": enabled,
            "threshold": threshold,
            "pack": pack_product_id,
            "failure_limit": failure_limit,
        }
        if card:
            params["card"] = card
        with self._authority.action(
            Permission.MANAGE_AUTO_TOPUP, "auto_topup.set", target=customer_id, params=params
        ):
            now = int(time.time())
            values = {
                "enabled": enabled,
                "threshold": threshold,
                "pack_product_id": pack_product_id or None,
                "failure_limit": failure_limit,
                "updated_by": self._authority.actor.login,
                "updated_at": now,
            }
            if enabled:  # a person decided to try again: start counting afresh
                values.update(failures=0, attention=None, attention_at=None)
            AutoTopUpSetting.insert(customer_id=customer_id, **values).on_conflict(
                conflict_target=[AutoTopUpSetting.customer_id], update=values
            ).execute()
        return self.config(customer_id)

    def turn_off(self, customer_id: str) -> AutoTopUpConfig:
        """Stop automatic top-ups for a customer (the threshold and pack stay)."""
        current = self.config(customer_id)
        return self.configure(
            customer_id, enabled=False, threshold=current.threshold,
            pack_product_id=current.pack_product_id, failure_limit=current.failure_limit,
        )  # fmt: skip

    def _saved_card(self, customer_id: str, idempotency_key: str | None) -> str:
        """The customer's default card in Stripe; the newest saved card is made the default
        when none is (a card saved by a top-up link). Raises when there is no saved card."""
        customer = self._gateway.call(lambda c: c.v1.customers.retrieve(customer_id))
        settings = customer.invoice_settings
        current = settings.default_payment_method if settings else None
        if current:
            return current if isinstance(current, str) else current.id
        cards = self._gateway.call(
            lambda c: c.v1.customers.payment_methods.list(customer_id, {"type": "card", "limit": 1})
        )
        if not cards.data:
            raise ValidationError(
                f"{customer_id} has no saved card in Stripe. Send a top-up link with "
                "“Save the card for automatic top-ups” first."
            )
        pm_id = cards.data[0].id
        key = idempotency_key or f"auto-topup-default-{uuid.uuid4().hex}"
        self._gateway.call(
            lambda c: c.v1.customers.update(
                customer_id,
                {"invoice_settings": {"default_payment_method": pm_id}},
                {"idempotency_key": key},
            )
        )
        return pm_id

    # ---- the trigger
    def after_spend(self, customer_id: str) -> ScanReport:
        """Call after every spend the app makes: charges once if the spend crossed the
        threshold. Never raises: the spend is done, and the listener's scan catches up on
        what this could not do (Stripe unreachable, a login that may not charge)."""
        try:
            return self.scan(customer_id)
        except (AppError, peewee.DatabaseError) as exc:
            log.warning("Auto top-up check after a spend by %s failed: %s", customer_id, exc)
            return ScanReport(problems=[str(exc)])

    def scan(self, customer_id: str | None = None) -> ScanReport:
        """Trigger and charge every customer (or one) below their threshold with nothing in
        flight; also retries triggers whose charge got no answer."""
        report = ScanReport()
        busy = AutoTopUpTrigger.select(AutoTopUpTrigger.customer_id).where(
            AutoTopUpTrigger.status == IN_FLIGHT
        )
        query = AutoTopUpSetting.select().where(
            (AutoTopUpSetting.enabled == True)  # noqa: E712
            & AutoTopUpSetting.pack_product_id.is_null(False)
            & AutoTopUpSetting.customer_id.not_in(busy)
        )
        if customer_id is not None:
            query = query.where(AutoTopUpSetting.customer_id == customer_id)
        packs = {p[0]: p for p in self._credits.credit_packs()}
        for setting in list(query):
            report.checked += 1
            balance = self._credits.balance(setting.customer_id)
            if balance >= setting.threshold:
                continue
            pack = packs.get(str(setting.pack_product_id))
            if pack is None:
                self._attention(
                    setting.customer_id,
                    f"the pack {setting.pack_product_id} is no longer an active credit pack",
                )
                continue
            made = self._make_trigger(setting.customer_id, pack, balance)
            if made:
                report.triggered.append(made)
        pending = AutoTopUpTrigger.select().where(
            (AutoTopUpTrigger.status == IN_FLIGHT) & AutoTopUpTrigger.payment_intent_id.is_null()
        )
        if customer_id is not None:
            pending = pending.where(AutoTopUpTrigger.customer_id == customer_id)
        for trigger in list(pending):
            self._charge(trigger, report)
        if report.triggered or report.failed or report.problems:
            log.info(report.line())
        return report

    def _make_trigger(
        self, customer_id: str, pack: tuple[str, str, int, int, str], balance: int
    ) -> str | None:
        product_id, _name, credits, amount, currency = pack
        key = f"auto-topup-{uuid.uuid4().hex}"  # fixed here, for every retry of this charge
        trigger_id = trigger_id_for(key)
        try:
            with self._db.atomic():
                AutoTopUpTrigger.insert(
                    trigger_id=trigger_id, customer_id=customer_id, status=IN_FLIGHT,
                    pack_product_id=product_id, credits=credits, amount=amount,
                    currency=currency, balance=balance, idempotency_key=key,
                    created_at=int(time.time()),
                ).execute()  # fmt: skip
        except peewee.IntegrityError:
            return None  # one is in flight already (another spend or machine made it)
        return trigger_id

    def _charge(self, trigger: AutoTopUpTrigger, report: ScanReport) -> None:
        try:
            if not trigger.payment_method_id:
                pm_id = self._default_card(trigger.customer_id)
                if not pm_id:
                    self._fail(trigger, "no saved card to charge (no default payment method)")
                    report.failed.append(trigger.trigger_id)
                    return
                AutoTopUpTrigger.update(payment_method_id=pm_id).where(
                    (AutoTopUpTrigger.id == trigger.id)
                    & AutoTopUpTrigger.payment_method_id.is_null()
                ).execute()
                trigger = AutoTopUpTrigger.get_by_id(trigger.id)
            intent = self._create_intent(trigger)
        except PaymentDeclined as exc:
            error = getattr(exc.__cause__, "error", None)
            pi_id = getattr(getattr(error, "payment_intent", None), "id", None)
            code = getattr(error, "decline_code", None) or getattr(error, "code", None) or ""
            self._fail(trigger, _decline_text(str(code)), pi_id)
            self._authority.record_failure("auto_topup.charge", exc, target=trigger.customer_id)
            report.failed.append(trigger.trigger_id)
            return
        except StripeRefused as exc:
            if isinstance(exc, NotFound) or getattr(exc.__cause__, "http_status", 0) == 400:
                self._fail(trigger, f"Stripe refused the charge: {exc}")
                self._authority.record_failure("auto_topup.charge", exc, target=trigger.customer_id)
                report.failed.append(trigger.trigger_id)
                return
            report.problems.append(f"{trigger.trigger_id}: {exc}")
            return
        except AppError as exc:  # unreachable, rate limited: the same key next scan
            log.warning("Auto top-up %s not charged yet: %s", trigger.trigger_id, exc)
            report.problems.append(f"{trigger.trigger_id}: {exc}")
            return
        AutoTopUpTrigger.update(payment_intent_id=intent.id).where(
            AutoTopUpTrigger.id == trigger.id
        ).execute()
        # One row per request sent (two scans racing on one trigger each sent one; Stripe
        # answered both from the same key with the one charge).
        self._authority.record(
            "auto_topup.charge", target=trigger.customer_id,
            params={"trigger": trigger.trigger_id, "payment_intent": intent.id,
                    "credits": trigger.credits, "amount": trigger.amount,
                    "currency": trigger.currency, "status": intent.status},
        )  # fmt: skip
        if intent.status in ("requires_payment_method", "requires_action", "canceled"):
            self._fail(trigger, _failure_of(intent.to_dict(for_json=True)), intent.id)
            report.failed.append(trigger.trigger_id)
            return
        report.charged.append(trigger.trigger_id)

    def _default_card(self, customer_id: str) -> str | None:
        customer = self._gateway.call(lambda c: c.v1.customers.retrieve(customer_id))
        settings = customer.invoice_settings
        pm = settings.default_payment_method if settings else None
        if pm is None:
            return None
        return pm if isinstance(pm, str) else pm.id

    def _create_intent(self, trigger: AutoTopUpTrigger) -> stripe.PaymentIntent:
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": int(trigger.amount),
            "currency": trigger.currency,
            "customer": trigger.customer_id,
            "payment_method": str(trigger.payment_method_id),
            "off_session": True,
            "confirm": True,
            "description": f"Automatic top-up: {int(trigger.credits):,} credits",
            "metadata": {
                METADATA_KEY: trigger.trigger_id,
                "credits": str(trigger.credits),
                "pack": trigger.pack_product_id,
            },
        }
        key = trigger.idempotency_key
        return self._gateway.call(
            lambda c: c.v1.payment_intents.create(params, {"idempotency_key": key})
        )

    def _fail(self, trigger: AutoTopUpTrigger, reason: str, pi_id: str | None = None) -> None:
        record_failure(trigger, reason, pi_id)

    def _attention(self, customer_id: str, reason: str) -> None:
        AutoTopUpSetting.update(attention=reason, attention_at=int(time.time())).where(
            AutoTopUpSetting.customer_id == customer_id
        ).execute()


def _decline_text(code: str) -> str:
    if code == "authentication_required":
        return (
            "authentication required: the bank wants the customer to confirm this payment "
            "(3D Secure); send them a top-up link"
        )
    return f"declined: {decline_words(code)}" + (f" ({code})" if code else "")


def _failure_of(intent: Mapping[str, Any]) -> str:
    error = intent.get("last_payment_error") or {}
    code = error.get("decline_code") or error.get("code") or ""
    if code:
        return _decline_text(str(code))
    if intent.get("status") == "requires_action":
        return _decline_text("authentication_required")
    return f"the payment is {intent.get('status')}"


def record_failure(trigger: AutoTopUpTrigger, reason: str, pi_id: str | None) -> bool:
    """A failed trigger, counted once (in flight → failed): the customer needs attention, and
    auto top-up goes off after the failure limit. True when this call counted it."""
    db = AutoTopUpTrigger._meta.database
    now = int(time.time())
    with db.atomic():
        counted = (
            AutoTopUpTrigger.update(
                status=FAILED,
                failure=reason,
                settled_at=now,
                payment_intent_id=peewee.fn.COALESCE(AutoTopUpTrigger.payment_intent_id, pi_id),
            )
            .where((AutoTopUpTrigger.id == trigger.id) & (AutoTopUpTrigger.status == IN_FLIGHT))
            .execute()
        )
        if not counted:
            return False
        price = format_amount(trigger.amount, trigger.currency)
        what = (
            f"{reason[:1].upper()}{reason[1:]} — automatic top-up of "
            f"{int(trigger.credits):,} credits for {price} ({trigger.trigger_id})"
        )
        AutoTopUpSetting.update(
            failures=AutoTopUpSetting.failures + 1, attention=what, attention_at=now
        ).where(AutoTopUpSetting.customer_id == trigger.customer_id).execute()
        AutoTopUpSetting.update(enabled=False).where(
            (AutoTopUpSetting.customer_id == trigger.customer_id)
            & (AutoTopUpSetting.failures >= AutoTopUpSetting.failure_limit)
        ).execute()
    log.warning("%s", what)
    return True


# ---- applying Stripe's events ----------------------------------------------------------------


def _claimed_trigger(obj: Mapping[str, Any]) -> AutoTopUpTrigger | None:
    """The trigger an event's payment intent seems to be for (the payload only picks the
    route; what counts is re-read from Stripe)."""
    pi_id = obj.get("id")
    trigger = (
        AutoTopUpTrigger.get_or_none(AutoTopUpTrigger.payment_intent_id == pi_id)
        if isinstance(pi_id, str) and pi_id
        else None
    )
    if trigger is None:
        named = (obj.get("metadata") or {}).get(METADATA_KEY)
        if isinstance(named, str) and named:
            trigger = AutoTopUpTrigger.get_or_none(AutoTopUpTrigger.trigger_id == named)
    return trigger


def _fetch_intent(ctx: HandlerContext, event: Mapping[str, Any]) -> dict[str, Any]:
    obj = event_object(event)
    pi_id = str(obj.get("id") or "")
    if not pi_id.startswith("pi_") or _claimed_trigger(obj) is None:
        raise Ignore(NOT_OURS)
    try:
        fresh = ctx.gateway.call(lambda c: c.v1.payment_intents.retrieve(pi_id))
    except NotFound as exc:
        raise Ignore(f"Stripe has no {pi_id} in this account: not one of our payments") from exc
    data: dict[str, Any] = fresh.to_dict(for_json=True)
    return data


def _mismatch(trigger: AutoTopUpTrigger, intent: Mapping[str, Any]) -> str:
    metadata = intent.get("metadata") or {}
    customer = intent.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    problems = []
    if intent.get("amount") != trigger.amount:
        problems.append(f"amount {intent.get('amount')} ≠ {trigger.amount}")
    if (intent.get("currency") or "").lower() != trigger.currency:
        problems.append(f"currency {intent.get('currency')} ≠ {trigger.currency}")
    if customer != trigger.customer_id:
        problems.append(f"customer {customer} ≠ {trigger.customer_id}")
    if metadata.get(METADATA_KEY) != trigger.trigger_id or metadata.get("credits") != str(
        trigger.credits
    ):
        problems.append("metadata does not match the auto top-up")
    if trigger.payment_intent_id and trigger.payment_intent_id != intent.get("id"):
        problems.append(f"the auto top-up was charged as {trigger.payment_intent_id}")
    return "; ".join(problems)


def _apply_intent(ctx: HandlerContext, event: Mapping[str, Any], intent: dict[str, Any]) -> Status:
    """Credit an auto top-up on its verified success, or count its verified failure."""
    evt_id = str(event.get("id") or "")
    pi_id = str(intent.get("id"))
    trigger = AutoTopUpTrigger.get_or_none(
        AutoTopUpTrigger.trigger_id == (intent.get("metadata") or {}).get(METADATA_KEY)
    )
    if trigger is None:
        flag_event(evt_id, f"{pi_id} names no auto top-up of this app: not credited")
        return Status.IGNORED
    problem = _mismatch(trigger, intent)
    if problem:
        flag_event(evt_id, f"{trigger.trigger_id}: {problem}: not credited")
        return Status.IGNORED
    status = intent.get("status")
    if event.get("type") == "payment_intent.succeeded":
        if status != "succeeded":
            flag_event(
                evt_id,
                f"the event says succeeded, but Stripe says {pi_id} is {status}: not credited",
            )
            return Status.IGNORED
        return Status.APPLIED if _credit(trigger, pi_id) else Status.IGNORED
    if status in ("requires_payment_method", "requires_action", "canceled"):
        counted = record_failure(trigger, _failure_of(intent), pi_id)
        return Status.APPLIED if counted else Status.IGNORED
    return Status.IGNORED  # succeeded since (its own event credits it), or still processing


def _credit(trigger: AutoTopUpTrigger, pi_id: str) -> bool:
    now = int(time.time())
    # The trigger names its payment first: on a shared PostgreSQL the ledger's guard checks
    # the purchase against it.
    AutoTopUpTrigger.update(
        status=SUCCEEDED,
        payment_intent_id=pi_id,
        settled_at=peewee.fn.COALESCE(AutoTopUpTrigger.settled_at, now),
        failure=None,
    ).where(AutoTopUpTrigger.id == trigger.id).execute()
    wrote = _write_purchase(
        trigger.customer_id, int(trigger.credits), pi_id, trigger.trigger_id,
        f"Automatic top-up {trigger.trigger_id}: {pi_id} paid", now,
    )  # fmt: skip
    if wrote:  # paid: the failures in a row are over
        AutoTopUpSetting.update(failures=0, attention=None, attention_at=None).where(
            AutoTopUpSetting.customer_id == trigger.customer_id
        ).execute()
    return wrote


INTENT = Handler(_fetch_intent, _apply_intent)


# ---- refunds and lost disputes of an auto top-up's charge


@dataclass(frozen=True)
class _Reversals:
    trigger_id: str
    refunds: list[dict[str, Any]]
    disputes: list[dict[str, Any]]


def _payment_intent_of(obj: Mapping[str, Any]) -> str:
    pi = obj.get("payment_intent")
    pi = pi.get("id") if isinstance(pi, Mapping) else pi
    return pi if isinstance(pi, str) else ""


def _reversal_route(other: Handler, kind: str) -> Handler:
    """`charge.refunded` / `charge.dispute.*`: an auto top-up's charge claws back here; any
    other charge goes on to `other` (the top-ups' handler) unchanged."""

    def fetch(ctx: HandlerContext, event: Mapping[str, Any]) -> Any:
        obj = event_object(event)
        claimed = _payment_intent_of(obj)
        trigger = (
            AutoTopUpTrigger.get_or_none(AutoTopUpTrigger.payment_intent_id == claimed)
            if claimed
            else None
        )
        object_id = str(obj.get("id") or "")
        if trigger is None or not object_id:
            return ("other", other.fetch(ctx, event))
        try:  # the payload only picked the route: Stripe says which payment this is
            fresh = ctx.gateway.call(
                lambda c: (c.v1.charges if kind == "charge" else c.v1.disputes).retrieve(object_id)
            )
        except NotFound as exc:
            raise Ignore(f"Stripe has no {object_id} in this account") from exc
        if _payment_intent_of(fresh.to_dict(for_json=True)) != claimed:
            return ("other", other.fetch(ctx, event))
        refunds = ctx.gateway.call(
            lambda c: c.v1.refunds.list({"payment_intent": claimed, "limit": 100})
        )
        disputes = ctx.gateway.call(
            lambda c: c.v1.disputes.list({"payment_intent": claimed, "limit": 100})
        )
        return (
            "auto",
            _Reversals(
                trigger.trigger_id,
                [r.to_dict(for_json=True) for r in refunds.data],
                [d.to_dict(for_json=True) for d in disputes.data],
            ),
        )

    def apply(ctx: HandlerContext, event: Mapping[str, Any], fetched: Any) -> Status:
        which, data = fetched
        if which == "other":
            return other.apply(ctx, event, data)
        return _claw_back(data)

    return Handler(fetch, apply)


def _claw_back(truth: _Reversals) -> Status:
    """One clawback entry per refund or lost dispute (unique by its id), each the share of the
    pack's credits it took back; together never more than the pack gave."""
    trigger = AutoTopUpTrigger.get(AutoTopUpTrigger.trigger_id == truth.trigger_id)
    found = sorted(
        [(int(r.get("created") or 0), r["id"], int(r.get("amount") or 0), "Refund")
         for r in truth.refunds if r.get("status") in ("succeeded", "pending") and r.get("id")]
        + [(int(d.get("created") or 0), d["id"], int(d.get("amount") or 0), "Lost dispute")
           for d in truth.disputes if d.get("status") == "lost" and d.get("id")]
    )  # fmt: skip
    reversed_amount = clawed = 0
    wrote = False
    now = int(time.time())
    for _created, source, amount, what in found:
        reversed_amount += amount
        target = min(trigger.credits, round(trigger.credits * reversed_amount / trigger.amount))
        take, clawed = target - clawed, target
        if take <= 0:
            continue
        try:
            with CreditEntry._meta.database.atomic():
                CreditEntry.insert(
                    customer_id=trigger.customer_id, amount=-take, kind="clawback",
                    source=source, topup_id=trigger.trigger_id, operator=SYSTEM,
                    reason=f"{what} {source} of automatic top-up {trigger.trigger_id}",
                    created_at=now,
                ).execute()  # fmt: skip
            wrote = True
        except peewee.IntegrityError:
            continue  # clawed back already
    return Status.APPLIED if wrote else Status.IGNORED


def auto_topup_paid(gateway: StripeGateway, source: str, customer_id: str) -> bool | None:
    """For reconcile: whether a purchase whose source is `source` is an auto top-up Stripe
    says was paid, for this customer and this pack (None: not an auto top-up of this app)."""
    trigger = AutoTopUpTrigger.get_or_none(AutoTopUpTrigger.payment_intent_id == source)
    if trigger is None:
        return None
    try:
        intent = gateway.call(lambda c: c.v1.payment_intents.retrieve(source))
    except NotFound:
        return False
    data: dict[str, Any] = intent.to_dict(for_json=True)
    return (
        data.get("status") == "succeeded"
        and not _mismatch(trigger, data)
        and trigger.customer_id == customer_id
    )


#: The auto top-up's part of the event routing table; goes before `CREDIT_ROUTES`. Other
#: payment intents stay ignored (`NOT_OURS`); other charges go on to the top-ups' handlers.
AUTO_TOPUP_ROUTES: list[tuple[str, Handler]] = [
    ("payment_intent.succeeded", INTENT),
    ("payment_intent.payment_failed", INTENT),
    ("charge.refunded", _reversal_route(CHARGE, "charge")),
    ("charge.dispute.*", _reversal_route(DISPUTE, "dispute")),
]
