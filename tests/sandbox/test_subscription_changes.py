"""Price and quantity changes: prorations to the cent (hand-computed), the invoice preview
of a change, and what the sandbox refuses as Stripe does."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call
from tests.sandbox.test_subscriptions import DAY, JAN_1, TIMES, VISA, Billing

FEB_1 = JAN_1 + 31 * DAY
# January has 31 days: the period Jan 1 - Feb 1 lasts 2,678,400 seconds.
PERIOD = 31 * DAY


@pytest.fixture
def billing(sandbox: SandboxServer) -> Billing:
    return Billing(sandbox)


def _amounts(invoice: stripe.Invoice) -> list[tuple[int, bool, str | None]]:
    out = []
    for line in invoice.lines.data:
        assert line.parent is not None
        assert line.parent.subscription_item_details is not None
        out.append((line.amount, line.parent.subscription_item_details.proration, line.description))
    return out


def test_upgrade_always_invoice_then_quantity_with_proration_date(billing: Billing) -> None:
    billing.card(VISA)
    basic = billing.price(3000, name="Basic")
    plus = billing.price(5000, name="Plus")
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": basic}]}
    )
    item = sub["items"].data[0].id
    billing.advance(JAN_1 + 10 * DAY)

    # Basic -> Plus on Jan 11, 21 of 31 days left:
    #   unused Basic  3000 * 21/31 = 2032.26 -> -2032
    #   remaining Plus 5000 * 21/31 = 3387.10 -> +3387   => 1355 due now
    preview = billing.client.v1.invoices.create_preview(
        {
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item, "price": plus}],
                "proration_behavior": "always_invoice",
            },
        }
    )
    assert _amounts(preview) == [
        (-2032, True, f"Unused time on 1 {TIMES} Basic after 11 Jan 2026"),
        (3387, True, f"Remaining time on 1 {TIMES} Plus after 11 Jan 2026"),
    ]
    assert (preview.total, preview.amount_due, preview.billing_reason) == (
        1355,
        1355,
        "subscription_update",
    )
    billing.new_events()
    sub = billing.client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": item, "price": plus}], "proration_behavior": "always_invoice"},
    )
    assert sub["items"].data[0].id == item
    assert sub["items"].data[0].price.id == plus
    invoice = billing.invoice(sub.latest_invoice)
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        1355,
        "subscription_update",
    )
    assert _amounts(invoice) == _amounts(preview)
    assert billing.new_types() == [
        "customer.subscription.updated",
        "invoiceitem.created",
        "invoiceitem.created",
        "invoice.created",
        "invoice.finalized",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]

    # Quantity 1 -> 3 as of Jan 21 03:25:45 (proration_date), 938,055 s of 2,678,400 left:
    #   unused 1 x Plus    5000 * 938055/2678400 = 1751.15 -> -1751
    #   remaining 3 x Plus 15000 * 938055/2678400 = 5253.44 -> +5253
    # pending until the Feb 1 renewal, which then bills 3502 + 3 x 5000 = 18502.
    billing.advance(JAN_1 + 21 * DAY)
    when = JAN_1 + 20 * DAY + 12_345
    assert PERIOD - (when - JAN_1) == 938_055
    details = {
        "items": [{"id": item, "quantity": 3}],
        "proration_behavior": "create_prorations",
        "proration_date": when,
    }
    preview = billing.client.v1.invoices.create_preview(
        {"subscription": sub.id, "subscription_details": details}
    )
    assert _amounts(preview) == [
        (-1751, True, f"Unused time on 1 {TIMES} Plus after 21 Jan 2026"),
        (5253, True, f"Remaining time on 3 {TIMES} Plus after 21 Jan 2026"),
        (15000, False, f"3 {TIMES} Plus (at $50.00 / month)"),
    ]
    assert (preview.total, preview.billing_reason, preview.created) == (18502, "upcoming", FEB_1)
    sub = billing.client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": item, "quantity": 3}], "proration_date": when},
    )
    assert sub["items"].data[0].quantity == 3
    pending = billing.client.v1.invoice_items.list({"pending": True}).data
    assert sorted(i.amount for i in pending) == [-1751, 5253]
    assert all(i.proration for i in pending)
    # The upcoming invoice now holds the pending prorations.
    upcoming = billing.client.v1.invoices.create_preview({"subscription": sub.id})
    assert upcoming.total == 18502

    billing.advance(FEB_1 + 2 * 3600)
    sub = billing.sub(sub.id)
    renewal = billing.invoice(sub.latest_invoice)
    assert (renewal.status, renewal.amount_paid) == ("paid", 18502)
    assert sorted(a for a, _, _ in _amounts(renewal)) == [-1751, 5253, 15000]


def test_proration_none_changes_without_items(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(1000), "quantity": 4}]}
    )
    billing.advance(JAN_1 + 5 * DAY)
    item = sub["items"].data[0].id
    sub = billing.client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item, "quantity": 2}], "proration_behavior": "none"}
    )
    assert sub["items"].data[0].quantity == 2
    assert billing.client.v1.invoice_items.list({"pending": True}).data == []
    preview = billing.client.v1.invoices.create_preview({"subscription": sub.id})
    assert preview.total == 2000


def test_new_interval_resets_the_anchor_and_charges_now(billing: Billing) -> None:
    billing.card(VISA)
    monthly = billing.price(3100, name="Monthly")
    yearly = billing.price(30000, "year", name="Yearly")
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": monthly}]}
    )
    billing.advance(JAN_1 + 10 * DAY)
    sub = billing.client.v1.subscriptions.update(
        sub.id, {"items": [{"id": sub["items"].data[0].id, "price": yearly}]}
    )
    start = JAN_1 + 10 * DAY
    assert sub.billing_cycle_anchor == start
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (start, start + 365 * DAY)
    invoice = billing.invoice(sub.latest_invoice)
    # 30000 for the year, less 3100 * 21/31 = 2100 unused.
    assert (invoice.amount_paid, invoice.status) == (27900, "paid")


def test_preview_of_a_new_subscription(billing: Billing) -> None:
    price = billing.price(1999)
    preview = billing.client.v1.invoices.create_preview(
        {
            "customer": billing.customer.id,
            "subscription_details": {"items": [{"price": price, "quantity": 2}]},
        }
    )
    assert (preview.total, preview.billing_reason) == (3998, "subscription_create")
    assert preview.lines.data[0].period.start == JAN_1
    assert preview.lines.data[0].period.end == FEB_1


def _refused(call_: object, param: str | None, *, status: int = 400) -> stripe.StripeError:
    assert callable(call_)
    with pytest.raises(stripe.StripeError) as caught:
        call_()
    assert caught.value.http_status == status
    if param is not None:
        assert caught.value.param == param
    return caught.value


def test_refusals(billing: Billing, sandbox: SandboxServer) -> None:
    subs = billing.client.v1.subscriptions
    cus = billing.customer.id
    monthly = billing.price(1000)
    one_time = billing.client.v1.prices.create(
        {"currency": "usd", "unit_amount": 500, "product_data": {"name": "Once"}}
    ).id
    weekly = billing.price(200, "week", name="Weekly")
    eur = billing.client.v1.prices.create(
        {
            "currency": "eur",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Euro"},
        }
    ).id
    _refused(lambda: subs.create({"items": [{"price": monthly}]}), "customer")
    _refused(lambda: subs.create({"customer": cus}), "items")
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": "price_nope"}]}),
        "items[0][price]",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": one_time}]}), "items[0][price]"
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly}, {"price": weekly}]}),
        "items",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly}, {"price": eur}]}),
        "items",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly}, {"price": monthly}]}),
        "items",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly, "quantity": -1}]}),
        "items[0][quantity]",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly}], "bogus": 1}), "bogus"
    )
    _refused(
        lambda: subs.create(
            {"customer": cus, "items": [{"price": monthly}], "collection_method": "send_invoice"}
        ),
        "days_until_due",
    )
    _refused(
        lambda: subs.create({"customer": cus, "items": [{"price": monthly}], "days_until_due": 3}),
        "days_until_due",
    )
    _refused(
        lambda: subs.create(
            {"customer": cus, "items": [{"price": monthly}], "trial_end": JAN_1 - 1}
        ),
        "trial_end",
    )
    _refused(
        lambda: subs.create(
            {
                "customer": cus,
                "items": [{"price": monthly}],
                "trial_end": JAN_1 + DAY,
                "trial_period_days": 3,
            }
        ),
        "trial_period_days",
    )
    _refused(
        lambda: subs.create(
            {
                "customer": cus,
                "items": [{"price": monthly}],
                "cancel_at": JAN_1 + DAY,
                "cancel_at_period_end": True,
            }
        ),
        "cancel_at",
    )
    _refused(
        lambda: subs.create(
            {"customer": cus, "items": [{"price": monthly}], "payment_behavior": "sometimes"}
        ),
        "payment_behavior",
    )
    # No payment method: Stripe refuses rather than leave an unpayable subscription.
    error = _refused(lambda: subs.create({"customer": cus, "items": [{"price": monthly}]}), None)
    assert "no attached payment source or default payment method" in str(error.user_message)
    other = billing.client.v1.customers.create({"email": "other@example.com"})
    status, _, pm = call(
        sandbox.url, "POST", f"/_sandbox/customers/{other.id}/attach_card", f"card={VISA}", key=None
    )
    assert status == 200
    _refused(
        lambda: subs.create(
            {"customer": cus, "items": [{"price": monthly}], "default_payment_method": pm["id"]}
        ),
        "default_payment_method",
    )
    assert subs.list({"status": "all"}).data == []

    billing.card(VISA)
    sub = subs.create({"customer": cus, "items": [{"price": monthly}]})
    _refused(
        lambda: subs.update(sub.id, {"items": [{"id": "si_nope", "quantity": 2}]}), "items[0][id]"
    )
    _refused(lambda: subs.update(sub.id, {"proration_date": JAN_1 + 40 * DAY}), "proration_date")
    _refused(
        lambda: subs.update(sub.id, {"pause_collection": {"behavior": "forever"}}),
        "pause_collection[behavior]",
    )
    _refused(
        lambda: subs.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "deleted": True}]}),
        "items",
    )
    _refused(lambda: subs.resume(sub.id), "id")
    _refused(lambda: subs.retrieve("sub_nope"), "id", status=404)
    subs.cancel(sub.id)
    _refused(lambda: subs.update(sub.id, {"items": [{"price": weekly}]}), "items")
    assert subs.update(sub.id, {"metadata": {"note": "kept"}}).metadata["note"] == "kept"
