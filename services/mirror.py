"""Writing Stripe objects into the local mirror: one `*_row` mapping per mirrored type.

Upserts are batched and conditional: a row is rewritten only when Stripe's object changed, so a
second pull with nothing new writes nothing (dj-stripe's `upsert_from_stripe`, in bulk).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import peewee

from services import changes
from services.models import (
    Customer,
    Invoice,
    Price,
    Product,
    StripeMirror,
    Subscription,
    tuples,
)

StripeDict = Mapping[str, Any]


def _base(obj: StripeDict, now: int) -> dict[str, Any]:
    return {
        "stripe_id": obj["id"],
        "livemode": bool(obj.get("livemode", False)),
        "created": int(obj.get("created") or 0),
        "raw": dict(obj),
        "synced_at": now,
    }


def _metadata(obj: StripeDict) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in meta.items()}


def parse_credits(value: object) -> int | None:
    """`metadata[credits]` as a positive integer, or None when absent or not a positive integer."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= 2_000_000_000 else None


def customer_row(obj: StripeDict, now: int) -> dict[str, Any]:
    return {
        **_base(obj, now),
        "name": obj.get("name"),
        "email": obj.get("email"),
        "phone": obj.get("phone"),
        "currency": obj.get("currency"),
        "balance": int(obj.get("balance") or 0),
        "description": obj.get("description"),
        "metadata": _metadata(obj),
        "deleted": bool(obj.get("deleted", False)),
    }


def product_row(obj: StripeDict, now: int) -> dict[str, Any]:
    default_price = obj.get("default_price")
    if isinstance(default_price, Mapping):  # expanded
        default_price = default_price.get("id")
    meta = _metadata(obj)
    return {
        **_base(obj, now),
        "name": obj.get("name") or "",
        "description": obj.get("description"),
        "active": bool(obj.get("active", True)),
        "default_price_id": default_price,
        "metadata": meta,
        "credits": parse_credits(meta.get("credits")),
    }


def price_row(obj: StripeDict, now: int) -> dict[str, Any]:
    product = obj.get("product")
    if isinstance(product, Mapping):  # expanded
        product = product.get("id")
    return {
        **_base(obj, now),
        "product_id": product,
        "currency": obj.get("currency") or "usd",
        "unit_amount": obj.get("unit_amount"),
        "active": bool(obj.get("active", True)),
        "lookup_key": obj.get("lookup_key"),
        "nickname": obj.get("nickname"),
        "type": obj.get("type") or "one_time",
        "metadata": _metadata(obj),
    }


def invoice_row(obj: StripeDict, now: int) -> dict[str, Any]:
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return {
        **_base(obj, now),
        "customer_id": customer or "",
        "number": obj.get("number"),
        "status": obj.get("status"),
        "currency": obj.get("currency") or "usd",
        "total": int(obj.get("total") or 0),
        "amount_due": int(obj.get("amount_due") or 0),
        "amount_paid": int(obj.get("amount_paid") or 0),
        "amount_remaining": int(obj.get("amount_remaining") or 0),
        "due_date": obj.get("due_date"),
        "hosted_invoice_url": obj.get("hosted_invoice_url"),
        "paid_at": _paid_at(obj),
    }


def _paid_at(obj: StripeDict) -> int | None:
    transitions = obj.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, Mapping) else None
    return int(paid_at) if isinstance(paid_at, int | float) and paid_at else None


#: Average days in a month and weeks in a month (365.25 / 12, 52.18 / 12): MRR normalisation.
_PER_MONTH = {"day": 365.25 / 12, "week": 365.25 / 7 / 12, "month": 1.0, "year": 1 / 12}

#: Statuses that bring in money every month: a trial, an unpaid, paused or ended subscription
#: does not (as the Stripe Dashboard counts MRR).
MRR_STATUSES = ("active", "past_due")


def _id_of(value: object) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def monthly(amount: int, interval: str | None, interval_count: int) -> int:
    """`amount` billed every `interval_count` `interval`s, as an amount per month (rounded)."""
    per_month = _PER_MONTH.get(interval or "", 0.0)
    return round(amount * per_month / max(1, interval_count))


def subscription_items(obj: StripeDict) -> list[dict[str, Any]]:
    """The items as the mirror keeps them: price, product, quantity, what each bills per
    interval, and its current period (on the items since API 2025-03-31)."""
    items = (obj.get("items") or {}).get("data") or []
    found = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        price = item.get("price") or item.get("plan") or {}
        price = price if isinstance(price, Mapping) else {"id": price}
        recurring = price.get("recurring") or {}
        quantity = _int_or_none(item.get("quantity"))
        quantity = 1 if quantity is None else quantity
        unit = _int_or_none(price.get("unit_amount"))
        if unit is None:
            unit = _int_or_none(price.get("amount")) or 0  # a legacy Plan
        interval = recurring.get("interval") or price.get("interval")
        count = _int_or_none(recurring.get("interval_count") or price.get("interval_count")) or 1
        found.append(
            {
                "id": str(item.get("id") or ""),
                "price": _id_of(price) or "",
                "product": _id_of(price.get("product")) or "",
                "nickname": price.get("nickname"),
                "quantity": quantity,
                "unit_amount": unit,
                "amount": unit * quantity,
                "currency": price.get("currency"),
                "interval": interval,
                "interval_count": count,
                "current_period_start": _int_or_none(item.get("current_period_start")),
                "current_period_end": _int_or_none(item.get("current_period_end")),
            }
        )
    return found


def subscription_row(obj: StripeDict, now: int) -> dict[str, Any]:
    items = subscription_items(obj)
    ends = [i["current_period_end"] for i in items if i["current_period_end"]]
    starts = [i["current_period_start"] for i in items if i["current_period_start"]]
    # Older API versions kept the period on the subscription itself.
    period_end = min(ends) if ends else _int_or_none(obj.get("current_period_end"))
    period_start = min(starts) if starts else _int_or_none(obj.get("current_period_start"))
    status = str(obj.get("status") or "")
    first = items[0] if items else {}
    per_month = sum(monthly(i["amount"], i["interval"], i["interval_count"]) for i in items)
    pause = obj.get("pause_collection")
    return {
        **_base(obj, now),
        "customer_id": _id_of(obj.get("customer")) or "",
        "status": status,
        "current_period_end": period_end,
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end", False)),
        "currency": str(obj.get("currency") or first.get("currency") or "").lower() or None,
        "amount": sum(i["amount"] for i in items),
        "billing_interval": first.get("interval"),
        "interval_count": first.get("interval_count") or 1,
        "quantity": sum(i["quantity"] for i in items),
        "mrr": per_month if status in MRR_STATUSES else 0,
        "price_ids": "".join(f" {i['price']}" for i in items) + (" " if items else ""),
        "product_ids": "".join(f" {i['product']}" for i in items) + (" " if items else ""),
        "items": items,
        "current_period_start": period_start,
        "cancel_at": _int_or_none(obj.get("cancel_at")),
        "canceled_at": _int_or_none(obj.get("canceled_at")),
        "ended_at": _int_or_none(obj.get("ended_at")),
        "trial_end": _int_or_none(obj.get("trial_end")),
        "pause_collection": pause.get("behavior") if isinstance(pause, Mapping) else None,
        "collection_method": obj.get("collection_method"),
    }


ROW_BUILDERS: dict[type[StripeMirror], Callable[[StripeDict, int], dict[str, Any]]] = {
    Customer: customer_row,
    Product: product_row,
    Price: price_row,
    Invoice: invoice_row,
    Subscription: subscription_row,
}


def upsert(model: type[StripeMirror], objects: Sequence[StripeDict], now: int | None = None) -> int:
    """Insert or update `objects` in one statement; return how many rows changed.

    The caller owns the transaction. Rows whose stored `raw` equals Stripe's object are skipped,
    which keeps `synced_at` meaning "last time something changed".
    """
    if not objects:
        return 0
    stamp = int(time.time()) if now is None else now
    build = ROW_BUILDERS[model]
    # One statement may not touch a row twice (PostgreSQL refuses), so the last copy wins.
    rows = list({row["stripe_id"]: row for row in (build(obj, stamp) for obj in objects)}.values())
    ids = [row["stripe_id"] for row in rows]
    existing = {
        stripe_id: raw
        for stripe_id, raw in tuples(
            model.select(model.stripe_id, model.raw).where(model.stripe_id.in_(ids))
        )
    }
    changed = [row for row in rows if existing.get(row["stripe_id"]) != row["raw"]]
    if not changed:
        return 0
    # Only what Stripe owns is overwritten; local-only columns (notes, tags) are left alone.
    columns = [model._meta.fields[name] for name in changed[0] if name != "stripe_id"]
    query = model.insert_many(changed).on_conflict(
        conflict_target=[model.stripe_id],
        update={f: peewee.EXCLUDED[f.column_name] for f in columns},
    )
    query.execute()
    note_rows(model, changed)
    return len(changed)


def note_rows(model: type[StripeMirror], rows: Sequence[Mapping[str, Any]]) -> None:
    """Tell whoever collects `changes` which mirrored rows were written (by Stripe id)."""
    ids = [str(row["stripe_id"]) for row in rows]
    if model is Customer:
        changes.note(customers=ids)
    elif model is Invoice:
        changes.note(invoices=ids)
    elif model is Product:
        changes.note(products=ids, catalog=True)
    elif model is Price:
        changes.note(products=[str(row.get("product_id") or "") for row in rows], catalog=True)
    elif model is Subscription:
        changes.note(subscriptions=ids)
