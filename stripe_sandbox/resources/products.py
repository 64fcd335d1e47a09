"""``/v1/products``: create, retrieve, update, delete, list."""

from __future__ import annotations

from typing import Any

from stripe.params import (
    ProductCreateParams,
    ProductDeleteParams,
    ProductListParams,
    ProductRetrieveParams,
    ProductUpdateParams,
)

from stripe_sandbox.resources import prices
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
from stripe_sandbox.store import deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

_SIMPLE_FIELDS = ("description", "statement_descriptor", "unit_label", "url", "shippable")


def build_product(ctx: Ctx, params: JsonDict, prefix: str = "") -> JsonDict:
    """Validate product-creation params and return a new (unstored) product.

    Args:
        ctx: Request context.
        params: ``ProductCreateParams`` or a price's ``product_data``.
        prefix: Parameter prefix for error messages (``product_data``).

    Raises:
        ApiError: The custom ``id`` is taken, or ``tax_code`` names an unknown tax code.
    """
    product_id = params.get("id") or new_id("prod")
    if ctx.store.get("product", product_id) is not None or product_id in ctx.store.deleted:
        raise invalid(
            f"Product already exists: {product_id}",
            param=f"{prefix}[id]" if prefix else "id",
            code="resource_already_exists",
        )
    if params.get("tax_code"):
        raise ApiError(
            400,
            f"No such tax code: '{params['tax_code']}'",
            code="resource_missing",
            param=f"{prefix}[tax_code]" if prefix else "tax_code",
        )
    product: JsonDict = {
        "id": product_id,
        "object": "product",
        "active": params.get("active", True),
        "created": ctx.now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": params["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": params.get("type", "service"),
        "unit_label": None,
        "updated": ctx.now,
        "url": None,
    }
    _apply(product, params)
    return product


def _apply(product: JsonDict, params: JsonDict) -> None:
    for key in _SIMPLE_FIELDS:
        if key in params:
            product[key] = blank_to_none(params[key])
    for key in ("active", "name"):
        if key in params:
            product[key] = params[key]
    if "images" in params:
        images = params["images"]
        if len(images or []) > 8:
            raise invalid("You may only specify up to 8 images.", param="images")
        product["images"] = [] if images == "" else list(images)
    if "marketing_features" in params:
        features: Any = params["marketing_features"]
        product["marketing_features"] = (
            [] if features == "" else [{"name": f["name"]} for f in features]
        )
    if "package_dimensions" in params:
        dims = params["package_dimensions"]
        product["package_dimensions"] = (
            None if dims == "" else {k: dims[k] for k in ("height", "length", "weight", "width")}
        )
    if "metadata" in params:
        product["metadata"] = apply_metadata(product["metadata"], params["metadata"])


def _live(ctx: Ctx, product_id: str) -> JsonDict:
    product = ctx.store.get("product", product_id)
    if product is None:
        raise missing("product", product_id)
    return product


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/products``, optionally with ``default_price_data``."""
    product = build_product(ctx, params)
    price: JsonDict | None = None
    if "default_price_data" in params:
        price = prices.build_price(ctx, params["default_price_data"], product["id"])
        product["default_price"] = price["id"]
    ctx.store.add(product)
    ctx.store.record_event("product.created", product, ctx.request, ctx.now)
    if price is not None:
        ctx.store.add(price)
        ctx.store.record_event("price.created", price, ctx.request, ctx.now)
    return render(ctx.store, product, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, product_id: str) -> JsonDict:
    """``GET /v1/products/{id}``."""
    return render(ctx.store, _live(ctx, product_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, product_id: str) -> JsonDict:
    """``POST /v1/products/{id}``."""
    product = _live(ctx, product_id)
    if params.get("tax_code"):
        raise ApiError(
            400,
            f"No such tax code: '{params['tax_code']}'",
            code="resource_missing",
            param="tax_code",
        )
    changed = deep_copy(product)
    _apply(changed, params)
    if "default_price" in params:
        price = ctx.store.get("price", params["default_price"])
        if price is None or price["product"] != product_id:
            raise ApiError(
                400,
                f"No such price: '{params['default_price']}'",
                code="resource_missing",
                param="default_price",
            )
        if not price["active"]:
            raise invalid("The default price must be active.", param="default_price")
        changed["default_price"] = price["id"]
    if product != changed:
        changed["updated"] = ctx.now
    return save_update(ctx, "product", product, changed, params)


def delete(ctx: Ctx, params: JsonDict, product_id: str) -> JsonDict:
    """``DELETE /v1/products/{id}``: only a product without prices can be deleted."""
    product = _live(ctx, product_id)
    if any(p["product"] == product_id for p in ctx.store.objects["price"].values()):
        raise invalid(
            "This product cannot be deleted because it has one or more user-created prices.",
            param="id",
        )
    stub = ctx.store.remove("product", product_id)
    ctx.store.record_event("product.deleted", product, ctx.request, ctx.now)
    return dict(stub)


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/products`` with ``active``, ``ids``, ``shippable``, ``type``, ``url`` and
    ``created`` filters."""
    ids = params.get("ids")

    def keep(p: JsonDict) -> bool:
        return (
            all(p[k] == params[k] for k in ("active", "shippable", "type", "url") if k in params)
            and (ids is None or p["id"] in ids)
            and created_matches(p["created"], params.get("created"))
        )

    items = [p for p in ctx.store.objects["product"].values() if keep(p)]
    return paginate(ctx, "product", "product", items, params, "/v1/products")


ROUTES = [
    Route("POST", "/v1/products", ProductCreateParams, create),
    Route("GET", "/v1/products", ProductListParams, list_),
    Route("GET", "/v1/products/{id}", ProductRetrieveParams, retrieve),
    Route("POST", "/v1/products/{id}", ProductUpdateParams, update),
    Route("DELETE", "/v1/products/{id}", ProductDeleteParams, delete),
]
