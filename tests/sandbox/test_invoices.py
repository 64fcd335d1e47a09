"""One-off invoices: items, drafts, finalization, payment with test cards, InvoicePayments,
void / uncollectible / send, hosted page and PDF, and the events of each step."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call, fetch

Make = Callable[..., stripe.Invoice]


@pytest.fixture
def client(sandbox: SandboxServer) -> stripe.StripeClient:
    # No retries: a 402 must surface at once.
    return stripe.StripeClient(
        "sk_test_invoices", base_addresses={"api": sandbox.url}, max_network_retries=0
    )


@pytest.fixture
def customer(client: stripe.StripeClient) -> stripe.Customer:
    return client.v1.customers.create({"name": "Ada Lovelace", "email": "ada@example.com"})


def _card(sandbox: SandboxServer, customer_id: str, number: str) -> str:
    status, _, pm = call(
        sandbox.url,
        "POST",
        f"/_sandbox/customers/{customer_id}/attach_card",
        f"card={number}",
        key=None,
    )
    assert status == 200, pm
    return str(pm["id"])


@pytest.fixture
def make(client: stripe.StripeClient, customer: stripe.Customer) -> Make:
    def make_invoice(amount: int = 2500, finalize: bool = True, **params: object) -> stripe.Invoice:
        invoice = client.v1.invoices.create({"customer": customer.id, **params})  # type: ignore[typeddict-item]
        if amount:
            client.v1.invoice_items.create(
                {
                    "customer": customer.id,
                    "invoice": invoice.id,
                    "amount": amount,
                    "currency": "usd",
                    "description": "Consulting",
                }
            )
        if finalize:
            return client.v1.invoices.finalize_invoice(invoice.id)
        return client.v1.invoices.retrieve(invoice.id)

    return make_invoice


def _types_since(client: stripe.StripeClient, since: str | None) -> list[str]:
    newest_first = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
    ids = [e.id for e in newest_first]
    newer = newest_first[: ids.index(since)] if since else newest_first
    return [e.type for e in reversed(newer)]


def _last(client: stripe.StripeClient) -> str | None:
    data = client.v1.events.list({"limit": 1}).data
    return data[0].id if data else None


def test_draft_shape_and_items(client: stripe.StripeClient, customer: stripe.Customer) -> None:
    product = client.v1.products.create(
        {"name": "500 credits", "default_price_data": {"currency": "usd", "unit_amount": 4500}}
    )
    draft = client.v1.invoices.create(
        {"customer": customer.id, "description": "Top-up", "metadata": {"order": "7"}}
    )
    assert draft.id.startswith("in_")
    assert draft.status == "draft"
    assert draft.auto_advance is False
    assert draft.collection_method == "charge_automatically"
    assert draft.number is None
    assert draft.hosted_invoice_url is None
    assert draft.invoice_pdf is None
    assert draft.currency == "usd"
    assert draft.customer_email == "ada@example.com"
    assert draft.lines.data == []
    assert draft.total == draft.amount_due == 0
    before = _last(client)

    by_price = client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "invoice": draft.id,
            "pricing": {"price": str(product.default_price)},
            "quantity": 2,
        }
    )
    assert by_price.object == "invoiceitem"
    assert by_price.amount == 9000
    assert by_price.description == "500 credits"
    assert by_price.pricing is not None
    assert by_price.pricing.price_details is not None
    assert by_price.pricing.price_details.product == product.id
    by_amount = client.v1.invoice_items.create(
        {
            "customer": customer.id,
            "invoice": draft.id,
            "amount": 1500,
            "currency": "usd",
            "description": "Setup fee",
        }
    )
    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.subtotal == invoice.total == invoice.amount_due == invoice.amount_remaining
    assert invoice.total == 10500
    assert [line.description for line in invoice.lines.data] == ["500 credits", "Setup fee"]
    line = invoice.lines.data[0]
    assert line.object == "line_item"
    assert line.parent is not None
    assert line.parent.invoice_item_details is not None
    assert line.parent.invoice_item_details.invoice_item == by_price.id
    listed = client.v1.invoices.line_items.list(draft.id, {"limit": 1})
    assert listed.has_more is True
    assert [li.amount for li in listed.auto_paging_iter()] == [9000, 1500]
    assert _types_since(client, before) == [
        "invoiceitem.created",
        "invoice.updated",
        "invoiceitem.created",
        "invoice.updated",
    ]
    updated_event = client.v1.events.list({"type": "invoice.updated"}).data[0]
    assert updated_event.data.previous_attributes is not None
    assert updated_event.data.previous_attributes["total"] == 9000

    deleted = client.v1.invoice_items.delete(by_amount.id)
    assert deleted.deleted is True
    assert client.v1.invoices.retrieve(draft.id).total == 9000
    items = client.v1.invoice_items.list({"invoice": draft.id}).data
    assert [i.id for i in items] == [by_price.id]


def test_pending_items_are_included_on_request(
    client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    pending = client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 700, "currency": "usd"}
    )
    assert pending.invoice is None
    assert [i.id for i in client.v1.invoice_items.list({"pending": True}).data] == [pending.id]
    without = client.v1.invoices.create({"customer": customer.id})
    assert without.total == 0
    included = client.v1.invoices.create(
        {"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    assert included.total == 700
    assert client.v1.invoice_items.retrieve(pending.id).invoice == included.id


def test_item_errors(client: stripe.StripeClient, customer: stripe.Customer, make: Make) -> None:
    open_invoice = make()
    with pytest.raises(stripe.InvalidRequestError, match="draft"):
        client.v1.invoice_items.create(
            {"customer": customer.id, "invoice": open_invoice.id, "amount": 1, "currency": "usd"}
        )
    draft = make(finalize=False, amount=0)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoice_items.create(
            {"customer": customer.id, "invoice": draft.id, "amount": 1, "currency": "eur"}
        )
    assert excinfo.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoice_items.create({"customer": customer.id, "amount": 100})
    assert excinfo.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoice_items.create({"customer": "cus_missing", "amount": 1, "currency": "usd"})
    assert excinfo.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoice_items.create(
            {"customer": customer.id, "pricing": {"price": "price_missing"}}
        )
    assert excinfo.value.param == "pricing[price]"


def test_finalize_numbers_and_urls(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    before = _last(client)
    first = make()
    assert first.status == "open"
    assert first.number == f"{customer.invoice_prefix}-0001"
    assert first.hosted_invoice_url == f"{sandbox.url}/_sandbox/invoices/{first.id}"
    assert first.invoice_pdf == f"{sandbox.url}/_sandbox/invoices/{first.id}/pdf"
    assert first.status_transitions.finalized_at is not None
    assert first.due_date is None
    assert _types_since(client, before) == [
        "invoice.created",
        "invoiceitem.created",
        "invoice.updated",
        "invoice.finalized",
        "payment_intent.created",
    ]
    payments = client.v1.invoice_payments.list({"invoice": first.id}).data
    assert len(payments) == 1
    assert payments[0].status == "open"
    assert payments[0].is_default is True
    assert payments[0].amount_requested == 2500
    assert payments[0].payment.type == "payment_intent"
    second = make(collection_method="send_invoice", days_until_due=30)
    assert second.number == f"{customer.invoice_prefix}-0002"
    finalized_at = second.status_transitions.finalized_at
    assert finalized_at is not None
    assert second.due_date == finalized_at + 30 * 24 * 3600
    assert client.v1.customers.retrieve(customer.id).next_invoice_sequence == 3
    with pytest.raises(stripe.InvalidRequestError, match="already finalized"):
        client.v1.invoices.finalize_invoice(first.id)
    free = make(amount=0)
    assert free.status == "paid"
    assert free.amount_due == 0


def test_pay_with_the_default_card(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    pm_id = _card(sandbox, customer.id, "4242424242424242")
    invoice = make()
    before = _last(client)
    paid = client.v1.invoices.pay(invoice.id)
    assert paid.status == "paid"
    assert paid.amount_paid == 2500
    assert paid.amount_remaining == 0
    assert paid.attempted is True
    assert paid.attempt_count == 1
    assert paid.status_transitions.paid_at is not None
    assert _types_since(client, before) == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    expanded = client.v1.invoices.retrieve(invoice.id, {"expand": ["payments"]})
    assert expanded.payments is not None
    (payment,) = expanded.payments.data
    assert payment.status == "paid"
    assert payment.amount_paid == 2500
    assert payment.status_transitions.paid_at == paid.status_transitions.paid_at
    intent = client.v1.payment_intents.retrieve(
        str(payment.payment.payment_intent), {"expand": ["latest_charge"]}
    )
    assert intent.status == "succeeded"
    assert intent.payment_method == pm_id
    assert isinstance(intent.latest_charge, stripe.Charge)
    assert intent.latest_charge.amount == 2500
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.pay(invoice.id)
    assert excinfo.value.http_status == 400
    assert "Invoice is already paid" in str(excinfo.value.user_message)
    assert [p.id for p in client.v1.invoice_payments.list({"status": "paid"}).data] == [payment.id]
    assert client.v1.invoice_payments.retrieve(payment.id).invoice == invoice.id


@pytest.mark.parametrize(
    ("number", "code", "decline_code"),
    [
        ("4000000000000002", "card_declined", "generic_decline"),
        ("4000000000009995", "card_declined", "insufficient_funds"),
        ("4000000000000069", "expired_card", None),
        ("4000000000000341", "card_declined", "generic_decline"),
    ],
)
def test_declined_cards(
    client: stripe.StripeClient,
    sandbox: SandboxServer,
    customer: stripe.Customer,
    make: Make,
    number: str,
    code: str,
    decline_code: str | None,
) -> None:
    _card(sandbox, customer.id, number)
    invoice = make()
    before = _last(client)
    with pytest.raises(stripe.CardError) as excinfo:
        client.v1.invoices.pay(invoice.id)
    error = excinfo.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None
    assert error.error.decline_code == decline_code
    assert error.error.payment_intent is not None
    assert error.error.payment_intent.status == "requires_payment_method"
    assert _types_since(client, before) == [
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
    ]
    still = client.v1.invoices.retrieve(invoice.id)
    assert still.status == "open"
    assert still.attempt_count == 1
    assert still.amount_remaining == 2500
    # The customer fixes the card; the next attempt succeeds on the same PaymentIntent.
    _card(sandbox, customer.id, "4242424242424242")
    assert client.v1.invoices.pay(invoice.id).status == "paid"
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2
    assert len(client.v1.payment_intents.list().data) == 1


def test_card_needing_authentication(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    _card(sandbox, customer.id, "4000002500003155")
    invoice = make()
    before = _last(client)
    with pytest.raises(stripe.CardError) as excinfo:
        client.v1.invoices.pay(invoice.id)
    assert excinfo.value.code == "invoice_payment_intent_requires_action"
    assert _types_since(client, before) == [
        "payment_intent.requires_action",
        "invoice.payment_action_required",
    ]
    intent_id = (
        client.v1.invoice_payments.list({"invoice": invoice.id}).data[0].payment.payment_intent
    )
    intent = client.v1.payment_intents.retrieve(str(intent_id))
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    assert intent.next_action.type == "use_stripe_sdk"
    # On the hosted page the customer is present, authenticates, and pays.
    assert invoice.hosted_invoice_url is not None
    status, headers, _ = fetch(invoice.hosted_invoice_url, "POST", {"card": "4000002500003155"})
    assert status == 303
    assert headers["Location"] == invoice.hosted_invoice_url
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"


def test_payment_method_resolution(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    invoice = make()
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.pay(invoice.id)
    assert excinfo.value.http_status == 400
    assert "no attached payment source or default payment method" in str(excinfo.value.user_message)
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 0
    # An explicit test PaymentMethod is attached to the customer and charged.
    paid = client.v1.invoices.pay(invoice.id, {"payment_method": "pm_card_mastercard"})
    assert paid.status == "paid"
    assert len(client.v1.customers.payment_methods.list(customer.id).data) == 1
    # The invoice's own default wins over the customer's.
    declining = _card(sandbox, customer.id, "4000000000000002")
    good = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    second = make(default_payment_method=good.id)
    assert second.default_payment_method == good.id
    assert client.v1.invoices.pay(second.id).status == "paid"
    assert declining


def test_pay_a_draft_finalizes_it(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    _card(sandbox, customer.id, "4242424242424242")
    draft = make(finalize=False)
    before = _last(client)
    paid = client.v1.invoices.pay(draft.id)
    assert paid.status == "paid"
    assert paid.number is not None
    assert _types_since(client, before)[:2] == ["invoice.finalized", "payment_intent.created"]


def test_paid_out_of_band(client: stripe.StripeClient, make: Make) -> None:
    invoice = make()
    before = _last(client)
    paid = client.v1.invoices.pay(invoice.id, {"paid_out_of_band": True})
    assert paid.status == "paid"
    assert paid.amount_paid == 2500
    assert _types_since(client, before) == ["payment_intent.canceled", "invoice.paid"]
    payment = client.v1.invoice_payments.list({"invoice": invoice.id}).data[0]
    assert payment.status == "canceled"


def test_void_uncollectible_send(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    to_void = make()
    before = _last(client)
    voided = client.v1.invoices.void_invoice(to_void.id)
    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None
    assert _types_since(client, before) == ["payment_intent.canceled", "invoice.voided"]
    with pytest.raises(stripe.InvalidRequestError, match="voided"):
        client.v1.invoices.pay(voided.id, {"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(voided.id)

    doubtful = make()
    marked = client.v1.invoices.mark_uncollectible(doubtful.id)
    assert marked.status == "uncollectible"
    assert marked.status_transitions.marked_uncollectible_at is not None
    assert client.v1.events.list({"limit": 1}).data[0].type == "invoice.marked_uncollectible"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.mark_uncollectible(doubtful.id)
    # Uncollectible invoices can still be paid.
    _card(sandbox, customer.id, "4242424242424242")
    assert client.v1.invoices.pay(doubtful.id).status == "paid"

    sendable = make(collection_method="send_invoice", days_until_due=14)
    sent = client.v1.invoices.send_invoice(sendable.id)
    assert sent.id == sendable.id
    assert client.v1.events.list({"limit": 1}).data[0].type == "invoice.sent"
    with pytest.raises(stripe.InvalidRequestError, match="send_invoice"):
        client.v1.invoices.send_invoice(doubtful.id)
    draft = make(finalize=False)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(draft.id)


def test_update_and_list(
    client: stripe.StripeClient, customer: stripe.Customer, make: Make
) -> None:
    draft = make(finalize=False)
    updated = client.v1.invoices.update(
        draft.id, {"description": "Renamed", "metadata": {"k": "v"}, "footer": "Thanks"}
    )
    assert updated.description == "Renamed"
    event = client.v1.events.list({"type": "invoice.updated"}).data[0]
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes["description"] is None
    opened = client.v1.invoices.finalize_invoice(draft.id)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.update(opened.id, {"collection_method": "send_invoice"})
    assert excinfo.value.code == "invoice_not_editable"
    relabelled = client.v1.invoices.update(opened.id, {"metadata": {"k": "w"}})
    assert relabelled.metadata is not None
    assert relabelled.metadata.to_dict() == {"k": "w"}
    other = client.v1.customers.create({"name": "Other"})
    theirs = client.v1.invoices.create({"customer": other.id})
    assert [i.id for i in client.v1.invoices.list({"customer": customer.id}).data] == [opened.id]
    assert [i.id for i in client.v1.invoices.list({"status": "draft"}).data] == [theirs.id]
    assert [i.id for i in client.v1.invoices.list().data] == [theirs.id, opened.id]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create({"customer": customer.id, "collection_method": "send_invoice"})
    assert excinfo.value.param == "days_until_due"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create({"customer": "cus_missing"})
    assert excinfo.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.retrieve("in_missing")
    assert excinfo.value.http_status == 404


def test_hosted_page_and_pdf(
    client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer, make: Make
) -> None:
    draft = make(finalize=False)
    status, _, _ = fetch(f"{sandbox.url}/_sandbox/invoices/{draft.id}")
    assert status == 404
    invoice = client.v1.invoices.finalize_invoice(draft.id)
    assert invoice.hosted_invoice_url is not None
    assert invoice.invoice_pdf is not None
    status, headers, page = fetch(invoice.hosted_invoice_url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert str(invoice.number) in page
    assert "Consulting" in page
    assert "25.00 USD" in page
    assert "Pay 25.00 USD" in page

    status, _, page = fetch(invoice.hosted_invoice_url, "POST", {"card": "4000000000000002"})
    assert status == 402
    assert "Your card was declined." in page
    status, _, _ = fetch(invoice.hosted_invoice_url, "POST", {"card": "4242424242424242"})
    assert status == 303
    status, _, page = fetch(invoice.hosted_invoice_url)
    assert "Paid on" in page
    assert "Pay 25.00 USD" not in page

    status, headers, pdf = fetch(invoice.invoice_pdf)
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    _assert_valid_pdf(pdf.encode("latin-1"))
    assert str(invoice.number) in pdf

    session = client.v1.billing_portal.sessions.create({"customer": customer.id})
    status, _, portal = fetch(session.url)
    assert str(invoice.number) in portal
    assert invoice.hosted_invoice_url in portal


def _assert_valid_pdf(data: bytes) -> None:
    """Header, trailer, and an xref table whose offsets point at the objects."""
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)", data)[-1])
    assert data[startxref:].startswith(b"xref")
    entries = re.findall(rb"(\d{10}) 00000 n", data[startxref:])
    assert entries
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset) :].startswith(f"{number} 0 obj".encode())


def test_demo_invoices_agree_with_their_payments(
    client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    sandbox.seed_demo()
    everything = list(client.v1.invoices.list({"limit": 100}).auto_paging_iter())
    statuses = {i.status for i in everything}
    assert statuses == {"draft", "open", "paid", "uncollectible", "void"}
    now = client.v1.customers.create({"name": "clock"}).created
    overdue = [i for i in everything if i.status == "open" and i.due_date and i.due_date < now]
    assert len(overdue) >= 2
    for invoice in everything:
        payments = client.v1.invoice_payments.list({"invoice": invoice.id}).data
        if invoice.status == "draft":
            assert payments == []
            assert invoice.number is None
            continue
        assert invoice.number is not None
        assert invoice.hosted_invoice_url is not None
        if invoice.status == "paid" and invoice.total == 0:
            # Nothing to pay (a trial's invoice): paid at finalization, no payment.
            assert payments == []
        elif invoice.status == "paid" and invoice.amount_paid_off_stripe == 0:
            (payment,) = payments
            assert payment.status == "paid"
            assert payment.amount_paid == invoice.total == invoice.amount_paid
            intent = client.v1.payment_intents.retrieve(
                str(payment.payment.payment_intent), {"expand": ["latest_charge"]}
            )
            assert intent.status == "succeeded"
            assert isinstance(intent.latest_charge, stripe.Charge)
            assert intent.latest_charge.amount == invoice.total
            assert intent.latest_charge.created >= invoice.created
        elif invoice.status in ("open", "uncollectible"):
            (payment,) = payments
            assert payment.status == "open"
            assert invoice.amount_remaining == invoice.total
    # One-off invoices (the demo subscriptions' have a parent; one of them failed too).
    failed = [i for i in everything if i.attempt_count and i.status == "open" and not i.parent]
    assert len(failed) == 1
    defaults = [
        c
        for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()
        if c.invoice_settings and c.invoice_settings.default_payment_method
    ]
    # 18 of the 60 one-off customers, and 2 of the 3 on the demo test clock.
    assert len(defaults) == 20
