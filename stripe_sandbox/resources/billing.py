"""Subscription billing: periods, the invoices of subscriptions, and what happens by itself.

Everything a subscription does without an API request is an *action* due at some time
(``_due``): finalizing a renewal invoice an hour after it was made, a payment retry, the
end of a trial or of a period, a scheduled cancellation. ``run_due`` performs the due
actions of some subscriptions in time order, each at its own time: a test clock advance
runs those of the clock's customers up to the new frozen time; every API request first
runs those of subscriptions without a clock up to the sandbox's now (``sweep``).

Objects carry the simulated time of the action (``created``, periods, ``paid_at``...);
events carry the time of the request that ran them (``Store.event_clock``), as Stripe stamps
events with real time when a test clock advances. Automatic actions record events with
``request.id: null``.

Settings (``/_sandbox/billing_settings``, kept in the state file):

- ``after_failed_payments``: ``cancel`` (Stripe's default) or ``unpaid`` — what happens to a
  subscription once every retry of a renewal failed.
- ``send_invoice_grace_days`` (default 30): how long a ``send_invoice`` subscription stays
  ``past_due`` after its invoice's due date before the same thing happens.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stripe_sandbox.cards import AUTHENTICATES, DECLINES
from stripe_sandbox.resources import invoices, payment_methods
from stripe_sandbox.resources.common import Ctx, record_update
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, new_id

DAY = 86_400
HOUR = 3_600
# Stripe finalizes a renewal invoice (and attempts payment) about an hour after making it.
FINALIZE_DELAY = HOUR
# Retries of a failed renewal payment, in days after the first attempt (Stripe's custom
# retry schedule; Smart Retries are not emulated). After the last one, the subscription is
# canceled or marked unpaid (setting `after_failed_payments`).
RETRY_DAYS = (3, 5, 7)
# customer.subscription.trial_will_end comes this long before the trial ends.
TRIAL_WILL_END = 3 * DAY
# An `incomplete` subscription whose first invoice is still unpaid this long after creation
# becomes `incomplete_expired`.
INCOMPLETE_EXPIRY = 23 * HOUR
# Statuses after which nothing more happens.
ENDED = frozenset({"canceled", "incomplete_expired"})
SETTINGS_KEY = "_sandbox_billing_settings"
DEFAULT_SETTINGS: JsonDict = {"after_failed_payments": "cancel", "send_invoice_grace_days": 30}
AFTER_FAILED = ("cancel", "unpaid")
AUTOMATIC = RequestInfo(None, None)
# Stripe writes "1 (times sign) Pro (at $10.00 / month)" on subscription lines.
TIMES = "\u00d7"
# A runaway guard: no advance performs more actions than this.
MAX_ACTIONS = 100_000


def settings(store: Store) -> JsonDict:
    """The billing settings in force."""
    return {**DEFAULT_SETTINGS, **store.hidden.get(SETTINGS_KEY, {})}


def update_settings(store: Store, params: dict[str, Any]) -> JsonDict:
    """Change billing settings (``after_failed_payments``, ``send_invoice_grace_days``).

    Raises:
        ApiError: An unknown setting or a bad value.
    """
    current = settings(store)
    for key, value in params.items():
        if key == "after_failed_payments":
            if value not in AFTER_FAILED:
                raise invalid("after_failed_payments must be one of cancel, unpaid.", param=key)
            current[key] = value
        elif key == "send_invoice_grace_days":
            try:
                days = int(value)
            except (TypeError, ValueError):
                days = -1
            if not 0 <= days <= 365:
                raise invalid("send_invoice_grace_days must be 0..365.", param=key)
            current[key] = days
        else:
            raise invalid(f"Unknown billing setting: {key}", param=key)
    store.hidden[SETTINGS_KEY] = current
    store.touch()
    return {"object": "sandbox.billing_settings", **current}


# ---------------------------------------------------------------- periods


def boundary(anchor: int, interval: str, count: int, n: int) -> int:
    """The ``n``-th period boundary after ``anchor`` (``n`` = 0 is the anchor itself).

    Months and years keep the anchor's day of month, clamped to the month's last day and
    counted from the anchor each time (an anchor on the 31st bills on Feb 28, then Mar 31),
    as Stripe does.
    """
    if interval == "day":
        return anchor + n * count * DAY
    if interval == "week":
        return anchor + n * count * 7 * DAY
    months = n * count * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, UTC)
    years, month0 = divmod(start.month - 1 + months, 12)
    year = start.year + years
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return int(start.replace(year=year, month=month0 + 1, day=day).timestamp())


def hidden(store: Store, sub: JsonDict) -> JsonDict:
    """What the sandbox keeps about a subscription without showing it."""
    return store.hidden.setdefault(sub["id"], {})


def items_of(store: Store, sub: JsonDict) -> list[JsonDict]:
    """A subscription's live items, in the order added."""
    objects = store.objects["subscription_item"]
    return [objects[i] for i in hidden(store, sub).get("items", []) if i in objects]


def sync_items(store: Store, sub: JsonDict) -> None:
    """Refresh the embedded ``items`` list from the stored items."""
    items = items_of(store, sub)
    sub["items"] = {
        "object": "list",
        "data": [deep_copy(i) for i in items],
        "has_more": False,
        "total_count": len(items),
        "url": f"/v1/subscription_items?subscription={sub['id']}",
    }
    store.touch()


def recurring_of(store: Store, sub: JsonDict) -> tuple[str, int]:
    """(interval, interval_count) shared by the subscription's items."""
    items = items_of(store, sub)
    rec = items[0]["price"]["recurring"]
    return str(rec["interval"]), int(rec["interval_count"])


def period(store: Store, sub: JsonDict) -> tuple[int, int]:
    """The current period (start, end), from the items."""
    first = items_of(store, sub)[0]
    return int(first["current_period_start"]), int(first["current_period_end"])


def set_period(store: Store, sub: JsonDict, start: int, end: int) -> None:
    """Give every item the period [start, end)."""
    for item in items_of(store, sub):
        item["current_period_start"] = start
        item["current_period_end"] = end
    sync_items(store, sub)


def cycle_period(store: Store, sub: JsonDict, cycle: int) -> tuple[int, int]:
    """Period number ``cycle`` counted from the billing cycle anchor."""
    interval, count = recurring_of(store, sub)
    anchor = sub["billing_cycle_anchor"]
    return boundary(anchor, interval, count, cycle), boundary(anchor, interval, count, cycle + 1)


def cycle_containing(store: Store, sub: JsonDict, when: int) -> int:
    """The number of the period (from the anchor) that contains ``when``."""
    interval, count = recurring_of(store, sub)
    anchor = sub["billing_cycle_anchor"]
    n = 0
    while boundary(anchor, interval, count, n + 1) <= when:
        n += 1
    return n


def clock_now(store: Store, customer: JsonDict, wall: int) -> int:
    """The time a customer lives in: its test clock's frozen time, else the wall clock."""
    clock_id = customer.get("test_clock")
    if clock_id:
        clock = store.get("test_helpers.test_clock", clock_id)
        if clock is not None:
            return int(clock["frozen_time"])
    return wall


# ---------------------------------------------------------------- money and wording


def _money(amount: int, currency: str) -> str:
    value = Decimal(amount) / 100
    if currency == "usd":
        return f"${value:,.2f}"
    return f"{value:,.2f} {currency.upper()}"


def _interval_words(interval: str, count: int) -> str:
    return interval if count == 1 else f"every {count} {interval}s"


def _date_words(when: int) -> str:
    moment = datetime.fromtimestamp(when, UTC)
    return f"{moment.day} {moment:%b %Y}"


def product_name(store: Store, price: JsonDict) -> str:
    """The name of a price's product (its id if the product is gone)."""
    product = store.get("product", price["product"])
    return str(product["name"]) if product else str(price["product"])


def item_amount(item: JsonDict, quantity: int | None = None, price: JsonDict | None = None) -> int:
    """What one period of an item costs."""
    price = price or item["price"]
    qty = item["quantity"] if quantity is None else quantity
    return int(price["unit_amount"] or 0) * int(qty)


def prorate(amount: int, when: int, start: int, end: int) -> int:
    """The share of ``amount`` for the time from ``when`` to ``end`` of [start, end),
    rounded half up to the minor unit (Stripe prorates to the second)."""
    if end <= start:
        return 0
    share = Decimal(amount) * Decimal(end - when) / Decimal(end - start)
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# ---------------------------------------------------------------- invoices


def subscription_parent(sub: JsonDict, proration_date: int | None = None) -> JsonDict:
    """An invoice's ``parent`` for a subscription (API 2025-03-31 and later)."""
    return {
        "quote_details": None,
        "subscription_details": {
            "metadata": dict(sub["metadata"]),
            "subscription": sub["id"],
            "subscription_proration_date": proration_date,
        },
        "type": "subscription_details",
    }


def new_invoice(
    ctx: Ctx,
    sub: JsonDict,
    billing_reason: str,
    period_start: int,
    period_end: int,
    *,
    preview: bool = False,
) -> JsonDict:
    """A draft invoice of a subscription (stored unless ``preview``)."""
    store = ctx.store
    customer = store.objects["customer"][sub["customer"]]
    invoice = invoices.new_draft(
        ctx,
        customer,
        {"auto_advance": True},
        sub["collection_method"],
        sub["currency"],
        None,
        None,
    )
    invoice.update(
        {
            "billing_reason": billing_reason,
            "parent": subscription_parent(sub),
            "period_start": period_start,
            "period_end": period_end,
            "test_clock": sub["test_clock"],
            "description": sub["description"],
        }
    )
    if preview:
        return invoice
    invoice["id"] = new_id("in", 24)
    store.hidden[invoice["id"]] = {"days_until_due": sub["days_until_due"]}
    store.add(invoice)
    store.children[invoice["id"]] = []
    hidden(store, sub).setdefault("invoices", []).append(invoice["id"])
    return invoice


def regular_line(
    store: Store,
    invoice: JsonDict,
    sub: JsonDict,
    item: JsonDict,
    start: int,
    end: int,
    *,
    trial: bool = False,
) -> JsonDict:
    """The line billing one period of an item (or its free trial)."""
    price = item["price"]
    rec = price["recurring"]
    name = product_name(store, price)
    if trial:
        amount = 0
        description = f"Trial period for {name}"
    else:
        amount = item_amount(item)
        unit = _money(int(price["unit_amount"] or 0), price["currency"])
        every = _interval_words(rec["interval"], rec["interval_count"])
        description = f"{item['quantity']} {TIMES} {name} (at {unit} / {every})"
    return sub_line(
        invoice, sub, item["id"], price, item["quantity"], amount, description, start, end
    )


def sub_line(
    invoice: JsonDict,
    sub: JsonDict,
    item_id: str,
    price: JsonDict,
    quantity: int,
    amount: int,
    description: str,
    start: int,
    end: int,
    *,
    invoice_item: str | None = None,
    proration: bool = False,
    unit_amount_decimal: str | None = None,
) -> JsonDict:
    invoice_id = invoice.get("id")
    return {
        "id": new_id("il" if invoice_id else "il_tmp", 24),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"],
                "subscription_item": item_id,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": end, "start": start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal or price["unit_amount_decimal"],
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    }


def item_line(invoice: JsonDict, sub: JsonDict, ii: JsonDict) -> JsonDict:
    """The line of a subscription's invoice item (a proration) on ``invoice``."""
    details = ii["pricing"]["price_details"]
    price = {
        "id": details["price"],
        "product": details["product"],
        "currency": ii["currency"],
        "unit_amount_decimal": ii["pricing"]["unit_amount_decimal"],
    }
    return sub_line(
        invoice,
        sub,
        ii["parent"]["subscription_details"]["subscription_item"],
        price,
        ii["quantity"],
        ii["amount"],
        ii["description"],
        ii["period"]["start"],
        ii["period"]["end"],
        invoice_item=ii["id"],
        proration=bool(ii["proration"]),
    )


def add_lines(store: Store, invoice: JsonDict, lines: list[JsonDict]) -> None:
    """Store lines on a stored invoice and recompute its totals."""
    for line in lines:
        store.add(line)
        store.children.setdefault(invoice["id"], []).append(line["id"])
    invoices.refresh(store, invoice)


def preview_lines(invoice: JsonDict, lines: list[JsonDict]) -> None:
    """Embed lines in a preview invoice and set its totals."""
    total = sum(line["amount"] for line in lines)
    invoice.update(
        {
            "lines": {
                "object": "list",
                "data": lines[: invoices.EMBEDDED_LINES],
                "has_more": len(lines) > invoices.EMBEDDED_LINES,
                "total_count": len(lines),
                "url": "/v1/invoices/create_preview/lines",
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "amount_due": max(total, 0),
            "amount_remaining": max(total, 0),
            "ending_balance": min(total, 0) or None,
        }
    )


def pending_items(store: Store, sub: JsonDict) -> list[JsonDict]:
    """The subscription's invoice items not yet on an invoice (prorations), oldest first."""
    found = [
        i
        for i in store.objects["invoiceitem"].values()
        if i["invoice"] is None
        and ((i.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        == sub["id"]
    ]
    return sorted(found, key=store.sort_key)


def take_pending(store: Store, invoice: JsonDict, sub: JsonDict) -> list[JsonDict]:
    """Move the subscription's pending invoice items onto ``invoice``; their lines."""
    lines = []
    for ii in pending_items(store, sub):
        ii["invoice"] = invoice["id"]
        line = item_line(invoice, sub, ii)
        store.hidden[ii["id"]] = {"line": line["id"]}
        lines.append(line)
    return lines


def proration_item(
    ctx: Ctx,
    sub: JsonDict,
    item_id: str,
    price: JsonDict,
    quantity: int,
    amount: int,
    description: str,
    start: int,
    end: int,
) -> JsonDict:
    """A stored, pending proration invoice item (``invoiceitem.created``)."""
    unit = format((Decimal(amount) / quantity).normalize(), "f") if quantity else str(amount)
    ii: JsonDict = {
        "id": new_id("ii", 24),
        "object": "invoiceitem",
        "amount": amount,
        "currency": price["currency"],
        "customer": sub["customer"],
        "customer_account": None,
        "date": ctx.now,
        "description": description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": {
            "subscription_details": {"subscription": sub["id"], "subscription_item": item_id},
            "type": "subscription_details",
        },
        "period": {"end": end, "start": start},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": unit,
        },
        "proration": True,
        "proration_details": {"discount_amounts": []},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": sub["test_clock"],
    }
    ctx.store.add(ii)
    ctx.store.record_event("invoiceitem.created", ii, ctx.request, ctx.now)
    return ii


def proration_texts(store: Store, price: JsonDict, quantity: int, when: int) -> tuple[str, str]:
    """(credit, debit) descriptions of proration lines, worded as Stripe's."""
    name = product_name(store, price)
    day = _date_words(when)
    return (
        f"Unused time on {quantity} {TIMES} {name} after {day}",
        f"Remaining time on {quantity} {TIMES} {name} after {day}",
    )


# ---------------------------------------------------------------- collecting


def payment_method_of(store: Store, sub: JsonDict) -> JsonDict | None:
    """The PaymentMethod a subscription charges: its own default, else the customer's."""
    customer = store.objects["customer"].get(sub["customer"]) or {}
    for pm_id in (
        sub.get("default_payment_method"),
        (customer.get("invoice_settings") or {}).get("default_payment_method"),
    ):
        pm = store.get("payment_method", pm_id) if pm_id else None
        if pm is not None and pm["customer"] == sub["customer"]:
            return pm
    return None


def predict_failure(store: Store, sub: JsonDict) -> ApiError | None:
    """The error charging the subscription's payment method would give, without charging
    (for ``payment_behavior=error_if_incomplete``, which changes nothing on failure)."""
    pm = payment_method_of(store, sub)
    if pm is None:
        return invalid(invoices.NO_PAYMENT_METHOD)
    card = payment_methods.card_of(pm)
    if card is None:
        return None
    if card.outcome == DECLINES and card.decline is not None:
        extra: JsonDict = {"payment_method": deep_copy(pm)}
        if card.decline.decline_code:
            extra["decline_code"] = card.decline.decline_code
        return ApiError(
            402, card.decline.message, type_="card_error", code=card.decline.code, extra=extra
        )
    if card.outcome == AUTHENTICATES:
        return ApiError(
            402,
            invoices.REQUIRES_ACTION,
            type_="card_error",
            code="subscription_payment_intent_requires_action",
        )
    return None


def collect(ctx: Ctx, sub: JsonDict, invoice: JsonDict, *, attempt: bool = True) -> bool:
    """Finalize a draft and, for ``charge_automatically``, attempt payment now.

    Returns whether the invoice ended up paid.
    """
    invoice["automatically_finalizes_at"] = None
    invoices.finalize_now(ctx, invoice)
    if invoice["status"] == "paid":
        return True
    if sub["collection_method"] == "send_invoice" or not attempt:
        invoice["next_payment_attempt"] = None
        return False
    return attempt_payment(ctx, sub, invoice)


def attempt_payment(ctx: Ctx, sub: JsonDict, invoice: JsonDict) -> bool:
    """One automatic payment attempt of an open invoice; schedules the next retry."""
    store = ctx.store
    info = store.hidden.setdefault(invoice["id"], {})
    first = int(info.setdefault("first_attempt", ctx.now))
    number = invoice["attempt_count"] + 1
    if sub["status"] == "incomplete" or number > len(RETRY_DAYS):
        invoice["next_payment_attempt"] = None
    else:
        invoice["next_payment_attempt"] = first + RETRY_DAYS[number - 1] * DAY
    pm = payment_method_of(store, sub)
    if pm is None:
        invoice["attempted"] = True
        invoice["attempt_count"] = number
        store.touch()
        store.record_event("invoice.payment_failed", invoice, ctx.request, ctx.now)
        failed = True
    else:
        failed = invoices.charge_invoice(ctx, invoice, pm, off_session=True) is not None
    if not failed:
        return True
    _after_failure(ctx, sub, invoice)
    return False


def _after_failure(ctx: Ctx, sub: JsonDict, invoice: JsonDict) -> None:
    status = sub["status"]
    if status == "incomplete":
        return
    if invoice["next_payment_attempt"] is None and status in ("active", "past_due", "trialing"):
        final_failure(ctx, sub)
    elif status in ("active", "trialing"):
        set_status(ctx, sub, "past_due")


def final_failure(ctx: Ctx, sub: JsonDict) -> None:
    """Every retry failed (or a sent invoice stayed unpaid past the grace period)."""
    if settings(ctx.store)["after_failed_payments"] == "unpaid":
        set_status(ctx, sub, "unpaid")
    else:
        end(ctx, sub, "payment_failed")


def set_status(ctx: Ctx, sub: JsonDict, status: str) -> None:
    """Change the status and record ``customer.subscription.updated``."""
    before = deep_copy(sub)
    sub["status"] = status
    record_update(ctx, "customer.subscription", before, sub)


def end(ctx: Ctx, sub: JsonDict, reason: str) -> None:
    """Cancel now: ``canceled``, ``ended_at``, ``customer.subscription.deleted``."""
    sub["status"] = "canceled"
    sub["ended_at"] = ctx.now
    if sub["canceled_at"] is None:
        sub["canceled_at"] = ctx.now
    sub["cancellation_details"]["reason"] = reason
    ctx.store.touch()
    ctx.store.record_event("customer.subscription.deleted", sub, ctx.request, ctx.now)


def on_invoice_paid(ctx: Ctx, invoice: JsonDict) -> None:
    """A subscription's invoice was paid: no more retries; a subscription waiting on
    payment (``incomplete``, ``past_due``, ``unpaid``) becomes ``active`` once none of its
    invoices is left open."""
    sub_id = invoices.subscription_of(invoice)
    invoice["next_payment_attempt"] = None
    sub = ctx.store.get("subscription", sub_id) if sub_id else None
    if sub is None or sub["status"] not in ("incomplete", "past_due", "unpaid"):
        return
    for other_id in hidden(ctx.store, sub).get("invoices", []):
        other = ctx.store.get("invoice", other_id)
        if other is not None and other["status"] == "open" and other["amount_remaining"] > 0:
            return
    set_status(ctx, sub, "active")


invoices.PAID_HOOKS.append(on_invoice_paid)


# ---------------------------------------------------------------- automatic actions


def _due(store: Store, sub: JsonDict) -> list[tuple[int, int, str, str]]:
    """(time, rank, action, invoice id) of everything pending for a subscription."""
    status = sub["status"]
    if status in ENDED:
        return []
    out: list[tuple[int, int, str, str]] = []
    grace = int(settings(store)["send_invoice_grace_days"]) * DAY
    for inv_id in hidden(store, sub).get("invoices", []):
        inv = store.get("invoice", inv_id)
        if inv is None:
            continue
        if inv["status"] == "draft" and inv["automatically_finalizes_at"]:
            out.append((inv["automatically_finalizes_at"], 0, "finalize", inv_id))
        elif inv["status"] == "open":
            if (
                inv["collection_method"] == "charge_automatically"
                and inv["next_payment_attempt"]
                and status in ("active", "past_due", "trialing")
            ):
                out.append((inv["next_payment_attempt"], 1, "retry", inv_id))
            if inv["collection_method"] == "send_invoice" and inv["due_date"]:
                if not store.hidden.get(inv_id, {}).get("overdue"):
                    out.append((inv["due_date"], 2, "overdue", inv_id))
                elif status == "past_due":
                    out.append((inv["due_date"] + grace, 2, "overdue_final", inv_id))
    pause = sub["pause_collection"]
    if pause and pause.get("resumes_at"):
        out.append((pause["resumes_at"], 0, "unpause", ""))
    if status == "incomplete":
        out.append((sub["created"] + INCOMPLETE_EXPIRY, 3, "expire", ""))
    elif status == "trialing":
        trial_end = sub["trial_end"]
        if not hidden(store, sub).get("trial_will_end_sent"):
            out.append((trial_end - TRIAL_WILL_END, 1, "trial_will_end", ""))
        if sub["cancel_at"] is not None and sub["cancel_at"] <= trial_end:
            out.append((sub["cancel_at"], 4, "cancel", ""))
        else:
            out.append((trial_end, 5, "trial_end", ""))
    elif status in ("active", "past_due", "unpaid"):
        _, period_end = period(store, sub)
        if sub["cancel_at"] is not None and sub["cancel_at"] <= period_end:
            out.append((sub["cancel_at"], 4, "cancel", ""))
        else:
            out.append((period_end, 5, "renew", ""))
    return out


def next_due(store: Store, subs: list[JsonDict]) -> int | None:
    """The earliest time anything is due for these subscriptions."""
    times = [d[0] for sub in subs for d in _due(store, sub)]
    return min(times) if times else None


def run_due(
    store: Store,
    subs: list[JsonDict],
    until: int,
    on_step: Callable[[int], None] | None = None,
) -> int:
    """Perform every action due up to ``until`` for these subscriptions, in time order
    (ties: finalize and unpause, retries and trial notices, overdue, expiry, cancellation,
    period ends; then by subscription age). ``on_step(t)`` runs before each action (a test
    clock moves its frozen time there). Returns the number of actions performed."""
    done = 0
    while done < MAX_ACTIONS:
        best: tuple[tuple[int, int, int], JsonDict, str, str] | None = None
        for sub in subs:
            for when, rank, action, ref in _due(store, sub):
                if when > until:
                    continue
                key = (when, rank, store.seq.get(sub["id"], 0))
                if best is None or key < best[0]:
                    best = (key, sub, action, ref)
        if best is None:
            return done
        (when, _, _), sub, action, ref = best
        if on_step is not None:
            on_step(when)
        perform(Ctx(store, when, AUTOMATIC), sub, action, ref)
        done += 1
    raise ApiError(500, "The sandbox stopped a runaway billing run.", type_="api_error")


def sweep(store: Store) -> None:
    """Run what is due for subscriptions without a test clock (before every request)."""
    subs = [
        s
        for s in store.objects["subscription"].values()
        if s["test_clock"] is None and s["status"] not in ENDED
    ]
    if subs:
        run_due(store, subs, store.now())


def perform(ctx: Ctx, sub: JsonDict, action: str, ref: str) -> None:
    """Do one automatic action at ``ctx.now``."""
    store = ctx.store
    if action == "finalize":
        _finalize_due(ctx, sub, store.objects["invoice"][ref])
    elif action == "retry":
        attempt_payment(ctx, sub, store.objects["invoice"][ref])
    elif action == "overdue":
        invoice = store.objects["invoice"][ref]
        store.hidden.setdefault(ref, {})["overdue"] = True
        store.touch()
        store.record_event("invoice.overdue", invoice, ctx.request, ctx.now)
        if sub["status"] == "active":
            set_status(ctx, sub, "past_due")
    elif action == "overdue_final":
        store.hidden.setdefault(ref, {})["overdue"] = "final"
        final_failure(ctx, sub)
    elif action == "unpause":
        before = deep_copy(sub)
        sub["pause_collection"] = None
        record_update(ctx, "customer.subscription", before, sub)
    elif action == "expire":
        _expire(ctx, sub)
    elif action == "trial_will_end":
        hidden(store, sub)["trial_will_end_sent"] = True
        store.touch()
        store.record_event("customer.subscription.trial_will_end", sub, ctx.request, ctx.now)
    elif action == "trial_end":
        end_trial(ctx, sub)
    elif action == "cancel":
        end(ctx, sub, "cancellation_requested")
    elif action == "renew":
        renew(ctx, sub)


def _finalize_due(ctx: Ctx, sub: JsonDict, invoice: JsonDict) -> None:
    pause = sub["pause_collection"]
    if pause and pause["behavior"] != "keep_as_draft":
        invoice["automatically_finalizes_at"] = None
        invoices.finalize_now(ctx, invoice)
        invoice["next_payment_attempt"] = None
        if invoice["status"] == "open":
            if pause["behavior"] == "void":
                invoices.void(ctx, {}, invoice["id"])
            else:
                invoices.mark_uncollectible(ctx, {}, invoice["id"])
        return
    collect(ctx, sub, invoice)


def _expire(ctx: Ctx, sub: JsonDict) -> None:
    latest = ctx.store.get("invoice", sub["latest_invoice"]) if sub["latest_invoice"] else None
    if latest is not None and latest["status"] == "open":
        invoices.void(ctx, {}, latest["id"])
    before = deep_copy(sub)
    sub["status"] = "incomplete_expired"
    sub["ended_at"] = ctx.now
    record_update(ctx, "customer.subscription", before, sub)


def _renewal_invoice(ctx: Ctx, sub: JsonDict, billing_reason: str, prev: tuple[int, int]) -> None:
    """Make the invoice of the period that just started (draft, finalized an hour later)."""
    store = ctx.store
    start, end_ = period(store, sub)
    invoice = new_invoice(ctx, sub, billing_reason, prev[0], prev[1])
    lines = [regular_line(store, invoice, sub, item, start, end_) for item in items_of(store, sub)]
    lines += take_pending(store, invoice, sub)
    add_lines(store, invoice, lines)
    pause = sub["pause_collection"]
    if sub["status"] == "unpaid" or (pause and pause["behavior"] == "keep_as_draft"):
        # Stripe keeps making invoices for these, as drafts it never finalizes.
        invoice["auto_advance"] = False
    else:
        invoice["automatically_finalizes_at"] = ctx.now + FINALIZE_DELAY
        if sub["collection_method"] == "charge_automatically":
            invoice["next_payment_attempt"] = ctx.now + FINALIZE_DELAY
    sub["latest_invoice"] = invoice["id"]
    store.record_event("invoice.created", invoice, ctx.request, ctx.now)


def renew(ctx: Ctx, sub: JsonDict) -> None:
    """A period ended: the next begins and its invoice is made."""
    store = ctx.store
    before = deep_copy(sub)
    prev = period(store, sub)
    info = hidden(store, sub)
    info["cycle"] = int(info.get("cycle", 0)) + 1
    start, end_ = cycle_period(store, sub, info["cycle"])
    set_period(store, sub, start, end_)
    _renewal_invoice(ctx, sub, "subscription_cycle", prev)
    record_update(ctx, "customer.subscription", before, sub)


def end_trial(ctx: Ctx, sub: JsonDict) -> None:
    """The trial is over: bill the first paid period (or pause/cancel without a payment
    method, per ``trial_settings``)."""
    store = ctx.store
    behavior = sub["trial_settings"]["end_behavior"]["missing_payment_method"]
    if (
        sub["collection_method"] == "charge_automatically"
        and payment_method_of(store, sub) is None
        and behavior != "create_invoice"
    ):
        if behavior == "cancel":
            end(ctx, sub, "cancellation_requested")
            return
        before = deep_copy(sub)
        sub["status"] = "paused"
        sub["status_details"] = None
        record_update(ctx, "customer.subscription", before, sub)
        return
    # Like a renewal: the first paid period starts at the trial's end, its invoice is
    # finalized and charged an hour later.
    before = deep_copy(sub)
    prev = period(store, sub)
    sub["billing_cycle_anchor"] = ctx.now
    hidden(store, sub)["cycle"] = 0
    start, end_ = cycle_period(store, sub, 0)
    set_period(store, sub, start, end_)
    sub["status"] = "active"
    _renewal_invoice(ctx, sub, "subscription_cycle", prev)
    record_update(ctx, "customer.subscription", before, sub)


def start_new_period(
    ctx: Ctx,
    sub: JsonDict,
    when: int,
    billing_reason: str,
    *,
    attempt: bool = True,
) -> JsonDict:
    """Reset the billing cycle anchor to ``when``, invoice the new period at once and
    collect it (renewal-style: the subscription becomes ``past_due`` on failure)."""
    store = ctx.store
    before = deep_copy(sub)
    prev = period(store, sub)
    sub["billing_cycle_anchor"] = when
    hidden(store, sub)["cycle"] = 0
    start, end_ = cycle_period(store, sub, 0)
    set_period(store, sub, start, end_)
    if sub["status"] in ("paused", "trialing"):
        sub["status"] = "active"
        sub["trial_end"] = min(sub["trial_end"] or when, when) if sub["trial_end"] else None
    invoice = new_invoice(ctx, sub, billing_reason, prev[0], prev[1])
    lines = [regular_line(store, invoice, sub, item, start, end_) for item in items_of(store, sub)]
    lines += take_pending(store, invoice, sub)
    add_lines(store, invoice, lines)
    sub["latest_invoice"] = invoice["id"]
    record_update(ctx, "customer.subscription", before, sub)
    store.record_event("invoice.created", invoice, ctx.request, ctx.now)
    collect(ctx, sub, invoice, attempt=attempt)
    return invoice
