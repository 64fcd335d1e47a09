"""``/v1/payment_methods``: test cards (from Stripe's test tokens) and a test US bank account.

Card numbers are not accepted by the API (as on Stripe without raw-card-data access): create
cards with ``card[token]=tok_visa`` or attach ``pm_card_visa``-style ids directly.
"""

from __future__ import annotations

from typing import Any

from stripe.params import (
    CustomerPaymentMethodListParams,
    PaymentMethodAttachParams,
    PaymentMethodCreateParams,
    PaymentMethodDetachParams,
    PaymentMethodListParams,
    PaymentMethodRetrieveParams,
    PaymentMethodUpdateParams,
)

from stripe_sandbox.cards import (
    DECLINES,
    LIVE_CARD_IN_TEST_MODE,
    TestCard,
    by_fingerprint,
    card_details,
    from_token,
)
from stripe_sandbox.resources.common import (
    Ctx,
    Route,
    apply_metadata,
    blank_to_none,
    paginate,
    record_update,
    render,
)
from stripe_sandbox.store import deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

RAW_CARD_DATA = (
    "Sending credit card numbers directly to the Stripe API is generally unsafe. We suggest you "
    "use test tokens that map to the test card you are using, see "
    "https://stripe.com/docs/testing. To enable testing raw card data APIs, see "
    "https://support.stripe.com/questions/enabling-access-to-raw-card-data-apis."
)

# The US bank account the hosted pages use for "bank debit" (Stripe's ACH test numbers).
BANK_ROUTING = "110000000"
BANK_ACCOUNT_LAST4 = "6789"

_YEAR = 365 * 24 * 3600


def billing_details(
    email: str | None = None, name: str | None = None, phone: str | None = None
) -> JsonDict:
    """A PaymentMethod's ``billing_details`` (no address collected)."""
    return {
        "address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "email": email,
        "name": name,
        "phone": phone,
        "tax_id": None,
    }


def _base(ctx: Ctx, kind: str, details: JsonDict, metadata: JsonDict | None) -> JsonDict:
    return {
        "id": new_id("pm", 24),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": details,
        "created": ctx.now,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "type": kind,
    }


def new_card(
    ctx: Ctx, card: TestCard, details: JsonDict | None = None, metadata: JsonDict | None = None
) -> JsonDict:
    """Create and store a card PaymentMethod (no event: Stripe sends none for creation)."""
    pm = _base(ctx, "card", details or billing_details(), metadata)
    # Test cards never expire: a few years ahead of the sandbox clock.
    exp_year = 1970 + (ctx.now // _YEAR) + 3
    pm["card"] = card_details(card, exp_year)
    return ctx.store.add(pm)


def new_bank_account(ctx: Ctx, details: JsonDict | None = None) -> JsonDict:
    """Create and store a ``us_bank_account`` PaymentMethod (settles asynchronously)."""
    pm = _base(ctx, "us_bank_account", details or billing_details(), None)
    pm["us_bank_account"] = {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": "sandboxbank00001",
        "last4": BANK_ACCOUNT_LAST4,
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": BANK_ROUTING,
        "status_details": {},
    }
    return ctx.store.add(pm)


def card_of(pm: JsonDict) -> TestCard | None:
    """The test card behind a card PaymentMethod, found by its fingerprint; a card that is
    not a test card declines as Stripe's test mode declines live cards."""
    card = pm.get("card")
    if not card:
        return None
    known = by_fingerprint(card["fingerprint"])
    if known is not None:
        return known
    return TestCard(
        "0000" + card["last4"], card["brand"], card["funding"], DECLINES, LIVE_CARD_IN_TEST_MODE
    )


def attach(ctx: Ctx, pm: JsonDict, customer_id: str) -> JsonDict:
    """Attach a PaymentMethod to a customer (``payment_method.attached``)."""
    pm["customer"] = customer_id
    ctx.store.touch()
    ctx.store.record_event("payment_method.attached", pm, ctx.request, ctx.now)
    return pm


def resolve(ctx: Ctx, pm_id: str, param: str) -> JsonDict:
    """An existing PaymentMethod, or a new card for a test id such as ``pm_card_visa``.

    Raises:
        ApiError: 400 ``resource_missing`` naming ``param``.
    """
    pm = ctx.store.get("payment_method", pm_id)
    if pm is not None:
        return pm
    card = from_token(pm_id) if pm_id.startswith("pm_card_") else None
    if card is None:
        raise ApiError(
            400, f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param=param
        )
    return new_card(ctx, card)


def attach_to(ctx: Ctx, pm: JsonDict, customer_id: str) -> JsonDict:
    """Attach with Stripe's checks: not to a second customer; re-attaching is a no-op."""
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    return attach(ctx, pm, customer_id)


def _live(ctx: Ctx, pm_id: str) -> JsonDict:
    pm = ctx.store.get("payment_method", pm_id)
    if pm is None:
        raise missing("payment_method", pm_id)
    return pm


def _details(given: JsonDict, current: JsonDict | None = None) -> JsonDict:
    out = deep_copy(current) if current else billing_details()
    for key in ("email", "name", "phone", "tax_id"):
        if key in given:
            out[key] = blank_to_none(given[key])
    if "address" in given:
        address = given["address"]
        out["address"] = {
            k: (None if address == "" else address.get(k))
            for k in ("city", "country", "line1", "line2", "postal_code", "state")
        }
    return out


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/payment_methods`` with ``type=card`` and ``card[token]=tok_…``."""
    kind = params.get("type")
    others = sorted(
        k
        for k in params
        if k not in ("type", "card", "billing_details", "metadata", "expand", "allow_redisplay")
    )
    if others:
        raise invalid(
            f"The Stripe sandbox does not support `{others[0]}` on PaymentMethods.",
            param=others[0],
        )
    if kind != "card":
        raise invalid(
            "The Stripe sandbox only creates `type=card` PaymentMethods through the API.",
            param="type",
        )
    given: JsonDict = params.get("card", {})
    if "number" in given:
        raise invalid(RAW_CARD_DATA, param="card[number]")
    token = given.get("token")
    if not token:
        raise invalid(
            "Missing required param: card[token] (a test token such as tok_visa).",
            param="card[token]",
            code="parameter_missing",
        )
    card = from_token(token) if token.startswith("tok_") else None
    if card is None:
        raise invalid(f"No such token: '{token}'", param="card[token]", code="resource_missing")
    pm = new_card(ctx, card, _details(params.get("billing_details", {})), params.get("metadata"))
    if "allow_redisplay" in params:
        pm["allow_redisplay"] = params["allow_redisplay"]
    pm["metadata"] = apply_metadata({}, params.get("metadata", {}))
    return render(ctx.store, pm, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, pm_id: str) -> JsonDict:
    """``GET /v1/payment_methods/{id}``."""
    return render(ctx.store, _live(ctx, pm_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, pm_id: str) -> JsonDict:
    """``POST /v1/payment_methods/{id}``: ``billing_details``, ``metadata``,
    ``allow_redisplay`` (``payment_method.updated``)."""
    pm = _live(ctx, pm_id)
    for key in ("card", "us_bank_account"):
        if key in params:
            raise invalid(f"The Stripe sandbox does not support updating `{key}`.", param=key)
    before = deep_copy(pm)
    if "billing_details" in params:
        pm["billing_details"] = _details(params["billing_details"], pm["billing_details"])
    if "metadata" in params:
        pm["metadata"] = apply_metadata(pm["metadata"], params["metadata"])
    if "allow_redisplay" in params:
        pm["allow_redisplay"] = params["allow_redisplay"]
    record_update(ctx, "payment_method", before, pm)
    return render(ctx.store, pm, params.get("expand", []))


def attach_route(ctx: Ctx, params: JsonDict, pm_id: str) -> JsonDict:
    """``POST /v1/payment_methods/{id}/attach`` with ``customer`` (``pm_card_visa``-style
    test ids attach a new card)."""
    customer_id = params.get("customer")
    if not customer_id:
        raise invalid(
            "Missing required param: customer.", param="customer", code="parameter_missing"
        )
    if ctx.store.get("customer", customer_id) is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    pm = ctx.store.get("payment_method", pm_id)
    if pm is None:
        card = from_token(pm_id) if pm_id.startswith("pm_card_") else None
        if card is None:
            raise missing("payment_method", pm_id)
        pm = new_card(ctx, card)
    attach_to(ctx, pm, customer_id)
    return render(ctx.store, pm, params.get("expand", []))


def detach(ctx: Ctx, params: JsonDict, pm_id: str) -> JsonDict:
    """``POST /v1/payment_methods/{id}/detach``; a customer's default is unset too."""
    pm = _live(ctx, pm_id)
    customer_id = pm["customer"]
    if customer_id is None:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    pm["customer"] = None
    ctx.store.touch()
    ctx.store.record_event(
        "payment_method.detached", pm, ctx.request, ctx.now, {"customer": customer_id}
    )
    customer = ctx.store.get("customer", customer_id)
    if customer is not None and customer["invoice_settings"]["default_payment_method"] == pm_id:
        before = deep_copy(customer)
        customer["invoice_settings"]["default_payment_method"] = None
        record_update(ctx, "customer", before, customer)
    return render(ctx.store, pm, params.get("expand", []))


def _matching(ctx: Ctx, params: JsonDict, customer_id: str | None) -> list[JsonDict]:
    kind = params.get("type")
    redisplay = params.get("allow_redisplay")

    def keep(pm: JsonDict) -> bool:
        return (
            (customer_id is None or pm["customer"] == customer_id)
            and (kind is None or pm["type"] == kind)
            and (redisplay is None or pm["allow_redisplay"] == redisplay)
        )

    return [pm for pm in ctx.store.objects["payment_method"].values() if keep(pm)]


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/payment_methods`` with ``customer``, ``type`` and ``allow_redisplay``."""
    customer_id = params.get("customer")
    if customer_id and ctx.store.get("customer", customer_id) is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    items = _matching(ctx, params, customer_id)
    return paginate(ctx, "payment_method", "payment_method", items, params, "/v1/payment_methods")


def list_for_customer(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``GET /v1/customers/{id}/payment_methods``."""
    if ctx.store.get("customer", customer_id) is None:
        raise missing("customer", customer_id)
    items = _matching(ctx, params, customer_id)
    url = f"/v1/customers/{customer_id}/payment_methods"
    return paginate(ctx, "payment_method", "payment_method", items, params, url)


def customer_default(ctx: Ctx, customer: JsonDict) -> JsonDict | None:
    """The customer's ``invoice_settings.default_payment_method``, if it still exists."""
    pm_id: Any = customer["invoice_settings"]["default_payment_method"]
    return ctx.store.get("payment_method", pm_id) if pm_id else None


ROUTES = [
    Route("POST", "/v1/payment_methods", PaymentMethodCreateParams, create),
    Route("GET", "/v1/payment_methods", PaymentMethodListParams, list_),
    Route("GET", "/v1/payment_methods/{id}", PaymentMethodRetrieveParams, retrieve),
    Route("POST", "/v1/payment_methods/{id}", PaymentMethodUpdateParams, update),
    Route("POST", "/v1/payment_methods/{id}/attach", PaymentMethodAttachParams, attach_route),
    Route("POST", "/v1/payment_methods/{id}/detach", PaymentMethodDetachParams, detach),
    Route(
        "GET",
        "/v1/customers/{id}/payment_methods",
        CustomerPaymentMethodListParams,
        list_for_customer,
    ),
]
