"""``/v1/customers/{id}/tax_ids``: a customer's tax IDs.

Every type stripe-python lists is accepted; the value of a few common types is checked
against Stripe's documented format (400 ``tax_id_invalid`` naming ``value``). Events:
``customer.tax_id.created``, ``customer.tax_id.deleted``.
"""

from __future__ import annotations

import re

from stripe.params import (
    CustomerCreateTaxIdParams,
    CustomerDeleteTaxIdParams,
    CustomerListTaxIdsParams,
    CustomerRetrieveTaxIdParams,
)

from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    includable,
    paginate,
    render,
)
from stripe_sandbox.store import Store
from stripe_sandbox.wire import JsonDict, invalid, missing, new_id

EXPANDABLE["tax_id"] = {"customer": "customer"}

# EU member states' VAT prefixes (Greece uses EL).
_EU_VAT_PREFIXES = [
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "EL",
    "ES",
    "FI",
    "FR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
    "XI",
]

# type -> the pattern Stripe's docs give for it (https://docs.stripe.com/billing/customer/tax-ids).
_FORMATS: dict[str, re.Pattern[str]] = {
    "eu_vat": re.compile(r"(?:" + "|".join(_EU_VAT_PREFIXES) + r")[0-9A-Z]{8,12}"),
    "gb_vat": re.compile(r"GB(?:\d{9}|\d{12}|GD\d{3}|HA\d{3})"),
    "us_ein": re.compile(r"\d{2}-\d{7}"),
    "au_abn": re.compile(r"\d{11}"),
    "ca_bn": re.compile(r"\d{9}"),
    "ch_vat": re.compile(r"CHE-\d{3}\.\d{3}\.\d{3} (?:MWST|TVA|IVA)"),
}
# Types whose registries Stripe checks in the background: `pending` until it does (the
# sandbox never does); other types are `unavailable`.
_VERIFIED_TYPES = ("eu_vat", "gb_vat", "au_abn")


def _country(kind: str, value: str) -> str | None:
    if kind == "eu_vat":
        prefix = value[:2]
        return {"EL": "GR", "XI": "GB"}.get(prefix, prefix)
    if kind.startswith("eu_"):
        return None
    return kind[:2].upper()


def _tax_ids_of(store: Store, customer: JsonDict) -> list[JsonDict]:
    found = [t for t in store.objects["tax_id"].values() if t["customer"] == customer["id"]]
    return sorted(found, key=store.sort_key, reverse=True)


includable("customer", "tax_ids", _tax_ids_of, "/v1/customers/{id}/tax_ids")


def _customer(ctx: Ctx, customer_id: str) -> JsonDict:
    customer = ctx.store.get("customer", customer_id)
    if customer is None:
        raise missing("customer", customer_id)
    return customer


def _own(ctx: Ctx, ids: str) -> tuple[JsonDict, JsonDict]:
    customer_id, _, tax_id = ids.partition("/")
    customer = _customer(ctx, customer_id)
    found = ctx.store.get("tax_id", tax_id)
    if found is None or found["customer"] != customer_id:
        raise missing("tax_id", tax_id)
    return customer, found


def create(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``POST /v1/customers/{id}/tax_ids`` with ``type`` and ``value``."""
    customer = _customer(ctx, customer_id)
    kind = params["type"]
    value = params["value"].strip()
    pattern = _FORMATS.get(kind)
    if pattern is not None and not pattern.fullmatch(value):
        raise invalid(f"Invalid value for {kind}.", param="value", code="tax_id_invalid")
    tax_id: JsonDict = {
        "id": new_id("txi", 24),
        "object": "tax_id",
        "country": _country(kind, value),
        "created": ctx.now,
        "customer": customer["id"],
        "customer_account": None,
        "livemode": False,
        "owner": {"customer": customer["id"], "customer_account": None, "type": "customer"},
        "type": kind,
        "value": value,
        "verification": {
            "status": "pending" if kind in _VERIFIED_TYPES else "unavailable",
            "verified_address": None,
            "verified_name": None,
        },
    }
    ctx.store.add(tax_id)
    ctx.store.record_event("customer.tax_id.created", tax_id, ctx.request, ctx.now)
    return render(ctx.store, tax_id, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, ids: str) -> JsonDict:
    """``GET /v1/customers/{id}/tax_ids/{tax_id}``."""
    _, tax_id = _own(ctx, ids)
    return render(ctx.store, tax_id, params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, customer_id: str) -> JsonDict:
    """``GET /v1/customers/{id}/tax_ids``."""
    customer = _customer(ctx, customer_id)
    items = _tax_ids_of(ctx.store, customer)
    return paginate(ctx, "tax_id", "tax_id", items, params, f"/v1/customers/{customer_id}/tax_ids")


def delete(ctx: Ctx, params: JsonDict, ids: str) -> JsonDict:
    """``DELETE /v1/customers/{id}/tax_ids/{tax_id}`` (``customer.tax_id.deleted``)."""
    _, tax_id = _own(ctx, ids)
    stub = ctx.store.remove("tax_id", tax_id["id"])
    ctx.store.record_event("customer.tax_id.deleted", tax_id, ctx.request, ctx.now)
    return dict(stub)


ROUTES = [
    Route("POST", "/v1/customers/{id}/tax_ids", CustomerCreateTaxIdParams, create),
    Route("GET", "/v1/customers/{id}/tax_ids", CustomerListTaxIdsParams, list_),
    Route("GET", "/v1/customers/{id}/tax_ids/{sub}", CustomerRetrieveTaxIdParams, retrieve),
    Route("DELETE", "/v1/customers/{id}/tax_ids/{sub}", CustomerDeleteTaxIdParams, delete),
]
