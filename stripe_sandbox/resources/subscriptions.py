"""``/v1/subscriptions`` and ``POST /v1/invoices/create_preview``.

A subscription bills its items (recurring per-unit prices sharing one interval and
currency) for periods counted from its billing cycle anchor; since API 2025-03-31 the
current period is on each item (``current_period_start``/``current_period_end``). What
happens by itself (renewals, retries, trial ends, scheduled cancellations) is in
``billing.py``; a customer on a test clock lives at the clock's frozen time.

Events, in the order recorded:

- create: ``customer.subscription.created`` (``trialing``, ``incomplete``, or ``active`` for
  ``send_invoice``), then the first invoice's ``invoice.created``, ``invoice.finalized``,
  payment events, ``invoice.paid``, ``invoice.payment_succeeded``, then
  ``customer.subscription.updated`` (``incomplete`` → ``active``) when paid
- update: ``customer.subscription.updated``, then proration ``invoiceitem.created``, and
  with ``always_invoice`` (or a new billing interval) the invoice's events
- cancel now: proration ``invoiceitem.created`` (``prorate``),
  ``customer.subscription.deleted``, then the final invoice's events (``invoice_now``)
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe.params import (
    InvoiceCreatePreviewParams,
    SubscriptionCancelParams,
    SubscriptionCreateParams,
    SubscriptionListParams,
    SubscriptionResumeParams,
    SubscriptionRetrieveParams,
    SubscriptionSearchParams,
    SubscriptionUpdateParams,
)

from stripe_sandbox.resources import billing, invoices
from stripe_sandbox.resources.common import (
    EXPANDABLE,
    Ctx,
    Route,
    apply_metadata,
    blank_to_none,
    created_matches,
    includable,
    paginate,
    record_update,
    render,
)
from stripe_sandbox.search import SUBSCRIPTION_FIELDS, search_page
from stripe_sandbox.store import Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

EXPANDABLE.update(
    {
        "subscription": {
            "customer": "customer",
            "default_payment_method": "payment_method",
            "latest_invoice": "invoice",
            "test_clock": "test_helpers.test_clock",
        },
        "subscription_item": {"price": "price"},
    }
)

# Stripe's limits for test clocks.
MAX_SUBSCRIPTIONS_PER_CLOCK_CUSTOMER = 3
MAX_TRIAL_DAYS = 730

_CREATE_SUPPORTED = frozenset(
    {
        "automatic_tax",
        "cancel_at",
        "cancel_at_period_end",
        "collection_method",
        "currency",
        "customer",
        "days_until_due",
        "default_payment_method",
        "description",
        "expand",
        "items",
        "metadata",
        "off_session",
        "payment_behavior",
        "proration_behavior",
        "trial_end",
        "trial_from_plan",
        "trial_period_days",
        "trial_settings",
    }
)
_UPDATE_SUPPORTED = frozenset(
    {
        "automatic_tax",
        "cancel_at",
        "cancel_at_period_end",
        "cancellation_details",
        "collection_method",
        "days_until_due",
        "default_payment_method",
        "description",
        "expand",
        "items",
        "metadata",
        "off_session",
        "pause_collection",
        "payment_behavior",
        "proration_behavior",
        "proration_date",
        "trial_end",
        "trial_settings",
    }
)
# What a canceled (or expired) subscription still accepts, as on Stripe.
_ENDED_EDITABLE = frozenset({"cancellation_details", "expand", "metadata"})
_INCOMPLETE_EDITABLE = frozenset(
    {"default_payment_method", "description", "expand", "metadata", "cancellation_details"}
)
_ITEM_SUPPORTED = frozenset({"id", "price", "quantity", "metadata", "deleted", "clear_usage"})


def _unsupported(param: str) -> ApiError:
    return invalid(
        f"The Stripe sandbox does not support `{param}` on subscriptions yet.", param=param
    )


def _live(ctx: Ctx, sub_id: str) -> JsonDict:
    sub = ctx.store.get("subscription", sub_id)
    if sub is None:
        raise missing("subscription", sub_id)
    return sub


def _clock_ctx(ctx: Ctx, customer: JsonDict) -> Ctx:
    """The request's context at the time the customer lives in (its test clock's)."""
    now = billing.clock_now(ctx.store, customer, ctx.now)
    return ctx if now == ctx.now else Ctx(ctx.store, now, ctx.request)


def render_subscription(store: Store, sub: JsonDict, expand: list[str]) -> JsonDict:
    """Render with ``expand``, including ``items.data.price.product``-style paths."""
    item_paths = [p[len("items.data.") :] for p in expand if p.startswith("items.data.")]
    out = render(store, sub, [p for p in expand if not p.startswith("items.data.")])
    if item_paths:
        out["items"]["data"] = [render(store, i, item_paths) for i in out["items"]["data"]]
    return out


def _items_of_sub(store: Store, sub: JsonDict) -> list[JsonDict]:
    return billing.items_of(store, sub)


def _customer_subscriptions(store: Store, customer: JsonDict) -> list[JsonDict]:
    found = [
        s
        for s in store.objects["subscription"].values()
        if s["customer"] == customer["id"] and s["status"] not in billing.ENDED
    ]
    return sorted(found, key=store.sort_key, reverse=True)


includable("customer", "subscriptions", _customer_subscriptions, "/v1/customers/{id}/subscriptions")


# ---------------------------------------------------------------- prices and items


def plan_of(price: JsonDict) -> JsonDict:
    """The legacy Plan view of a recurring price (``item.plan``)."""
    rec = price["recurring"]
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": rec["interval"],
        "interval_count": rec["interval_count"],
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": rec.get("trial_period_days"),
        "usage_type": rec["usage_type"],
    }


def _price(ctx: Ctx, price_id: str | None, param: str) -> JsonDict:
    if not price_id:
        raise invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")
    price = ctx.store.get("price", price_id)
    if price is None:
        raise ApiError(400, f"No such price: '{price_id}'", code="resource_missing", param=param)
    if price["type"] != "recurring":
        raise invalid(
            "The price specified is set to `type=one_time` but this field only accepts prices "
            "with `type=recurring`.",
            param=param,
        )
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.",
            param=param,
        )
    if price["unit_amount"] is None:
        raise _unsupported(f"{param} (prices without a unit_amount)")
    return price


def _quantity(value: object, param: str) -> int:
    quantity = 1 if value is None else value
    if not isinstance(quantity, int) or quantity < 0:
        raise invalid("Invalid non-negative integer", param=param, code="parameter_invalid_integer")
    return quantity


@dataclass
class Change:
    """The wanted state of one item after an update (``price`` None: deleted)."""

    item_id: str
    existing: JsonDict | None
    price: JsonDict | None
    quantity: int
    metadata: JsonDict


def plan_items(ctx: Ctx, sub: JsonDict | None, given: list[JsonDict]) -> list[Change]:
    """Validate ``items[...]`` against the current items; the wanted item list.

    Raises:
        ApiError: Unknown item id or price, a one-time/inactive price, two items with one
            price, no item left, or mixed intervals/currencies.
    """
    current = billing.items_of(ctx.store, sub) if sub is not None else []
    by_id = {i["id"]: i for i in current}
    changes = {
        i["id"]: Change(i["id"], i, i["price"], i["quantity"], dict(i["metadata"])) for i in current
    }
    order = [i["id"] for i in current]
    for n, entry in enumerate(given):
        prefix = f"items[{n}]"
        for key in sorted(entry):
            if key not in _ITEM_SUPPORTED:
                raise _unsupported(f"{prefix}[{key}]")
        if "id" in entry:
            existing = by_id.get(entry["id"])
            if existing is None:
                raise ApiError(
                    400,
                    f"No such subscription item: '{entry['id']}'",
                    code="resource_missing",
                    param=f"{prefix}[id]",
                )
            change = changes[entry["id"]]
            if entry.get("deleted"):
                change.price = None
                continue
            if "price" in entry:
                change.price = _price(ctx, entry["price"], f"{prefix}[price]")
            if "quantity" in entry:
                change.quantity = _quantity(entry["quantity"], f"{prefix}[quantity]")
            if "metadata" in entry:
                change.metadata = apply_metadata(change.metadata, entry["metadata"])
            continue
        if entry.get("deleted"):
            raise invalid(
                "Missing required param: items[][id] (to delete an item).",
                param=f"{prefix}[id]",
                code="parameter_missing",
            )
        price = _price(ctx, entry.get("price"), f"{prefix}[price]")
        item_id = new_id("si", 14)
        changes[item_id] = Change(
            item_id,
            None,
            price,
            _quantity(entry.get("quantity"), f"{prefix}[quantity]"),
            apply_metadata({}, entry.get("metadata", {})),
        )
        order.append(item_id)
    wanted = [changes[i] for i in order]
    kept = [c for c in wanted if c.price is not None]
    if not kept:
        raise invalid("A subscription must have at least one active item.", param="items")
    seen: set[str] = set()
    for change in kept:
        assert change.price is not None
        if change.price["id"] in seen:
            raise invalid(
                f"Cannot add multiple subscription items with the same price: {change.price['id']}",
                param="items",
            )
        seen.add(change.price["id"])
    first = kept[0].price
    assert first is not None
    for change in kept[1:]:
        assert change.price is not None
        for field in ("currency",):
            if change.price[field] != first[field]:
                raise invalid(
                    "Currency and interval fields must match across all plans on this "
                    "subscription. Found mismatch in currency field.",
                    param="items",
                )
        rec, ref = change.price["recurring"], first["recurring"]
        if (rec["interval"], rec["interval_count"]) != (ref["interval"], ref["interval_count"]):
            raise invalid(
                "Currency and interval fields must match across all plans on this "
                "subscription. Found mismatch in interval field.",
                param="items",
            )
    return wanted


def _new_item(sub_id: str, change: Change, now: int, start: int, end: int) -> JsonDict:
    assert change.price is not None
    return {
        "id": change.item_id,
        "object": "subscription_item",
        "billed_until": None,
        "billing_thresholds": None,
        "created": now,
        "current_period_end": end,
        "current_period_start": start,
        "current_trial": None,
        "discounts": [],
        "metadata": change.metadata,
        "plan": plan_of(change.price),
        "price": deep_copy(change.price),
        "quantity": change.quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def _changed(change: Change) -> bool:
    if change.existing is None or change.price is None:
        return True
    return bool(
        change.price["id"] != change.existing["price"]["id"]
        or change.quantity != change.existing["quantity"]
    )


@dataclass(frozen=True)
class Proration:
    """One proration line to be: credit (negative) or debit for the rest of the period."""

    item_id: str
    price: JsonDict
    quantity: int
    amount: int
    description: str
    start: int
    end: int


def prorations(store: Store, sub: JsonDict, changes: list[Change], when: int) -> list[Proration]:
    """The credits for unused time and debits for remaining time of changed items."""
    start, end = billing.period(store, sub)
    out: list[Proration] = []
    for change in changes:
        if not _changed(change):
            continue
        old = change.existing
        if old is not None:
            amount = billing.prorate(billing.item_amount(old), when, start, end)
            credit, _ = billing.proration_texts(store, old["price"], old["quantity"], when)
            if amount:
                out.append(
                    Proration(old["id"], old["price"], old["quantity"], -amount, credit, when, end)
                )
        if change.price is not None:
            amount = billing.prorate(
                billing.item_amount({}, change.quantity, change.price), when, start, end
            )
            _, debit = billing.proration_texts(store, change.price, change.quantity, when)
            if amount:
                out.append(
                    Proration(
                        change.item_id, change.price, change.quantity, amount, debit, when, end
                    )
                )
    return out


def _interval_of(price: JsonDict) -> tuple[str, int]:
    rec = price["recurring"]
    return str(rec["interval"]), int(rec["interval_count"])


def _new_interval(sub: JsonDict, store: Store, changes: list[Change]) -> bool:
    kept = [c for c in changes if c.price is not None]
    assert kept[0].price is not None
    return _interval_of(kept[0].price) != billing.recurring_of(store, sub)


# ---------------------------------------------------------------- create


def _check_terms(params: JsonDict, method: str, days: object) -> int | None:
    if method == "send_invoice":
        if days is None:
            raise invalid(
                "Missing required param: days_until_due.",
                param="days_until_due",
                code="parameter_missing",
            )
        assert isinstance(days, int)
        if not 0 <= days <= 730:
            raise invalid("days_until_due must be between 0 and 730.", param="days_until_due")
        return days
    if params.get("days_until_due") is not None:
        raise invalid(
            "You can only set `days_until_due` if `collection_method` is `send_invoice`.",
            param="days_until_due",
        )
    return None


def _default_pm(ctx: Ctx, customer: JsonDict, pm_id: str | None) -> str | None:
    if not pm_id:
        return None
    pm = ctx.store.get("payment_method", pm_id)
    if pm is None:
        raise ApiError(
            400,
            f"No such PaymentMethod: '{pm_id}'",
            code="resource_missing",
            param="default_payment_method",
        )
    if pm["customer"] != customer["id"]:
        raise invalid(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param="default_payment_method",
        )
    return pm_id


def _future(value: int, now: int, param: str) -> int:
    if value <= now:
        raise invalid(
            "Invalid timestamp: must be an integer Unix timestamp in the future.", param=param
        )
    return value


def _trial_end(ctx: Ctx, params: JsonDict, prices: list[JsonDict]) -> int | None:
    if "trial_end" in params and "trial_period_days" in params:
        raise invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
            param="trial_period_days",
            code="parameters_exclusive",
        )
    if "trial_end" in params:
        value = params["trial_end"]
        return None if value == "now" else _future(int(value), ctx.now, "trial_end")
    days = params.get("trial_period_days")
    if days is None and params.get("trial_from_plan"):
        days = prices[0]["recurring"].get("trial_period_days")
    if days is None or days == 0:
        return None
    if not 0 < days <= MAX_TRIAL_DAYS:
        raise invalid(
            f"trial_period_days must be between 1 and {MAX_TRIAL_DAYS}.",
            param="trial_period_days",
        )
    return ctx.now + int(days) * billing.DAY


def _cancel_at(value: object, now: int, end: int) -> int | None:
    if value in ("", None):
        return None
    if value in ("max_period_end", "min_period_end"):
        return end
    assert isinstance(value, int)
    return _future(value, now, "cancel_at")


def new_subscription(
    ctx: Ctx, customer: JsonDict, params: JsonDict, currency: str, trial_end: int | None
) -> JsonDict:
    """A subscription with every field of API 2026-10-28.endive (not yet stored)."""
    method = params.get("collection_method", "charge_automatically")
    trial_settings = params.get("trial_settings", {}).get("end_behavior", {})
    return {
        "id": new_id("sub", 24),
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": trial_end or ctx.now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": method,
        "created": ctx.now,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": params.get("default_payment_method"),
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": {},
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "presentment_details": None,
        "schedule": None,
        "start_date": ctx.now,
        "status": "trialing"
        if trial_end
        else ("active" if method == "send_invoice" else "incomplete"),
        "status_details": None,
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {
            "end_behavior": {
                "missing_payment_method": trial_settings.get(
                    "missing_payment_method", "create_invoice"
                )
            }
        },
        "trial_start": ctx.now if trial_end else None,
    }


def _check_unsupported(params: JsonDict, supported: frozenset[str]) -> None:
    for key in sorted(params):
        if key not in supported:
            raise _unsupported(key)
    if params.get("automatic_tax", {}).get("enabled"):
        raise _unsupported("automatic_tax[enabled]")
    if params.get("payment_behavior") == "pending_if_incomplete":
        raise _unsupported("payment_behavior=pending_if_incomplete")


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/subscriptions``."""
    _check_unsupported(params, _CREATE_SUPPORTED)
    customer_id = params.get("customer")
    if not customer_id:
        raise invalid(
            "Missing required param: customer.", param="customer", code="parameter_missing"
        )
    store = ctx.store
    customer = store.get("customer", customer_id)
    if customer is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    if not params.get("items"):
        raise invalid("Missing required param: items.", param="items", code="parameter_missing")
    ctx = _clock_ctx(ctx, customer)
    if customer["test_clock"] and (
        len(_customer_subscriptions(store, customer)) >= MAX_SUBSCRIPTIONS_PER_CLOCK_CUSTOMER
    ):
        raise invalid(
            f"A customer on a test clock can have at most {MAX_SUBSCRIPTIONS_PER_CLOCK_CUSTOMER} "
            "subscriptions.",
            param="customer",
        )
    changes = plan_items(ctx, None, params["items"])
    prices = [c.price for c in changes if c.price is not None]
    currency = prices[0]["currency"]
    if params.get("currency") and params["currency"].lower() != currency:
        raise invalid(
            f"The price currency ({currency}) does not match the subscription currency "
            f"({params['currency'].lower()}).",
            param="currency",
        )
    method = params.get("collection_method", "charge_automatically")
    _check_terms(params, method, params.get("days_until_due"))
    _default_pm(ctx, customer, params.get("default_payment_method"))
    trial_end = _trial_end(ctx, params, prices)
    if "cancel_at" in params and params.get("cancel_at_period_end"):
        raise invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            param="cancel_at",
            code="parameters_exclusive",
        )
    sub = new_subscription(ctx, customer, params, currency, trial_end)
    behavior = params.get("payment_behavior", "allow_incomplete")
    total = sum(billing.item_amount({}, c.quantity, c.price) for c in changes if c.price)
    charging = method == "charge_automatically" and trial_end is None and total > 0
    if charging and behavior in ("allow_incomplete", "error_if_incomplete"):
        # Stripe refuses these up front rather than leave an unpayable subscription.
        error = billing.predict_failure(store, sub)
        if error is not None and (behavior == "error_if_incomplete" or error.status == 400):
            raise error
    # Stored: from here on nothing is refused.
    store.add(sub)
    info = billing.hidden(store, sub)
    info.update({"items": [c.item_id for c in changes], "cycle": 0, "invoices": []})
    if trial_end is not None:
        start, end = ctx.now, trial_end
    else:
        start, end = ctx.now, billing.boundary(ctx.now, *_interval_of(prices[0]), 1)
    for change in changes:
        store.add(_new_item(sub["id"], change, ctx.now, start, end))
    billing.sync_items(store, sub)
    if params.get("cancel_at_period_end"):
        sub.update({"cancel_at": end, "cancel_at_period_end": True, "canceled_at": ctx.now})
    elif "cancel_at" in params:
        sub["cancel_at"] = _cancel_at(params["cancel_at"], ctx.now, end)
        sub["canceled_at"] = ctx.now if sub["cancel_at"] else None
    store.record_event("customer.subscription.created", sub, ctx.request, ctx.now)
    invoice = billing.new_invoice(ctx, sub, "subscription_create", ctx.now, ctx.now)
    items = billing.items_of(store, sub)
    lines = [
        billing.regular_line(store, invoice, sub, item, start, end, trial=trial_end is not None)
        for item in items
    ]
    billing.add_lines(store, invoice, lines)
    sub["latest_invoice"] = invoice["id"]
    store.record_event("invoice.created", invoice, ctx.request, ctx.now)
    billing.collect(ctx, sub, invoice, attempt=behavior != "default_incomplete")
    if trial_end is not None and trial_end - billing.TRIAL_WILL_END <= ctx.now:
        info["trial_will_end_sent"] = True
        store.record_event("customer.subscription.trial_will_end", sub, ctx.request, ctx.now)
    return render_subscription(store, sub, params.get("expand", []))


# ---------------------------------------------------------------- read


def retrieve(ctx: Ctx, params: JsonDict, subscription_id: str) -> JsonDict:
    """``GET /v1/subscriptions/{id}``."""
    return render_subscription(ctx.store, _live(ctx, subscription_id), params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/subscriptions`` with ``customer``, ``price``, ``status`` (default: all but
    ``canceled``/``incomplete_expired``; ``all``; ``ended``), ``collection_method``,
    ``test_clock`` and ``created`` filters."""
    status = params.get("status")
    price = params.get("price")

    def keep(s: JsonDict) -> bool:
        if status in (None, "") and s["status"] in billing.ENDED:
            return False
        if status == "ended" and s["status"] not in billing.ENDED:
            return False
        if status not in (None, "", "all", "ended") and s["status"] != status:
            return False
        if price and all(i["price"]["id"] != price for i in s["items"]["data"]):
            return False
        return all(
            s.get(k) == params[k]
            for k in ("customer", "collection_method", "test_clock")
            if k in params
        ) and created_matches(s["created"], params.get("created"))

    for key in ("current_period_end", "current_period_start", "automatic_tax", "customer_account"):
        if key in params:
            raise _unsupported(key)
    items = [s for s in ctx.store.objects["subscription"].values() if keep(s)]
    page = paginate(ctx, "subscription", "subscription", items, params, "/v1/subscriptions")
    return page


def search(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/subscriptions/search`` on ``created``, ``metadata``, ``status``."""
    items = ctx.store.objects["subscription"].values()
    return search_page(
        ctx, items, params, "/v1/subscriptions/search", "subscriptions", SUBSCRIPTION_FIELDS
    )


# ---------------------------------------------------------------- update


def _apply_items(ctx: Ctx, sub: JsonDict, changes: list[Change]) -> None:
    store = ctx.store
    start, end = billing.period(store, sub)
    ids: list[str] = []
    for change in changes:
        if change.price is None:
            if change.existing is not None:
                store.objects["subscription_item"].pop(change.item_id, None)
            continue
        ids.append(change.item_id)
        if change.existing is None:
            store.add(_new_item(sub["id"], change, ctx.now, start, end))
            continue
        item = change.existing
        item.update(
            {
                "price": deep_copy(change.price),
                "plan": plan_of(change.price),
                "quantity": change.quantity,
                "metadata": change.metadata,
            }
        )
    billing.hidden(store, sub)["items"] = ids
    billing.sync_items(store, sub)


def _make_prorations(ctx: Ctx, sub: JsonDict, lines: list[Proration]) -> None:
    for p in lines:
        billing.proration_item(
            ctx, sub, p.item_id, p.price, p.quantity, p.amount, p.description, p.start, p.end
        )


def _proration_date(params: JsonDict, store: Store, sub: JsonDict, now: int) -> int:
    if "proration_date" not in params:
        return now
    when = int(params["proration_date"])
    start, end = billing.period(store, sub)
    if not start <= when <= end:
        raise invalid(
            "The proration date must be within the subscription's current billing period.",
            param="proration_date",
        )
    return when


def update(ctx: Ctx, params: JsonDict, subscription_id: str) -> JsonDict:
    """``POST /v1/subscriptions/{id}``."""
    _check_unsupported(params, _UPDATE_SUPPORTED)
    store = ctx.store
    sub = _live(ctx, subscription_id)
    customer = store.objects["customer"][sub["customer"]]
    ctx = _clock_ctx(ctx, customer)
    status = sub["status"]
    allowed = (
        _ENDED_EDITABLE
        if status in billing.ENDED
        else _INCOMPLETE_EDITABLE
        if status == "incomplete"
        else _UPDATE_SUPPORTED
    )
    for key in sorted(params):
        if key not in allowed:
            raise invalid(
                f"A subscription with status `{status}` can only update "
                f"{', '.join(sorted(allowed - {'expand'}))}.",
                param=key,
            )
    before = deep_copy(sub)
    start, end = billing.period(store, sub)
    behavior = params.get("proration_behavior", "create_prorations")
    payment_behavior = params.get("payment_behavior", "allow_incomplete")
    changes = plan_items(ctx, sub, params["items"]) if "items" in params else None
    when = _proration_date(params, store, sub, ctx.now)
    method = str(params.get("collection_method", sub["collection_method"]))
    days = params.get("days_until_due", sub["days_until_due"] if method == "send_invoice" else None)
    if "collection_method" in params or "days_until_due" in params:
        _check_terms(params, method, days)
    pm_id = (
        _default_pm(ctx, customer, blank_to_none(params["default_payment_method"]))
        if "default_payment_method" in params
        else sub["default_payment_method"]
    )
    if "cancel_at" in params and params.get("cancel_at_period_end"):
        raise invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            param="cancel_at",
            code="parameters_exclusive",
        )
    pause = params.get("pause_collection")
    if isinstance(pause, dict) and pause.get("resumes_at") is not None:
        _future(int(pause["resumes_at"]), ctx.now, "pause_collection[resumes_at]")
    trial_end_now = params.get("trial_end") == "now" and status == "trialing"
    new_trial_end = None
    if "trial_end" in params and params["trial_end"] != "now":
        new_trial_end = _future(int(params["trial_end"]), ctx.now, "trial_end")
        if status != "trialing":
            raise _unsupported("trial_end (starting a trial on a subscription not in trial)")
    trialing = status == "trialing" and not trial_end_now
    reset = changes is not None and not trialing and _new_interval(sub, store, changes)
    prorate_now = (
        changes is not None
        and not trialing
        and status in ("active", "past_due", "unpaid")
        and behavior != "none"
    )
    lines = prorations(store, sub, changes, when) if prorate_now and changes else []
    invoice_now = reset or trial_end_now or (behavior == "always_invoice" and bool(lines))
    if (
        invoice_now
        and method == "charge_automatically"
        and payment_behavior == "error_if_incomplete"
    ):
        probe = dict(sub, default_payment_method=pm_id)
        error = billing.predict_failure(store, probe)
        if error is not None:
            raise error
    # Validated: apply.
    sub["collection_method"] = method
    sub["days_until_due"] = days if method == "send_invoice" else None
    sub["default_payment_method"] = pm_id
    if "description" in params:
        sub["description"] = blank_to_none(params["description"])
    if "metadata" in params:
        sub["metadata"] = apply_metadata(sub["metadata"], params["metadata"])
    if "cancellation_details" in params:
        for key, value in params["cancellation_details"].items():
            if key in ("comment", "feedback"):
                sub["cancellation_details"][key] = blank_to_none(value)
    if "trial_settings" in params:
        missing_pm = params["trial_settings"].get("end_behavior", {}).get("missing_payment_method")
        if missing_pm:
            sub["trial_settings"]["end_behavior"]["missing_payment_method"] = missing_pm
    if "pause_collection" in params:
        sub["pause_collection"] = (
            {"behavior": pause["behavior"], "resumes_at": pause.get("resumes_at")}
            if isinstance(pause, dict)
            else None
        )
    if new_trial_end is not None:
        sub["trial_end"] = new_trial_end
        billing.set_period(store, sub, start, new_trial_end)
        end = new_trial_end
        billing.hidden(store, sub)["trial_will_end_sent"] = False
    if params.get("cancel_at_period_end") is True:
        sub.update({"cancel_at": end, "cancel_at_period_end": True, "canceled_at": ctx.now})
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    elif params.get("cancel_at_period_end") is False or params.get("cancel_at") == "":
        sub.update({"cancel_at": None, "cancel_at_period_end": False, "canceled_at": None})
        sub["cancellation_details"]["reason"] = None
    elif "cancel_at" in params:
        sub.update(
            {
                "cancel_at": _cancel_at(params["cancel_at"], ctx.now, end),
                "cancel_at_period_end": False,
                "canceled_at": ctx.now,
            }
        )
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    if changes is not None:
        _apply_items(ctx, sub, changes)
    if reset or trial_end_now:
        if lines and reset:
            _make_prorations(ctx, sub, [p for p in lines if p.amount < 0])
        if sub["status"] == "trialing":
            sub["trial_end"] = ctx.now
        billing.start_new_period(
            ctx,
            sub,
            ctx.now,
            "subscription_update",
            attempt=payment_behavior != "default_incomplete",
        )
        if payment_behavior == "default_incomplete" and sub["status"] == "active":
            _past_due_if_open(ctx, sub)
        return render_subscription(store, sub, params.get("expand", []))
    record_update(ctx, "customer.subscription", before, sub)
    _make_prorations(ctx, sub, lines)
    if invoice_now:
        invoice = billing.new_invoice(ctx, sub, "subscription_update", ctx.now, ctx.now)
        invoice["parent"]["subscription_details"]["subscription_proration_date"] = when
        billing.add_lines(store, invoice, billing.take_pending(store, invoice, sub))
        sub["latest_invoice"] = invoice["id"]
        store.record_event("invoice.created", invoice, ctx.request, ctx.now)
        billing.collect(ctx, sub, invoice, attempt=payment_behavior != "default_incomplete")
        if payment_behavior == "default_incomplete":
            _past_due_if_open(ctx, sub)
    return render_subscription(store, sub, params.get("expand", []))


def _past_due_if_open(ctx: Ctx, sub: JsonDict) -> None:
    latest = ctx.store.get("invoice", sub["latest_invoice"]) if sub["latest_invoice"] else None
    if (
        latest is not None
        and latest["status"] == "open"
        and sub["collection_method"] == "charge_automatically"
        and sub["status"] == "active"
    ):
        billing.set_status(ctx, sub, "past_due")


# ---------------------------------------------------------------- cancel and resume


def cancel(ctx: Ctx, params: JsonDict, subscription_id: str) -> JsonDict:
    """``DELETE /v1/subscriptions/{id}``: cancel now; ``prorate`` credits the unused time,
    ``invoice_now`` invoices pending items (prorations) at once."""
    store = ctx.store
    sub = _live(ctx, subscription_id)
    if sub["status"] in billing.ENDED:
        raise invalid(
            f"This subscription is already {sub['status'].replace('_', ' ')}; it cannot be "
            "canceled again.",
            param="id",
        )
    customer = store.objects["customer"][sub["customer"]]
    ctx = _clock_ctx(ctx, customer)
    for key, value in params.get("cancellation_details", {}).items():
        if key in ("comment", "feedback"):
            sub["cancellation_details"][key] = blank_to_none(value)
    if params.get("prorate") and sub["status"] in ("active", "past_due", "unpaid"):
        credits = [
            Change(i["id"], i, None, i["quantity"], {}) for i in billing.items_of(store, sub)
        ]
        _make_prorations(ctx, sub, prorations(store, sub, credits, ctx.now))
    sub["canceled_at"] = ctx.now
    billing.end(ctx, sub, "cancellation_requested")
    if params.get("invoice_now") and billing.pending_items(store, sub):
        invoice = billing.new_invoice(ctx, sub, "subscription_update", ctx.now, ctx.now)
        billing.add_lines(store, invoice, billing.take_pending(store, invoice, sub))
        total = invoice["total"]
        if total < 0:
            # A credit: nothing is due and the customer's balance takes it.
            invoice.update({"amount_due": 0, "amount_remaining": 0})
        sub["latest_invoice"] = invoice["id"]
        store.record_event("invoice.created", invoice, ctx.request, ctx.now)
        invoices.finalize_now(ctx, invoice)
        if total < 0:
            invoice["ending_balance"] = total
            before = deep_copy(customer)
            customer["balance"] += total
            record_update(ctx, "customer", before, customer)
        elif invoice["status"] == "open" and sub["collection_method"] == "charge_automatically":
            pm = billing.payment_method_of(store, sub)
            if pm is not None:
                invoices.charge_invoice(ctx, invoice, pm, off_session=True)
    return render_subscription(store, sub, params.get("expand", []))


def resume(ctx: Ctx, params: JsonDict, subscription_id: str) -> JsonDict:
    """``POST /v1/subscriptions/{id}/resume``: a ``paused`` subscription becomes active;
    ``billing_cycle_anchor=now`` (default) starts and invoices a new period at once,
    ``unchanged`` resumes in the period the anchor gives (no charge for the part left)."""
    store = ctx.store
    sub = _live(ctx, subscription_id)
    if sub["status"] != "paused":
        raise invalid(
            f"Only paused subscriptions can be resumed; this subscription is {sub['status']}.",
            param="id",
        )
    if params.get("payment_behavior") == "pending_if_incomplete":
        raise _unsupported("payment_behavior=pending_if_incomplete")
    customer = store.objects["customer"][sub["customer"]]
    ctx = _clock_ctx(ctx, customer)
    anchor = params.get("billing_cycle_anchor", "now")
    if anchor == "unchanged":
        before = deep_copy(sub)
        cycle = billing.cycle_containing(store, sub, ctx.now)
        billing.hidden(store, sub)["cycle"] = cycle
        billing.set_period(store, sub, *billing.cycle_period(store, sub, cycle))
        sub["status"] = "active"
        sub["status_details"] = None
        record_update(ctx, "customer.subscription", before, sub)
    else:
        behavior = params.get("payment_behavior", "allow_incomplete")
        if behavior == "error_if_incomplete":
            error = billing.predict_failure(store, sub)
            if error is not None:
                raise error
        billing.start_new_period(
            ctx, sub, ctx.now, "subscription_update", attempt=behavior != "default_incomplete"
        )
    return render_subscription(store, sub, params.get("expand", []))


# ---------------------------------------------------------------- preview


_PREVIEW_SUPPORTED = frozenset({"customer", "expand", "subscription", "subscription_details"})
_PREVIEW_DETAILS_SUPPORTED = frozenset({"items", "proration_behavior", "proration_date"})


def create_preview(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/invoices/create_preview``: the invoice a subscription change would make.

    With ``subscription``: ``proration_behavior=always_invoice`` previews the invoice made
    at once (the prorations); otherwise the next renewal invoice (prorations, if any, then
    the next period at the new prices). With only ``customer`` +
    ``subscription_details[items]``: the first invoice of a new subscription.
    """
    for key in sorted(params):
        if key not in _PREVIEW_SUPPORTED:
            raise invalid(
                f"The Stripe sandbox does not support `{key}` on invoice previews yet.", param=key
            )
    details = params.get("subscription_details", {})
    for key in sorted(details):
        if key not in _PREVIEW_DETAILS_SUPPORTED:
            raise invalid(
                f"The Stripe sandbox does not support `subscription_details[{key}]` on invoice "
                "previews yet.",
                param=f"subscription_details[{key}]",
            )
    store = ctx.store
    if "subscription" not in params:
        return _preview_new(ctx, params, details)
    sub = _live(ctx, params["subscription"])
    if params.get("customer") and params["customer"] != sub["customer"]:
        raise invalid("The subscription belongs to a different customer.", param="customer")
    if sub["status"] in billing.ENDED:
        raise invalid(
            "No upcoming invoices for a canceled subscription.",
            param="subscription",
            code="invoice_upcoming_none",
        )
    customer = store.objects["customer"][sub["customer"]]
    ctx = _clock_ctx(ctx, customer)
    behavior = details.get("proration_behavior", "create_prorations")
    changes = (
        plan_items(ctx, sub, details["items"])
        if "items" in details
        else [
            Change(i["id"], i, i["price"], i["quantity"], i["metadata"])
            for i in billing.items_of(store, sub)
        ]
    )
    when = _proration_date(details, store, sub, ctx.now)
    trialing = sub["status"] == "trialing"
    lines_due = (
        prorations(store, sub, changes, when)
        if behavior != "none" and not trialing and sub["status"] != "paused"
        else []
    )
    start, end = billing.period(store, sub)
    if behavior == "always_invoice":
        invoice = billing.new_invoice(
            ctx, sub, "subscription_update", ctx.now, ctx.now, preview=True
        )
        invoice["parent"]["subscription_details"]["subscription_proration_date"] = when
    else:
        invoice = billing.new_invoice(ctx, sub, "upcoming", start, end, preview=True)
        invoice["created"] = end
        invoice["next_payment_attempt"] = (
            end + billing.FINALIZE_DELAY
            if sub["collection_method"] == "charge_automatically"
            else None
        )
        if lines_due:
            invoice["parent"]["subscription_details"]["subscription_proration_date"] = when
    lines = [billing.item_line(invoice, sub, ii) for ii in billing.pending_items(store, sub)]
    lines += [
        billing.sub_line(
            invoice,
            sub,
            p.item_id,
            p.price,
            p.quantity,
            p.amount,
            p.description,
            p.start,
            p.end,
            proration=True,
        )
        for p in lines_due
    ]
    if behavior != "always_invoice":
        interval, count = _interval_of(next(c.price for c in changes if c.price is not None))
        next_end = billing.boundary(end, interval, count, 1)
        for change in changes:
            if change.price is None:
                continue
            item = _new_item(sub["id"], change, ctx.now, end, next_end)
            lines.append(billing.regular_line(store, invoice, sub, item, end, next_end))
    billing.preview_lines(invoice, lines)
    invoice["webhooks_delivered_at"] = None
    return render(store, invoice, params.get("expand", []))


def _preview_new(ctx: Ctx, params: JsonDict, details: JsonDict) -> JsonDict:
    store = ctx.store
    customer_id = params.get("customer")
    if not customer_id:
        raise invalid(
            "Missing required param: customer or subscription.",
            param="customer",
            code="parameter_missing",
        )
    customer = store.get("customer", customer_id)
    if customer is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    if not details.get("items"):
        raise invalid(
            "Missing required param: subscription_details[items].",
            param="subscription_details[items]",
            code="parameter_missing",
        )
    ctx = _clock_ctx(ctx, customer)
    changes = plan_items(ctx, None, details["items"])
    prices = [c.price for c in changes if c.price is not None]
    probe = new_subscription(ctx, customer, {}, prices[0]["currency"], None)
    probe["id"] = None
    end = billing.boundary(ctx.now, *_interval_of(prices[0]), 1)
    invoice = billing.new_invoice(ctx, probe, "subscription_create", ctx.now, ctx.now, preview=True)
    lines = [
        billing.regular_line(
            store, invoice, probe, _new_item("", c, ctx.now, ctx.now, end), ctx.now, end
        )
        for c in changes
    ]
    billing.preview_lines(invoice, lines)
    invoice["webhooks_delivered_at"] = None
    return render(store, invoice, params.get("expand", []))


ROUTES = [
    Route("POST", "/v1/invoices/create_preview", InvoiceCreatePreviewParams, create_preview),
    Route("POST", "/v1/subscriptions", SubscriptionCreateParams, create),
    Route("GET", "/v1/subscriptions", SubscriptionListParams, list_),
    # Before /v1/subscriptions/{id}, which would otherwise take "search" for an id.
    Route("GET", "/v1/subscriptions/search", SubscriptionSearchParams, search),
    Route("GET", "/v1/subscriptions/{id}", SubscriptionRetrieveParams, retrieve),
    Route("POST", "/v1/subscriptions/{id}", SubscriptionUpdateParams, update),
    Route("DELETE", "/v1/subscriptions/{id}", SubscriptionCancelParams, cancel),
    Route("POST", "/v1/subscriptions/{id}/resume", SubscriptionResumeParams, resume),
]
