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


def subscription_row(obj: StripeDict, now: int) -> dict[str, Any]:
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    items = (obj.get("items") or {}).get("data") or []
    period_end = obj.get("current_period_end") or (
        items[0].get("current_period_end") if items else None
    )
    return {
        **_base(obj, now),
        "customer_id": customer or "",
        "status": obj.get("status") or "",
        "current_period_end": period_end,
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end", False)),
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
    # Subscriptions are shown by no list.
