"""``POST /v1/payment_intents``: create, confirm and cancel a PaymentIntent through the API.

What a server does to charge a saved card (Stripe's "charge a saved card off-session"):
``amount``, ``currency``, ``customer``, ``payment_method``, ``off_session=true``,
``confirm=true``. Outcomes follow the test cards (``cards.py``) and Stripe's documentation:

- a card that succeeds: ``succeeded``, with a charge as ``latest_charge`` (refunds and
  disputes of it work as for any charge; ``4000 0000 0000 0259`` is disputed afterwards);
- a declining card: 402 ``card_error`` carrying the PaymentIntent, now
  ``requires_payment_method`` with ``last_payment_error`` (``payment_intent.payment_failed``);
- a 3D Secure card off-session: 402 ``authentication_required`` the same way; the
  ``authenticationRequiredOnSetup`` card (``4000 0025 0000 3155``) is the exception once saved
  to the customer (it only asks on-session). On-session (no ``off_session``), a 3D Secure card
  stops in ``requires_action``.

Stripe never picks the customer's default payment method for a PaymentIntent: confirming
without ``payment_method`` is refused, as Stripe refuses it.
"""

from __future__ import annotations

from typing import Any

from stripe.params import (
    PaymentIntentCancelParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
)

from stripe_sandbox.cards import AUTHENTICATES, TEST_TOKENS, Decline
from stripe_sandbox.resources import disputes, payment_methods, payments
from stripe_sandbox.resources.common import Ctx, Route, apply_metadata, render
from stripe_sandbox.store import deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing

_SUPPORTED_CREATE = frozenset(
    {
        "amount",
        "currency",
        "customer",
        "description",
        "metadata",
        "payment_method",
        "allowed_payment_method_types",
        "confirm",
        "off_session",
        "setup_future_usage",
        "receipt_email",
        "statement_descriptor",
        "expand",
        "error_on_requires_action",
    }
)
_SUPPORTED_CONFIRM = frozenset(
    {"payment_method", "off_session", "setup_future_usage", "receipt_email", "expand",
     "error_on_requires_action"}
)  # fmt: skip

#: Stripe's smallest charge per currency (minor units); others: 50.
_MINIMUM = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "chf": 50, "cad": 50, "aud": 50}

#: What Stripe answers for a card that needs authentication while the customer is away.
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    "authentication_required",
)
_SAVED_SKIPS_AUTHENTICATION = TEST_TOKENS["authenticationRequiredOnSetup"]

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)


def _unsupported(param: str) -> ApiError:
    return invalid(f"The Stripe sandbox does not support `{param}` on PaymentIntents.", param=param)


def _off_session(value: Any) -> bool:
    return value is True or value in ("true", "one_off", "recurring")


def _live(ctx: Ctx, intent_id: str) -> JsonDict:
    intent = ctx.store.get("payment_intent", intent_id)
    if intent is None:
        raise missing("payment_intent", intent_id)
    return intent


def _payment_method(ctx: Ctx, pm_id: str, customer_id: str | None) -> JsonDict:
    pm = payment_methods.resolve(ctx, pm_id, "payment_method")
    if pm["customer"] is not None and pm["customer"] != customer_id:
        raise invalid(
            "The provided PaymentMethod belongs to a different Customer"
            if customer_id
            else "The provided PaymentMethod is attached to a Customer: pass `customer` with it.",
            param="payment_method",
        )
    return pm


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/payment_intents`` (``payment_intent.created``; with ``confirm=true`` the
    payment is attempted at once)."""
    for key in sorted(params):
        if key not in _SUPPORTED_CREATE:
            raise _unsupported(key)
    amount = params["amount"]
    currency = str(params["currency"]).lower()
    minimum = _MINIMUM.get(currency, 50)
    if amount < minimum:
        raise invalid(
            f"Amount must be at least {minimum} in the currency's smallest unit ({currency}).",
            param="amount",
            code="amount_too_small",
        )
    confirm = params.get("confirm") is True
    if "off_session" in params and not confirm:
        raise invalid(
            "off_session can only be used when confirm=true.",
            param="off_session",
        )
    customer_id = params.get("customer")
    if customer_id is not None and ctx.store.get("customer", customer_id) is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    setup_future_usage = params.get("setup_future_usage")
    if setup_future_usage and customer_id is None:
        raise invalid(
            "Saving a payment method for future use needs a `customer`.",
            param="setup_future_usage",
        )
    pm = None
    if params.get("payment_method"):
        pm = _payment_method(ctx, params["payment_method"], customer_id)
    if confirm and pm is None:
        raise _no_payment_method()
    types = params.get("allowed_payment_method_types") or ["card"]
    for kind in types:
        if kind not in ("card", "us_bank_account"):
            raise _unsupported(f"allowed_payment_method_types[{kind}]")
    intent = payments.new_intent(
        ctx,
        amount=amount,
        currency=currency,
        customer=customer_id,
        payment_method_types=list(types),
        description=params.get("description"),
        metadata=apply_metadata({}, params.get("metadata", {})),
        receipt_email=params.get("receipt_email"),
        statement_descriptor=params.get("statement_descriptor"),
        setup_future_usage=setup_future_usage,
    )
    if pm is not None:
        intent.update({"payment_method": pm["id"], "status": "requires_confirmation"})
    if confirm:
        assert pm is not None
        _confirm(ctx, intent, pm, off_session=_off_session(params.get("off_session")))
    return render(ctx.store, intent, params.get("expand", []))


def _no_payment_method() -> ApiError:
    return invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. To "
        "confirm it, specify `payment_method` (a PaymentMethod attached to the customer).",
        param="payment_method",
        code="payment_intent_unexpected_state",
    )


def _confirm(ctx: Ctx, intent: JsonDict, pm: JsonDict, *, off_session: bool) -> None:
    """Attempt the payment; raises the 402 Stripe answers when it fails."""
    if pm["type"] != "card" and pm["type"] not in intent["payment_method_types"]:
        raise invalid(
            f"The PaymentMethod type {pm['type']} is not allowed on this PaymentIntent.",
            param="payment_method",
        )
    customer_id = intent["customer"]
    card = payment_methods.card_of(pm)
    if card is not None and card.outcome == AUTHENTICATES:
        saved = pm["customer"] is not None and pm["customer"] == customer_id
        if not off_session:
            # On-session the customer authenticates in the browser: Stripe waits for them.
            payments.attempt(ctx, intent, pm, off_session=True)
            return
        if not (saved and card.number == _SAVED_SKIPS_AUTHENTICATION):
            result = payments._decline(ctx, intent, pm, card, AUTHENTICATION_REQUIRED)
            assert result.error is not None
            raise result.error
        result = payments.attempt(ctx, intent, pm, off_session=False)
    else:
        result = payments.attempt(ctx, intent, pm, off_session=off_session)
    if result.error is not None:
        raise result.error
    if result.status == "succeeded":
        if intent["setup_future_usage"] and customer_id and pm["customer"] is None:
            payment_methods.attach(ctx, pm, customer_id)
        disputes.follow_up(ctx, result.charge)


def confirm(ctx: Ctx, params: JsonDict, intent_id: str) -> JsonDict:
    """``POST /v1/payment_intents/{id}/confirm``."""
    for key in sorted(params):
        if key not in _SUPPORTED_CONFIRM:
            raise _unsupported(key)
    intent = _live(ctx, intent_id)
    if intent["status"] not in CONFIRMABLE:
        raise invalid(
            f"You cannot confirm this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            f"be confirmed: {', '.join(CONFIRMABLE)}.",
            code="payment_intent_unexpected_state",
        )
    pm_id = params.get("payment_method") or intent["payment_method"]
    if not pm_id:
        raise _no_payment_method()
    pm = _payment_method(ctx, pm_id, intent["customer"])
    if "setup_future_usage" in params:
        intent["setup_future_usage"] = params["setup_future_usage"] or None
    if "receipt_email" in params:
        intent["receipt_email"] = params["receipt_email"] or None
    intent.update({"status": "requires_payment_method", "payment_method": None})
    _confirm(ctx, intent, pm, off_session=_off_session(params.get("off_session")))
    return render(ctx.store, intent, params.get("expand", []))


def cancel(ctx: Ctx, params: JsonDict, intent_id: str) -> JsonDict:
    """``POST /v1/payment_intents/{id}/cancel`` (``payment_intent.canceled``)."""
    intent = _live(ctx, intent_id)
    if intent["status"] not in CANCELABLE:
        raise invalid(
            f"You cannot cancel this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            f"be canceled: {', '.join(CANCELABLE)}.",
            code="payment_intent_unexpected_state",
        )
    if intent["status"] == "processing":
        raise invalid(
            "The Stripe sandbox cannot cancel a bank debit that is processing.",
            code="payment_intent_unexpected_state",
        )
    payments.cancel(ctx, intent, params.get("cancellation_reason"))
    return render(ctx.store, deep_copy(intent), params.get("expand", []))


ROUTES = [
    Route("POST", "/v1/payment_intents", PaymentIntentCreateParams, create),
    Route("POST", "/v1/payment_intents/{id}/confirm", PaymentIntentConfirmParams, confirm),
    Route("POST", "/v1/payment_intents/{id}/cancel", PaymentIntentCancelParams, cancel),
]
