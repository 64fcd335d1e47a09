"""``/v1/checkout/sessions`` (``mode=payment``): create, retrieve, list, line items, expire.

A session's ``url`` is the sandbox's own hosted page (``/_sandbox/checkout/{id}``, see
``hosted.py``), where a person pays with a test card or a bank debit. ``pay``, ``settle``
and ``expire`` hold the state changes and record the events Stripe sends, in its order:

- card paid: ``payment_intent.created``, ``charge.succeeded``, ``payment_intent.succeeded``,
  ``checkout.session.completed`` (``payment_status=paid``)
- card declined: ``payment_intent.created`` (first attempt only), ``charge.failed``,
  ``payment_intent.payment_failed``; the session stays ``open``
- bank debit: ``payment_intent.created``, ``charge.pending``, ``payment_intent.processing``,
  ``checkout.session.completed`` (``payment_status=unpaid``); on settlement
  ``charge.succeeded``, ``payment_intent.succeeded``,
  ``checkout.session.async_payment_succeeded`` or ``charge.failed``,
  ``payment_intent.payment_failed``, ``checkout.session.async_payment_failed``
- expiry: ``payment_intent.canceled`` (if a payment was attempted),
  ``checkout.session.expired``
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionLineItemListParams,
    SessionListParams,
    SessionRetrieveParams,
)

from stripe_sandbox import cards
from stripe_sandbox.resources import customers, disputes, payment_methods, payments
from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    apply_metadata,
    check_url,
    created_matches,
    includable,
    paginate,
    render,
)
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

EXPANDABLE["checkout.session"] = {
    "customer": "customer",
    "payment_intent": "payment_intent",
    "invoice": "invoice",
    "payment_link": "payment_link",
    "setup_intent": "setup_intent",
    "subscription": "subscription",
}
EXPANDABLE["item"] = {}

MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 3600
# Stripe's minimum charge is about 50 cents; the sandbox uses 50 minor units everywhere.
MIN_AMOUNT = 50
MAX_LINE_ITEMS = 100

# Parameters the sandbox implements; any other one is refused with a clear 400 rather
# than silently ignored.
_SUPPORTED = frozenset(
    {
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "excluded_payment_method_types",
        "billing_address_collection",
        "cancel_url",
        "client_reference_id",
        "currency",
        "customer",
        "customer_creation",
        "customer_email",
        "expand",
        "expires_at",
        "line_items",
        "locale",
        "metadata",
        "mode",
        "payment_intent_data",
        "phone_number_collection",
        "submit_type",
        "success_url",
        "ui_mode",
        "automatic_tax",
        "tax_id_collection",
    }
)
_PAYMENT_INTENT_DATA = frozenset(
    {"description", "metadata", "receipt_email", "setup_future_usage", "statement_descriptor"}
)


def checkout_url(base_url: str, session_id: str) -> str:
    """Where a session's hosted payment page lives."""
    return f"{base_url}/_sandbox/checkout/{session_id}"


def _unsupported(param: str) -> ApiError:
    return invalid(
        f"The Stripe sandbox does not support `{param}` on Checkout Sessions yet.", param=param
    )


# ---------------------------------------------------------------- create


def _line_item(ctx: Ctx, given: JsonDict, index: int) -> JsonDict:
    """Validate one ``line_items[i]`` and build its ``item`` (unstored)."""
    name = f"line_items[{index}]"
    if "tax_rates" in given:
        raise _unsupported(f"{name}[tax_rates]")
    if ("price" in given) == ("price_data" in given):
        raise invalid(
            f"You must specify either `price` or `price_data` in `{name}`, but not both.",
            param=name,
        )
    if "quantity" not in given:
        raise invalid(
            f"Quantity is required. Add `quantity` to `{name}`",
            param=f"{name}[quantity]",
            code="parameter_missing",
        )
    quantity = given["quantity"]
    if not 1 <= quantity <= 999_999:
        raise invalid(
            "This value must be greater than or equal to 1 and at most 999999.",
            param=f"{name}[quantity]",
            code="parameter_invalid_integer",
        )
    if "price" in given:
        price = ctx.store.get("price", given["price"])
        if price is None:
            raise ApiError(
                400,
                f"No such price: '{given['price']}'",
                code="resource_missing",
                param=f"{name}[price]",
            )
        if not price["active"]:
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.",
                param=f"{name}[price]",
            )
        if price["unit_amount"] is None:
            raise _unsupported(f"{name}[price] (prices without a unit_amount)")
        price = deep_copy(price)
        product = ctx.store.get("product", price["product"])
        description = product["name"] if product else price["nickname"]
    else:
        price, description = _inline_price(ctx, given["price_data"], f"{name}[price_data]")
    if price["type"] == "recurring":
        raise invalid(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            param=f"{name}[price]",
        )
    amount = price["unit_amount"] * quantity
    adjustable = given.get("adjustable_quantity")
    return {
        "id": new_id("li", 24),
        "object": "item",
        "adjustable_quantity": None
        if adjustable is None
        else {
            "enabled": adjustable["enabled"],
            "maximum": adjustable.get("maximum"),
            "minimum": adjustable.get("minimum"),
        },
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": description,
        "metadata": apply_metadata({}, given.get("metadata", {})),
        "price": price,
        "quantity": quantity,
    }


def _inline_price(ctx: Ctx, data: JsonDict, name: str) -> tuple[JsonDict, str | None]:
    """A Price built from ``price_data`` (kept inside the line item, not in the catalog)."""
    if "recurring" in data:
        raise invalid(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            param=f"{name}[recurring]",
        )
    if ("product" in data) == ("product_data" in data):
        raise invalid(
            f"You must specify either `product` or `product_data` in `{name}`, but not both.",
            param=name,
        )
    if "unit_amount_decimal" in data and "unit_amount" in data:
        raise invalid(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param=f"{name}[unit_amount_decimal]",
            code="parameters_exclusive",
        )
    if "unit_amount_decimal" in data:
        raise _unsupported(f"{name}[unit_amount_decimal]")
    if "unit_amount" not in data:
        raise invalid(
            f"Missing required param: {name}[unit_amount].",
            param=f"{name}[unit_amount]",
            code="parameter_missing",
        )
    amount = data["unit_amount"]
    if amount < 0:
        raise invalid(
            "Invalid non-negative integer",
            param=f"{name}[unit_amount]",
            code="parameter_invalid_integer",
        )
    currency = data["currency"].lower()
    if len(currency) != 3 or not currency.isalpha():
        raise invalid(f"Invalid currency: {data['currency']}", param=f"{name}[currency]")
    if "product" in data:
        product = ctx.store.get("product", data["product"])
        if product is None:
            raise ApiError(
                400,
                f"No such product: '{data['product']}'",
                code="resource_missing",
                param=f"{name}[product]",
            )
        if not product["active"]:
            raise invalid(
                "The product specified is archived. This field only accepts active products.",
                param=f"{name}[product]",
            )
        product_id, description = product["id"], product["name"]
    else:
        product_data = data["product_data"]
        if "tax_code" in product_data:
            raise _unsupported(f"{name}[product_data][tax_code]")
        product_id, description = new_id("prod"), product_data["name"]
    price: JsonDict = {
        "id": new_id("price", 24),
        "object": "price",
        "active": False,
        "billing_scheme": "per_unit",
        "created": ctx.now,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": None,
        "tax_behavior": data.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
    return price, description


def _method_types(params: JsonDict, currency: str) -> list[str]:
    # Cards everywhere; ACH bank debits (asynchronous) only for USD. The allowed and
    # excluded lists filter this set, as they filter Stripe's dynamic payment methods.
    eligible = ["card", "us_bank_account"] if currency == "usd" else ["card"]
    allowed = params.get("allowed_payment_method_types")
    excluded = params.get("excluded_payment_method_types", [])
    types = [t for t in eligible if (allowed is None or t in allowed) and t not in excluded]
    if not types:
        raise invalid(
            "None of the payment method types this Checkout Session allows can be used for "
            f"{currency.upper()} payments in the Stripe sandbox (it offers card, and "
            "us_bank_account for USD).",
            param="allowed_payment_method_types" if allowed is not None else None,
        )
    return types


def _check_params(ctx: Ctx, params: JsonDict) -> None:
    for key in sorted(params):
        if key not in _SUPPORTED:
            raise _unsupported(key)
    for key in sorted(params.get("payment_intent_data", {})):
        if key not in _PAYMENT_INTENT_DATA:
            raise _unsupported(f"payment_intent_data[{key}]")
    if params.get("automatic_tax", {}).get("enabled"):
        raise _unsupported("automatic_tax[enabled]")
    if params.get("tax_id_collection", {}).get("enabled"):
        raise _unsupported("tax_id_collection[enabled]")
    mode = params.get("mode", "payment")
    if mode != "payment":
        raise invalid(
            f"The Stripe sandbox supports only `mode=payment` Checkout Sessions, not `{mode}`.",
            param="mode",
        )
    if params.get("ui_mode", "hosted_page") != "hosted_page":
        raise invalid(
            "The Stripe sandbox supports only `ui_mode=hosted_page` Checkout Sessions.",
            param="ui_mode",
        )
    if "customer" in params and "customer_email" in params:
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
            code="parameters_exclusive",
        )
    if "customer" in params and "customer_creation" in params:
        raise invalid(
            "`customer_creation` can only be used when `customer` is not set.",
            param="customer_creation",
        )
    if "customer" in params and ctx.store.get("customer", params["customer"]) is None:
        raise ApiError(
            400,
            f"No such customer: '{params['customer']}'",
            code="resource_missing",
            param="customer",
        )
    if len(params.get("client_reference_id", "")) > 200:
        raise invalid(
            "Invalid string: client_reference_id must be at most 200 characters.",
            param="client_reference_id",
        )
    if not params.get("line_items"):
        raise invalid(
            "Missing required param: line_items.", param="line_items", code="parameter_missing"
        )
    if len(params["line_items"]) > MAX_LINE_ITEMS:
        raise invalid(
            f"A Checkout Session can have at most {MAX_LINE_ITEMS} line items.",
            param="line_items",
        )
    expires_at = params.get("expires_at")
    if expires_at is not None:
        if expires_at < ctx.now + MIN_LIFETIME:
            raise invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                param="expires_at",
            )
        if expires_at > ctx.now + MAX_LIFETIME:
            raise invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/checkout/sessions`` (``mode=payment``)."""
    _check_params(ctx, params)
    items = [_line_item(ctx, given, i) for i, given in enumerate(params["line_items"])]
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise invalid(
            "All line items must have the same currency; got "
            + ", ".join(sorted(currencies))
            + ".",
            param="line_items",
        )
    currency = currencies.pop()
    if "currency" in params and params["currency"].lower() != currency:
        raise invalid(
            f"The currency `{params['currency']}` does not match the line items' currency "
            f"`{currency}`.",
            param="currency",
        )
    total = sum(item["amount_total"] for item in items)
    if total < MIN_AMOUNT:
        raise invalid(
            "The Checkout Session's total amount due must add up to at least "
            f"{MIN_AMOUNT} {currency} minor units (Stripe: about $0.50).",
            param="line_items",
        )
    urls = {k: check_url(params[k], k) for k in ("success_url", "cancel_url") if k in params}
    session_id = new_id("cs_test", 58)
    expires_at = params.get("expires_at", ctx.now + MAX_LIFETIME)
    intent_data = params.get("payment_intent_data", {})
    # Validated now, applied to the PaymentIntent when the customer pays.
    apply_metadata({}, intent_data.get("metadata", {}))
    setup_future_usage = intent_data.get("setup_future_usage")
    card_options: JsonDict = {"request_three_d_secure": "automatic"}
    if setup_future_usage:
        card_options["setup_future_usage"] = setup_future_usage
    customer_id = params.get("customer")
    session: JsonDict = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes"),
        "allowed_payment_method_types": params.get("allowed_payment_method_types"),
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": urls.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": ctx.now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": None
        if customer_id
        else params.get("customer_creation", "if_required"),
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "excluded_payment_method_types": params.get("excluded_payment_method_types"),
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": params.get("locale"),
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": card_options},
        "payment_method_types": _method_types(params, currency),
        "payment_status": "unpaid",
        "phone_number_collection": {
            "enabled": bool(params.get("phone_number_collection", {}).get("enabled"))
        },
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": urls.get("success_url"),
        "tax_id_collection": {"enabled": False, "required": "never"},
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": checkout_url(ctx.store.base_url, session_id),
        "wallet_options": None,
    }
    store = ctx.store
    store.add(session)
    store.children[session_id] = [store.add(item)["id"] for item in items]
    # Applied when the customer pays (Stripe keeps these on the session, unexposed).
    store.hidden[session_id] = {"payment_intent_data": deep_copy(intent_data)}
    if store.next_expiry is None or 0 < expires_at < store.next_expiry:
        store.next_expiry = expires_at
    return render(store, session, params.get("expand", []))


# ---------------------------------------------------------------- read


def _live(ctx: Ctx, session_id: str) -> JsonDict:
    session = ctx.store.get("checkout.session", session_id)
    if session is None:
        raise missing("checkout.session", session_id)
    return session


def line_items_of(store: Store, session: JsonDict) -> list[JsonDict]:
    """A session's line items, in the order they were given."""
    return [store.objects["item"][i] for i in store.children.get(session["id"], [])]


includable("checkout.session", "line_items", line_items_of, "/v1/checkout/sessions/{id}/line_items")


def retrieve(ctx: Ctx, params: JsonDict, session_id: str) -> JsonDict:
    """``GET /v1/checkout/sessions/{id}``."""
    return render(ctx.store, _live(ctx, session_id), params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/checkout/sessions`` filtered by ``customer``, ``payment_intent``, ``status``,
    ``customer_details[email]`` and ``created``."""
    email = params.get("customer_details", {}).get("email")

    def keep(s: JsonDict) -> bool:
        details = s["customer_details"] or {}
        return (
            all(s[k] == params[k] for k in ("customer", "payment_intent", "status") if k in params)
            and ("payment_link" not in params or s["payment_link"] == params["payment_link"])
            and ("subscription" not in params or s["subscription"] == params["subscription"])
            and (email is None or details.get("email") == email)
            and created_matches(s["created"], params.get("created"))
        )

    items = [s for s in ctx.store.objects["checkout.session"].values() if keep(s)]
    return paginate(
        ctx, "checkout.session", "checkout session", items, params, "/v1/checkout/sessions"
    )


def list_line_items(ctx: Ctx, params: JsonDict, session_id: str) -> JsonDict:
    """``GET /v1/checkout/sessions/{id}/line_items``, in the order given at creation."""
    session = _live(ctx, session_id)
    return paginate(
        ctx,
        "item",
        "line item",
        line_items_of(ctx.store, session),
        params,
        f"/v1/checkout/sessions/{session_id}/line_items",
        newest_first=False,
    )


# ---------------------------------------------------------------- state changes


def expire_now(ctx: Ctx, session: JsonDict) -> None:
    """Expire an open session (``payment_intent.canceled`` first if one was attempted)."""
    intent_id = session["payment_intent"]
    intent = ctx.store.get("payment_intent", intent_id) if intent_id else None
    if intent is not None and intent["status"] == "requires_payment_method":
        payments.cancel(ctx, intent, "abandoned")
    session.update({"status": "expired", "url": None})
    ctx.store.touch()
    ctx.store.record_event("checkout.session.expired", session, ctx.request, ctx.now)


def expire(ctx: Ctx, params: JsonDict, session_id: str) -> JsonDict:
    """``POST /v1/checkout/sessions/{id}/expire``: only an ``open`` session."""
    session = _live(ctx, session_id)
    if session["status"] != "open":
        raise invalid(
            "Only Checkout Sessions with a status of `open` can be expired. This Checkout "
            f"Session has a status of `{session['status']}`.",
        )
    expire_now(ctx, session)
    _recompute_next_expiry(ctx.store)
    return render(ctx.store, session, params.get("expand", []))


def _recompute_next_expiry(store: Store) -> None:
    pending = [
        s["expires_at"] for s in store.objects["checkout.session"].values() if s["status"] == "open"
    ]
    store.next_expiry = min(pending) if pending else None


def sweep_expired(store: Store) -> None:
    """Expire every open session whose ``expires_at`` has passed (``checkout.session.expired``).

    Cheap when nothing is due: the store remembers the earliest expiry. The caller holds
    the store lock.
    """
    now = store.now()
    if store.next_expiry is None or store.next_expiry > now:
        return
    ctx = Ctx(store, now, RequestInfo(None, None))
    due = [
        s
        for s in store.objects["checkout.session"].values()
        if s["status"] == "open" and s["expires_at"] <= now
    ]
    for session in sorted(due, key=store.sort_key):
        expire_now(ctx, session)
    _recompute_next_expiry(store)


@dataclass(frozen=True)
class PayResult:
    """The outcome of paying a session: the session, and the error if the payment failed."""

    session: JsonDict
    error: ApiError | None


def _not_open(session: JsonDict) -> ApiError:
    return invalid(
        f"This Checkout Session is {session['status']} and can no longer be paid.",
        param="id",
    )


def pay(
    ctx: Ctx,
    session: JsonDict,
    *,
    card_number: str | None,
    bank_debit: bool = False,
    email: str | None = None,
    name: str | None = None,
) -> PayResult:
    """What submitting the hosted payment page does.

    Args:
        ctx: Context (a null request: events come from the customer's action).
        session: An open session.
        card_number: A test card number (ignored for a bank debit).
        bank_debit: Pay with the sandbox's test US bank account (settles later).
        email: The customer's email when the session does not know one.
        name: Cardholder or account holder name.

    Raises:
        ApiError: The session is not open, the email is missing, the card number is
            invalid (nothing is recorded then, as Checkout checks it before submitting), or
            bank debit is not offered.
    """
    if session["status"] != "open":
        raise _not_open(session)
    store = ctx.store
    customer = store.get("customer", session["customer"]) if session["customer"] else None
    email = (customer or {}).get("email") or session["customer_email"] or email
    if not email:
        raise invalid("Enter an email address.", param="email", code="email_invalid")
    name = name or (customer or {}).get("name")
    details = payment_methods.billing_details(email, name)
    if bank_debit:
        if "us_bank_account" not in session["payment_method_types"]:
            raise invalid(
                "This Checkout Session does not accept bank debits.", param="payment_method"
            )
        pm = payment_methods.new_bank_account(ctx, details)
    else:
        card = cards.lookup(card_number or "")
        if card is None:
            raise ApiError(
                402,
                "Your card number is invalid.",
                type_="card_error",
                code="incorrect_number",
                param="number",
            )
        pm = payment_methods.new_card(ctx, card, details)
    intent = _intent_for(ctx, session)
    intent_data = store.hidden.get(session["id"], {}).get("payment_intent_data", {})
    if intent_data.get("setup_future_usage") and customer is not None:
        payment_methods.attach(ctx, pm, customer["id"])
    result = payments.attempt(ctx, intent, pm, off_session=False)
    if result.status == "requires_payment_method":
        return PayResult(session, result.error)
    _complete(ctx, session, email, name)
    disputes.follow_up(ctx, result.charge)
    return PayResult(session, None)


def _intent_for(ctx: Ctx, session: JsonDict) -> JsonDict:
    existing = session["payment_intent"]
    if existing:
        return ctx.store.objects["payment_intent"][existing]
    data = ctx.store.hidden.get(session["id"], {}).get("payment_intent_data", {})
    intent = payments.new_intent(
        ctx,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=session["customer"],
        payment_method_types=session["payment_method_types"],
        description=data.get("description"),
        metadata=apply_metadata({}, data.get("metadata", {})),
        receipt_email=data.get("receipt_email"),
        statement_descriptor=data.get("statement_descriptor"),
        setup_future_usage=data.get("setup_future_usage"),
    )
    session["payment_intent"] = intent["id"]
    return intent


def _complete(ctx: Ctx, session: JsonDict, email: str, name: str | None) -> None:
    store = ctx.store
    intent = store.objects["payment_intent"][session["payment_intent"]]
    if session["customer"] is None and session["customer_creation"] == "always":
        customer = customers.create(ctx, {"email": email, **({"name": name} if name else {})}, "")
        session["customer"] = customer["id"]
        intent["customer"] = customer["id"]
    session.update(
        {
            "status": "complete",
            "payment_status": "paid" if intent["status"] == "succeeded" else "unpaid",
            "url": None,
            "customer_details": {
                "address": None,
                "business_name": None,
                "email": email,
                "individual_name": None,
                "name": name,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        }
    )
    store.touch()
    store.record_event("checkout.session.completed", session, ctx.request, ctx.now)
    _recompute_next_expiry(store)


def settle(ctx: Ctx, session: JsonDict, succeeded: bool) -> JsonDict:
    """Finish a completed session's pending bank debit and record the async event.

    Raises:
        ApiError: The session has no payment awaiting settlement.
    """
    intent_id = session["payment_intent"]
    intent = ctx.store.get("payment_intent", intent_id) if intent_id else None
    if session["status"] != "complete" or intent is None or intent["status"] != "processing":
        raise invalid(
            "This Checkout Session has no payment awaiting settlement (only a completed "
            "session paid by bank debit has one).",
            param="id",
        )
    payments.settle(ctx, intent, succeeded)
    if succeeded:
        session["payment_status"] = "paid"
        event = "checkout.session.async_payment_succeeded"
    else:
        event = "checkout.session.async_payment_failed"
    ctx.store.touch()
    ctx.store.record_event(event, session, ctx.request, ctx.now)
    return session


ROUTES = [
    Route("POST", "/v1/checkout/sessions", SessionCreateParams, create),
    Route("GET", "/v1/checkout/sessions", SessionListParams, list_),
    Route("GET", "/v1/checkout/sessions/{id}", SessionRetrieveParams, retrieve),
    Route(
        "GET",
        "/v1/checkout/sessions/{id}/line_items",
        SessionLineItemListParams,
        list_line_items,
    ),
    Route("POST", "/v1/checkout/sessions/{id}/expire", SessionExpireParams, expire),
]
