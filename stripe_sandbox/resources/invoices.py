"""One-off invoices: ``/v1/invoiceitems``, ``/v1/invoices`` and ``/v1/invoice_payments``.

Since API 2025-03-31 (basil) an invoice has no ``payment_intent``/``charge``/``paid``: its
payments are InvoicePayment objects. Finalizing an invoice with an amount due creates its
PaymentIntent and a default InvoicePayment (``status=open``); paying fills them in.

Events, in the order recorded:

- create: ``invoice.created``; an item added to a draft: ``invoiceitem.created``,
  ``invoice.updated``
- finalize: ``invoice.finalized``, ``payment_intent.created`` (nothing due: ``invoice.finalized``,
  ``invoice.paid``, ``invoice.payment_succeeded``)
- pay, card succeeds: ``charge.succeeded``, ``payment_intent.succeeded``,
  ``invoice_payment.paid``, ``invoice.paid``, ``invoice.payment_succeeded``
- pay, card declined: ``charge.failed``, ``payment_intent.payment_failed``,
  ``invoice.payment_failed`` (402 card error; the invoice stays open)
- pay, card needs authentication: ``payment_intent.requires_action``,
  ``invoice.payment_action_required`` (402 ``invoice_payment_intent_requires_action``)
- pay out of band: ``payment_intent.canceled``, ``invoice.paid``
- void: ``payment_intent.canceled``, ``invoice.voided``; mark uncollectible:
  ``invoice.marked_uncollectible``; send: ``invoice.sent``
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from stripe.params import (
    InvoiceCreateParams,
    InvoiceDeleteParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoiceItemDeleteParams,
    InvoiceItemListParams,
    InvoiceItemRetrieveParams,
    InvoiceLineItemListParams,
    InvoiceListParams,
    InvoiceMarkUncollectibleParams,
    InvoicePaymentListParams,
    InvoicePaymentRetrieveParams,
    InvoicePayParams,
    InvoiceRetrieveParams,
    InvoiceSendInvoiceParams,
    InvoiceUpdateParams,
    InvoiceVoidInvoiceParams,
)

from stripe_sandbox.resources import disputes, payment_methods, payments
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
    save_update,
)
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, missing, new_id

EXPANDABLE.update(
    {
        "invoice": {
            "customer": "customer",
            "default_payment_method": "payment_method",
            "latest_revision": "invoice",
            "on_behalf_of": "account",
            "test_clock": "test_helpers.test_clock",
        },
        "invoiceitem": {"customer": "customer", "invoice": "invoice"},
        "line_item": {},
        "invoice_payment": {"invoice": "invoice", "payment": ""},
        "invoice_payment.payment": {"payment_intent": "payment_intent", "charge": "charge"},
    }
)
EXPANDABLE["customer"]["invoice_settings"] = ""
EXPANDABLE["customer.invoice_settings"] = {"default_payment_method": "payment_method"}

ACCOUNT_NAME = "Stripe Sandbox"
DAY = 24 * 3600
# Lines embedded in an invoice; the rest are under /v1/invoices/{id}/lines.
EMBEDDED_LINES = 10

REQUIRES_ACTION = (
    "This payment requires additional user action before it can be completed successfully. "
    "Payment can be completed using the PaymentIntent associated with the invoice. For more "
    "details see: https://stripe.com/docs/billing/subscriptions/overview#requires-action"
)
NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)

_CREATE_SUPPORTED = frozenset(
    {
        "auto_advance",
        "automatic_tax",
        "collection_method",
        "currency",
        "custom_fields",
        "customer",
        "days_until_due",
        "default_payment_method",
        "description",
        "due_date",
        "expand",
        "footer",
        "metadata",
        "number",
        "pending_invoice_items_behavior",
        "statement_descriptor",
    }
)
# Fields that can change once an invoice is finalized; the rest only on drafts.
_FINALIZED_EDITABLE = frozenset(
    {
        "auto_advance",
        "custom_fields",
        "days_until_due",
        "default_payment_method",
        "description",
        "due_date",
        "expand",
        "footer",
        "metadata",
    }
)
_CLOSED_EDITABLE = frozenset({"description", "expand", "footer", "metadata"})


def hosted_url(base_url: str, invoice_id: str) -> str:
    """The invoice's hosted page (``hosted_invoice_url``)."""
    return f"{base_url}/_sandbox/invoices/{invoice_id}"


def _unsupported(param: str, what: str = "invoices") -> ApiError:
    return invalid(f"The Stripe sandbox does not support `{param}` on {what} yet.", param=param)


def _customer(ctx: Ctx, customer_id: str | None, param: str = "customer") -> JsonDict:
    if not customer_id:
        raise invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")
    customer = ctx.store.get("customer", customer_id)
    if customer is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param=param
        )
    return customer


def _live(ctx: Ctx, kind: str, object_id: str) -> JsonDict:
    obj = ctx.store.get(kind, object_id)
    if obj is None:
        raise missing(kind, object_id)
    return obj


# ---------------------------------------------------------------- invoice items


def _pricing(ctx: Ctx, params: JsonDict) -> tuple[JsonDict | None, str, int]:
    """(pricing hash, currency, unit amount) from ``pricing[price]``, ``price_data`` or
    ``amount``/``unit_amount_decimal`` + ``currency``."""
    sources = [k for k in ("pricing", "price_data", "amount", "unit_amount_decimal") if k in params]
    if len(sources) > 1 and not (set(sources) <= {"amount", "unit_amount_decimal"}):
        raise invalid(
            f"You may only specify one of these parameters: {', '.join(sources)}.",
            param=sources[1],
            code="parameters_exclusive",
        )
    if "pricing" in params:
        price_id = params["pricing"].get("price")
        price = ctx.store.get("price", price_id) if price_id else None
        if price is None:
            raise ApiError(
                400,
                f"No such price: '{price_id}'",
                code="resource_missing",
                param="pricing[price]",
            )
        if price["type"] == "recurring":
            raise invalid(
                "The price specified is set to `type=recurring` but this field only accepts "
                "prices with `type=one_time`.",
                param="pricing[price]",
            )
        if price["unit_amount"] is None:
            raise _unsupported("pricing[price] (prices without a unit_amount)", "invoice items")
        pricing = {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        }
        return pricing, price["currency"], int(price["unit_amount"])
    if "price_data" in params:
        data = params["price_data"]
        product = ctx.store.get("product", data["product"])
        if product is None:
            raise ApiError(
                400,
                f"No such product: '{data['product']}'",
                code="resource_missing",
                param="price_data[product]",
            )
        if "unit_amount" not in data:
            raise invalid(
                "Missing required param: price_data[unit_amount].",
                param="price_data[unit_amount]",
                code="parameter_missing",
            )
        pricing = {
            "price_details": {"price": new_id("price", 24), "product": product["id"]},
            "type": "price_details",
            "unit_amount_decimal": str(data["unit_amount"]),
        }
        return pricing, data["currency"].lower(), int(data["unit_amount"])
    if "currency" not in params:
        raise invalid(
            "Missing required param: currency.", param="currency", code="parameter_missing"
        )
    if "unit_amount_decimal" in params:
        unit = Decimal(params["unit_amount_decimal"])
        if unit != unit.to_integral_value():
            raise _unsupported("unit_amount_decimal (fractional amounts)", "invoice items")
        return None, params["currency"].lower(), int(unit)
    if "amount" not in params:
        raise invalid("Missing required param: amount.", param="amount", code="parameter_missing")
    return None, params["currency"].lower(), int(params["amount"])


def create_item(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/invoiceitems``: ``customer`` plus ``pricing[price]``, ``price_data`` or
    ``amount`` + ``currency`` (+ ``description``, ``quantity``, ``invoice``...)."""
    for key in ("discounts", "tax_rates", "tax_code", "subscription", "customer_account"):
        if key in params:
            raise _unsupported(key, "invoice items")
    customer = _customer(ctx, params.get("customer"))
    pricing, currency, unit = _pricing(ctx, params)
    quantity = params.get("quantity", 1)
    if "amount" in params and "quantity" in params:
        raise invalid(
            "You may only specify one of these parameters: amount, quantity.",
            param="quantity",
            code="parameters_exclusive",
        )
    if quantity < 1:
        raise invalid(
            "Invalid positive integer", param="quantity", code="parameter_invalid_integer"
        )
    invoice: JsonDict | None = None
    if "invoice" in params:
        invoice = ctx.store.get("invoice", params["invoice"])
        if invoice is None:
            raise ApiError(
                400,
                f"No such invoice: '{params['invoice']}'",
                code="resource_missing",
                param="invoice",
            )
        if invoice["customer"] != customer["id"]:
            raise invalid(
                "The invoice belongs to a different customer than the invoice item.",
                param="invoice",
            )
        if invoice["status"] != "draft":
            raise invalid(
                f"You can only add invoice items to draft invoices; {invoice['id']} has "
                f"status {invoice['status']}.",
                param="invoice",
            )
        if invoice["currency"] != currency:
            raise invalid(
                f"The currency of the invoice item ({currency}) must match the invoice's "
                f"currency ({invoice['currency']}).",
                param="currency",
            )
    product = None
    if pricing is not None and pricing["price_details"]:
        product = ctx.store.get("product", pricing["price_details"]["product"])
    description = params.get("description") or (product["name"] if product else None)
    period = params.get("period", {"start": ctx.now, "end": ctx.now})
    amount = unit * quantity
    item: JsonDict = {
        "id": new_id("ii", 24),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer["id"],
        "customer_account": None,
        "date": ctx.now,
        "description": description,
        "discountable": params.get("discountable", True),
        "discounts": [],
        "invoice": invoice["id"] if invoice else None,
        "livemode": False,
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "net_amount": amount,
        "parent": None,
        "period": {"end": period["end"], "start": period["start"]},
        "pricing": pricing,
        "proration": False,
        "proration_details": {"discount_amounts": []},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }
    # Invoice items have no `created`; lists order them by `date`.
    ctx.store.add(item)
    ctx.store.record_event("invoiceitem.created", item, ctx.request, ctx.now)
    if invoice is not None:
        before = deep_copy(invoice)
        _add_line(ctx.store, invoice, item)
        record_update(ctx, "invoice", before, invoice)
    return render(ctx.store, item, params.get("expand", []))


def _line(item: JsonDict, invoice_id: str | None, line_id: str) -> JsonDict:
    return {
        "id": line_id,
        "object": "line_item",
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(item["metadata"]),
        "parent": {
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": dict(item["period"]),
        "pretax_credit_amounts": [],
        "pricing": deep_copy(item["pricing"]),
        "quantity": item["quantity"],
        "subtotal": item["amount"],
        "taxes": [],
    }


def _add_line(store: Store, invoice: JsonDict, item: JsonDict) -> None:
    line = _line(item, invoice["id"], new_id("il", 24))
    store.add(line)
    store.children.setdefault(invoice["id"], []).append(line["id"])
    store.hidden[item["id"]] = {"line": line["id"]}
    refresh(store, invoice)


def lines_of(store: Store, invoice: JsonDict) -> list[JsonDict]:
    """An invoice's line items in the order they were added."""
    lines = store.objects["line_item"]
    return [lines[i] for i in store.children.get(invoice["id"], []) if i in lines]


def refresh(store: Store, invoice: JsonDict) -> None:
    """Recompute the embedded ``lines`` and every total of a draft invoice."""
    lines = lines_of(store, invoice)
    subtotal = sum(line["amount"] for line in lines)
    invoice["lines"] = {
        "object": "list",
        "data": [deep_copy(line) for line in lines[:EMBEDDED_LINES]],
        "has_more": len(lines) > EMBEDDED_LINES,
        "total_count": len(lines),
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }
    invoice.update(
        {
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "total": subtotal,
            "total_excluding_tax": subtotal,
            "amount_due": subtotal,
            "amount_remaining": subtotal - invoice["amount_paid"],
        }
    )
    store.touch()


def retrieve_item(ctx: Ctx, params: JsonDict, item_id: str) -> JsonDict:
    """``GET /v1/invoiceitems/{id}``."""
    return render(ctx.store, _live(ctx, "invoiceitem", item_id), params.get("expand", []))


def delete_item(ctx: Ctx, params: JsonDict, item_id: str) -> JsonDict:
    """``DELETE /v1/invoiceitems/{id}``: only pending items or items on a draft."""
    item = _live(ctx, "invoiceitem", item_id)
    invoice = ctx.store.get("invoice", item["invoice"]) if item["invoice"] else None
    if invoice is not None and invoice["status"] != "draft":
        raise invalid("Invoice items on a finalized invoice cannot be deleted.", param="id")
    stub = ctx.store.remove("invoiceitem", item_id)
    ctx.store.record_event("invoiceitem.deleted", item, ctx.request, ctx.now)
    if invoice is not None:
        before = deep_copy(invoice)
        line_id = ctx.store.hidden.pop(item_id, {}).get("line")
        if line_id and ctx.store.get("line_item", line_id) is not None:
            ctx.store.objects["line_item"].pop(line_id)
            ctx.store.children[invoice["id"]].remove(line_id)
        refresh(ctx.store, invoice)
        record_update(ctx, "invoice", before, invoice)
    return dict(stub)


def delete(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``DELETE /v1/invoices/{id}``: drafts only (finalized invoices must be voided).

    Records ``invoice.deleted`` with the invoice as it was; its lines and the invoice items
    on it go with it.
    """
    invoice = _live(ctx, "invoice", invoice_id)
    if invoice["status"] != "draft":
        raise invalid(
            "You can only delete draft invoices. Finalized invoices can be voided instead.",
            param="id",
        )
    store = ctx.store
    for line_id in store.children.pop(invoice_id, []):
        store.objects["line_item"].pop(line_id, None)
    for item in [i for i in store.objects["invoiceitem"].values() if i["invoice"] == invoice_id]:
        store.hidden.pop(item["id"], None)
        store.remove("invoiceitem", item["id"])
    stub = store.remove("invoice", invoice_id)
    store.record_event("invoice.deleted", invoice, ctx.request, ctx.now)
    return dict(stub)


def list_items(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/invoiceitems`` with ``customer``, ``invoice``, ``pending``, ``created``."""
    pending = params.get("pending")
    items = [
        i
        for i in ctx.store.objects["invoiceitem"].values()
        if all(i[k] == params[k] for k in ("customer", "invoice") if k in params)
        and (pending is None or (i["invoice"] is None) == pending)
        and created_matches(i["date"], params.get("created"))
    ]
    return paginate(ctx, "invoiceitem", "invoiceitem", items, params, "/v1/invoiceitems")


# ---------------------------------------------------------------- invoices


def _customer_snapshot(invoice: JsonDict, customer: JsonDict) -> None:
    invoice.update(
        {
            "customer_address": deep_copy(customer["address"]),
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "customer_phone": customer["phone"],
            "customer_shipping": deep_copy(customer["shipping"]),
            "customer_tax_exempt": customer["tax_exempt"],
        }
    )


def _default_pm(ctx: Ctx, customer: JsonDict, pm_id: str, param: str) -> str:
    pm = ctx.store.get("payment_method", pm_id)
    if pm is None:
        raise ApiError(
            400, f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param=param
        )
    if pm["customer"] != customer["id"]:
        raise invalid(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param=param,
        )
    return pm_id


def _terms(params: JsonDict, collection_method: str) -> tuple[int | None, int | None]:
    """Validated (days_until_due, due_date) for the collection method."""
    days = params.get("days_until_due")
    due = params.get("due_date")
    if collection_method == "charge_automatically":
        for key in ("days_until_due", "due_date"):
            if params.get(key) is not None:
                raise invalid(
                    f"You can only set `{key}` if `collection_method` is `send_invoice`.",
                    param=key,
                )
        return None, None
    if days is not None and due is not None:
        raise invalid(
            "You may only specify one of these parameters: days_until_due, due_date.",
            param="due_date",
            code="parameters_exclusive",
        )
    if days is None and due is None:
        raise invalid(
            "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.",
            param="days_until_due",
        )
    return days, due


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/invoices``: a draft (``auto_advance`` false unless given)."""
    for key in sorted(params):
        if key not in _CREATE_SUPPORTED:
            raise _unsupported(key)
    if params.get("automatic_tax", {}).get("enabled"):
        raise _unsupported("automatic_tax[enabled]")
    customer = _customer(ctx, params.get("customer"))
    collection_method = params.get("collection_method", "charge_automatically")
    days, due = _terms(params, collection_method)
    currency = (params.get("currency") or customer["currency"] or "usd").lower()
    default_pm = None
    if params.get("default_payment_method"):
        default_pm = _default_pm(
            ctx, customer, params["default_payment_method"], "default_payment_method"
        )
    invoice_id = new_id("in", 24)
    invoice = new_draft(ctx, customer, params, collection_method, currency, due, default_pm)
    invoice["id"] = invoice_id
    store = ctx.store
    store.hidden[invoice_id] = {"days_until_due": days}
    store.add(invoice)
    store.children[invoice_id] = []
    if params.get("pending_invoice_items_behavior") == "include":
        for item in _pending_items(store, customer, currency):
            item["invoice"] = invoice_id
            _add_line(store, invoice, item)
    refresh(store, invoice)
    store.record_event("invoice.created", invoice, ctx.request, ctx.now)
    return render(store, invoice, params.get("expand", []))


def _pending_items(store: Store, customer: JsonDict, currency: str) -> list[JsonDict]:
    """The customer's pending invoice items in ``currency``, oldest first."""
    pending = [
        i
        for i in store.objects["invoiceitem"].values()
        if i["customer"] == customer["id"] and i["invoice"] is None and i["currency"] == currency
    ]
    return sorted(pending, key=store.sort_key)


def new_draft(
    ctx: Ctx,
    customer: JsonDict,
    params: JsonDict,
    collection_method: str,
    currency: str,
    due: int | None,
    default_pm: str | None,
) -> JsonDict:
    """A draft invoice without an ``id`` (the caller gives it one, or not for a preview)."""
    invoice: JsonDict = {
        "object": "invoice",
        "account_country": "US",
        "account_name": ACCOUNT_NAME,
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": params.get("auto_advance", False),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "manual",
        "collection_method": collection_method,
        "created": ctx.now,
        "currency": currency,
        "custom_fields": _custom_fields(params.get("custom_fields")),
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": None,
        "customer_name": None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": default_pm,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "due_date": due,
        "effective_at": None,
        "ending_balance": None,
        "footer": params.get("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {},
        "livemode": False,
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "next_payment_attempt": None,
        "number": params.get("number"),
        "on_behalf_of": None,
        "parent": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": ctx.now,
        "period_start": ctx.now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": params.get("statement_descriptor"),
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": ctx.now,
    }
    _customer_snapshot(invoice, customer)
    return invoice


# Stripe's test-mode default for "send upcoming renewal events" is configurable in the
# Dashboard; the sandbox control takes `days` and defaults to this.
UPCOMING_DAYS = 7
# A charge_automatically invoice is first attempted about an hour after it is created.
FIRST_ATTEMPT_DELAY = 3600


def record_upcoming(ctx: Ctx, customer_id: str, days: int) -> JsonDict:
    """Record ``invoice.upcoming`` for a customer: the invoice due in ``days`` days, as a
    preview without an ``id`` (Stripe's renewal notice; the sandbox has no subscriptions,
    so the preview holds the customer's pending invoice items).

    Raises:
        ApiError: 404 for an unknown customer; 400 ``invoice_upcoming_none`` when the
            customer has no pending invoice items.
    """
    customer = ctx.store.get("customer", customer_id)
    if customer is None:
        raise missing("customer", customer_id)
    store = ctx.store
    pending = [
        i
        for i in store.objects["invoiceitem"].values()
        if i["customer"] == customer_id and i["invoice"] is None
    ]
    if not pending:
        raise invalid(
            f"No upcoming invoices for customer: {customer_id}",
            param="customer",
            code="invoice_upcoming_none",
        )
    oldest = min(pending, key=store.sort_key)
    currency = customer["currency"] or oldest["currency"]
    preview = new_draft(ctx, customer, {}, "charge_automatically", currency, None, None)
    created = ctx.now + days * 86_400
    lines = [
        _line(item, None, new_id("il_tmp", 24))
        for item in _pending_items(store, customer, currency)
    ]
    total = sum(line["amount"] for line in lines)
    preview.update(
        {
            "billing_reason": "upcoming",
            "created": created,
            "period_start": ctx.now,
            "period_end": created,
            "next_payment_attempt": created + FIRST_ATTEMPT_DELAY,
            "webhooks_delivered_at": None,
            "lines": {
                "object": "list",
                "data": lines[:EMBEDDED_LINES],
                "has_more": len(lines) > EMBEDDED_LINES,
                "total_count": len(lines),
                "url": f"/v1/invoices/upcoming/lines?customer={customer_id}",
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "total": total,
            "total_excluding_tax": total,
            "amount_due": total,
            "amount_remaining": total,
        }
    )
    # Stripe's own notice, not caused by an API request.
    return store.record_event("invoice.upcoming", preview, RequestInfo(None, None), ctx.now)


def _custom_fields(given: object) -> list[JsonDict] | None:
    if not given:
        return None
    assert isinstance(given, list)
    if len(given) > 4:
        raise invalid("You can have at most 4 custom fields.", param="custom_fields")
    return [{"name": f["name"], "value": f["value"]} for f in given]


def retrieve(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``GET /v1/invoices/{id}`` (``expand[]=payments`` includes its InvoicePayments)."""
    return render(ctx.store, _live(ctx, "invoice", invoice_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}``: drafts fully; open invoices their description, footer,
    metadata, terms and default payment method; paid/void/uncollectible ones description,
    footer and metadata."""
    invoice = _live(ctx, "invoice", invoice_id)
    status = invoice["status"]
    allowed = (
        _CREATE_SUPPORTED
        if status == "draft"
        else _FINALIZED_EDITABLE
        if status == "open"
        else _CLOSED_EDITABLE
    )
    for key in sorted(params):
        if key not in allowed:
            if key in _CREATE_SUPPORTED:
                raise invalid(
                    f"You cannot update `{key}` on an invoice with status `{status}`.",
                    param=key,
                    code="invoice_not_editable",
                )
            raise _unsupported(key)
    customer = _customer(ctx, invoice["customer"])
    changed = deep_copy(invoice)
    hidden = ctx.store.hidden.setdefault(invoice_id, {})
    if "collection_method" in params or "days_until_due" in params or "due_date" in params:
        method = params.get("collection_method", changed["collection_method"])
        merged = {
            "days_until_due": hidden.get("days_until_due"),
            "due_date": changed["due_date"],
        }
        if "days_until_due" in params:
            merged = {"days_until_due": params["days_until_due"], "due_date": None}
        if "due_date" in params:
            merged = {"days_until_due": None, "due_date": params["due_date"]}
        if method == "charge_automatically":
            merged = {}
        days, due = _terms(merged, method)
        changed["collection_method"] = method
        if status == "open" and days is not None:
            due = changed["status_transitions"]["finalized_at"] + days * DAY
        changed["due_date"] = due
        hidden["days_until_due"] = days
    for key in ("description", "footer", "statement_descriptor", "number"):
        if key in params:
            changed[key] = blank_to_none(params[key])
    if "auto_advance" in params:
        changed["auto_advance"] = params["auto_advance"]
    if "custom_fields" in params:
        changed["custom_fields"] = _custom_fields(params["custom_fields"])
    if "currency" in params:
        currency = params["currency"].lower()
        if lines_of(ctx.store, invoice) and currency != invoice["currency"]:
            raise invalid(
                "You cannot change the currency of an invoice that has line items.",
                param="currency",
            )
        changed["currency"] = currency
    if "default_payment_method" in params:
        pm_id = blank_to_none(params["default_payment_method"])
        changed["default_payment_method"] = (
            _default_pm(ctx, customer, pm_id, "default_payment_method") if pm_id else None
        )
    if "metadata" in params:
        changed["metadata"] = apply_metadata(changed["metadata"], params["metadata"])
    if "customer" in params and params["customer"] != invoice["customer"]:
        raise invalid("You cannot change the customer of an invoice.", param="customer")
    return save_update(ctx, "invoice", invoice, changed, params)


def subscription_of(invoice: JsonDict) -> str | None:
    """The id of the subscription an invoice bills (``parent.subscription_details``), or None."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    sub = details.get("subscription")
    return sub if isinstance(sub, str) else None


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/invoices`` with ``customer``, ``status``, ``collection_method``,
    ``created`` and ``due_date`` filters."""

    def keep(i: JsonDict) -> bool:
        due = params.get("due_date")
        return (
            all(
                i[k] == params[k]
                for k in ("customer", "status", "collection_method")
                if k in params
            )
            and created_matches(i["created"], params.get("created"))
            and (due is None or (i["due_date"] is not None and created_matches(i["due_date"], due)))
            and ("subscription" not in params or subscription_of(i) == params["subscription"])
        )

    items = [i for i in ctx.store.objects["invoice"].values() if keep(i)]
    return paginate(ctx, "invoice", "invoice", items, params, "/v1/invoices")


def list_lines(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``GET /v1/invoices/{id}/lines``, in the order added."""
    invoice = _live(ctx, "invoice", invoice_id)
    return paginate(
        ctx,
        "line_item",
        "line_item",
        lines_of(ctx.store, invoice),
        params,
        f"/v1/invoices/{invoice_id}/lines",
        newest_first=False,
    )


# ---------------------------------------------------------------- lifecycle


def _record(ctx: Ctx, event_type: str, obj: JsonDict) -> None:
    ctx.store.touch()
    ctx.store.record_event(event_type, obj, ctx.request, ctx.now)


# Called with each invoice once it is paid, after its payment events (subscriptions register
# one that makes a past_due or incomplete subscription active again).
PAID_HOOKS: list[Callable[[Ctx, JsonDict], None]] = []


def _after_paid(ctx: Ctx, invoice: JsonDict) -> None:
    for hook in PAID_HOOKS:
        hook(ctx, invoice)


def default_payment(store: Store, invoice: JsonDict) -> JsonDict | None:
    """The invoice's default InvoicePayment (created at finalization), if any."""
    for payment in store.objects["invoice_payment"].values():
        if payment["invoice"] == invoice["id"] and payment["is_default"]:
            return payment
    return None


def _mark_paid(ctx: Ctx, invoice: JsonDict, amount: int, out_of_band: bool) -> None:
    invoice.update(
        {
            "status": "paid",
            "amount_paid": invoice["amount_paid"] + amount,
            "amount_remaining": 0,
        }
    )
    if out_of_band:
        invoice["amount_paid_off_stripe"] = amount
    invoice["status_transitions"]["paid_at"] = ctx.now
    _record(ctx, "invoice.paid", invoice)


def finalize_now(ctx: Ctx, invoice: JsonDict, auto_advance: bool | None = None) -> None:
    """Finalize a draft: number, hosted URLs, due date; its PaymentIntent if money is due."""
    store = ctx.store
    customer = store.objects["customer"].get(invoice["customer"])
    if customer is None:
        raise invalid("The invoice's customer has been deleted.", param="customer")
    number = invoice["number"]
    if not number:
        sequence = customer["next_invoice_sequence"]
        number = f"{customer['invoice_prefix']}-{sequence:04d}"
        customer["next_invoice_sequence"] = sequence + 1
    days = store.hidden.get(invoice["id"], {}).get("days_until_due")
    _customer_snapshot(invoice, customer)
    invoice.update(
        {
            "status": "open",
            "number": number,
            "effective_at": invoice["effective_at"] or ctx.now,
            "ending_balance": 0,
            "hosted_invoice_url": hosted_url(store.base_url, invoice["id"]),
            "invoice_pdf": hosted_url(store.base_url, invoice["id"]) + "/pdf",
        }
    )
    if days is not None:
        invoice["due_date"] = ctx.now + days * DAY
    if auto_advance is not None:
        invoice["auto_advance"] = auto_advance
    invoice["status_transitions"]["finalized_at"] = ctx.now
    _record(ctx, "invoice.finalized", invoice)
    if invoice["amount_due"] == 0:
        _mark_paid(ctx, invoice, 0, out_of_band=False)
        _record(ctx, "invoice.payment_succeeded", invoice)
        _after_paid(ctx, invoice)
        return
    intent = payments.new_intent(
        ctx,
        amount=invoice["amount_due"],
        currency=invoice["currency"],
        customer=invoice["customer"],
        payment_method_types=["card"],
        description="Payment for Invoice",
        statement_descriptor=invoice["statement_descriptor"],
    )
    payment: JsonDict = {
        "id": new_id("inpay", 24),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": invoice["amount_due"],
        "created": ctx.now,
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": intent["id"], "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }
    store.add(payment)


def finalize(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}/finalize``."""
    invoice = _live(ctx, "invoice", invoice_id)
    if invoice["status"] != "draft":
        raise invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            param="id",
        )
    finalize_now(ctx, invoice, params.get("auto_advance"))
    return render(ctx.store, invoice, params.get("expand", []))


def _payment_method_for(ctx: Ctx, invoice: JsonDict, params: JsonDict) -> JsonDict:
    customer = ctx.store.objects["customer"].get(invoice["customer"])
    if "payment_method" in params:
        pm = payment_methods.resolve(ctx, params["payment_method"], "payment_method")
        if pm["customer"] is None and customer is not None:
            payment_methods.attach(ctx, pm, customer["id"])
        elif pm["customer"] != invoice["customer"]:
            raise invalid(
                "The payment method must be attached to the invoice's customer.",
                param="payment_method",
            )
        return pm
    for pm_id in (
        invoice["default_payment_method"],
        (customer or {}).get("invoice_settings", {}).get("default_payment_method"),
    ):
        candidate = ctx.store.get("payment_method", pm_id) if pm_id else None
        if candidate is not None and candidate["customer"] == invoice["customer"]:
            return candidate
    raise invalid(NO_PAYMENT_METHOD)


def _intent_of(ctx: Ctx, invoice: JsonDict) -> tuple[JsonDict, JsonDict]:
    payment = default_payment(ctx.store, invoice)
    assert payment is not None
    intent = ctx.store.objects["payment_intent"][payment["payment"]["payment_intent"]]
    return payment, intent


def charge_invoice(
    ctx: Ctx, invoice: JsonDict, pm: JsonDict, *, off_session: bool
) -> ApiError | None:
    """Attempt payment of an open invoice with ``pm``; returns the card error, if any."""
    payment, intent = _intent_of(ctx, invoice)
    if intent["status"] == "requires_action":
        intent["status"] = "requires_payment_method"
        intent["next_action"] = None
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    result = payments.attempt(
        ctx,
        intent,
        pm,
        off_session=off_session,
        action_url=invoice["hosted_invoice_url"],
    )
    if result.status == "succeeded":
        payment.update({"status": "paid", "amount_paid": intent["amount"]})
        payment["status_transitions"]["paid_at"] = ctx.now
        _record(ctx, "invoice_payment.paid", payment)
        _mark_paid(ctx, invoice, intent["amount"], out_of_band=False)
        _record(ctx, "invoice.payment_succeeded", invoice)
        _after_paid(ctx, invoice)
        disputes.follow_up(ctx, result.charge)
        return None
    if result.status == "requires_action":
        _record(ctx, "invoice.payment_action_required", invoice)
        return ApiError(
            402,
            REQUIRES_ACTION,
            type_="card_error",
            code="invoice_payment_intent_requires_action",
            extra={"payment_intent": deep_copy(intent)},
        )
    _record(ctx, "invoice.payment_failed", invoice)
    return result.error


def pay(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}/pay``: charge ``payment_method``, the invoice's default or the
    customer's default (off-session); ``paid_out_of_band=true`` marks it paid without one."""
    for key in ("source", "mandate", "forgive"):
        if key in params:
            raise _unsupported(key)
    invoice = _live(ctx, "invoice", invoice_id)
    status = invoice["status"]
    if status == "paid":
        raise invalid("Invoice is already paid")
    if status == "void":
        raise invalid("This invoice has been voided and can no longer be paid.")
    if status == "draft":
        # Paying a draft finalizes it first, as on Stripe.
        finalize_now(ctx, invoice)
        if invoice["status"] == "paid":
            return render(ctx.store, invoice, params.get("expand", []))
    if params.get("paid_out_of_band"):
        payment, intent = _intent_of(ctx, invoice)
        if intent["status"] not in ("succeeded", "canceled"):
            payments.cancel(ctx, intent, "void_invoice")
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = ctx.now
        _mark_paid(ctx, invoice, invoice["amount_remaining"], out_of_band=True)
        _after_paid(ctx, invoice)
        return render(ctx.store, invoice, params.get("expand", []))
    pm = _payment_method_for(ctx, invoice, params)
    error = charge_invoice(ctx, invoice, pm, off_session=params.get("off_session", True))
    if error is not None:
        raise error
    return render(ctx.store, invoice, params.get("expand", []))


def void(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}/void``: open or uncollectible invoices only."""
    invoice = _live(ctx, "invoice", invoice_id)
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void open or uncollectible invoices; this invoice is "
            f"{invoice['status']}.",
            param="id",
        )
    payment = default_payment(ctx.store, invoice)
    if payment is not None:
        _, intent = _intent_of(ctx, invoice)
        if intent["status"] not in ("succeeded", "canceled", "processing"):
            payments.cancel(ctx, intent, "void_invoice")
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = ctx.now
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = ctx.now
    _record(ctx, "invoice.voided", invoice)
    return render(ctx.store, invoice, params.get("expand", []))


def mark_uncollectible(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}/mark_uncollectible``: open invoices only (still payable)."""
    invoice = _live(ctx, "invoice", invoice_id)
    if invoice["status"] != "open":
        raise invalid(
            f"You can only mark open invoices as uncollectible; this invoice is "
            f"{invoice['status']}.",
            param="id",
        )
    invoice["status"] = "uncollectible"
    invoice["status_transitions"]["marked_uncollectible_at"] = ctx.now
    _record(ctx, "invoice.marked_uncollectible", invoice)
    return render(ctx.store, invoice, params.get("expand", []))


def send(ctx: Ctx, params: JsonDict, invoice_id: str) -> JsonDict:
    """``POST /v1/invoices/{id}/send``: an open ``send_invoice`` invoice (no email leaves)."""
    invoice = _live(ctx, "invoice", invoice_id)
    if invoice["collection_method"] != "send_invoice":
        raise invalid(
            "You can only manually send an invoice if its collection method is 'send_invoice'.",
            param="id",
        )
    if invoice["status"] != "open":
        raise invalid(
            f"You can only send open invoices; this invoice is {invoice['status']}.",
            param="id",
        )
    _record(ctx, "invoice.sent", invoice)
    return render(ctx.store, invoice, params.get("expand", []))


# ---------------------------------------------------------------- invoice payments


def _payments_of(store: Store, invoice: JsonDict) -> list[JsonDict]:
    found = [p for p in store.objects["invoice_payment"].values() if p["invoice"] == invoice["id"]]
    return sorted(found, key=store.sort_key, reverse=True)


includable("invoice", "payments", _payments_of, "/v1/invoices/{id}/payments")


def list_payments(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/invoice_payments`` with ``invoice``, ``status``, ``payment[payment_intent]``
    and ``created`` filters."""
    wanted = params.get("payment", {})

    def keep(p: JsonDict) -> bool:
        return (
            ("invoice" not in params or p["invoice"] == params["invoice"])
            and ("status" not in params or p["status"] == params["status"])
            and all(p["payment"].get(k) == v for k, v in wanted.items())
            and created_matches(p["created"], params.get("created"))
        )

    items = [p for p in ctx.store.objects["invoice_payment"].values() if keep(p)]
    return paginate(
        ctx, "invoice_payment", "invoice_payment", items, params, "/v1/invoice_payments"
    )


def retrieve_payment(ctx: Ctx, params: JsonDict, payment_id: str) -> JsonDict:
    """``GET /v1/invoice_payments/{id}``."""
    return render(ctx.store, _live(ctx, "invoice_payment", payment_id), params.get("expand", []))


ROUTES = [
    Route("POST", "/v1/invoiceitems", InvoiceItemCreateParams, create_item),
    Route("GET", "/v1/invoiceitems", InvoiceItemListParams, list_items),
    Route("GET", "/v1/invoiceitems/{id}", InvoiceItemRetrieveParams, retrieve_item),
    Route("DELETE", "/v1/invoiceitems/{id}", InvoiceItemDeleteParams, delete_item),
    Route("POST", "/v1/invoices", InvoiceCreateParams, create),
    Route("GET", "/v1/invoices", InvoiceListParams, list_),
    Route("GET", "/v1/invoices/{id}", InvoiceRetrieveParams, retrieve),
    Route("POST", "/v1/invoices/{id}", InvoiceUpdateParams, update),
    Route("DELETE", "/v1/invoices/{id}", InvoiceDeleteParams, delete),
    Route("GET", "/v1/invoices/{id}/lines", InvoiceLineItemListParams, list_lines),
    Route("POST", "/v1/invoices/{id}/finalize", InvoiceFinalizeInvoiceParams, finalize),
    Route("POST", "/v1/invoices/{id}/pay", InvoicePayParams, pay),
    Route("POST", "/v1/invoices/{id}/void", InvoiceVoidInvoiceParams, void),
    Route(
        "POST",
        "/v1/invoices/{id}/mark_uncollectible",
        InvoiceMarkUncollectibleParams,
        mark_uncollectible,
    ),
    Route("POST", "/v1/invoices/{id}/send", InvoiceSendInvoiceParams, send),
    Route("GET", "/v1/invoice_payments", InvoicePaymentListParams, list_payments),
    Route("GET", "/v1/invoice_payments/{id}", InvoicePaymentRetrieveParams, retrieve_payment),
]
