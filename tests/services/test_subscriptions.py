"""Subscriptions in the mirror: what a Stripe subscription maps to, the list and its filters, the
Overview's figures, CSV and the CLI, and who may change one.

Objects are shaped as Stripe's published fixture (stripe/openapi `fixtures3.json`,
`resources.subscription`) and stripe-python 16.1.0's `Subscription`/`SubscriptionItem` for the
pinned API version: the period lives on the items.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import peewee
import pytest

from admin_app.cli import main
from services.audit import Authority
from services.errors import PermissionDenied, ValidationError
from services.export import SUBSCRIPTIONS, to_text
from services.mirror import monthly, subscription_row, upsert
from services.models import AuditRecord, Customer, Price, Product, Subscription
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from services.subscriptions import SubscriptionDraft, SubscriptionService, subscription_figures
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY

DAY = 86_400
NOW = 1_790_000_000  # 2026-09-21


def stripe_subscription(
    sub_id: str = "sub_1",
    *,
    customer: str = "cus_1",
    status: str = "active",
    price: str = "price_month",
    product: str = "prod_plan",
    unit_amount: int = 2000,
    quantity: int = 1,
    interval: str = "month",
    interval_count: int = 1,
    created: int = NOW - 40 * DAY,
    **top: Any,
) -> dict[str, Any]:
    """A subscription as Stripe sends it for API 2026-10-28 (fixture shape, trimmed)."""
    return {
        "id": sub_id,
        "object": "subscription",
        "livemode": False,
        "created": created,
        "customer": customer,
        "currency": "usd",
        "status": status,
        "collection_method": "charge_automatically",
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "trial_end": None,
        "pause_collection": None,
        "items": {
            "object": "list",
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "created": created,
                    "quantity": quantity,
                    "subscription": sub_id,
                    "current_period_start": NOW - 10 * DAY,
                    "current_period_end": NOW + 20 * DAY,
                    "price": {
                        "id": price,
                        "object": "price",
                        "currency": "usd",
                        "product": product,
                        "type": "recurring",
                        "unit_amount": unit_amount,
                        "recurring": {
                            "interval": interval,
                            "interval_count": interval_count,
                            "usage_type": "licensed",
                        },
                    },
                }
            ],
        },
        **top,
    }


def test_a_subscription_maps_to_what_it_bills_and_when() -> None:
    sub = stripe_subscription(
        quantity=3, cancel_at_period_end=True, pause_collection={"behavior": "void",
                                                                 "resumes_at": None},
    )  # fmt: skip
    row = subscription_row(sub, NOW)
    assert row["amount"] == 6000  # 3 x $20.00 per month
    assert row["mrr"] == 6000
    assert row["quantity"] == 3
    assert row["current_period_end"] == NOW + 20 * DAY  # from the item, as the API has it now
    assert row["current_period_start"] == NOW - 10 * DAY
    assert row["cancel_at_period_end"] is True
    assert row["pause_collection"] == "void"
    assert row["price_ids"] == " price_month "
    assert row["billing_interval"] == "month"
    assert row["customer_id"] == "cus_1"


@pytest.mark.parametrize(
    ("amount", "interval", "count", "per_month"),
    [
        (12_000, "year", 1, 1_000),
        (3_000, "month", 3, 1_000),
        (1_000, "week", 1, 4_348),  # 52.18 weeks a year / 12
        (100, "day", 1, 3_044),  # 365.25 days a year / 12
        (2_000, "month", 1, 2_000),
    ],
)
def test_mrr_is_normalised_to_a_month(
    amount: int, interval: str, count: int, per_month: int
) -> None:
    assert monthly(amount, interval, count) == per_month


@pytest.mark.parametrize(
    ("status", "counts"),
    [("active", True), ("past_due", True), ("trialing", False), ("canceled", False),
     ("unpaid", False), ("incomplete", False), ("paused", False)],
)  # fmt: skip
def test_only_paying_subscriptions_add_to_mrr(status: str, counts: bool) -> None:
    row = subscription_row(stripe_subscription(status=status), NOW)
    assert row["mrr"] == (2000 if counts else 0)
    assert row["amount"] == 2000


def test_an_older_shape_with_the_period_on_the_subscription_still_maps() -> None:
    sub = stripe_subscription(current_period_end=NOW + 5 * DAY)
    del sub["items"]["data"][0]["current_period_end"]
    assert subscription_row(sub, NOW)["current_period_end"] == NOW + 5 * DAY


def _mirror(database: peewee.Database) -> None:
    with database.atomic():
        Customer.insert(stripe_id="cus_1", created=NOW, raw={}, synced_at=NOW,
                        name="Ada Lovelace", email="ada@example.com").execute()  # fmt: skip
        Customer.insert(stripe_id="cus_2", created=NOW, raw={}, synced_at=NOW,
                        name="=HYPERLINK(1)", email="b@example.com").execute()  # fmt: skip
        for pid, name in (("prod_plan", "Pro plan"), ("prod_big", "Team plan")):
            Product.insert(stripe_id=pid, created=NOW, raw={}, synced_at=NOW, name=name,
                           metadata={}).execute()  # fmt: skip
        upsert(
            Subscription,
            [
                stripe_subscription("sub_a", created=NOW - 3 * DAY),
                stripe_subscription("sub_b", customer="cus_2", price="price_year",
                                    product="prod_big", unit_amount=120_000, interval="year",
                                    created=NOW - 50 * DAY, cancel_at_period_end=True),
                stripe_subscription("sub_c", status="trialing", trial_end=NOW + 5 * DAY,
                                    created=NOW - 2 * DAY),
                stripe_subscription("sub_d", status="canceled", created=NOW - 100 * DAY,
                                    canceled_at=NOW - 5 * DAY, ended_at=NOW - 5 * DAY),
            ],
            NOW,
        )  # fmt: skip


def test_the_list_filters_by_status_customer_and_price(
    database: peewee.Database, authority: Authority
) -> None:
    _mirror(database)
    service = SubscriptionService(database, StripeGateway(TEST_KEY), authority)
    rows = service.subscriptions()
    assert [r.stripe_id for r in rows] == ["sub_c", "sub_a", "sub_b", "sub_d"]  # newest first
    b = next(r for r in rows if r.stripe_id == "sub_b")
    assert (b.plan, b.amount, b.interval, b.mrr) == ("Team plan", 120_000, "year", 10_000)
    assert b.cancels_at == NOW + 20 * DAY  # the marker: at the period end
    assert next(r for r in rows if r.stripe_id == "sub_d").cancels_at is None  # ended already
    assert [r.stripe_id for r in service.subscriptions(status="trialing")] == ["sub_c"]
    assert [r.stripe_id for r in service.subscriptions(customer_id="cus_2")] == ["sub_b"]
    assert [r.stripe_id for r in service.subscriptions(price_id="price_year")] == ["sub_b"]
    assert service.subscriptions(price_id="price_yea") == []  # a whole id, not a prefix
    with pytest.raises(ValidationError, match="Unknown status"):
        service.subscriptions(status="bogus")


def test_the_overview_counts_mrr_active_and_churn(database: peewee.Database) -> None:
    _mirror(database)
    figures = subscription_figures("usd", NOW - 30 * DAY, NOW, NOW - 60 * DAY, NOW - 30 * DAY)
    assert figures.mrr == 2_000 + 10_000  # sub_a, sub_b; the trial and the ended one add none
    assert figures.active == 2
    assert figures.trialing == 1
    assert figures.churned == 1  # sub_d ended 5 days ago
    assert figures.churned_before == 0
    assert figures.new == 2  # a and c; b started 50 days ago
    assert figures.new_before == 1
    # 30 days ago: b and d were running (a and c had not started).
    assert (figures.active_before, figures.mrr_before) == (2, 10_000 + 2_000)


def test_csv_is_safe_and_money_is_decimal(database: peewee.Database, authority: Authority) -> None:
    _mirror(database)
    rows = SubscriptionService(database, StripeGateway(TEST_KEY), authority).subscriptions()
    parsed = list(csv.DictReader(io.StringIO(to_text(SUBSCRIPTIONS, rows))))
    b = next(r for r in parsed if r["id"] == "sub_b")
    assert b["customer_name"] == "'=HYPERLINK(1)"
    assert (b["amount"], b["mrr"], b["currency"]) == ("1200.00", "100.00", "usd")
    assert b["cancel_at_period_end"] == "true"
    assert b["interval"] == "year"


def test_cli_lists_as_json_and_csv(
    database: peewee.Database, db_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer,
) -> None:  # fmt: skip
    if not db_url.startswith("sqlite"):
        pytest.skip("the CLI runs as the file's owner on SQLite here")
    _mirror(database)
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
    base = ["--db", db_url, "--api-base", sandbox.url, "subscriptions", "list"]
    assert main([*base, "--status", "active", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == ["sub_a", "sub_b"]
    assert listed[1]["cancels_at"] == NOW + 20 * DAY
    assert main([*base, "--customer", "cus_2", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("id,customer,customer_name,plan")
    assert "sub_b" in out
    assert "sub_a" not in out
    with pytest.raises(SystemExit) as refused:
        main([*base, "--status", "nonsense"])
    assert refused.value.code == 2


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT])
def test_only_admins_change_a_subscription(
    database: peewee.Database, authority: Authority, role: Role
) -> None:
    _mirror(database)
    OperatorService(database, authority).add("someone", role)
    acting = Authority(database, sign_in(database, "someone"))
    # A gateway that would fail loudly if anything were sent: nothing may be.
    service = SubscriptionService(database, StripeGateway(TEST_KEY, api_base="http://127.0.0.1:9"),
                                  acting)  # fmt: skip
    assert [r.stripe_id for r in service.subscriptions(status="active")] == ["sub_a", "sub_b"]
    draft = SubscriptionDraft("cus_1", "price_month")
    attempts = [
        lambda: service.create(draft),
        lambda: service.update("sub_a", quantity=2),
        lambda: service.cancel("sub_a"),
        lambda: service.cancel("sub_a", at_period_end=True),
        lambda: service.undo_cancel("sub_b"),
        lambda: service.pause("sub_a"),
        lambda: service.resume("sub_a"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="manage subscriptions"):
            attempt()
    denied = AuditRecord.select().where(
        (AuditRecord.operator == "someone") & (AuditRecord.outcome == "denied")
    )
    assert denied.count() == len(attempts)
    before = copy.deepcopy([s.raw for s in Subscription.select().order_by(Subscription.id)])
    assert before == [s.raw for s in Subscription.select().order_by(Subscription.id)]


def test_bad_input_is_refused_before_anything_is_sent(
    database: peewee.Database, authority: Authority
) -> None:
    _mirror(database)
    with database.atomic():
        Price.insert(stripe_id="price_month", created=NOW, raw={"recurring": {
            "interval": "month", "interval_count": 1}}, synced_at=NOW, product_id="prod_plan",
            currency="usd", unit_amount=2000, type="recurring").execute()  # fmt: skip
        upsert(Subscription, [stripe_subscription("sub_i", status="incomplete")], NOW)
    service = SubscriptionService(database, StripeGateway(TEST_KEY, api_base="http://127.0.0.1:9"),
                                  authority)  # fmt: skip
    cases = [
        (lambda: service.create(SubscriptionDraft("cus_1", "price_nope")), "not an active"),
        (lambda: service.create(SubscriptionDraft("cus_1", "price_month", quantity=0)),
         "Quantity"),
        (lambda: service.create(SubscriptionDraft("cus_1", "price_month", trial_days=999)),
         "trial"),
        (lambda: service.create(SubscriptionDraft("nobody", "price_month")), "customer"),
        (lambda: service.update("sub_a", quantity=1), "already has quantity 1"),
        (lambda: service.update("sub_a"), "either the price or the quantity"),
        (lambda: service.update("sub_a", quantity=2, proration="sometimes"), "Proration"),
        (lambda: service.cancel("sub_d"), "canceled: it cannot be changed"),
        (lambda: service.cancel("sub_b", at_period_end=True), "already cancels"),
        (lambda: service.undo_cancel("sub_a"), "no pending cancellation"),
        (lambda: service.resume("sub_a"), "not paused"),
        (lambda: service.pause("sub_a", "forever"), "Pause behavior"),
        (lambda: service.update("sub_i", quantity=2), "incomplete .* can only be canceled"),
        (lambda: service.pause("sub_i"), "can only be canceled"),
    ]  # fmt: skip
    for attempt, message in cases:
        with pytest.raises(ValidationError, match=message):
            attempt()
    changed = AuditRecord.select().where(
        AuditRecord.action.startswith("subscription.") & (AuditRecord.outcome == "ok")
    )
    assert changed.count() == 0
