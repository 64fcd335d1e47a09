"""``/v1/customers``: create, retrieve, update, delete, list."""

from __future__ import annotations

import secrets
from typing import Any

from stripe.params import (
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerListParams,
    CustomerRetrieveParams,
    CustomerSearchParams,
    CustomerUpdateParams,
)

from stripe_sandbox.resources import billing, payment_methods, sources, test_clocks
from stripe_sandbox.resources.common import (
    Ctx,
    Route,
    apply_metadata,
    blank_to_none,
    created_matches,
    paginate,
    render,
    save_update,
)
from stripe_sandbox.search import CUSTOMER_FIELDS, search_page
from stripe_sandbox.store import Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

_ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
_TAX_EXEMPT = ("none", "exempt", "reverse")


def new_customer(now: int) -> JsonDict:
    """A customer with every field Stripe sends for a fresh one (API 2026-10-28.endive)."""
    return {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": now,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "individual_name": None,
        # Stripe derives an 8-character uppercase prefix for invoice numbers.
        "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def _address(value: Any) -> JsonDict | None:
    if value == "":
        return None
    return {key: value.get(key) for key in _ADDRESS_KEYS}


def _apply(customer: JsonDict, params: JsonDict, store: Store, new_pm: str | None = None) -> None:
    """Write create/update params onto a customer (validation already done).

    ``new_pm`` is a PaymentMethod being attached by the same request (``payment_method`` on
    create), so it may become the default.
    """
    if "default_source" in params:
        source_id = blank_to_none(params["default_source"])
        found = store.get("card", source_id) if source_id else None
        if source_id and (found is None or found["customer"] != customer["id"]):
            raise ApiError(
                400,
                f"No such source: '{source_id}'",
                code="resource_missing",
                param="default_source",
            )
        customer["default_source"] = source_id
    for key in ("email", "name", "phone", "description", "business_name", "individual_name"):
        if key in params:
            customer[key] = blank_to_none(params[key])
    if "balance" in params:
        customer["balance"] = params["balance"]
    if "invoice_prefix" in params:
        prefix = params["invoice_prefix"]
        if not (1 <= len(prefix) <= 12 and prefix.isalnum() and prefix.upper() == prefix):
            raise invalid(
                "Invoice prefix must be 1-12 uppercase letters or numbers.",
                param="invoice_prefix",
            )
        customer["invoice_prefix"] = prefix
    if "next_invoice_sequence" in params:
        customer["next_invoice_sequence"] = params["next_invoice_sequence"]
    if "preferred_locales" in params:
        customer["preferred_locales"] = list(params["preferred_locales"])
    if "tax_exempt" in params:
        value = blank_to_none(params["tax_exempt"]) or "none"
        if value not in _TAX_EXEMPT:
            raise invalid(
                "Invalid tax_exempt: must be one of none, exempt, or reverse", param="tax_exempt"
            )
        customer["tax_exempt"] = value
    if "address" in params:
        customer["address"] = _address(params["address"])
    if "shipping" in params:
        shipping = params["shipping"]
        customer["shipping"] = (
            None
            if shipping == ""
            else {
                "address": _address(shipping["address"]),
                "carrier": None,
                "name": shipping["name"],
                "phone": shipping.get("phone"),
                "tracking_number": None,
            }
        )
    if "invoice_settings" in params:
        _apply_invoice_settings(customer, params["invoice_settings"], store, new_pm)
    if "metadata" in params:
        customer["metadata"] = apply_metadata(customer["metadata"], params["metadata"])


def _apply_invoice_settings(
    customer: JsonDict, given: JsonDict, store: Store, new_pm: str | None
) -> None:
    current = customer["invoice_settings"]
    if "default_payment_method" in given:
        pm_id = blank_to_none(given["default_payment_method"])
        pm = store.get("payment_method", pm_id) if pm_id else None
        if pm_id and pm is None:
            raise ApiError(
                400,
                f"No such PaymentMethod: '{pm_id}'",
                code="resource_missing",
                param="invoice_settings[default_payment_method]",
            )
        if pm is not None and pm["customer"] != customer["id"] and pm_id != new_pm:
            raise invalid(
                f"The customer does not have a payment method with the ID {pm_id}. The payment "
                "method must be attached to the customer.",
                param="invoice_settings[default_payment_method]",
            )
        current["default_payment_method"] = pm_id
    if "custom_fields" in given:
        fields = given["custom_fields"]
        current["custom_fields"] = (
            None if fields == "" else [{"name": f["name"], "value": f["value"]} for f in fields]
        )
    if "footer" in given:
        current["footer"] = blank_to_none(given["footer"])
    if "rendering_options" in given:
        options = given["rendering_options"]
        current["rendering_options"] = (
            None
            if options == ""
            else {
                "amount_tax_display": blank_to_none(options.get("amount_tax_display")),
                "template": blank_to_none(options.get("template")),
            }
        )


def _live(ctx: Ctx, customer_id: str) -> JsonDict:
    customer = ctx.store.get("customer", customer_id)
    if customer is None:
        raise missing("customer", customer_id)
    return customer


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/customers`` (``test_clock``: the customer lives at the clock's time)."""
    customer = new_customer(ctx.now)
    if params.get("test_clock"):
        test_clocks.check_room(ctx, params["test_clock"], "test_clock")
        clock = ctx.store.objects[test_clocks.KIND][params["test_clock"]]
        customer.update({"test_clock": clock["id"], "created": clock["frozen_time"]})
    pm: JsonDict | None = None
    if "payment_method" in params:
        pm = payment_methods.resolve(ctx, params["payment_method"], "payment_method")
        if pm["customer"] is not None:
            raise invalid(
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )
    _apply(customer, params, ctx.store, pm["id"] if pm else None)
    card = None
    if "source" in params:
        # The new card is the customer's default source from the start.
        card = sources.new_card_source(ctx, customer, params["source"], "source")
        customer["default_source"] = card["id"]
    ctx.store.add(customer)
    ctx.store.record_event("customer.created", customer, ctx.request, ctx.now)
    if card is not None:
        ctx.store.record_event("customer.source.created", card, ctx.request, ctx.now)
    if pm is not None:
        payment_methods.attach(ctx, pm, customer["id"])
    return render(ctx.store, customer, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``GET /v1/customers/{id}``; a deleted customer answers its deletion stub, as Stripe does."""
    stub = ctx.store.deleted.get(customer_id)
    if stub is not None and stub["object"] == "customer":
        return dict(stub)
    return render(ctx.store, _live(ctx, customer_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``POST /v1/customers/{id}``."""
    customer = _live(ctx, customer_id)
    changed = deep_copy(customer)
    _apply(changed, params, ctx.store)
    if "source" in params:
        # `source` adds a card and makes it the default source.
        card = sources.new_card_source(ctx, customer, params["source"], "source")
        ctx.store.record_event("customer.source.created", card, ctx.request, ctx.now)
        changed["default_source"] = card["id"]
    return save_update(ctx, "customer", customer, changed, params)


def delete(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``DELETE /v1/customers/{id}``: its subscriptions are canceled at once first
    (``customer.subscription.deleted``), as on Stripe."""
    customer = _live(ctx, customer_id)
    when = billing.clock_now(ctx.store, customer, ctx.now)
    for sub in list(ctx.store.objects["subscription"].values()):
        if sub["customer"] == customer_id and sub["status"] not in billing.ENDED:
            billing.end(Ctx(ctx.store, when, ctx.request), sub, "cancellation_requested")
    stub = ctx.store.remove("customer", customer_id)
    ctx.store.record_event("customer.deleted", customer, ctx.request, ctx.now)
    return dict(stub)


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/customers`` with ``email`` and ``created`` filters."""
    email = params.get("email")
    created = params.get("created")
    test_clock = params.get("test_clock")
    items = [
        c
        for c in ctx.store.objects["customer"].values()
        if (email is None or c["email"] == email)
        and created_matches(c["created"], created)
        and (test_clock is None or c["test_clock"] == test_clock)
    ]
    return paginate(ctx, "customer", "customer", items, params, "/v1/customers")


def search(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/customers/search`` on ``created``, ``email``, ``metadata``, ``name``,
    ``phone``."""
    items = ctx.store.objects["customer"].values()
    return search_page(ctx, items, params, "/v1/customers/search", "customers", CUSTOMER_FIELDS)


ROUTES = [
    # Before /v1/customers/{id}, which would otherwise take "search" for an id.
    Route("GET", "/v1/customers/search", CustomerSearchParams, search),
    Route("POST", "/v1/customers", CustomerCreateParams, create),
    Route("GET", "/v1/customers", CustomerListParams, list_),
    Route("GET", "/v1/customers/{id}", CustomerRetrieveParams, retrieve),
    Route("POST", "/v1/customers/{id}", CustomerUpdateParams, update),
    Route("DELETE", "/v1/customers/{id}", CustomerDeleteParams, delete),
]
