"""``/v1/customers/{id}/sources``: legacy Card sources made from test tokens (``tok_visa``).

Events: ``customer.source.created`` (and ``customer.updated`` when the card becomes the
default source), ``customer.source.deleted`` (and ``customer.updated`` when the default
changes). Cards are not PaymentMethods here: invoices and Checkout still pay with
PaymentMethods.
"""

from __future__ import annotations

from stripe.params import (
    CustomerCreateSourceParams,
    CustomerDeleteSourceParams,
    CustomerListSourcesParams,
    CustomerRetrieveSourceParams,
)

from stripe_sandbox.cards import from_token
from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    apply_metadata,
    includable,
    paginate,
    record_update,
    render,
)
from stripe_sandbox.store import Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

EXPANDABLE["card"] = {"customer": "customer"}

# How the Card object spells brands (PaymentMethods use lower-case network names).
_BRANDS = {
    "visa": "Visa",
    "mastercard": "MasterCard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
}

_YEAR = 365 * 24 * 3600


def sources_of(store: Store, customer: JsonDict) -> list[JsonDict]:
    """A customer's cards, newest first."""
    found = [c for c in store.objects["card"].values() if c["customer"] == customer["id"]]
    return sorted(found, key=store.sort_key, reverse=True)


includable("customer", "sources", sources_of, "/v1/customers/{id}/sources")


def new_card_source(ctx: Ctx, customer: JsonDict, token: str, param: str) -> JsonDict:
    """Create a Card from a test token for ``customer`` (no event; callers record it).

    Raises:
        ApiError: 400 ``resource_missing`` naming ``param`` for anything but a test token.
    """
    card = from_token(token) if token.startswith("tok_") else None
    if card is None:
        raise ApiError(400, f"No such token: '{token}'", code="resource_missing", param=param)
    source: JsonDict = {
        "id": new_id("card", 24),
        "object": "card",
        "address_city": None,
        "address_country": None,
        "address_line1": None,
        "address_line1_check": None,
        "address_line2": None,
        "address_state": None,
        "address_zip": None,
        "address_zip_check": None,
        "allow_redisplay": "unspecified",
        "brand": _BRANDS.get(card.brand, "Unknown"),
        "country": card.country,
        "customer": customer["id"],
        "cvc_check": "pass",
        "dynamic_last4": None,
        "exp_month": 12,
        "exp_year": 1970 + (ctx.now // _YEAR) + 3,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "last4": card.last4,
        "metadata": {},
        "name": None,
        "regulated_status": "unregulated",
        "tokenization_method": None,
    }
    return ctx.store.add(source)


def add_source(
    ctx: Ctx, customer: JsonDict, token: str, param: str, metadata: object = None
) -> JsonDict:
    """Add a card to a customer (``customer.source.created``), making it the default source
    if there is none (``customer.updated``)."""
    source = new_card_source(ctx, customer, token, param)
    if metadata is not None:
        source["metadata"] = apply_metadata({}, metadata)
    ctx.store.record_event("customer.source.created", source, ctx.request, ctx.now)
    if customer["default_source"] is None:
        before = deep_copy(customer)
        customer["default_source"] = source["id"]
        record_update(ctx, "customer", before, customer)
    return source


def _customer(ctx: Ctx, customer_id: str) -> JsonDict:
    customer = ctx.store.get("customer", customer_id)
    if customer is None:
        raise missing("customer", customer_id)
    return customer


def _own(ctx: Ctx, ids: str) -> tuple[JsonDict, JsonDict]:
    customer_id, _, source_id = ids.partition("/")
    customer = _customer(ctx, customer_id)
    source = ctx.store.get("card", source_id)
    if source is None or source["customer"] != customer_id:
        raise missing("source", source_id)
    return customer, source


def create(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``POST /v1/customers/{id}/sources`` with ``source=tok_…``."""
    customer = _customer(ctx, customer_id)
    source = add_source(ctx, customer, params["source"], "source", params.get("metadata"))
    return render(ctx.store, source, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, ids: str) -> JsonDict:
    """``GET /v1/customers/{id}/sources/{card}``."""
    _, source = _own(ctx, ids)
    return render(ctx.store, source, params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``GET /v1/customers/{id}/sources`` (``object=card`` or nothing)."""
    customer = _customer(ctx, customer_id)
    kind = params.get("object")
    if kind not in (None, "card"):
        raise invalid(
            "The Stripe sandbox only has card sources; `object` must be `card`.", param="object"
        )
    url = f"/v1/customers/{customer_id}/sources"
    return paginate(ctx, "card", "source", sources_of(ctx.store, customer), params, url)


def delete(ctx: Ctx, params: JsonDict, ids: str) -> JsonDict:
    """``DELETE /v1/customers/{id}/sources/{card}`` (``customer.source.deleted``); the next
    newest card becomes the default source."""
    customer, source = _own(ctx, ids)
    stub = ctx.store.remove("card", source["id"])
    ctx.store.record_event("customer.source.deleted", source, ctx.request, ctx.now)
    if customer["default_source"] == source["id"]:
        before = deep_copy(customer)
        rest = sources_of(ctx.store, customer)
        customer["default_source"] = rest[0]["id"] if rest else None
        record_update(ctx, "customer", before, customer)
    return dict(stub)


ROUTES = [
    Route("POST", "/v1/customers/{id}/sources", CustomerCreateSourceParams, create),
    Route("GET", "/v1/customers/{id}/sources", CustomerListSourcesParams, list_),
    Route("GET", "/v1/customers/{id}/sources/{sub}", CustomerRetrieveSourceParams, retrieve),
    Route("DELETE", "/v1/customers/{id}/sources/{sub}", CustomerDeleteSourceParams, delete),
]
