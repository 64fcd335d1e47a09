"""Which invoice actions the invoice's state allows, and why not: the one place the invoices
panel (its buttons and their tooltips) and `InvoiceService` (before anything is sent to Stripe,
so the command line gets the same answer) ask.

Who may act is `services.permissions`; this is only what the invoice itself allows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.permissions import Permission


class InvoiceAction(enum.Enum):
    """An action on one invoice; the value is its audit action name."""

    FINALIZE = "invoice.finalize"
    CHARGE = "invoice.charge"
    SEND = "invoice.send"
    VOID = "invoice.void"
    MARK_UNCOLLECTIBLE = "invoice.mark_uncollectible"


@dataclass(frozen=True)
class _Rule:
    permission: Permission
    statuses: tuple[str, ...]
    words: str


RULES: dict[InvoiceAction, _Rule] = {
    InvoiceAction.FINALIZE: _Rule(
        Permission.FINALIZE_INVOICE, ("draft",), "Only drafts can be finalized"
    ),
    InvoiceAction.CHARGE: _Rule(
        Permission.CHARGE_INVOICE,
        ("open", "uncollectible"),
        "Only open (or uncollectible) invoices can be charged",
    ),
    InvoiceAction.SEND: _Rule(
        Permission.FINALIZE_INVOICE, ("open",), "Only open invoices can be sent"
    ),
    InvoiceAction.VOID: _Rule(
        Permission.VOID_INVOICE,
        ("open", "uncollectible"),
        "Only open or uncollectible invoices can be voided",
    ),
    InvoiceAction.MARK_UNCOLLECTIBLE: _Rule(
        Permission.VOID_INVOICE, ("open",), "Only open invoices can be marked uncollectible"
    ),
}


@dataclass(frozen=True)
class InvoiceState:
    """What the rules look at."""

    status: str
    collection_method: str = "charge_automatically"
    has_lines: bool = True


def permission_for(action: InvoiceAction) -> Permission:
    return RULES[action].permission


def why_not(action: InvoiceAction, state: InvoiceState) -> str:
    """ "" when the invoice's state allows `action`, else the reason, in a clerk's words."""
    rule = RULES[action]
    if state.status not in rule.statuses:
        return f"{rule.words}; this invoice is {state.status or 'unknown'}."
    if action is InvoiceAction.SEND and state.collection_method != "send_invoice":
        return "This invoice is charged to the saved card, not emailed for payment by link."
    if action is InvoiceAction.FINALIZE and not state.has_lines:
        return "Add a line first: this draft is empty."
    return ""


def allowed_actions(state: InvoiceState) -> dict[InvoiceAction, str]:
    """Every action with "" (allowed) or the reason it is not."""
    return {action: why_not(action, state) for action in InvoiceAction}
