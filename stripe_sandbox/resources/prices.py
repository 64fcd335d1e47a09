"""``/v1/prices``: create, retrieve, update, list (Stripe has no price deletion)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from stripe.params import (
    PriceCreateParams,
    PriceListParams,
    PriceRetrieveParams,
    PriceUpdateParams,
)

from stripe_sandbox.resources.common import (
    Ctx,
    Route,
    apply_metadata,
    blank_to_none,
    created_matches,
    paginate,
    record_update,
    render,
    save_update,
)
from stripe_sandbox.store import deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

_CURRENCY_RE = re.compile(r"[a-z]{3}\Z")
_TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
_INTERVALS = ("day", "week", "month", "year")


def _unsupported(param: str) -> ApiError:
    return invalid(f"The Stripe sandbox does not support `{param}` yet.", param=param)


def build_price(ctx: Ctx, params: JsonDict, product_id: str) -> JsonDict:
    """Validate price-creation params and return a new (unstored) price.

    Used by ``POST /v1/prices`` and by products' ``default_price_data``.

    Raises:
        ApiError: Missing amount, bad currency, unsupported feature (tiers,
            ``currency_options``), or a conflicting ``lookup_key``.
    """
    for key in ("tiers", "tiers_mode", "currency_options"):
        if key in params:
            raise _unsupported(key)
    if params.get("billing_scheme", "per_unit") != "per_unit":
        raise _unsupported("billing_scheme")
    currency = params["currency"].lower()
    if not _CURRENCY_RE.match(currency):
        raise invalid(f"Invalid currency: {params['currency']}", param="currency")
    unit_amount, unit_amount_decimal = _amount(params)
    custom = params.get("custom_unit_amount")
    if unit_amount_decimal is None and custom is None:
        raise invalid(
            "Missing required param: unit_amount.", param="unit_amount", code="parameter_missing"
        )
    tax_behavior = params.get("tax_behavior", "unspecified")
    if tax_behavior not in _TAX_BEHAVIORS:
        raise invalid(
            "Invalid tax_behavior: must be one of exclusive, inclusive, or unspecified",
            param="tax_behavior",
        )
    recurring = params.get("recurring")
    return {
        "id": new_id("price", 24),
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": "per_unit",
        "created": ctx.now,
        "currency": currency,
        "custom_unit_amount": None
        if custom is None
        else {
            "maximum": custom.get("maximum"),
            "minimum": custom.get("minimum"),
            "preset": custom.get("preset"),
        },
        "livemode": False,
        "lookup_key": params.get("lookup_key"),
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "nickname": params.get("nickname"),
        "product": product_id,
        "recurring": None if recurring is None else _recurring(recurring),
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": _transform(params.get("transform_quantity")),
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal,
    }


def _amount(params: JsonDict) -> tuple[int | None, str | None]:
    if "unit_amount" in params and "unit_amount_decimal" in params:
        raise invalid(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            param="unit_amount_decimal",
            code="parameters_exclusive",
        )
    if "unit_amount" in params:
        amount = params["unit_amount"]
        if amount < 0:
            raise invalid(
                "Invalid non-negative integer",
                param="unit_amount",
                code="parameter_invalid_integer",
            )
        return amount, str(amount)
    if "unit_amount_decimal" in params:
        decimal = Decimal(params["unit_amount_decimal"])
        if decimal < 0:
            raise invalid("Invalid decimal: must be non-negative", param="unit_amount_decimal")
        text = format(decimal.normalize(), "f")
        return (int(decimal) if decimal == decimal.to_integral_value() else None), text
    return None, None


def _recurring(given: JsonDict) -> JsonDict:
    if given["interval"] not in _INTERVALS:
        raise invalid(
            "Invalid recurring[interval]: must be one of day, month, week, or year",
            param="recurring[interval]",
        )
    if given.get("meter"):
        raise _unsupported("recurring[meter]")
    return {
        "interval": given["interval"],
        "interval_count": given.get("interval_count", 1),
        "meter": None,
        "trial_period_days": given.get("trial_period_days"),
        "usage_type": given.get("usage_type", "licensed"),
    }


def _transform(given: Any) -> JsonDict | None:
    if given is None:
        return None
    return {"divide_by": given["divide_by"], "round": given["round"]}


def claim_lookup_key(ctx: Ctx, price: JsonDict, key: str | None, transfer: bool) -> None:
    """Give ``key`` to ``price``, taking it from another price only when ``transfer``.

    Raises:
        ApiError: Another price holds the key and ``transfer_lookup_key`` was not set.
    """
    if key is None:
        return
    for other in ctx.store.objects["price"].values():
        if other["id"] != price["id"] and other["lookup_key"] == key:
            if not transfer:
                raise invalid(
                    f"A price (`{other['id']}`) already uses that lookup key.",
                    param="lookup_key",
                )
            before = deep_copy(other)
            other["lookup_key"] = None
            record_update(ctx, "price", before, other)


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/prices`` with ``product`` or ``product_data``."""
    from stripe_sandbox.resources import products  # products <-> prices refer to each other

    if ("product" in params) == ("product_data" in params):
        if "product" in params:
            raise invalid(
                "You may only specify one of these parameters: product, product_data.",
                param="product_data",
                code="parameters_exclusive",
            )
        raise invalid("Missing required param: product.", param="product", code="parameter_missing")
    new_product: JsonDict | None = None
    if "product" in params:
        product_id = params["product"]
        if ctx.store.get("product", product_id) is None:
            raise ApiError(
                400, f"No such product: '{product_id}'", code="resource_missing", param="product"
            )
    else:
        new_product = products.build_product(ctx, params["product_data"], "product_data")
        product_id = new_product["id"]
    price = build_price(ctx, params, product_id)
    claim_lookup_key(ctx, price, price["lookup_key"], params.get("transfer_lookup_key", False))
    if new_product is not None:
        ctx.store.add(new_product)
        ctx.store.record_event("product.created", new_product, ctx.request, ctx.now)
    ctx.store.add(price)
    ctx.store.record_event("price.created", price, ctx.request, ctx.now)
    return render(ctx.store, price, params.get("expand", []))


def _live(ctx: Ctx, price_id: str) -> JsonDict:
    price = ctx.store.get("price", price_id)
    if price is None:
        raise missing("price", price_id)
    return price


def retrieve(ctx: Ctx, params: JsonDict, price_id: str) -> JsonDict:
    """``GET /v1/prices/{id}``."""
    return render(ctx.store, _live(ctx, price_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, price_id: str) -> JsonDict:
    """``POST /v1/prices/{id}``: active, metadata, nickname, lookup_key, tax_behavior."""
    price = _live(ctx, price_id)
    if "currency_options" in params:
        raise _unsupported("currency_options")
    if params.get("active") is False:
        product = ctx.store.get("product", price["product"])
        if product is not None and product["default_price"] == price_id:
            raise invalid(
                "This price cannot be archived because it is the default price of its product.",
                param="active",
            )
    changed = deep_copy(price)
    if "active" in params:
        changed["active"] = params["active"]
    if "nickname" in params:
        changed["nickname"] = blank_to_none(params["nickname"])
    if "metadata" in params:
        changed["metadata"] = apply_metadata(changed["metadata"], params["metadata"])
    if "tax_behavior" in params:
        if price["tax_behavior"] not in (None, "unspecified"):
            raise invalid("tax_behavior cannot be changed once it is set.", param="tax_behavior")
        changed["tax_behavior"] = params["tax_behavior"]
    if "lookup_key" in params:
        key = blank_to_none(params["lookup_key"])
        claim_lookup_key(ctx, price, key, params.get("transfer_lookup_key", False))
        changed["lookup_key"] = key
    return save_update(ctx, "price", price, changed, params)


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/prices`` with ``active``, ``product``, ``currency``, ``lookup_keys``,
    ``type``, ``recurring`` and ``created`` filters."""
    lookup_keys = params.get("lookup_keys")
    recurring = params.get("recurring", {})

    def keep(p: JsonDict) -> bool:
        rec = p["recurring"] or {}
        return (
            ("active" not in params or p["active"] == params["active"])
            and ("product" not in params or p["product"] == params["product"])
            and ("currency" not in params or p["currency"] == params["currency"].lower())
            and ("type" not in params or p["type"] == params["type"])
            and (lookup_keys is None or p["lookup_key"] in lookup_keys)
            and all(rec.get(k) == v for k, v in recurring.items())
            and created_matches(p["created"], params.get("created"))
        )

    items = [p for p in ctx.store.objects["price"].values() if keep(p)]
    return paginate(ctx, "price", "price", items, params, "/v1/prices")


ROUTES = [
    Route("POST", "/v1/prices", PriceCreateParams, create),
    Route("GET", "/v1/prices", PriceListParams, list_),
    Route("GET", "/v1/prices/{id}", PriceRetrieveParams, retrieve),
    Route("POST", "/v1/prices/{id}", PriceUpdateParams, update),
]
