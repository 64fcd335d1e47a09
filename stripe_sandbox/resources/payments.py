"""PaymentIntents, Charges and Refunds.

PaymentIntents are created by Checkout, invoices and ``POST /v1/payment_intents``
(``payment_intents.py``); ``attempt`` charges a PaymentMethod for one and records the events
Stripe sends, in Stripe's order:

- card succeeds: ``charge.succeeded``, ``payment_intent.succeeded``
- card declines: ``charge.failed``, ``payment_intent.payment_failed``
- card needs authentication off-session: ``payment_intent.requires_action`` (no charge)
- bank debit: ``charge.pending``, ``payment_intent.processing``; later ``settle`` gives
  ``charge.succeeded``, ``payment_intent.succeeded`` or ``charge.failed``,
  ``payment_intent.payment_failed``
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stripe.params import (
    ChargeListParams,
    ChargeRetrieveParams,
    PaymentIntentListParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    RefundListParams,
    RefundRetrieveParams,
)

from stripe_sandbox.cards import AUTHENTICATES, DECLINES, Decline, TestCard
from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    apply_metadata,
    created_matches,
    includable,
    paginate,
    render,
)
from stripe_sandbox.resources.payment_methods import card_of
from stripe_sandbox.store import Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

EXPANDABLE.update(
    {
        "payment_intent": {
            "customer": "customer",
            "latest_charge": "charge",
            "payment_method": "payment_method",
        },
        "charge": {"customer": "customer", "payment_intent": "payment_intent"},
        "refund": {"charge": "charge", "payment_intent": "payment_intent"},
        "payment_method": {"customer": "customer"},
    }
)

STATEMENT_DESCRIPTOR = "STRIPE SANDBOX"

# A bank debit that fails at settlement (ACH return R01).
BANK_FAILURE = Decline(
    "insufficient_funds",
    None,
    "The customer's account has insufficient funds to cover this payment.",
    "insufficient_funds",
)


def new_intent(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    payment_method_types: list[str],
    description: str | None = None,
    metadata: JsonDict | None = None,
    receipt_email: str | None = None,
    statement_descriptor: str | None = None,
    setup_future_usage: str | None = None,
) -> JsonDict:
    """Create and store a PaymentIntent awaiting a payment method (``payment_intent.created``)."""
    pi_id = new_id("pi", 24)
    options: JsonDict = {}
    if "card" in payment_method_types:
        options["card"] = {
            "installments": None,
            "mandate_options": None,
            "network": None,
            "request_three_d_secure": "automatic",
        }
    if "us_bank_account" in payment_method_types:
        options["us_bank_account"] = {"verification_method": "automatic"}
    intent: JsonDict = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{pi_id}_secret_{new_id('s', 25)[2:]}",
        "confirmation_method": "automatic",
        "created": ctx.now,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": options,
        "payment_method_types": list(payment_method_types),
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    ctx.store.add(intent)
    ctx.store.record_event("payment_intent.created", intent, ctx.request, ctx.now)
    return intent


@dataclass(frozen=True)
class Attempt:
    """What charging a PaymentIntent did.

    Attributes:
        status: The PaymentIntent's status afterwards (``succeeded``, ``processing``,
            ``requires_payment_method`` after a decline, ``requires_action``).
        charge: The charge made, or None (authentication needed).
        error: The card error Stripe answers for a decline or a needed authentication.
    """

    status: str
    charge: JsonDict | None
    error: ApiError | None


def attempt(
    ctx: Ctx,
    intent: JsonDict,
    pm: JsonDict,
    *,
    off_session: bool,
    action_url: str | None = None,
) -> Attempt:
    """Charge ``pm`` for ``intent`` and record the events.

    Args:
        ctx: Request context.
        intent: A PaymentIntent in ``requires_payment_method``.
        pm: A card or ``us_bank_account`` PaymentMethod.
        off_session: The customer is not present (invoices): 3D Secure cards stop with
            ``requires_action``. On a hosted page the cardholder completes authentication.
        action_url: Where the customer can authenticate (``next_action``), e.g. the hosted
            invoice page.
    """
    if pm["type"] == "us_bank_account":
        charge = _new_charge(ctx, intent, pm, "pending")
        _record(ctx, "charge.pending", charge)
        intent.update(
            {"status": "processing", "payment_method": pm["id"], "latest_charge": charge["id"]}
        )
        _record(ctx, "payment_intent.processing", intent)
        return Attempt("processing", charge, None)
    card = card_of(pm)
    assert card is not None
    if card.outcome == AUTHENTICATES and off_session:
        intent.update(
            {
                "status": "requires_action",
                "payment_method": pm["id"],
                "last_payment_error": None,
                "next_action": {
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": action_url},
                },
            }
        )
        _record(ctx, "payment_intent.requires_action", intent)
        return Attempt("requires_action", None, None)
    if card.outcome == DECLINES:
        assert card.decline is not None
        return _decline(ctx, intent, pm, card, card.decline)
    charge = _new_charge(ctx, intent, pm, "succeeded", card=card)
    _record(ctx, "charge.succeeded", charge)
    _succeed(ctx, intent, pm["id"], charge)
    return Attempt("succeeded", charge, None)


def settle(ctx: Ctx, intent: JsonDict, succeeded: bool) -> JsonDict:
    """Finish a ``processing`` bank debit; returns its charge."""
    charge = ctx.store.objects["charge"][intent["latest_charge"]]
    if succeeded:
        charge.update({"status": "succeeded", "paid": True, "captured": True})
        charge["amount_captured"] = charge["amount"]
        _record(ctx, "charge.succeeded", charge)
        _succeed(ctx, intent, intent["payment_method"], charge)
        return charge
    decline = BANK_FAILURE
    charge.update(
        {
            "status": "failed",
            "failure_code": decline.code,
            "failure_message": decline.message,
            "outcome": _outcome(decline, None),
        }
    )
    _record(ctx, "charge.failed", charge)
    pm = ctx.store.get("payment_method", intent["payment_method"])
    intent.update(
        {
            "status": "requires_payment_method",
            "payment_method": None,
            "last_payment_error": _payment_error(charge, pm, decline, "us_bank_account"),
        }
    )
    _record(ctx, "payment_intent.payment_failed", intent)
    return charge


def cancel(ctx: Ctx, intent: JsonDict, reason: str | None) -> None:
    """Cancel an unfinished PaymentIntent (``payment_intent.canceled``)."""
    intent.update(
        {
            "status": "canceled",
            "canceled_at": ctx.now,
            "cancellation_reason": reason,
            "next_action": None,
        }
    )
    _record(ctx, "payment_intent.canceled", intent)


def card_error(intent: JsonDict) -> ApiError:
    """The 402 ``card_error`` Stripe answers for the last failed attempt on ``intent``."""
    error = intent["last_payment_error"] or {}
    extra: JsonDict = {
        k: error[k]
        for k in ("charge", "decline_code", "payment_method", "advice_code")
        if error.get(k) is not None
    }
    extra["payment_intent"] = deep_copy(intent)
    return ApiError(
        402,
        error.get("message") or "Your card was declined.",
        type_="card_error",
        code=error.get("code"),
        param=error.get("param"),
        extra=extra,
    )


def _record(ctx: Ctx, event_type: str, obj: JsonDict) -> None:
    ctx.store.touch()
    ctx.store.record_event(event_type, obj, ctx.request, ctx.now)


def _succeed(ctx: Ctx, intent: JsonDict, pm_id: str, charge: JsonDict) -> None:
    intent.update(
        {
            "status": "succeeded",
            "amount_received": intent["amount"],
            "payment_method": pm_id,
            "latest_charge": charge["id"],
            "last_payment_error": None,
            "next_action": None,
        }
    )
    _record(ctx, "payment_intent.succeeded", intent)


def _decline(ctx: Ctx, intent: JsonDict, pm: JsonDict, card: TestCard, decline: Decline) -> Attempt:
    charge = _new_charge(ctx, intent, pm, "failed", card=card, decline=decline)
    _record(ctx, "charge.failed", charge)
    intent.update(
        {
            "status": "requires_payment_method",
            # Stripe detaches a failed payment method from the PaymentIntent.
            "payment_method": None,
            "latest_charge": charge["id"],
            "next_action": None,
            "last_payment_error": _payment_error(charge, pm, decline, "card"),
        }
    )
    _record(ctx, "payment_intent.payment_failed", intent)
    return Attempt("requires_payment_method", charge, card_error(intent))


def _payment_error(
    charge: JsonDict, pm: JsonDict | None, decline: Decline, pm_type: str
) -> JsonDict:
    error: JsonDict = {
        "advice_code": None,
        "charge": charge["id"],
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
        "message": decline.message,
        "network_advice_code": None,
        "network_decline_code": None,
        "param": decline.param,
        "payment_method": deep_copy(pm) if pm is not None else None,
        "payment_method_type": pm_type,
        "request_log_url": None,
        "type": "card_error" if pm_type == "card" else "invalid_request_error",
    }
    if decline.decline_code is None:
        del error["decline_code"]
    if decline.param is None:
        del error["param"]
    return error


def _risk_score(charge_id: str) -> int:
    return 10 + int(hashlib.sha256(charge_id.encode()).hexdigest(), 16) % 50


def _outcome(decline: Decline | None, charge_id: str | None) -> JsonDict:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": _risk_score(charge_id or ""),
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    if decline.reason == "generic_decline":
        seller = "The bank did not return any further details with this decline."
    elif decline.reason == "test_mode_live_card":
        seller = (
            "This charge request was in test mode, but did not use a Stripe test card number. "
            "For the list of these numbers, see stripe.com/docs/testing"
        )
    else:
        seller = f"The bank returned the decline code `{decline.reason}`."
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": decline.network_status,
        "reason": decline.reason,
        "risk_level": "normal",
        "risk_score": _risk_score(charge_id or ""),
        "seller_message": seller,
        "type": decline.type,
    }


def _method_details(pm: JsonDict, amount: int, status: str, card: TestCard | None) -> JsonDict:
    if pm["type"] == "us_bank_account":
        bank = pm["us_bank_account"]
        return {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": bank["account_holder_type"],
                "account_type": bank["account_type"],
                "bank_name": bank["bank_name"],
                "fingerprint": bank["fingerprint"],
                "last4": bank["last4"],
                "mandate": None,
                "payment_reference": None,
                "routing_number": bank["routing_number"],
            },
        }
    details = pm["card"]
    authenticated = card is not None and card.outcome == AUTHENTICATES
    return {
        "card": {
            "amount_authorized": amount if status == "succeeded" else None,
            "authorization_code": "123456" if status == "succeeded" else None,
            "brand": details["brand"],
            "checks": dict(details["checks"]),
            "country": details["country"],
            "exp_month": details["exp_month"],
            "exp_year": details["exp_year"],
            "extended_authorization": {"status": "disabled"},
            "fingerprint": details["fingerprint"],
            "funding": details["funding"],
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": details["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": details["brand"],
            "network_token": {"used": False},
            "network_transaction_id": "sandbox" + details["fingerprint"][:10],
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": {
                "authentication_flow": "challenge",
                "electronic_commerce_indicator": "05",
                "exemption_indicator": None,
                "result": "authenticated",
                "result_reason": None,
                "transaction_id": new_id("3ds", 20),
                "version": "2.2.0",
            }
            if authenticated
            else None,
            "wallet": None,
        },
        "type": "card",
    }


def _new_charge(
    ctx: Ctx,
    intent: JsonDict,
    pm: JsonDict,
    status: str,
    *,
    card: TestCard | None = None,
    decline: Decline | None = None,
) -> JsonDict:
    charge_id = new_id("ch", 24)
    succeeded = status == "succeeded"
    charge: JsonDict = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": deep_copy(pm["billing_details"]),
        "calculated_statement_descriptor": STATEMENT_DESCRIPTOR,
        "captured": succeeded,
        "created": ctx.now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": _outcome(decline, charge_id),
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": _method_details(pm, intent["amount"], status, card),
        "radar_options": {},
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{ctx.store.base_url}/_sandbox/receipts/{charge_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }
    return ctx.store.add(charge)


# ---------------------------------------------------------------- API


def _get(ctx: Ctx, kind: str, object_id: str, label: str | None = None) -> JsonDict:
    obj = ctx.store.get(kind, object_id)
    if obj is None:
        raise missing(label or kind, object_id)
    return obj


def retrieve_intent(ctx: Ctx, params: JsonDict, intent_id: str) -> JsonDict:
    """``GET /v1/payment_intents/{id}``."""
    intent = _get(ctx, "payment_intent", intent_id)
    if "client_secret" in params and params["client_secret"] != intent["client_secret"]:
        raise invalid(
            "The client_secret provided does not match the client_secret associated with the "
            "PaymentIntent.",
            param="client_secret",
        )
    return render(ctx.store, intent, params.get("expand", []))


def list_intents(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/payment_intents`` with ``customer`` and ``created`` filters."""
    items = [
        p
        for p in ctx.store.objects["payment_intent"].values()
        if ("customer" not in params or p["customer"] == params["customer"])
        and created_matches(p["created"], params.get("created"))
    ]
    return paginate(ctx, "payment_intent", "payment_intent", items, params, "/v1/payment_intents")


def retrieve_charge(ctx: Ctx, params: JsonDict, charge_id: str) -> JsonDict:
    """``GET /v1/charges/{id}`` (``expand[]=refunds`` includes its refunds)."""
    return render(ctx.store, _get(ctx, "charge", charge_id), params.get("expand", []))


def list_charges(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/charges`` with ``customer``, ``payment_intent`` and ``created`` filters."""
    items = [
        c
        for c in ctx.store.objects["charge"].values()
        if all(c[k] == params[k] for k in ("customer", "payment_intent") if k in params)
        and created_matches(c["created"], params.get("created"))
    ]
    return paginate(ctx, "charge", "charge", items, params, "/v1/charges")


def _refunds_of(store: Store, charge: JsonDict) -> list[JsonDict]:
    refunds = [r for r in store.objects["refund"].values() if r["charge"] == charge["id"]]
    return sorted(refunds, key=store.sort_key, reverse=True)


includable("charge", "refunds", _refunds_of, "/v1/charges/{id}/refunds")


def _refundable_charge(ctx: Ctx, params: JsonDict) -> JsonDict:
    charge_id = params.get("charge")
    intent_id = params.get("payment_intent")
    if not charge_id and not intent_id:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
            param="payment_intent",
        )
    if intent_id:
        intent = ctx.store.get("payment_intent", intent_id)
        if intent is None:
            raise ApiError(
                400,
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
                param="payment_intent",
            )
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge_id and charge_id != intent["latest_charge"]:
            raise invalid(
                f"The charge {charge_id} does not belong to the PaymentIntent {intent_id}.",
                param="charge",
            )
        charge_id = intent["latest_charge"]
    assert charge_id is not None
    charge = ctx.store.get("charge", charge_id)
    if charge is None:
        raise ApiError(
            400, f"No such charge: '{charge_id}'", code="resource_missing", param="charge"
        )
    if charge["status"] != "succeeded":
        raise invalid(
            f"Charge {charge_id} cannot be refunded because its status is {charge['status']}.",
            param="charge",
        )
    if charge["disputed"] and any(
        d["charge"] == charge_id and not d["is_charge_refundable"]
        for d in ctx.store.objects["dispute"].values()
    ):
        raise invalid(
            f"Charge {charge_id} has been charged back; cannot issue a refund.",
            param="charge",
            code="charge_disputed",
        )
    if charge["refunded"]:
        raise invalid(
            f"Charge {charge_id} has already been refunded.",
            param="charge",
            code="charge_already_refunded",
        )
    return charge


def _dollars(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:,.2f}"


def create_refund(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/refunds``: ``payment_intent`` or ``charge``, ``amount`` (default: the rest).

    Events: ``refund.created``, then ``charge.refunded``.
    """
    for key in ("origin", "customer", "instructions_email"):
        if key in params:
            raise invalid(f"The Stripe sandbox does not support `{key}` on refunds.", param=key)
    charge = _refundable_charge(ctx, params)
    remaining = charge["amount"] - charge["amount_refunded"]
    amount = params.get("amount", remaining)
    if amount <= 0:
        raise invalid("Refund amount must be a positive integer.", param="amount")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({_dollars(amount, charge['currency'])}) is greater than unrefunded "
            f"amount on charge ({_dollars(remaining, charge['currency'])})",
            param="amount",
            code="amount_too_large",
        )
    if "currency" in params and params["currency"].lower() != charge["currency"]:
        raise invalid(
            f"The refund currency must match the charge currency ({charge['currency']}).",
            param="currency",
        )
    refund: JsonDict = {
        "id": new_id("re", 24),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": ctx.now,
        "currency": charge["currency"],
        "destination_details": None,
        "description": None,
        "failure_reason": None,
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "payment_intent": charge["payment_intent"],
        "pending_reason": None,
        "reason": params.get("reason"),
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    ctx.store.add(refund)
    ctx.store.record_event("refund.created", refund, ctx.request, ctx.now)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    ctx.store.record_event("charge.refunded", charge, ctx.request, ctx.now, previous)
    return render(ctx.store, refund, params.get("expand", []))


def retrieve_refund(ctx: Ctx, params: JsonDict, refund_id: str) -> JsonDict:
    """``GET /v1/refunds/{id}``."""
    return render(ctx.store, _get(ctx, "refund", refund_id), params.get("expand", []))


def list_refunds(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/refunds`` with ``charge``, ``payment_intent`` and ``created`` filters."""
    items = [
        r
        for r in ctx.store.objects["refund"].values()
        if all(r[k] == params[k] for k in ("charge", "payment_intent") if k in params)
        and created_matches(r["created"], params.get("created"))
    ]
    return paginate(ctx, "refund", "refund", items, params, "/v1/refunds")


ROUTES = [
    Route("GET", "/v1/payment_intents", PaymentIntentListParams, list_intents),
    Route("GET", "/v1/payment_intents/{id}", PaymentIntentRetrieveParams, retrieve_intent),
    Route("GET", "/v1/charges", ChargeListParams, list_charges),
    Route("GET", "/v1/charges/{id}", ChargeRetrieveParams, retrieve_charge),
    Route("POST", "/v1/refunds", RefundCreateParams, create_refund),
    Route("GET", "/v1/refunds", RefundListParams, list_refunds),
    Route("GET", "/v1/refunds/{id}", RefundRetrieveParams, retrieve_refund),
]
