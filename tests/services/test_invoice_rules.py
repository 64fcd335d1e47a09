"""What an invoice's state allows: one rule table for the panel and the service (so the
command line gets the panel's answer before anything reaches Stripe)."""

from __future__ import annotations

import logging
import uuid

import peewee
import pytest
import stripe

from services.audit import Authority
from services.errors import ValidationError
from services.invoice_rules import InvoiceAction, InvoiceState, allowed_actions, why_not
from services.invoices import DraftLine, InvoiceDraft
from services.models import AuditRecord, Invoice
from stripe_sandbox import SandboxServer
from tests.services import test_invoices


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> test_invoices.World:  # fmt: skip
    return test_invoices.World(database, sandbox, authority, stripe_client)


F, C, S, V, U = (InvoiceAction.FINALIZE, InvoiceAction.CHARGE, InvoiceAction.SEND,
                 InvoiceAction.VOID, InvoiceAction.MARK_UNCOLLECTIBLE)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        (InvoiceState("draft"), {F}),
        (InvoiceState("draft", has_lines=False), set()),
        (InvoiceState("open"), {C, V, U}),
        (InvoiceState("open", "send_invoice"), {C, S, V, U}),
        (InvoiceState("uncollectible", "send_invoice"), {C, V}),
        (InvoiceState("paid", "send_invoice"), set()),
        (InvoiceState("void"), set()),
        (InvoiceState(""), set()),
    ],
)
def test_each_status_allows_exactly_its_actions(
    state: InvoiceState, allowed: set[InvoiceAction]
) -> None:
    reasons = allowed_actions(state)
    assert {a for a, why in reasons.items() if not why} == allowed
    assert all(reasons[a] for a in set(InvoiceAction) - allowed)  # each refusal says why


def test_the_reasons_say_what_to_do() -> None:
    assert why_not(F, InvoiceState("open")) == "Only drafts can be finalized; this invoice is open."
    assert why_not(F, InvoiceState("draft", has_lines=False)) == (
        "Add a line first: this draft is empty."
    )
    assert "emailed for payment by link" in why_not(S, InvoiceState("open"))
    assert why_not(V, InvoiceState("paid")).endswith("this invoice is paid.")


def test_the_service_refuses_before_stripe_even_with_a_stale_mirror(
    world: test_invoices.World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe_sandbox")
    line = DraftLine(description="Work", amount=1_000, currency="usd")
    draft = world.invoices.create_draft(InvoiceDraft(world.customer(), (line,)), "k-rules-1")
    invoice = world.invoices.finalize(draft.stripe_id, "k-rules-2").stripe_id
    row = Invoice.get(Invoice.stripe_id == invoice)  # the mirror is behind: it says draft
    stale = {**row.raw, "status": "draft"}
    Invoice.update(status="draft", raw=stale).where(Invoice.id == row.id).execute()
    with pytest.raises(ValidationError, match="Only drafts can be finalized; this invoice is open"):
        world.invoices.finalize(invoice, f"k-{uuid.uuid4()}")
    with pytest.raises(ValidationError, match="emailed for payment by link"):
        world.invoices.send(invoice, f"k-{uuid.uuid4()}")
    assert world.status(invoice) == "open"  # the mirror shows the truth again
    sent = [r.getMessage() for r in caplog.records if r.name.startswith("stripe_sandbox")]
    assert sum(f"POST /v1/invoices/{invoice}/finalize " in m for m in sent) == 1
    assert not any(f"POST /v1/invoices/{invoice}/send " in m for m in sent)
    refused = AuditRecord.get(
        (AuditRecord.action == "invoice.send") & (AuditRecord.target == invoice)
    )
    assert refused.outcome == "failed"
    assert world.invoices.void(invoice, f"k-{uuid.uuid4()}").status == "void"
