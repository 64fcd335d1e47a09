"""Credits sold on invoices (credit packs, and credit plans' renewals): which lines sell them, and
taking them back when the invoice's payment is refunded or lost to a dispute.

The purchase itself is written by `services.credits._write_purchase` (the single purchase write
point, keyed by the invoice id); this module only decides which lines count and writes the
clawbacks, one per refund or lost dispute (unique by its id), each the share of the invoice's
credits that it took back — so whichever order the payment's and the refund's events come in,
the books end the same.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import peewee

from services.events import HandlerContext
from services.models import CreditEntry

log = logging.getLogger(__name__)

SYSTEM = "stripe"  # the operator of entries written by verified Stripe events


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def is_proration(line: Mapping[str, Any]) -> bool:
    """A proration line (pinned API: `parent.*_details.proration`; older: `proration`)."""
    parent = line.get("parent") or {}
    for key in ("subscription_item_details", "invoice_item_details"):
        if _get(parent, key, "proration") is True:
            return True
    return line.get("proration") is True


def sells_credits(line: Mapping[str, Any]) -> bool:
    """Whether a paid invoice line can sell credits at all (before looking at its product).

    A proration is a part-period adjustment of a plan change, not a period bought, and a
    subscription line for nothing (a free trial's $0 first invoice) bought nothing: neither
    credits. One-off lines (credit packs) count as they always have."""
    if is_proration(line):
        return False
    from_subscription = _get(line, "parent", "type") == "subscription_item_details"
    return not (from_subscription and int(line.get("amount") or 0) <= 0)


@dataclass(frozen=True)
class InvoiceReversals:
    """A paid invoice as Stripe has it now, with the refunds and disputes of its payments."""

    invoice_id: str
    amount_paid: int
    refunds: list[dict[str, Any]]
    disputes: list[dict[str, Any]]


def _payment_intents(ctx: HandlerContext, invoice_id: str) -> list[str]:
    payments = ctx.gateway.call(
        lambda c: c.v1.invoice_payments.list({"invoice": invoice_id, "limit": 100})
    )
    found = []
    for payment in payments.data:
        data = payment.to_dict(for_json=True)
        intent = _get(data, "payment", "payment_intent")
        intent = intent.get("id") if isinstance(intent, Mapping) else intent
        if data.get("status") == "paid" and isinstance(intent, str) and intent:
            found.append(intent)
    return found


def _reversals_of(
    ctx: HandlerContext, intent: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    refunds = ctx.gateway.call(
        lambda c: c.v1.refunds.list({"payment_intent": intent, "limit": 100})
    )
    disputes = ctx.gateway.call(
        lambda c: c.v1.disputes.list({"payment_intent": intent, "limit": 100})
    )
    return (
        [r.to_dict(for_json=True) for r in refunds.data],
        [d.to_dict(for_json=True) for d in disputes.data],
    )


def read_reversals(ctx: HandlerContext, invoice: Mapping[str, Any]) -> InvoiceReversals:
    """The refunds and disputes of every paid payment of `invoice`, read from Stripe now."""
    invoice_id = str(invoice["id"])
    refunds: list[dict[str, Any]] = []
    disputes: list[dict[str, Any]] = []
    for intent in _payment_intents(ctx, invoice_id):
        found_refunds, found_disputes = _reversals_of(ctx, intent)
        refunds += found_refunds
        disputes += found_disputes
    return InvoiceReversals(invoice_id, int(invoice.get("amount_paid") or 0), refunds, disputes)


def reversals_of_payment(ctx: HandlerContext, payment_intent: str) -> InvoiceReversals | None:
    """For a refunded or disputed payment that was not a Checkout top-up: the invoice it paid
    (if any) with its reversals, when that invoice sold credits here; else None."""
    listed = ctx.gateway.call(
        lambda c: c.v1.invoice_payments.list(
            {"payment": {"type": "payment_intent", "payment_intent": payment_intent}, "limit": 1}
        )
    )
    if not listed.data:
        return None
    invoice_ref = listed.data[0].to_dict(for_json=True).get("invoice")
    invoice_id = invoice_ref.get("id") if isinstance(invoice_ref, Mapping) else invoice_ref
    if not isinstance(invoice_id, str) or not _purchase_of(invoice_id):
        return None  # sold no credits (yet): the invoice's own event settles it when it comes
    invoice = ctx.gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
    return read_reversals(ctx, invoice.to_dict(for_json=True))


def _purchase_of(invoice_id: str) -> CreditEntry | None:
    return CreditEntry.get_or_none(
        (CreditEntry.kind == "purchase") & (CreditEntry.source == invoice_id)
    )


def claw_back(reversals: InvoiceReversals | None, now: int) -> bool:
    """Take back the share of the invoice's credits each refund or lost dispute reversed, once
    each (the ledger's unique (kind, source) index, source = the refund or dispute id), never
    more than the invoice credited. True when an entry was written. Runs inside the event's
    transaction, after the purchase (if any) was written."""
    if reversals is None:
        return False
    purchase = _purchase_of(reversals.invoice_id)
    if purchase is None or reversals.amount_paid <= 0 or purchase.amount <= 0:
        return False
    found = [
        (int(r.get("created") or 0), str(r["id"]), int(r.get("amount") or 0),
         f"Refund {r['id']} of invoice {reversals.invoice_id}")
        for r in reversals.refunds
        if r.get("status") in ("succeeded", "pending") and r.get("id")
    ] + [
        (int(d.get("created") or 0), str(d["id"]), int(d.get("amount") or 0),
         f"Dispute {d['id']} of invoice {reversals.invoice_id} lost")
        for d in reversals.disputes
        if d.get("status") == "lost" and d.get("id")
    ]  # fmt: skip
    credits, paid = int(purchase.amount), reversals.amount_paid
    reversed_amount = clawed = 0
    wrote = False
    for _created, source, amount, reason in sorted(found):
        reversed_amount += amount
        target = min(credits, round(credits * reversed_amount / paid))
        take, clawed = target - clawed, target
        if take <= 0:
            continue
        try:
            with CreditEntry._meta.database.atomic():  # a savepoint: a duplicate undoes only this
                CreditEntry.insert(
                    customer_id=purchase.customer_id, amount=-take, kind="clawback",
                    source=source, operator=SYSTEM, reason=reason, created_at=now,
                ).execute()  # fmt: skip
            wrote = True
        except peewee.IntegrityError:
            continue  # clawed back already
    return wrote
