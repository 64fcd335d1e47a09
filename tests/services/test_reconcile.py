"""Reconcile: a clean account has 0 findings; each kind of drift, injected one at a time, is
found with the right kind; repair makes the next run clean and never credits twice."""

from __future__ import annotations

import threading
import time

import peewee
import pytest

from services.audit import Authority
from services.errors import PermissionDenied, ValidationError
from services.events import Source
from services.models import AuditRecord, CreditEntry, Invoice, WebhookEvent
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.reconcile import Kind, Reconciler, last_result
from services.sync import SyncService, SyncTarget
from tests.services.test_credits import World, _events_of, _paid_quietly, _wait
from tests.services.test_credits import world as world


@pytest.fixture
def books(world: World) -> Reconciler:
    """A synced, clean account: one paid top-up credited live, the demo invoices mirrored."""
    SyncService(world.db, world.gateway, world.authority).pull(SyncTarget.INVOICES)
    customer = world.customer()
    topup = world.issue(customer, credits=300)
    world.pay(topup, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 300, "the live credit")
    return Reconciler(world.db, world.gateway, world.authority, world.pipeline)


def _kinds(books: Reconciler) -> list[tuple[Kind, str]]:
    return [(f.kind, f.target) for f in books.run().findings]


def test_a_clean_account_has_no_findings(books: Reconciler, world: World) -> None:
    lines: list[str] = []
    report = books.run(progress=lines.append)
    assert report.findings == []
    assert report.matches
    assert report.checked["top-ups"] == 1
    # The demo invoices created in the last 30 days (the default period), all compared.
    assert (
        report.checked["invoices"]
        == Invoice.select().where(Invoice.created >= report.since).count()
        > 0
    )
    assert any("read" in line for line in lines)
    assert last_result(world.db) is not None
    assert last_result(world.db)["line"] == "Books match"  # type: ignore[index]


def test_a_purchase_written_behind_the_apps_back_is_credited_not_paid(
    books: Reconciler, world: World
) -> None:
    customer = world.customer()
    CreditEntry.insert(customer_id=customer, amount=100_000, kind="purchase", source="tu_forged",
                       operator="sqlite3", created_at=int(time.time())).execute()  # fmt: skip
    report = books.run()
    [finding] = report.findings
    assert (finding.kind, finding.target, finding.severity.value) == (
        Kind.CREDITED_NOT_PAID, "tu_forged", "critical",
    )  # fmt: skip
    assert "never automatic" in finding.fix
    done = books.repair(report, "monthly check")
    assert done.skipped == ["tu_forged"]  # removing credits is never automatic
    assert world.balance(customer) == 100_000
    with pytest.raises(ValidationError, match="reason"):
        books.claw_back_unpaid("tu_forged", "  ")
    assert books.claw_back_unpaid("tu_forged", "forged with the sqlite3 shell") == 100_000
    assert world.balance(customer) == 0
    assert books.run().findings == []
    with pytest.raises(ValidationError, match="already"):
        books.claw_back_unpaid("tu_forged", "again")


def test_a_session_paid_while_nothing_listened_is_repaired_once(
    books: Reconciler, world: World
) -> None:
    customer, topup, _charge = _paid_quietly(world, 700)
    assert _kinds(books) == [(Kind.PAID_NOT_CREDITED, topup)]
    report = books.run()
    assert books.repair(report, "the listener was down").repaired == [topup]
    assert world.balance(customer) == 700
    assert books.run().findings == []
    # The late webhook after the repair credits nothing more.
    for event in _events_of(world, world.topup(topup).checkout_session_id).get(
        "checkout.session.completed", []
    ):
        world.pipeline.receive(event, Source.RECEIVER)
    assert world.balance(customer) == 700
    assert AuditRecord.select().where(AuditRecord.action == "reconcile.repair").count() == 1


def test_a_repair_racing_the_webhook_credits_once(books: Reconciler, world: World) -> None:
    customer, topup, _charge = _paid_quietly(world, 450)
    report = books.run()
    [event] = _events_of(world, world.topup(topup).checkout_session_id)[
        "checkout.session.completed"
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def repair() -> None:
        start.wait()
        try:
            books.repair(report, "race")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def webhook() -> None:
        start.wait()
        try:
            world.pipeline.receive(event, Source.RECEIVER)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=repair), threading.Thread(target=webhook)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert world.balance(customer) == 450
    purchases = CreditEntry.select().where(
        (CreditEntry.kind == "purchase") & (CreditEntry.source == topup)
    )
    assert purchases.count() == 1


def test_a_refund_made_in_stripe_is_found_and_clawed_back(books: Reconciler, world: World) -> None:
    customer = world.customer()
    topup = world.issue(customer, credits=1000)
    world.pay(topup, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 1000, "the credit")
    world.receiver.stop()  # the refund's event is never delivered
    session = world.client.v1.checkout.sessions.retrieve(world.topup(topup).checkout_session_id)
    world.client.v1.refunds.create({"payment_intent": str(session.payment_intent),
                                    "amount": 2500})  # fmt: skip
    assert _kinds(books) == [(Kind.NOT_CLAWED_BACK, topup)]
    books.repair(books.run(), "refund while offline")
    assert world.balance(customer) == 750  # hand-computed: 1000 - 25% of 1000
    assert books.run().findings == []


def test_invoices_changed_in_stripe_are_found_and_refreshed(
    books: Reconciler, world: World
) -> None:
    world.receiver.stop()
    draft = next(i for i in Invoice.select() if i.status == "open")
    world.client.v1.invoices.void_invoice(draft.stripe_id)
    assert _kinds(books) == [(Kind.INVOICE_DIFFERS, draft.stripe_id)]
    books.repair(books.run(), "voided in the dashboard")
    assert Invoice.get(Invoice.stripe_id == draft.stripe_id).status == "void"
    assert books.run().findings == []


def test_a_failed_event_is_found_and_replayed(books: Reconciler, world: World) -> None:
    customer = world.customer()
    [created] = [e for e in _events_of(world, customer)["customer.created"]]
    WebhookEvent.update(status="failed", last_error="Cannot reach Stripe").where(
        WebhookEvent.evt_id == created["id"]
    ).execute()
    assert _kinds(books) == [(Kind.EVENT_NOT_APPLIED, created["id"])]
    books.repair(books.run(), "after the outage")
    assert WebhookEvent.get(WebhookEvent.evt_id == created["id"]).status == "applied"
    assert books.run().findings == []


def test_finance_reconciles_but_only_admins_repair(
    books: Reconciler, world: World, database: peewee.Database
) -> None:
    OperatorService(database, world.authority).add("fin", Role.FINANCE)
    finance = Authority(database, sign_in(database, "fin"))
    as_finance = Reconciler(world.db, world.gateway, finance, world.pipeline)
    report = as_finance.run()
    assert report.matches
    with pytest.raises(PermissionDenied, match="repair the books"):
        as_finance.repair(report, "please")
    OperatorService(database, world.authority).add("sup", Role.SUPPORT)
    support = Authority(database, sign_in(database, "sup"))
    with pytest.raises(PermissionDenied, match="reconcile"):
        Reconciler(world.db, world.gateway, support, world.pipeline).run()


def test_a_paid_purchase_cannot_be_clawed_back_as_unpaid(books: Reconciler, world: World) -> None:
    """Only what nothing paid for: a paid top-up is refused; an over-credit loses the excess."""
    [topup] = [t for t in world.credits.topups() if t.status == "credited"]
    with pytest.raises(ValidationError, match="was paid for in Stripe"):
        books.claw_back_unpaid(topup.topup_id, "trying it on a paid one")
    CreditEntry.update(amount=3000).where(
        (CreditEntry.kind == "purchase") & (CreditEntry.source == topup.topup_id)
    ).execute()  # 300 credits paid for, 3,000 added (a hand edit)
    [finding] = books.run().findings
    assert finding.kind is Kind.CREDITED_NOT_PAID
    assert books.claw_back_unpaid(topup.topup_id, "over-credited by hand") == 2700
    assert world.balance(topup.customer_id) == 300  # exactly what was paid for
    assert books.run().findings == []
