"""``/v1/disputes``: disputes opened by Stripe's dispute test card, evidence, closing.

A charge on ``4000000000000259`` (``pm_card_createDispute``, ``tok_createDispute``) succeeds
and is then disputed as fraudulent (https://docs.stripe.com/testing#disputes). The dispute is
a chargeback: the amount and the dispute fee leave the balance at once, so it starts with
one balance transaction and the events ``charge.dispute.created``,
``charge.dispute.funds_withdrawn``.

Stripe's documented test evidence decides the outcome when evidence is submitted:
``uncategorized_text`` = ``winning_evidence`` wins (``charge.dispute.updated``,
``charge.dispute.closed``, ``charge.dispute.funds_reinstated``), ``losing_evidence`` loses
(``charge.dispute.updated``, ``charge.dispute.closed``). Other evidence leaves the dispute
``under_review``. Closing accepts the dispute (``lost``, ``charge.dispute.closed``).
"""

from __future__ import annotations

from stripe.params import (
    DisputeCloseParams,
    DisputeListParams,
    DisputeRetrieveParams,
    DisputeUpdateParams,
)

from stripe_sandbox.cards import DISPUTE_FRAUDULENT, by_fingerprint
from stripe_sandbox.resources import v2_events
from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    apply_metadata,
    created_matches,
    diff,
    paginate,
    render,
)
from stripe_sandbox.store import RequestInfo, deep_copy
from stripe_sandbox.wire import JsonDict, invalid, missing, new_id

EXPANDABLE["dispute"] = {"charge": "charge", "payment_intent": "payment_intent"}

NO_REQUEST = RequestInfo(None, None)

WINNING_EVIDENCE = "winning_evidence"
LOSING_EVIDENCE = "losing_evidence"

# Stripe's dispute fee for a US account (https://stripe.com/pricing): 15.00 USD.
DISPUTE_FEE = 1500
# Visa's reason code for card-absent fraud, which a `fraudulent` card dispute carries.
VISA_FRAUD_REASON_CODE = "10.4"
# The sandbox gives a week to respond (Stripe's deadline depends on the card network),
# ending at 23:59:59 UTC as Stripe's `due_by` values do.
RESPONSE_DAYS = 7
_DAY = 86_400

# Evidence fields that hold text; the others hold file ids.
_TEXT_EVIDENCE = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
_FILE_EVIDENCE = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
# Stripe's limit on the combined length of all evidence text.
EVIDENCE_MAX_CHARS = 150_000

_OPEN = ("needs_response", "warning_needs_response")
_CLOSED = ("won", "lost", "warning_closed", "prevented")


def _evidence() -> JsonDict:
    evidence: JsonDict = dict.fromkeys(sorted((*_TEXT_EVIDENCE, *_FILE_EVIDENCE)))
    evidence["appeal"] = None
    evidence["enhanced_evidence"] = {}
    return dict(sorted(evidence.items()))


def _balance_transaction(ctx: Ctx, dispute: JsonDict, withdrawal: bool) -> JsonDict:
    """The balance transaction embedded in a dispute for funds withdrawn or reinstated."""
    sign = -1 if withdrawal else 1
    amount = sign * dispute["amount"]
    fee = DISPUTE_FEE if withdrawal else -DISPUTE_FEE
    word = "withdrawal" if withdrawal else "reversal"
    return {
        "id": new_id("txn", 24),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": ctx.now,
        "balance_type": "payments",
        "created": ctx.now,
        "currency": dispute["currency"],
        "description": f"Chargeback {word} for {dispute['charge']}",
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {
                "amount": fee,
                "application": None,
                "currency": dispute["currency"],
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        ],
        "net": amount - fee,
        "reporting_category": "dispute" if withdrawal else "dispute_reversal",
        "source": dispute["id"],
        "status": "available",
        "type": "adjustment",
    }


def follow_up(ctx: Ctx, charge: JsonDict | None) -> JsonDict | None:
    """After a payment flow ends: open the dispute a test card asks for, if any.

    Called once the whole flow (Checkout completion, invoice paid) has recorded its events,
    because Stripe opens the dispute after the payment, not inside it. Returns the dispute.
    """
    if charge is None or charge["status"] != "succeeded" or charge["disputed"]:
        return None
    details = charge["payment_method_details"].get("card")
    card = by_fingerprint(details["fingerprint"]) if details else None
    if card is None or card.after_success != DISPUTE_FRAUDULENT:
        return None
    return open_dispute(ctx, charge, "fraudulent")


def open_dispute(ctx: Ctx, charge: JsonDict, reason: str) -> JsonDict:
    """Open a chargeback on a succeeded card charge and record its events."""
    card = charge["payment_method_details"]["card"]
    due_by = (ctx.now // _DAY + RESPONSE_DAYS + 1) * _DAY - 1
    dispute: JsonDict = {
        "id": new_id("du", 24),
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": ctx.now,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": _evidence(),
        "evidence_details": {
            "due_by": due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
            "submission_method": "not_submitted",
        },
        "intended_submission_method": None,
        # A chargeback has already taken the funds: refunding is no longer possible.
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": VISA_FRAUD_REASON_CODE if card["network"] == "visa" else None,
        "payment_intent": charge["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "case_type": "chargeback",
                "network": card["network"],
                "network_reason_code": (
                    VISA_FRAUD_REASON_CODE if card["network"] == "visa" else None
                ),
            },
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }
    ctx.store.add(dispute)
    charge["disputed"] = True
    ctx.store.touch()
    # The cardholder's bank opened it, not an API request of the account.
    snapshot = ctx.store.record_event("charge.dispute.created", dispute, NO_REQUEST, ctx.now)
    v2_events.record_thin(ctx.store, snapshot, dispute, NO_REQUEST)
    dispute["balance_transactions"].append(_balance_transaction(ctx, dispute, withdrawal=True))
    ctx.store.record_event("charge.dispute.funds_withdrawn", dispute, NO_REQUEST, ctx.now)
    return dispute


# ---------------------------------------------------------------- API


def _live(ctx: Ctx, dispute_id: str) -> JsonDict:
    dispute = ctx.store.get("dispute", dispute_id)
    if dispute is None:
        raise missing("dispute", dispute_id)
    return dispute


def retrieve(ctx: Ctx, params: JsonDict, dispute_id: str) -> JsonDict:
    """``GET /v1/disputes/{id}``."""
    return render(ctx.store, _live(ctx, dispute_id), params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/disputes`` with ``charge``, ``payment_intent`` and ``created`` filters."""
    items = [
        d
        for d in ctx.store.objects["dispute"].values()
        if all(d[k] == params[k] for k in ("charge", "payment_intent") if k in params)
        and created_matches(d["created"], params.get("created"))
    ]
    return paginate(ctx, "dispute", "dispute", items, params, "/v1/disputes")


def _apply_evidence(dispute: JsonDict, given: JsonDict) -> None:
    for key in ("appeal", "enhanced_evidence"):
        if key in given:
            raise invalid(
                f"The Stripe sandbox does not support `evidence[{key}]`.",
                param=f"evidence[{key}]",
            )
    for key in _FILE_EVIDENCE:
        if given.get(key):
            # No files can be uploaded to the sandbox, so every file id is unknown.
            raise invalid(
                f"No such file upload: '{given[key]}'",
                param=f"evidence[{key}]",
                code="resource_missing",
            )
    evidence = dispute["evidence"]
    for key in (*_TEXT_EVIDENCE, *_FILE_EVIDENCE):
        if key in given:
            evidence[key] = given[key] or None
    total = sum(len(evidence[k] or "") for k in _TEXT_EVIDENCE)
    if total > EVIDENCE_MAX_CHARS:
        raise invalid(
            f"The combined character count of all evidence fields is limited to "
            f"{EVIDENCE_MAX_CHARS:,}; you provided {total:,}.",
            param="evidence",
        )
    dispute["evidence_details"]["has_evidence"] = any(
        evidence[k] for k in (*_TEXT_EVIDENCE, *_FILE_EVIDENCE)
    )


def update(ctx: Ctx, params: JsonDict, dispute_id: str) -> JsonDict:
    """``POST /v1/disputes/{id}``: ``evidence``, ``metadata``, ``submit`` (default true).

    Submitted evidence puts the dispute ``under_review``; Stripe's test evidence
    ``winning_evidence`` / ``losing_evidence`` in ``uncategorized_text`` then closes it as
    ``won`` / ``lost`` at once.
    """
    dispute = _live(ctx, dispute_id)
    if dispute["status"] in _CLOSED:
        raise invalid(
            f"This dispute is already closed ({dispute['status']}); its evidence can no "
            "longer be changed.",
            param="evidence",
        )
    changed = deep_copy(dispute)
    if "metadata" in params:
        changed["metadata"] = apply_metadata(changed["metadata"], params["metadata"])
    if "intended_submission_method" in params:
        changed["intended_submission_method"] = params["intended_submission_method"] or None
    submitting = False
    if "evidence" in params:
        if dispute["status"] not in _OPEN:
            raise invalid(
                "This dispute's evidence has already been submitted and is under review.",
                param="evidence",
            )
        _apply_evidence(changed, params["evidence"])
        submitting = params.get("submit", True)
    elif params.get("submit"):
        if dispute["status"] not in _OPEN:
            raise invalid(
                "This dispute's evidence has already been submitted and is under review.",
                param="submit",
            )
        submitting = True
    if submitting:
        details = changed["evidence_details"]
        details["submission_count"] += 1
        details["submission_method"] = "manual"
        details["past_due"] = ctx.now > details["due_by"]
        changed["status"] = (
            "warning_under_review"
            if dispute["status"] == "warning_needs_response"
            else "under_review"
        )
    before = deep_copy(dispute)
    dispute.clear()
    dispute.update(changed)
    previous = diff(before, dispute)
    if previous:
        ctx.store.touch()
        ctx.store.record_event("charge.dispute.updated", dispute, ctx.request, ctx.now, previous)
    if submitting:
        text = dispute["evidence"]["uncategorized_text"]
        if text == WINNING_EVIDENCE:
            _close(ctx, dispute, "won")
        elif text == LOSING_EVIDENCE:
            _close(ctx, dispute, "lost")
    return render(ctx.store, dispute, params.get("expand", []))


def _close(ctx: Ctx, dispute: JsonDict, status: str) -> None:
    dispute["status"] = status
    ctx.store.touch()
    ctx.store.record_event("charge.dispute.closed", dispute, ctx.request, ctx.now)
    if status == "won":
        dispute["balance_transactions"].append(_balance_transaction(ctx, dispute, withdrawal=False))
        ctx.store.record_event("charge.dispute.funds_reinstated", dispute, ctx.request, ctx.now)


def close(ctx: Ctx, params: JsonDict, dispute_id: str) -> JsonDict:
    """``POST /v1/disputes/{id}/close``: accept the dispute (``lost``, irreversible)."""
    dispute = _live(ctx, dispute_id)
    if dispute["status"] not in _OPEN:
        raise invalid(
            f"This dispute cannot be closed: its status is {dispute['status']}.",
            param="id",
        )
    _close(ctx, dispute, "lost")
    return render(ctx.store, dispute, params.get("expand", []))


ROUTES = [
    Route("GET", "/v1/disputes", DisputeListParams, list_),
    Route("GET", "/v1/disputes/{id}", DisputeRetrieveParams, retrieve),
    Route("POST", "/v1/disputes/{id}", DisputeUpdateParams, update),
    Route("POST", "/v1/disputes/{id}/close", DisputeCloseParams, close),
]
