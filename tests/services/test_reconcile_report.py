"""Reconcile's report and repairs beyond the basics of test_reconcile: lost disputes, sessions
read one by one, top-ups expired in Stripe, a catch-up that is behind, repairs of a chosen few
or of what cannot be repaired, and the stored last result."""

from __future__ import annotations

import time

import pytest

import services.reconcile
from services.catchup import CURSOR_KEY
from services.events import Source
from services.models import AppState, CreditEntry, TopUp
from services.reconcile import Finding, Kind, Reconciler, ReconcileReport, last_result
from services.sync import SyncService, SyncTarget
from tests.services.test_credits import World, _deliver_all, _disputed_quietly, _paid_quietly
from tests.services.test_credits import world as world


@pytest.fixture
def books(world: World) -> Reconciler:
    """The demo's invoices mirrored, so that only what a test does differs."""
    SyncService(world.db, world.gateway, world.authority).pull(SyncTarget.INVOICES)
    return Reconciler(world.db, world.gateway, world.authority, world.pipeline)


def _kinds(report: ReconcileReport) -> list[tuple[Kind, str]]:
    return [(f.kind, f.target) for f in report.findings]


def test_the_json_report_names_each_finding_and_its_fix(books: Reconciler, world: World) -> None:
    _customer, first, _charge = _paid_quietly(world, 300)
    _customer, second, _charge = _paid_quietly(world, 400)
    report = books.run()
    assert sorted(_kinds(report), key=str) == sorted(
        [(Kind.PAID_NOT_CREDITED, first), (Kind.PAID_NOT_CREDITED, second)], key=str
    )
    assert report.line() == "2 differences"
    data = report.to_json()
    assert data["matches"] is False
    [one] = [f for f in data["findings"] if f["target"] == first]
    assert (one["kind"], one["severity"], one["credits"]) == (
        Kind.PAID_NOT_CREDITED.value, report.findings[0].severity.value, 300,
    )  # fmt: skip
    assert one["fix"] == services.reconcile.FIX[Kind.PAID_NOT_CREDITED]
    assert books.last() == last_result(world.db)
    assert books.last()["line"] == "2 differences"  # type: ignore[index]
    # Repairing only the one chosen leaves the other found.
    done = books.repair(report, "one at a time", only=[first])
    assert done.repaired == [first]
    assert _kinds(books.run()) == [(Kind.PAID_NOT_CREDITED, second)]


def test_a_dispute_lost_while_nobody_listened_is_found_and_clawed_back(
    books: Reconciler, world: World
) -> None:
    customer, topup_id, charge, dispute = _disputed_quietly(world, 700)
    _deliver_all(world, world.topup(topup_id).checkout_session_id, charge, dispute)
    assert world.balance(customer) == 700
    world.client.v1.disputes.close(dispute)  # lost; its event is never delivered
    report = books.run()
    assert _kinds(report) == [(Kind.NOT_CLAWED_BACK, topup_id)]
    books.repair(report, "dispute lost while offline")
    assert world.balance(customer) == 0
    assert books.run().findings == []


def test_top_ups_are_compared_with_sessions_read_one_by_one(
    books: Reconciler, world: World
) -> None:
    """A top-up whose session is not among those listed is read by id; a session Stripe does
    not know (another account's, or gone) is nothing to compare."""
    customer, topup_id, _charge = _paid_quietly(world, 500)
    later = int(time.time()) + 3600
    TopUp.update(issued_at=later + 10).where(TopUp.topup_id == topup_id).execute()
    TopUp.insert(
        topup_id="tu_elsewhere", customer_id=customer, checkout_session_id="cs_elsewhere",
        amount=500, currency="usd", credits=50, status="open", issued_by="x",
        issued_at=later + 20, expires_at=later + 86400,
    ).execute()  # fmt: skip
    report = books.run(since=later)  # no session was created this late: none is listed
    assert _kinds(report) == [(Kind.PAID_NOT_CREDITED, topup_id)]
    assert report.checked["top-ups"] == 2


def test_credits_for_a_session_that_is_not_paid_and_a_link_expired_in_stripe(
    books: Reconciler, world: World
) -> None:
    world.receiver.stop()
    customer = world.customer()
    unpaid = world.issue(customer, credits=200)
    CreditEntry.insert(
        customer_id=customer, amount=200, kind="purchase", source=unpaid, topup_id=unpaid,
        operator="sqlite3", created_at=int(time.time()),
    ).execute()  # fmt: skip
    expired = world.issue(customer, credits=100)
    world.client.v1.checkout.sessions.expire(world.topup(expired).checkout_session_id)
    kinds = _kinds(books.run())
    assert (Kind.CREDITED_NOT_PAID, unpaid) in kinds
    assert (Kind.TOPUP_STATUS, expired) in kinds
    books.repair(books.run(), "expired while offline")
    assert world.topup(expired).status != "open"


def test_a_catch_up_that_is_behind_is_found_and_run_once(
    books: Reconciler, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.reconcile, "SETTLING_S", -60)  # every event counts as settled
    assert _kinds(books.run()) == []  # no listener has ever run here: nothing is behind
    AppState.insert(key=CURSOR_KEY, value="0").execute()
    world.receiver.stop()
    world.customer()  # its events are never delivered
    report = books.run()
    [(kind, newest)] = _kinds(report)
    assert kind is Kind.EVENTS_BEHIND
    # A second finding of the same kind does not run the catch-up twice.
    twice = ReconcileReport(report.since, report.at, [*report.findings, *report.findings],
                            report.checked, 0.0)  # fmt: skip
    done = books.repair(twice, "listener was down")
    assert (done.repaired, done.failed) == ([newest, newest], [])
    assert _kinds(books.run()) == []  # the newest event is stored now


def test_the_newest_event_stored_or_no_event_at_all_is_not_behind(
    books: Reconciler, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.reconcile, "SETTLING_S", -60)
    AppState.insert(key=CURSOR_KEY, value="0").execute()
    world.receiver.stop()
    world.sandbox.reset()  # no events in Stripe at all
    assert _kinds(books.run()) == []
    customer = world.customer()
    [newest] = world.client.v1.events.list({"limit": 1}).data
    world.pipeline.receive(newest.to_dict(for_json=True), Source.CATCH_UP)
    assert customer
    assert _kinds(books.run()) == []


def test_a_repair_that_fails_is_reported_and_the_others_still_run(
    books: Reconciler, world: World
) -> None:
    _customer, topup_id, _charge = _paid_quietly(world, 300)
    report = books.run()
    broken = Finding(Kind.INVOICE_DIFFERS, "in_missing", "in_missing: missing here")
    manual = Finding(Kind.CREDITED_NOT_PAID, "tu_forged", "tu_forged: forged")
    findings = [broken, *report.findings, manual]
    done = books.repair(ReconcileReport(report.since, report.at, findings, {}, 0.0), "mixed")
    assert done.repaired == [topup_id]
    assert done.skipped == ["tu_forged"]
    [failed] = done.failed
    assert failed.startswith("in_missing: ")
    assert manual.fix.startswith("admin-app reconcile --claw-back tu_forged")


def test_a_damaged_last_result_reads_as_none(books: Reconciler, world: World) -> None:
    assert last_result(world.db) is None
    books.run()
    row = AppState.get(AppState.key == services.reconcile.LAST_RESULT_KEY)
    for damaged in ("{not json", "[1, 2]"):
        AppState.update(value=damaged).where(AppState.id == row.id).execute()
        assert last_result(world.db) is None
