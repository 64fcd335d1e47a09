"""A top-up's payment attempts, read from Stripe when someone looks: declines are not hidden.

The local mirror keeps a top-up's outcome, not each try; Stripe keeps every charge of the
session's PaymentIntent (a declined card, then a good one) and its last payment error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.audit import Authority
from services.permissions import Permission
from services.stripe_gateway import StripeGateway


@dataclass(frozen=True)
class PaymentAttempt:
    """One try at paying a top-up link (one Stripe charge)."""

    at: int  # seconds since the epoch
    status: str  # succeeded, failed or pending (a bank debit settling)
    amount: int  # minor units
    currency: str
    method: str  # e.g. "visa ····0002", "bank debit ····6789"
    reason: str  # why it failed, in Stripe's words; "" when it did not


@dataclass(frozen=True)
class TopUpAttempts:
    attempts: tuple[PaymentAttempt, ...]  # oldest first
    last_error: str  # the PaymentIntent's last payment error, if any


def _method(details: Any) -> str:
    if not isinstance(details, dict):
        return ""
    card = details.get("card") or {}
    if card:
        return f"{card.get('brand') or 'card'} ····{card.get('last4') or '?'}"
    bank = details.get("us_bank_account") or {}
    if bank:
        return f"bank debit ····{bank.get('last4') or '?'}"
    return str(details.get("type") or "")


class TopUpAttemptReader:
    """Reads a Checkout session's payment attempts from Stripe (never stored)."""

    def __init__(self, gateway: StripeGateway, authority: Authority) -> None:
        self._gateway = gateway
        self._authority = authority

    def attempts(self, checkout_session_id: str) -> TopUpAttempts:
        """Every charge tried for the session, and the last payment error.

        Raises:
            AppError: Stripe could not be asked, or refused (e.g. an unknown session).
        """
        self._authority.require(Permission.BROWSE, "topup.attempts", checkout_session_id)
        if not checkout_session_id:
            return TopUpAttempts((), "")
        session = self._gateway.call(lambda c: c.v1.checkout.sessions.retrieve(checkout_session_id))
        intent_id = session.to_dict(for_json=True).get("payment_intent")
        if not isinstance(intent_id, str) or not intent_id:
            return TopUpAttempts((), "")  # nobody has tried to pay yet
        intent = self._gateway.call(lambda c: c.v1.payment_intents.retrieve(intent_id))
        charges = self._gateway.call(
            lambda c: c.v1.charges.list({"payment_intent": intent_id, "limit": 100})
        )
        attempts = []
        for charge in charges.data:
            raw = charge.to_dict(for_json=True)
            reason = str(raw.get("failure_message") or "")
            code = (raw.get("outcome") or {}).get("reason") or raw.get("failure_code")
            if reason and code:
                reason = f"{reason} ({code})"
            attempts.append(
                PaymentAttempt(
                    at=int(raw.get("created") or 0),
                    status=str(raw.get("status") or ""),
                    amount=int(raw.get("amount") or 0),
                    currency=str(raw.get("currency") or ""),
                    method=_method(raw.get("payment_method_details")),
                    reason=reason,
                )
            )
        error = intent.to_dict(for_json=True).get("last_payment_error") or {}
        return TopUpAttempts(
            tuple(sorted(attempts, key=lambda a: a.at)), str(error.get("message") or "")
        )
