"""Invoices through the real sandbox: each action, each charge outcome, and never twice."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import peewee
import pytest
import stripe

from services.audit import Authority
from services.errors import PermissionDenied, ValidationError
from services.invoices import (
    OVERDUE,
    ChargeDeclined,
    ChargeInProgress,
    ChargeNeedsAuthentication,
    ChargeOutcome,
    ChargeResult,
    ChargeUnreachable,
    DraftLine,
    InvoiceDraft,
    InvoiceFilter,
    InvoiceListRow,
    InvoiceService,
    NoPaymentMethod,
    totals,
)
from services.mirror import upsert
from services.models import AuditRecord, Customer, Invoice
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY

DEADLINE_S = 20


def _sandbox(sandbox: SandboxServer, verb: str, path: str, **form: Any) -> Any:
    data = urllib.parse.urlencode(form).encode() if verb == "POST" else None
    request = urllib.request.Request(sandbox.url + path, data=data, method=verb)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        raise AssertionError(f"{path}: {exc.code} {body!r}") from None


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class World:
    def __init__(
        self, db: peewee.Database, sandbox: SandboxServer, authority: Authority,
        client: stripe.StripeClient,
    ) -> None:  # fmt: skip
        self.db = db
        self.sandbox = sandbox
        self.client = client
        self.authority = authority
        self.gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
        self.invoices = InvoiceService(db, self.gateway, authority)

    def service(self, **gateway: Any) -> InvoiceService:
        gw = StripeGateway(TEST_KEY, api_base=self.sandbox.url, sandbox=True, **gateway)
        return InvoiceService(self.db, gw, self.authority)

    def customer(self, card: str | None = "4242424242424242") -> str:
        made = self.client.v1.customers.create(
            {"email": f"ap-{uuid.uuid4().hex[:6]}@example.com", "name": "Ada Ledger"}
        )
        if card:
            _sandbox(self.sandbox, "POST", f"/_sandbox/customers/{made.id}/attach_card", card=card)
        with self.db.atomic():
            upsert(Customer, [self.client.v1.customers.retrieve(made.id).to_dict(for_json=True)])
        return made.id

    def open_invoice(self, card: str | None = "4242424242424242", amount: int = 2500) -> str:
        draft = self.invoices.create_draft(
            InvoiceDraft(
                self.customer(card), (DraftLine(description="Consulting", amount=amount,
                                                currency="usd"),)
            ),
            f"k-{uuid.uuid4()}",
        )  # fmt: skip
        return self.invoices.finalize(draft.stripe_id, f"k-{uuid.uuid4()}").stripe_id

    def paid_payments(self, invoice_id: str) -> int:
        payments = self.client.v1.invoice_payments.list({"invoice": invoice_id}).data
        return sum(1 for p in payments if p.status == "paid")

    def charges(self, invoice_id: str) -> int:
        """Successful charges on the invoice's PaymentIntent(s), read from Stripe."""
        total = 0
        for payment in self.client.v1.invoice_payments.list({"invoice": invoice_id}).data:
            intent = payment.payment.payment_intent
            pi = intent if isinstance(intent, str) else getattr(intent, "id", None)
            if pi:
                charges = self.client.v1.charges.list({"payment_intent": pi}).data
                total += sum(1 for c in charges if c.status == "succeeded")
        return total

    def fault(self, invoice_id: str, **form: Any) -> None:
        _sandbox(
            self.sandbox, "POST", "/_sandbox/faults",
            path_prefix=f"/v1/invoices/{invoice_id}/pay", method="POST", **form,
        )  # fmt: skip

    def audit(self, action: str, target: str) -> list[AuditRecord]:
        return list(
            AuditRecord.select()
            .where((AuditRecord.action == action) & (AuditRecord.target == target))
            .order_by(AuditRecord.id)
        )

    def status(self, invoice_id: str) -> str:
        return str(Invoice.get(Invoice.stripe_id == invoice_id).status)


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> World:  # fmt: skip
    return World(database, sandbox, authority, stripe_client)


def test_create_finalize_and_charge_an_invoice(world: World) -> None:
    customer = world.customer()
    price = world.client.v1.prices.create(
        {"currency": "usd", "unit_amount": 4500, "product_data": {"name": "500 credits"}}
    )
    world.db.connect(reuse_if_open=True)
    with world.db.atomic():
        from services.models import Price

        upsert(Price, [price.to_dict(for_json=True)])
    key = f"k-{uuid.uuid4()}"
    lines = (DraftLine(price_id=price.id, quantity=2),
             DraftLine(description="Setup fee", amount=1500, currency="usd"))  # fmt: skip
    draft = world.invoices.create_draft(InvoiceDraft(customer, lines), key)
    assert (draft.status, draft.total, len(draft.lines)) == ("draft", 10_500, 2)
    # The same user action again (a retry after a timeout) creates nothing new.
    again = world.invoices.create_draft(InvoiceDraft(customer, lines), key)
    assert again.stripe_id == draft.stripe_id
    assert len(world.client.v1.invoices.list({"customer": customer}).data) == 1

    opened = world.invoices.finalize(draft.stripe_id, f"k-{uuid.uuid4()}")
    assert opened.status == "open"
    assert opened.number
    assert opened.hosted_invoice_url.startswith("http")
    assert opened.invoice_pdf.startswith("http")

    preview = world.invoices.charge_preview(draft.stripe_id)
    assert (preview.amount, preview.currency, preview.customer_name) == (
        10_500,
        "usd",
        "Ada Ledger",
    )
    assert preview.payment_method is not None
    assert (preview.payment_method.brand, preview.payment_method.last4) == ("visa", "4242")

    result = world.invoices.charge(draft.stripe_id, f"k-{uuid.uuid4()}")
    assert result.outcome is ChargeOutcome.PAID
    assert "$105.00" in result.message
    assert world.status(draft.stripe_id) == "paid"
    detail = world.invoices.detail(draft.stripe_id)
    assert detail.payments_known
    assert [(p.status, p.amount_paid) for p in detail.payments] == [("paid", 10_500)]
    history = [h.text for h in detail.history]
    assert "Draft created" in history
    assert "Finalized" in history
    assert "Charge: paid" in history
    (row,) = world.audit("invoice.charge", draft.stripe_id)
    assert (row.outcome, row.params["outcome"]) == ("ok", "paid")
    assert row.idempotency_key


@pytest.mark.parametrize(
    ("card", "code", "words"),
    [
        ("4000000000000002", "generic_decline", "declined"),
        ("4000000000009995", "insufficient_funds", "insufficient funds"),
        ("4000000000000069", "expired_card", "expired"),
    ],
)
def test_a_decline_is_explained_and_the_invoice_stays_open(
    world: World, card: str, code: str, words: str
) -> None:
    invoice = world.open_invoice(card)
    with pytest.raises(ChargeDeclined) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert caught.value.exit_code == 4
    assert caught.value.result.decline_code == code
    assert words in str(caught.value)
    assert "stays open" in str(caught.value)
    assert world.status(invoice) == "open"
    assert world.paid_payments(invoice) == 0
    (row,) = world.audit("invoice.charge", invoice)
    assert (row.outcome, row.params["decline_code"]) == ("refused", code)


def test_authentication_required_offers_the_invoice_link(world: World) -> None:
    invoice = world.open_invoice("4000002500003155")
    with pytest.raises(ChargeNeedsAuthentication) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    result = caught.value.result
    assert result.outcome is ChargeOutcome.REQUIRES_AUTHENTICATION
    assert result.hosted_invoice_url
    assert result.hosted_invoice_url in str(caught.value)
    assert world.status(invoice) == "open"


def test_no_payment_method(world: World) -> None:
    invoice = world.open_invoice(card=None)
    preview = world.invoices.charge_preview(invoice)
    assert preview.payment_method is None
    with pytest.raises(NoPaymentMethod) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert "no saved card" in str(caught.value)
    assert caught.value.exit_code == 4


def test_already_paid_is_a_refresh_not_an_error(world: World) -> None:
    invoice = world.open_invoice()
    world.client.v1.invoices.pay(invoice)  # paid elsewhere: the mirror still says open
    assert world.status(invoice) == "open"
    result = world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert result.outcome is ChargeOutcome.ALREADY_PAID
    assert world.status(invoice) == "paid"
    assert world.paid_payments(invoice) == 1


def test_unreachable_charges_nothing_and_the_same_key_retries_safely(world: World) -> None:
    invoice = world.open_invoice()
    no_retries = world.service(max_network_retries=0)
    world.fault(invoice, status=500)
    key = f"k-{uuid.uuid4()}"
    with pytest.raises(ChargeUnreachable) as caught:
        no_retries.charge(invoice, key)
    assert caught.value.exit_code == 5
    assert "at most once" in str(caught.value)
    assert world.paid_payments(invoice) == 0
    assert world.invoices.detail(invoice).status == "open"
    assert no_retries.charge(invoice, key).outcome is ChargeOutcome.PAID
    assert no_retries.charge(invoice, key).outcome is ChargeOutcome.ALREADY_PAID
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)
    outcomes = [r.outcome for r in world.audit("invoice.charge", invoice)]
    assert outcomes == ["failed", "ok", "ok"]


def test_a_retry_after_an_injected_500_charges_once(world: World) -> None:
    invoice = world.open_invoice()
    world.fault(invoice, status=500, count=1)
    # The gateway's own network retry repeats the request with the same idempotency key.
    assert world.invoices.charge(invoice, f"k-{uuid.uuid4()}").outcome is ChargeOutcome.PAID
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)


def test_a_retry_after_a_timeout_charges_once(world: World) -> None:
    invoice = world.open_invoice()
    patient = world.service(timeout=0.5, max_network_retries=2)
    world.fault(invoice, delay_ms=1500, count=1)
    started = time.monotonic()
    # The first request times out but still runs in Stripe; the retry carries the same key.
    assert patient.charge(invoice, f"k-{uuid.uuid4()}").outcome is ChargeOutcome.PAID
    _wait(lambda: time.monotonic() - started > 1.7, "the delayed request to finish")
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)


def test_a_timeout_without_retries_is_unreachable_and_the_retry_charges_once(
    world: World,
) -> None:
    invoice = world.open_invoice()
    impatient = world.service(timeout=0.5, max_network_retries=0)
    world.fault(invoice, delay_ms=1200, count=1)
    started = time.monotonic()
    key = f"k-{uuid.uuid4()}"
    with pytest.raises(ChargeUnreachable):
        impatient.charge(invoice, key)
    _wait(lambda: time.monotonic() - started > 1.4, "the delayed request to finish")
    result = impatient.charge(invoice, key)
    assert result.outcome in (ChargeOutcome.PAID, ChargeOutcome.ALREADY_PAID)
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)


def _charge_in_thread(
    service: InvoiceService, invoice: str, key: str
) -> tuple[threading.Thread, list[ChargeResult | BaseException]]:
    out: list[ChargeResult | BaseException] = []

    def run() -> None:
        try:
            out.append(service.charge(invoice, key))
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_two_concurrent_charges_in_one_app_charge_once(world: World) -> None:
    invoice = world.open_invoice()
    world.fault(invoice, delay_ms=800, count=1)
    first, first_out = _charge_in_thread(world.invoices, invoice, f"k-{uuid.uuid4()}")
    _wait(lambda: world.invoices.in_flight(invoice), "the first charge to start")
    with pytest.raises(ChargeInProgress) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")  # a double-click, another key
    assert caught.value.result.outcome is ChargeOutcome.IN_PROGRESS
    first.join(DEADLINE_S)
    assert isinstance(first_out[0], ChargeResult)
    assert first_out[0].outcome is ChargeOutcome.PAID
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)
    assert sorted(r.outcome for r in world.audit("invoice.charge", invoice)) == ["failed", "ok"]


def test_two_machines_charging_at_once_charge_once(world: World) -> None:
    invoice = world.open_invoice()
    other_machine = world.service()
    world.fault(invoice, delay_ms=800, count=1)
    slow, slow_out = _charge_in_thread(world.invoices, invoice, f"k-{uuid.uuid4()}")
    _wait(lambda: not _sandbox(world.sandbox, "GET", "/_sandbox/faults")["data"], "fault taken")
    assert other_machine.charge(invoice, f"k-{uuid.uuid4()}").outcome is ChargeOutcome.PAID
    slow.join(DEADLINE_S)
    assert isinstance(slow_out[0], ChargeResult)
    assert slow_out[0].outcome is ChargeOutcome.ALREADY_PAID
    assert (world.paid_payments(invoice), world.charges(invoice)) == (1, 1)


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT])
def test_finance_and_support_cannot_charge(world: World, role: Role) -> None:
    invoice = world.open_invoice()
    OperatorService(world.db, world.authority).add("staff", role)
    staff = Authority(world.db, sign_in(world.db, "staff"))
    service = InvoiceService(world.db, world.gateway, staff)
    with pytest.raises(PermissionDenied):
        service.charge(invoice, f"k-{uuid.uuid4()}")
    with pytest.raises(PermissionDenied):
        service.void(invoice, f"k-{uuid.uuid4()}")
    assert world.paid_payments(invoice) == 0
    rows = world.audit("invoice.charge", invoice)
    assert [(r.operator, r.outcome) for r in rows] == [("staff", "denied")]
    assert service.detail(invoice).status == "open"  # browsing is fine


def test_send_uncollectible_and_void(world: World) -> None:
    customer = world.customer(card=None)
    line = DraftLine(description="Audit work", amount=90_000, currency="usd")
    draft = world.invoices.create_draft(
        InvoiceDraft(customer, (line,), send_invoice=True, days_until_due=14), f"k-{uuid.uuid4()}"
    )
    assert draft.collection_method == "send_invoice"
    opened = world.invoices.finalize(draft.stripe_id, f"k-{uuid.uuid4()}")
    assert opened.due_date
    assert world.invoices.send(draft.stripe_id, f"k-{uuid.uuid4()}").status == "open"
    bad = world.invoices.mark_uncollectible(draft.stripe_id, f"k-{uuid.uuid4()}")
    assert bad.status == "uncollectible"
    assert world.invoices.void(draft.stripe_id, f"k-{uuid.uuid4()}").status == "void"
    with pytest.raises(ValidationError, match="Nothing was sent to Stripe: Only open or") as caught:
        world.invoices.void(draft.stripe_id, f"k-{uuid.uuid4()}")
    assert caught.value.exit_code == 2
    assert world.audit("invoice.void", draft.stripe_id)[-1].outcome == "failed"
    actions = [r.action for r in AuditRecord.select().where(AuditRecord.target == draft.stripe_id)]
    assert actions[:5] == [
        "invoice.create", "invoice.finalize", "invoice.send", "invoice.mark_uncollectible",
        "invoice.void",
    ]  # fmt: skip


def test_bad_drafts_are_refused_before_stripe(world: World) -> None:
    customer = world.customer(card=None)
    cases = [
        InvoiceDraft(customer, ()),
        InvoiceDraft("cus_nobody", (DraftLine(description="x", amount=100, currency="usd"),)),
        InvoiceDraft(customer, (DraftLine(description="x", amount=0, currency="usd"),)),
        InvoiceDraft(customer, (DraftLine(description="", amount=100, currency="usd"),)),
        InvoiceDraft(
            customer,
            (
                DraftLine(description="a", amount=100, currency="usd"),
                DraftLine(description="b", amount=100, currency="eur"),
            ),
        ),
        InvoiceDraft(customer, (DraftLine(price_id="price_missing"),)),
    ]
    for draft in cases:
        with pytest.raises(ValidationError):
            world.invoices.create_draft(draft, f"k-{uuid.uuid4()}")
    assert world.client.v1.invoices.list({"customer": customer}).data == []


def _row(status: str, currency: str, total: int, paid: int, remaining: int) -> InvoiceListRow:
    return InvoiceListRow(
        "in_x",
        "",
        "cus_x",
        "",
        status,
        currency,
        total,
        total,
        paid,
        remaining,
        0,
        None,
        status == "open",
    )


def test_totals_count_only_open_invoices_as_owed_and_never_mix_currencies() -> None:
    rows = [
        _row("open", "usd", 10_000, 2_500, 7_500),  # owes $75.00
        _row("open", "usd", 5_000, 0, 5_000),  # owes $50.00 (overdue is open too)
        _row("draft", "usd", 9_900, 0, 9_900),  # not owed yet
        _row("void", "usd", 3_000, 0, 3_000),  # never collected
        _row("uncollectible", "usd", 4_000, 0, 4_000),
        _row("paid", "usd", 1_200, 1_200, 0),
        _row("open", "jpy", 5_000, 0, 5_000),  # ¥5,000 owed
        _row("open", "eur", 1_999, 999, 1_000),
    ]
    by_currency = {t.currency: t for t in totals(rows)}
    assert [t.currency for t in totals(rows)] == ["eur", "jpy", "usd"]
    usd = by_currency["usd"]
    assert (usd.invoices, usd.total, usd.amount_paid) == (6, 33_100, 3_700)
    assert (usd.outstanding, usd.open_invoices) == (12_500, 2)
    assert usd.describe() == (
        "6 invoices in USD: total $331.00 · paid $37.00 · outstanding $125.00 (on 2 open invoices)"
    )
    assert by_currency["jpy"].describe() == (
        "1 invoice in JPY: total ¥5,000 · paid ¥0 · outstanding ¥5,000 (on 1 open invoice)"
    )
    assert (by_currency["eur"].outstanding, by_currency["eur"].amount_paid) == (1_000, 999)


def test_sync_filters_and_totals(world: World) -> None:
    world.sandbox.seed_demo()
    summary = SyncService(world.db, world.gateway, world.authority).pull(SyncTarget.INVOICES)
    assert summary.seen == {"invoices": 33}
    listing = world.invoices.listing()
    assert len(listing.rows) == 33
    (usd,) = listing.totals
    assert usd.invoices == 33
    assert usd.total == sum(r.total for r in listing.rows)
    # Hand-computed from the demo data: the 5 one-off open invoices (2 of them overdue) still
    # owe $3,765.00, the 4 open subscription invoices $618.00 (2 x 250 + 99 + 19); drafts,
    # void and uncollectible ones ($3,740.00 more) are not owed.
    assert (usd.outstanding, usd.open_invoices) == (438_300, 9)
    assert usd.describe().endswith("outstanding $4,383.00 (on 9 open invoices)")
    (void,) = totals(world.invoices.invoices(InvoiceFilter(status="void")))
    assert (void.outstanding, void.open_invoices) == (0, 0)
    assert void.describe().endswith("outstanding $0.00 (no open invoices)")
    by_status = {s: len(world.invoices.invoices(InvoiceFilter(status=s))) for s in
                 ("draft", "open", "paid", "void", "uncollectible", OVERDUE)}  # fmt: skip
    assert by_status == {"draft": 2, "open": 9, "paid": 20, "void": 1, "uncollectible": 1,
                         OVERDUE: 2}  # fmt: skip
    big = world.invoices.invoices(InvoiceFilter(min_total=100_000))
    assert big
    assert all(r.total >= 100_000 for r in big)
    one = listing.rows[0]
    mine = world.invoices.invoices(InvoiceFilter(customer=one.customer_id))
    assert {r.customer_id for r in mine} == {one.customer_id}
    future = world.invoices.invoices(InvoiceFilter(since=int(time.time()) + 86_400))
    assert future == []
    # A second pull with nothing new writes nothing.
    again = SyncService(world.db, world.gateway, world.authority).pull(SyncTarget.INVOICES)
    assert again.changed == {"invoices": 0}
