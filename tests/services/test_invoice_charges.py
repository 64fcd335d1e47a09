"""What a charge tells the clerk, the audit and the journal, outcome by outcome (issue 19: these
exact results were what the surviving mutants of `InvoiceService.charge`/`_attempt` changed).

Every test reads the expected amounts, links and request ids from Stripe (the sandbox) or the
audit row, never from the service's own answer.
"""

from __future__ import annotations

import uuid

import pytest

from services.errors import ValidationError
from services.invoices import (
    ChargeDeclined,
    ChargeInProgress,
    ChargeNeedsAuthentication,
    ChargeOutcome,
    ChargeResult,
    ChargeUnreachable,
    DraftLine,
    InvoiceDraft,
    NoPaymentMethod,
)
from services.journal import Journal, KeyConflict
from services.models import AuditRecord
from tests.services.test_invoices import World, _sandbox, _wait
from tests.services.test_invoices import world as world

CARD = "4242424242424242"


def _hosted(world: World, invoice: str) -> str:
    url = world.client.v1.invoices.retrieve(invoice).hosted_invoice_url
    assert url
    return str(url)


def _number(world: World, invoice: str) -> str:
    return str(world.client.v1.invoices.retrieve(invoice).number)


def _row(world: World, invoice: str) -> AuditRecord:
    (row,) = world.audit("invoice.charge", invoice)
    return row


def test_a_paid_charge_reports_the_invoices_amount_currency_and_link(world: World) -> None:
    invoice = world.open_invoice(CARD, amount=2500)
    result = world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert result == ChargeResult(
        invoice, ChargeOutcome.PAID,
        f"Paid: $25.00 was charged to the customer's card. Invoice {_number(world, invoice)} "
        "is paid.", 2500, "usd", "", _hosted(world, invoice),
    )  # fmt: skip
    row = _row(world, invoice)
    assert row.params == {"outcome": "paid", "amount": 2500, "currency": "usd"}
    assert str(row.stripe_request_id).startswith("req_")
    # The journal records the attempt as answered, by the invoice it paid.
    [entry] = [
        e for e in Journal(world.db, world.authority).entries(include_resolved=True)
        if e.action == "invoice.charge"
    ]  # fmt: skip
    assert (entry.outcome, entry.object_id) == ("succeeded", invoice)


def test_an_invoice_paid_elsewhere_is_reported_with_what_was_paid(world: World) -> None:
    invoice = world.open_invoice(CARD, amount=1800)
    world.client.v1.invoices.pay(invoice)
    result = world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert result == ChargeResult(
        invoice, ChargeOutcome.ALREADY_PAID,
        "Already paid ($18.00): nothing more was charged. The list has been refreshed.",
        1800, "usd", "", _hosted(world, invoice),
    )  # fmt: skip
    row = _row(world, invoice)
    assert (row.outcome, row.params["outcome"]) == ("ok", "already paid")
    assert str(row.stripe_request_id).startswith("req_")  # the read that found it paid


def test_a_decline_carries_the_code_the_amount_and_the_request_id(world: World) -> None:
    invoice = world.open_invoice("4000000000009995", amount=2500)
    with pytest.raises(ChargeDeclined) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    result = caught.value.result
    assert (result.invoice_id, result.outcome, result.amount, result.currency) == (
        invoice, ChargeOutcome.DECLINED, 2500, "usd",
    )  # fmt: skip
    assert (result.decline_code, result.hosted_invoice_url) == (
        "insufficient_funds", _hosted(world, invoice),
    )  # fmt: skip
    row = _row(world, invoice)
    assert str(caught.value.request_id).startswith("req_")
    assert row.stripe_request_id == caught.value.request_id
    assert row.params == {
        "outcome": "declined", "decline_code": "insufficient_funds", "amount": 2500,
        "currency": "usd",
    }  # fmt: skip


def test_authentication_required_carries_the_link_and_the_request_id(world: World) -> None:
    invoice = world.open_invoice("4000002500003155", amount=2500)
    with pytest.raises(ChargeNeedsAuthentication) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    hosted = _hosted(world, invoice)
    result = caught.value.result
    assert (result.invoice_id, result.outcome, result.amount, result.currency) == (
        invoice, ChargeOutcome.REQUIRES_AUTHENTICATION, 2500, "usd",
    )  # fmt: skip
    assert (result.decline_code, result.hosted_invoice_url) == ("authentication_required", hosted)
    assert result.message.endswith(f"there: {hosted}")
    assert str(caught.value.request_id).startswith("req_")
    row = _row(world, invoice)
    assert row.stripe_request_id == caught.value.request_id
    assert row.params["decline_code"] == "authentication_required"


def test_no_saved_card_carries_the_link(world: World) -> None:
    invoice = world.open_invoice(card=None, amount=2500)
    with pytest.raises(NoPaymentMethod) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    hosted = _hosted(world, invoice)
    assert caught.value.result == ChargeResult(
        invoice, ChargeOutcome.NO_PAYMENT_METHOD,
        "Not charged: the customer has no saved card. Send them the invoice link to pay, or "
        f"ask them to add a card: {hosted}", 2500, "usd", "", hosted,
    )  # fmt: skip
    assert str(caught.value.request_id).startswith("req_")
    assert _row(world, invoice).stripe_request_id == caught.value.request_id


def test_no_answer_to_the_payment_keeps_the_amount_and_the_journal_entry(world: World) -> None:
    invoice = world.open_invoice(CARD, amount=2500)
    no_retries = world.service(max_network_retries=0)
    world.fault(invoice, status=500)
    with pytest.raises(ChargeUnreachable) as caught:
        no_retries.charge(invoice, f"k-{uuid.uuid4()}")
    result = caught.value.result
    assert (result.invoice_id, result.outcome, result.amount, result.currency) == (
        invoice, ChargeOutcome.UNREACHABLE, 2500, "usd",
    )  # fmt: skip
    assert _row(world, invoice).outcome == "failed"
    # The journal keeps the unconfirmed attempt, named for people, for a retry with its key.
    [entry] = Journal(world.db, world.authority).entries()
    assert (entry.action, entry.target, entry.summary) == (
        "invoice.charge", invoice, f"Charge {invoice}",
    )  # fmt: skip


def test_no_answer_to_the_first_read_charges_nothing(world: World) -> None:
    invoice = world.open_invoice(CARD, amount=2500)
    no_retries = world.service(max_network_retries=0)
    _sandbox(world.sandbox, "POST", "/_sandbox/faults", path_prefix=f"/v1/invoices/{invoice}",
             method="GET", status=500)  # fmt: skip
    with pytest.raises(ChargeUnreachable) as caught:
        no_retries.charge(invoice, f"k-{uuid.uuid4()}")
    result = caught.value.result
    assert (result.invoice_id, result.outcome) == (invoice, ChargeOutcome.UNREACHABLE)
    assert str(caught.value.request_id).startswith("req_")
    assert world.paid_payments(invoice) == 0
    assert _row(world, invoice).stripe_request_id == caught.value.request_id


def test_a_draft_or_void_invoice_is_not_charged_and_the_clerk_is_told_why(
    world: World,
) -> None:
    draft = world.invoices.create_draft(
        InvoiceDraft(world.customer(CARD), (DraftLine(description="Work", amount=700,
                                                      currency="usd"),)),
        f"k-{uuid.uuid4()}",
    ).stripe_id  # fmt: skip
    with pytest.raises(ValidationError) as caught:
        world.invoices.charge(draft, f"k-{uuid.uuid4()}")
    assert str(caught.value) == (
        f"Nothing was charged: invoice {draft} is still a draft: finalize it first."
    )
    assert _row(world, draft).params["outcome"] == "declined"

    voided = world.open_invoice(CARD, amount=900)
    world.client.v1.invoices.void_invoice(voided)
    with pytest.raises(ValidationError) as caught:
        world.invoices.charge(voided, f"k-{uuid.uuid4()}")
    assert str(caught.value) == (
        f"Nothing was charged: invoice {_number(world, voided)} was voided and can no longer "
        "be paid."
    )
    assert world.paid_payments(draft) + world.paid_payments(voided) == 0


def test_an_uncollectible_invoice_can_still_be_charged(world: World) -> None:
    invoice = world.open_invoice(CARD, amount=1200)
    world.client.v1.invoices.mark_uncollectible(invoice)
    result = world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    assert (result.outcome, result.amount) == (ChargeOutcome.PAID, 1200)
    assert world.paid_payments(invoice) == 1


def test_one_key_for_two_invoices_is_refused_before_stripe(world: World) -> None:
    first = world.open_invoice(CARD, amount=1000)
    second = world.open_invoice(CARD, amount=1000)
    key = f"k-{uuid.uuid4()}"
    assert world.invoices.charge(first, key).outcome is ChargeOutcome.PAID
    with pytest.raises(KeyConflict):
        world.invoices.charge(second, key)
    assert world.paid_payments(second) == 0


def test_a_charge_in_progress_names_the_invoice(world: World) -> None:
    invoice = world.open_invoice(CARD)
    world.fault(invoice, delay_ms=800, count=1)
    import threading

    first = threading.Thread(target=world.invoices.charge, args=(invoice, f"k-{uuid.uuid4()}"))
    first.start()
    _wait(lambda: world.invoices.in_flight(invoice), "the first charge to start")
    with pytest.raises(ChargeInProgress) as caught:
        world.invoices.charge(invoice, f"k-{uuid.uuid4()}")
    first.join(20)
    assert (caught.value.result.invoice_id, caught.value.result.outcome) == (
        invoice, ChargeOutcome.IN_PROGRESS,
    )  # fmt: skip
    assert world.paid_payments(invoice) == 1
