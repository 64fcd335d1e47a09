"""services/credits.py's defences and edges, each seen where a person or Stripe would see it:
the ledger, the top-up's row and flag, the stored event, the audit row, what reached the
sandbox (issue 19; `make mutants` runs this file).

Each test here was run with the check it guards taken out of the code, and failed.
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import peewee
import pytest
import stripe

import services.credits
from services import changes
from services.audit import Authority
from services.credits import CreditService, settle_topup
from services.errors import NotFound, ValidationError
from services.events import HandlerContext, Result, Source, Status
from services.models import AuditRecord, CreditEntry, Customer, Invoice, TopUp, WebhookEvent
from services.pricing import CreditPricing, PricingService
from services.settings import Settings
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.services.test_credits import World, _events_of, _sandbox_post

CARD = "4242424242424242"


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> World:  # fmt: skip
    """The services over the sandbox, with no webhook endpoint listening: the tests deliver
    Stripe's events themselves, in their order, and see each one's result."""
    sandbox.seed_demo()
    w = World(database, sandbox, authority, stripe_client)
    SyncService(database, w.gateway, authority).pull(SyncTarget.PRODUCTS)
    return w


def _key() -> str:
    return f"k-{uuid.uuid4()}"


def _sessions(w: World) -> int:
    """Checkout sessions made in the sandbox so far."""
    return len(w.client.v1.checkout.sessions.list({"limit": 100}).data)


def _deliver(w: World, *object_ids: str, kind: str | None = None) -> list[WebhookEvent]:
    """Stripe's genuine events about these objects (of `kind`, if given), delivered once each,
    oldest first; their stored rows."""
    delivered = []
    for events in _events_of(w, *object_ids).values():
        for event in events:
            if kind is None or event["type"] == kind:
                w.pipeline.receive(event, Source.RECEIVER)
                delivered.append(event["id"])
    return [WebhookEvent.get(WebhookEvent.evt_id == evt_id) for evt_id in delivered]


def _paid(w: World, customer: str, credits: int, **kwargs: Any) -> str:
    """A top-up link made and paid in Stripe, its events not delivered yet: its id."""
    topup_id = w.issue(customer, credits=credits, **kwargs)
    assert w.pay(topup_id, card=CARD)[0] == 200
    return topup_id


def _credit(w: World, topup_id: str) -> None:
    """Deliver the paid session's completion."""
    session = w.topup(topup_id).checkout_session_id
    [stored] = _deliver(w, session, kind="checkout.session.completed")
    assert stored.status == "applied", stored.last_error


def _clawbacks(w: World, customer: str) -> list[tuple[int, str]]:
    return sorted((e.amount, e.source) for e in w.credits.ledger(customer) if e.kind == "clawback")


# ---- reading


def test_the_ledger_of_a_customer_we_do_not_have_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="cus_nobody"):
        world.credits.ledger("cus_nobody")
    customer = world.customer()
    assert world.credits.ledger(customer) == []  # ours, with nothing yet: empty, not an error


def test_top_ups_are_listed_by_status_and_by_customer(world: World) -> None:
    a, b = world.customer(), world.customer()
    open_a = world.issue(a, credits=100)
    expired_a = world.issue(a, credits=200)
    world.credits.expire_topup(expired_a, _key())
    open_b = world.issue(b, credits=300)

    def ids(**kwargs: Any) -> set[str]:
        return {row.topup_id for row in world.credits.topups(**kwargs)}

    assert ids() == {open_a, expired_a, open_b}
    assert ids(status="open") == {open_a, open_b}
    assert ids(status="expired") == {expired_a}
    assert ids(customer_id=a) == {open_a, expired_a}
    assert ids(status="open", customer_id=b) == {open_b}
    assert [row.topup_id for row in world.credits.topups(limit=1)] == [open_b]  # newest first
    [row] = world.credits.topups(customer_id=b)
    assert (row.customer_name, row.credits, row.status) == ("Buyer", 300, "open")


# ---- a link that should not be made reaches no Stripe and stores nothing


def test_a_link_needs_exactly_one_of_a_pack_or_a_number_of_credits(world: World) -> None:
    customer = world.customer()
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    for kwargs in ({}, {"pack_product_id": pack[0], "credits": 500}):
        with pytest.raises(ValidationError, match="either a credit pack or a number"):
            world.credits.issue_topup(customer, _key(), **kwargs)
    assert _sessions(world) == 0
    assert TopUp.select().count() == 0


def test_a_link_for_a_customer_we_do_not_have_or_deleted_is_refused(world: World) -> None:
    with pytest.raises(NotFound, match="cus_nobody"):
        world.credits.issue_topup("cus_nobody", _key(), credits=100)
    gone = world.customer()
    Customer.update(deleted=True).where(Customer.stripe_id == gone).execute()
    with pytest.raises(NotFound, match=gone):
        world.credits.issue_topup(gone, _key(), credits=100)
    assert _sessions(world) == 0
    assert TopUp.select().count() == 0


def test_only_an_active_credit_pack_is_sold(world: World) -> None:
    customer = world.customer()
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    world.client.v1.products.update(pack[0], {"active": False})
    SyncService(world.db, world.gateway, world.authority).pull(SyncTarget.PRODUCTS)
    for product_id in (pack[0], "prod_nothing"):
        with pytest.raises(ValidationError, match="not an active credit pack"):
            world.credits.issue_topup(customer, _key(), pack_product_id=product_id)
    assert _sessions(world) == 0


def test_with_a_stripe_account_a_link_needs_the_pages_to_return_to(world: World) -> None:
    """Outside the sandbox Checkout needs a page to send the payer to; the pages set in
    Settings are the ones Stripe gets, and none is sent when none is set."""
    customer = world.customer()
    account = StripeGateway(TEST_KEY, api_base=world.sandbox.url)  # test mode, not the sandbox
    unset = CreditService(world.db, account, world.authority, Settings())
    with pytest.raises(ValidationError, match="success URL"):
        unset.issue_topup(customer, _key(), credits=100)
    assert _sessions(world) == 0
    pages = Settings(
        topup_success_url="https://example.com/thanks", topup_cancel_url="https://example.com/no"
    )
    link = CreditService(world.db, account, world.authority, pages).issue_topup(
        customer, _key(), credits=100
    )
    sent = world.client.v1.checkout.sessions.retrieve(link.topup.checkout_session_id)
    assert (sent.success_url, sent.cancel_url) == (
        "https://example.com/thanks",
        "https://example.com/no",
    )
    bare = world.credits.issue_topup(customer, _key(), credits=100)  # the sandbox, no pages
    sent = world.client.v1.checkout.sessions.retrieve(bare.topup.checkout_session_id)
    assert (sent.success_url, sent.cancel_url) == (None, None)


def test_a_link_that_saves_the_card_keeps_it_for_automatic_top_ups(world: World) -> None:
    customer = world.customer()
    saving = _paid(world, customer, 100, save_card=True)
    plain = _paid(world, world.customer(), 100)
    for topup_id in (saving, plain):
        _credit(world, topup_id)
    intent = world.client.v1.payment_intents.retrieve(world.topup(saving).payment_intent_id)
    assert intent.setup_future_usage == "off_session"
    assert len(world.client.v1.payment_methods.list({"customer": customer}).data) == 1
    intent = world.client.v1.payment_intents.retrieve(world.topup(plain).payment_intent_id)
    assert intent.setup_future_usage is None
    audited = {
        r.target: r.params
        for r in AuditRecord.select().where(
            (AuditRecord.action == "topup.issue") & (AuditRecord.outcome == "ok")
        )
    }
    assert audited[saving]["save_card"] is True
    assert "save_card" not in audited[plain]
    assert (audited[saving]["credits"], audited[saving]["amount"]) == (100, 1000)


def test_a_paid_link_leaves_its_trail_in_stripe_the_audit_and_the_ledger(world: World) -> None:
    """What Stripe is sent names the top-up (dashboard, receipts, refunds); the audit row
    names the session, the key and Stripe's request; once credited the link is gone from the
    row, the times are kept, and the ledger entry says who and what paid."""
    customer = world.customer()
    link = world.credits.issue_topup(customer, "trail-key", credits=250)
    topup_id, session_id = link.topup.topup_id, link.topup.checkout_session_id
    sent = world.client.v1.checkout.sessions.retrieve(session_id)
    assert sent.client_reference_id == topup_id
    assert sent.to_dict()["metadata"] == {"topup_id": topup_id, "credits": "250"}
    assert sent.expires_at == link.topup.expires_at
    assert link.topup.issued_at + 23 * 3600 < link.topup.expires_at <= link.topup.issued_at + 86400
    assert link.topup.url
    assert link.topup.url in link.email_text
    audit = AuditRecord.get((AuditRecord.action == "topup.issue") & (AuditRecord.outcome == "ok"))
    assert audit.target == topup_id
    assert audit.params == {
        "credits": 250, "amount": 2500, "currency": "usd", "pack": None,
        "checkout_session": session_id,
    }  # fmt: skip
    assert audit.idempotency_key == "trail-key"
    assert (audit.stripe_request_id or "").startswith("req_")
    assert world.pay(topup_id, card=CARD)[0] == 200
    _credit(world, topup_id)
    row = world.topup(topup_id)
    assert (row.status, row.url) == ("credited", None)
    assert row.paid_at
    assert row.credited_at
    intent = world.client.v1.payment_intents.retrieve(str(row.payment_intent_id))
    assert intent.to_dict()["metadata"] == {"topup_id": topup_id, "credits": "250"}
    entry = CreditEntry.get(CreditEntry.kind == "purchase")
    assert (entry.customer_id, entry.amount, entry.source, entry.topup_id) == (
        customer, 250, topup_id, topup_id,
    )  # fmt: skip
    assert (entry.operator, entry.reason) == ("stripe", f"Checkout {session_id} paid")
    assert abs(entry.created_at - time.time()) < 3600  # when it was credited, not some other time
    balances = world.credits.balances(customer)
    assert (balances.available, balances.paid, balances.promotional) == (250, 250, 0)
    assert balances.next_expiry_at is None  # the team sets no expiry for purchases by default


def test_purchased_credits_expire_when_the_team_says(world: World) -> None:
    world.credits.lot_service.set_purchase_expiry_months(12, "a year")
    customer = world.customer()
    topup_id = _paid(world, customer, 100)
    _credit(world, topup_id)
    entry = CreditEntry.get(CreditEntry.kind == "purchase")
    assert entry.expires_at is not None
    assert 364 * 86400 <= entry.expires_at - entry.created_at <= 366 * 86400
    assert world.credits.balances(customer).next_expiry_at == entry.expires_at


def test_the_largest_custom_top_up_the_team_allows_is_credited(world: World) -> None:
    customer = world.customer()
    low, high = world.credits.custom_limits()
    assert (low, high) == (100, 100_000)
    with pytest.raises(ValidationError, match="100 to 100,000 credits"):
        world.credits.quote_custom(high + 1)
    topup_id = _paid(world, customer, high)  # $10,000.00
    _credit(world, topup_id)
    assert world.balance(customer) == high


def test_a_link_issued_before_a_price_change_is_credited_at_its_price(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=200)  # $20.00 at the default $0.10
    # Issued a minute ago: the new price below is set after it, not in the same second.
    TopUp.update(issued_at=TopUp.issued_at - 60).where(TopUp.topup_id == topup_id).execute()
    PricingService(world.db, world.authority).set(CreditPricing(unit_amount=20), "dearer")
    assert world.credits.quote_custom(200) == (4000, "usd")
    assert world.pay(topup_id, card=CARD)[0] == 200
    _credit(world, topup_id)
    assert world.balance(customer) == 200


def test_expiring_a_top_up_we_do_not_have_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="tu_nothing"):
        world.credits.expire_topup("tu_nothing", _key())


# ---- grants


def test_a_grant_that_expires_is_audited_with_its_expiry_and_never_in_the_past(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = world.customer()
    now = int(time.time())
    frozen = SimpleNamespace(time=lambda: now, strftime=time.strftime, localtime=time.localtime)
    monkeypatch.setattr(services.credits, "time", frozen)
    for when in (now - 1, now):  # an expiry of this very second has already come
        with pytest.raises(ValidationError, match="must be in the future"):
            world.credits.grant(customer, 100, "goodwill", expires_at=when)
    assert world.credits.ledger(customer) == []
    assert not AuditRecord.select().where(AuditRecord.action == "credits.grant").exists()
    later = now + 30 * 86400
    row = world.credits.grant(customer, 100, "goodwill", expires_at=later)
    assert (row.kind, row.amount, row.reason, row.source) == ("grant", 100, "goodwill", "")
    audit = AuditRecord.get(AuditRecord.action == "credits.grant")
    assert (audit.target, audit.outcome, audit.reason) == (customer, "ok", "goodwill")
    assert audit.params == {"credits": 100, "expires_at": later}
    balances = world.credits.balances(customer)
    assert (balances.available, balances.next_expiry_at) == (100, later)


def test_a_grant_says_what_is_wrong_and_writes_nothing(world: World) -> None:
    customer = world.customer()
    for reason, credits, words in [
        ("", 100, "A reason is required"),
        ("x" * 501, 100, "A reason is too long"),
        ("goodwill", 0, "Credits must be a positive whole number"),
        ("goodwill", 10_000_001, "Credits must be at most 10,000,000"),
    ]:
        with pytest.raises(ValidationError, match=words):
            world.credits.grant(customer, credits, reason)
    assert world.credits.ledger(customer) == []
    world.credits.grant(customer, 10_000_000, "x" * 500)  # the largest, with the longest reason
    assert world.balance(customer) == 10_000_000


def test_only_a_new_spend_runs_the_after_spend_check(world: World) -> None:
    customer = world.customer()
    world.credits.grant(customer, 100, "to spend")
    checked: list[str] = []
    world.credits.after_spend = checked.append
    first = world.credits.consume(customer, 30, "spend-1")
    again = world.credits.consume(customer, 30, "spend-1")  # a retry of the same spend
    assert (first.replayed, again.replayed) == (False, True)
    assert checked == [customer]
    assert world.credits.balance(customer) == 70


# ---- a top-up priced off its own rules is flagged, not credited


def _own_topup(
    w: World, customer: str, *, credits: int, amount: int, currency: str = "usd",
    product_id: str | None = None,
) -> str:  # fmt: skip
    """A top-up row that some client wrote with its own price (an old release, an edited
    file), with a session in Stripe that matches it exactly, paid: its id."""
    topup_id = f"tu_own_{uuid.uuid4().hex[:8]}"
    metadata = {"topup_id": topup_id, "credits": str(credits)}
    session = w.client.v1.checkout.sessions.create(
        {
            "mode": "payment", "customer": customer, "client_reference_id": topup_id,
            "metadata": metadata, "payment_intent_data": {"metadata": metadata},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency, "unit_amount": amount,
                "product_data": {"name": f"{credits} credits"}}}],
        }
    )  # fmt: skip
    now = int(time.time())
    TopUp.insert(
        topup_id=topup_id, customer_id=customer, credits=credits, amount=amount,
        currency=currency, product_id=product_id, status="open",
        checkout_session_id=session.id, url=session.url, issued_by="support", issued_at=now,
        expires_at=now + 3600,
    ).execute()  # fmt: skip
    assert w.pay(topup_id, card=CARD)[0] == 200
    return topup_id


def _refused(w: World, topup_id: str) -> str:
    """Deliver the top-up's completion: it must credit nothing. The flag it left."""
    [stored] = _deliver(w, w.topup(topup_id).checkout_session_id, kind="checkout.session.completed")
    assert stored.status == "ignored"
    assert w.purchases(topup_id) == 0
    row = w.topup(topup_id)
    assert row.status == "open"
    assert row.flagged
    assert row.flagged in (stored.flagged or "")
    return str(row.flagged)


def test_a_custom_top_up_outside_the_teams_limits_is_not_credited(world: World) -> None:
    customer = world.customer()
    few = _own_topup(world, customer, credits=50, amount=500)  # the team's price, under 100
    assert "50 credits is outside the team's limits" in _refused(world, few)
    assert world.balance(customer) == 0


@pytest.mark.parametrize(
    ("credits", "amount", "currency"),
    [(500, 4000, "usd"), (400, 4500, "usd"), (500, 4500, "eur")],
    ids=["another amount", "other credits", "another currency"],
)
def test_a_pack_top_up_not_at_the_packs_price_is_not_credited(
    world: World, credits: int, amount: int, currency: str
) -> None:
    customer = world.customer()
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    assert pack[3:] == (4500, "usd")
    topup_id = _own_topup(
        world, customer, credits=credits, amount=amount, currency=currency, product_id=pack[0]
    )
    assert f"is not a price of pack {pack[0]}" in _refused(world, topup_id)
    # The same pack at its own price, made the same way, is credited.
    fair = _own_topup(world, customer, credits=500, amount=4500, product_id=pack[0])
    _credit(world, fair)
    assert world.balance(customer) == 500


# ---- events that are not about one of our payments


@pytest.mark.parametrize(
    ("kind", "object_id", "why"),
    [
        ("checkout.session.completed", "pi_123", "carries no Checkout Session id"),
        ("charge.refunded", "cs_test_123", "carries no charge id"),
        ("charge.dispute.created", "ch_123", "carries no dispute id"),
        ("checkout.session.completed", "cs_test_nothing", "Stripe has no cs_test_nothing"),
        ("charge.refunded", "ch_nothing", "Stripe has no ch_nothing"),
        ("charge.dispute.closed", "dp_nothing", "Stripe has no dp_nothing"),
    ],
)
def test_an_event_about_no_payment_of_ours_is_ignored(
    world: World, kind: str, object_id: str, why: str
) -> None:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:12]}", "object": "event", "type": kind,
        "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": object_id, "object": kind.rsplit(".", 1)[0]}},
    }  # fmt: skip
    assert world.pipeline.receive(event, Source.RECEIVER) is Result.IGNORED
    stored = WebhookEvent.get(WebhookEvent.evt_id == event["id"])
    assert stored.status == "ignored"
    assert why in (stored.last_error or "")


def test_a_refund_of_a_payment_that_is_no_top_up_changes_nothing(world: World) -> None:
    customer = world.customer()
    card = world.client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    intent = world.client.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "customer": customer, "payment_method": card.id,
         "off_session": True, "confirm": True}
    )  # fmt: skip
    assert intent.status == "succeeded"
    world.credits.grant(customer, 100, "unrelated")
    world.client.v1.refunds.create({"payment_intent": intent.id})
    [stored] = _deliver(world, str(intent.latest_charge), kind="charge.refunded")
    assert (stored.status, stored.flagged) == ("ignored", None)
    assert [e.kind for e in world.credits.ledger(customer)] == ["grant"]
    assert world.balance(customer) == 100


def test_a_refunded_session_that_is_no_top_up_is_flagged_once(world: World) -> None:
    """Someone's own session in the account, paid and refunded: its completion is flagged for
    a person; the refund of it is not one of ours and is not flagged again."""
    customer = world.customer()
    stranger = world.client.v1.checkout.sessions.create({
        "mode": "payment", "customer": customer,
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 999,
                                       "product_data": {"name": "?"}}, "quantity": 1}],
    })  # fmt: skip
    assert _sandbox_post(
        world.sandbox, f"/_sandbox/checkout/sessions/{stranger.id}/pay", card=CARD
    )[0] == 200  # fmt: skip
    [completed] = _deliver(world, stranger.id, kind="checkout.session.completed")
    assert completed.status == "ignored"
    assert "belongs to no top-up" in (completed.flagged or "")
    intent = world.client.v1.checkout.sessions.retrieve(stranger.id).payment_intent
    refund = world.client.v1.refunds.create({"payment_intent": str(intent)})
    [refunded] = _deliver(world, str(refund.charge), kind="charge.refunded")
    assert (refunded.status, refunded.flagged) == ("ignored", None)
    assert world.credits.ledger(customer) == []


# ---- clawbacks


def test_a_refund_too_small_to_take_a_credit_takes_none(world: World) -> None:
    """100 credits for $10.00: a refund of 4 cents is worth 0.4 credits and takes none; 6 cents
    more make 10 cents, one credit, taken back by the second refund."""
    customer = world.customer()
    topup_id = _paid(world, customer, 100)
    _credit(world, topup_id)
    intent = world.topup(topup_id).payment_intent_id
    first = world.client.v1.refunds.create({"payment_intent": intent, "amount": 4})
    [stored] = _deliver(world, str(first.charge), kind="charge.refunded")
    assert stored.status == "ignored"  # nothing to take back yet
    assert _clawbacks(world, customer) == []
    row = world.topup(topup_id)
    assert (row.status, row.refunded_amount) == ("credited", 4)
    second = world.client.v1.refunds.create({"payment_intent": intent, "amount": 6})
    _deliver(world, str(second.charge), kind="charge.refunded")  # the first again, and the new
    assert _clawbacks(world, customer) == [(-1, second.id)]
    balances = world.credits.balances(customer)
    assert (balances.available, balances.paid) == (99, 99)  # drawn from the paid lot
    entry = CreditEntry.get(CreditEntry.kind == "clawback")
    assert (entry.topup_id, entry.operator) == (topup_id, "stripe")  # reconcile counts by top-up
    assert entry.reason == f"Refund {second.id} of {topup_id}"
    row = world.topup(topup_id)
    assert (row.status, row.refunded_amount) == ("credited", 10)


def test_a_dispute_under_review_keeps_the_top_up_flagged(world: World) -> None:
    """Evidence that decides nothing leaves the dispute under review: the credits are still
    at risk, so the flag stays (a closed dispute clears it: test_credits.py)."""
    customer = world.customer()
    topup_id = world.issue(customer, credits=300)
    assert world.pay(topup_id, card="4000000000000259")[0] == 200  # Stripe's dispute card
    _credit(world, topup_id)
    intent = world.client.v1.payment_intents.retrieve(str(world.topup(topup_id).payment_intent_id))
    [dispute] = world.client.v1.disputes.list({"charge": str(intent.latest_charge)}).data
    world.client.v1.disputes.update(dispute.id, {"evidence": {"uncategorized_text": "receipt"}})
    assert world.client.v1.disputes.retrieve(dispute.id).status == "under_review"
    [updated] = _deliver(world, dispute.id, kind="charge.dispute.updated")
    assert updated.status == "ignored", updated.last_error  # flagged since the credit: as is
    assert f"dispute {dispute.id} open" in (world.topup(topup_id).flagged or "")
    assert world.balance(customer) == 300


# ---- the repair: a top-up settled from Stripe when its events never came


def test_a_repair_credits_a_top_up_whose_events_never_came_once(world: World) -> None:
    customer = world.customer()
    paid = _paid(world, customer, 300)
    expired = world.issue(customer, credits=200)
    world.client.v1.checkout.sessions.expire(world.topup(expired).checkout_session_id)
    still_open = world.issue(customer, credits=100)
    ctx = HandlerContext(world.gateway, world.db)
    assert world.balance(customer) == 0  # nothing delivered
    assert settle_topup(ctx, paid) is Status.APPLIED
    assert settle_topup(ctx, paid) is Status.IGNORED  # once
    assert (world.topup(paid).status, world.purchases(paid)) == ("credited", 1)
    assert settle_topup(ctx, expired) is Status.APPLIED
    assert world.topup(expired).status == "expired"
    assert settle_topup(ctx, still_open) is Status.IGNORED
    assert world.topup(still_open).status == "open"
    assert world.balance(customer) == 300
    with pytest.raises(NotFound, match="tu_nothing"):
        settle_topup(ctx, "tu_nothing")


# ---- credit packs sold on invoices


def _pack_invoice(w: World, customer: str, lines: int, *, plain_first: bool = False) -> str:
    """A finalized invoice with `lines` lines of the 500-credit pack, one each (after a line
    that sells no credits, if `plain_first`)."""
    _sandbox_post(w.sandbox, f"/_sandbox/customers/{customer}/attach_card", card=CARD)
    pack = next(p for p in w.credits.credit_packs() if p[2] == 500)
    price = w.client.v1.products.retrieve(pack[0]).default_price
    invoice = w.client.v1.invoices.create(
        {"customer": customer, "pending_invoice_items_behavior": "exclude"}
    )
    if plain_first:
        w.client.v1.invoice_items.create(
            {"customer": customer, "invoice": invoice.id, "amount": 1500, "currency": "usd",
             "description": "Onboarding call"}
        )  # fmt: skip
    for _ in range(lines):
        w.client.v1.invoice_items.create(
            {"customer": customer, "invoice": invoice.id, "pricing": {"price": str(price)}}
        )
    w.client.v1.invoices.finalize_invoice(invoice.id)
    return invoice.id


def test_a_forged_paid_event_for_an_open_invoice_credits_nothing(world: World) -> None:
    customer = world.customer()
    invoice = _pack_invoice(world, customer, 1)
    payload = world.client.v1.invoices.retrieve(invoice).to_dict(for_json=True)
    assert payload["status"] == "open"
    payload["status"] = "paid"  # the payload says paid; Stripe's copy says open
    forged = {
        "id": f"evt_{uuid.uuid4().hex[:12]}", "object": "event", "type": "invoice.paid",
        "created": int(time.time()), "livemode": False, "data": {"object": payload},
    }  # fmt: skip
    world.pipeline.receive(forged, Source.RECEIVER)
    assert world.credits.ledger(customer) == []
    stored = WebhookEvent.get(WebhookEvent.evt_id == forged["id"])
    assert stored.status == "applied", stored.last_error  # mirrored as Stripe has it: open
    assert Invoice.get(Invoice.stripe_id == invoice).status == "open"


def test_a_payload_that_says_deleted_and_paid_is_not_taken_for_a_payment(world: World) -> None:
    """An event whose payload says the invoice is deleted is not re-read (it is gone): the
    rest of that payload, "paid" included, is then all there is, and proves no payment."""
    customer = world.customer()
    invoice = _pack_invoice(world, customer, 1)
    payload = world.client.v1.invoices.retrieve(invoice).to_dict(for_json=True)
    payload.update(status="paid", deleted=True)
    forged = {
        "id": f"evt_{uuid.uuid4().hex[:12]}", "object": "event", "type": "invoice.paid",
        "created": int(time.time()), "livemode": False, "data": {"object": payload},
    }  # fmt: skip
    world.pipeline.receive(forged, Source.RECEIVER)
    assert world.credits.ledger(customer) == []
    assert world.client.v1.invoices.retrieve(invoice).status == "open"


def test_every_line_of_a_pack_on_a_paid_invoice_is_credited(world: World) -> None:
    customer = world.customer()
    invoice = _pack_invoice(world, customer, 2)
    world.client.v1.invoices.pay(invoice)
    [stored] = _deliver(world, invoice, kind="invoice.paid")
    assert stored.status == "applied", stored.last_error
    [entry] = world.credits.ledger(customer)
    assert (entry.kind, entry.amount, entry.source) == ("purchase", 1000, invoice)
    number = world.client.v1.invoices.retrieve(invoice).number
    assert number
    assert entry.reason == f"Invoice {number} paid: 1 x 500-credit pack, 1 x 500-credit pack"


# ---- what changed is announced, so the panels refresh those rows


def test_what_changed_is_announced_for_the_rows_the_panels_show(world: World) -> None:
    customer = world.customer()
    with changes.collecting() as noted:
        world.credits.grant(customer, 5, "goodwill")
    assert noted.changes().credits == {customer}
    with changes.collecting() as noted:
        topup_id = world.issue(customer, credits=100)
    assert topup_id in noted.changes().topups
    heard: list[changes.Changes] = []
    world.pipeline.add_change_listener(heard.append)
    assert world.pay(topup_id, card=CARD)[0] == 200
    _credit(world, topup_id)
    assert any(topup_id in c.topups and customer in c.credits for c in heard), heard
    heard.clear()
    refund = world.client.v1.refunds.create(
        {"payment_intent": world.topup(topup_id).payment_intent_id, "amount": 500}
    )
    [stored] = _deliver(world, str(refund.charge), kind="charge.refunded")
    assert stored.status == "applied"
    assert any(topup_id in c.topups and customer in c.credits for c in heard), heard
    assert world.balance(customer) == 55


def test_a_pack_after_a_line_that_sells_no_credits_is_credited(world: World) -> None:
    customer = world.customer()
    invoice = _pack_invoice(world, customer, 1, plain_first=True)
    world.client.v1.invoices.pay(invoice)
    [stored] = _deliver(world, invoice, kind="invoice.paid")
    assert stored.status == "applied", stored.last_error
    assert world.balance(customer) == 500


def test_a_refund_made_before_the_invoice_paid_event_came_is_taken_back_with_it(
    world: World,
) -> None:
    """The refund's event may come first (or be lost): the paid invoice's event reads the
    refunds with the payment and credits the packs less what was refunded, in one go."""
    customer = world.customer()
    invoice = _pack_invoice(world, customer, 2)  # 1,000 credits for $90.00
    world.client.v1.invoices.pay(invoice)
    [payment] = world.client.v1.invoice_payments.list({"invoice": invoice}).data
    intent = str(payment.payment.payment_intent)
    refund = world.client.v1.refunds.create({"payment_intent": intent, "amount": 4500})
    [stored] = _deliver(world, invoice, kind="invoice.paid")
    assert stored.status == "applied", stored.last_error
    assert sorted((e.kind, e.amount, e.source) for e in world.credits.ledger(customer)) == [
        ("clawback", -500, refund.id),
        ("purchase", 1000, invoice),
    ]
    assert world.balance(customer) == 500
