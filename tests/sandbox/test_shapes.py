"""Every object on the wire matches stripe-python's resource class for API 2026-10-28.endive:
no field the class does not annotate, and every non-Optional annotated field present."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call

_NESTED_SKIP = {"metadata", "data.object", "data.previous_attributes"}


def _is_optional(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith("Optional[")
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(
        annotation
    )


def _fields(cls: type) -> dict[str, Any]:
    own = inspect.get_annotations(cls)
    return {
        name: ann
        for name, ann in own.items()
        if not name.startswith("_") and "ClassVar" not in str(ann)
    }


def _check(obj: dict[str, Any], cls: type, where: str, problems: list[str]) -> None:
    fields = _fields(cls)
    extra = set(obj) - set(fields)
    if extra:
        problems.append(f"{where}: fields not in {cls.__qualname__}: {sorted(extra)}")
    absent = {name for name, ann in fields.items() if not _is_optional(ann)} - set(obj)
    if absent:
        problems.append(f"{where}: required fields missing: {sorted(absent)}")
    inner: dict[str, type] = getattr(cls, "_inner_class_types", {})
    for name, inner_cls in inner.items():
        value = obj.get(name)
        path = f"{where}.{name}"
        if path.split(".", 1)[-1] in _NESTED_SKIP:
            continue
        if isinstance(value, dict):
            _check(value, inner_cls, path, problems)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _check(item, inner_cls, f"{path}[{i}]", problems)
    # Embedded or expanded API objects (a line item's price, an error's PaymentMethod, an
    # expanded list's data) are checked against their own class.
    for name, value in obj.items():
        if name in inner or name == "metadata" or where.endswith(".data"):
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, dict) and item.get("object") == "list":
                for j, element in enumerate(item["data"]):
                    _check_object(element, f"{where}.{name}.data[{j}]", problems)
            elif isinstance(item, dict) and item.get("object") in _CLASSES:
                _check_object(item, f"{where}.{name}[{i}]", problems)


def _check_object(obj: dict[str, Any], where: str, problems: list[str]) -> None:
    _check(obj, _CLASSES[obj["object"]], where, problems)


def _create_everything(url: str) -> dict[str, dict[str, Any]]:
    def post(path: str, body: str) -> dict[str, Any]:
        status, _, obj = call(url, "POST", path, body)
        assert status == 200, obj
        return obj

    customer = post(
        "/v1/customers",
        "email=a%40example.com&address[city]=Oslo&shipping[name]=A&shipping[address][line1]=x"
        "&invoice_settings[custom_fields][0][name]=PO&invoice_settings[custom_fields][0][value]=1",
    )
    product = post(
        "/v1/products",
        "name=P&default_price_data[currency]=usd&default_price_data[unit_amount]=100",
    )
    recurring = post(
        "/v1/prices",
        f"product={product['id']}&currency=usd&unit_amount=5&recurring[interval]=month",
    )
    endpoint = post(
        "/v1/webhook_endpoints", "url=http%3A%2F%2F127.0.0.1%3A9%2Fh&enabled_events[0]=*"
    )
    post(f"/v1/customers/{customer['id']}", "name=Renamed")
    portal = post(
        "/v1/billing_portal/sessions",
        f"customer={customer['id']}&return_url=https%3A%2F%2Fexample.com"
        "&flow_data[type]=payment_method_update&flow_data[after_completion][type]=redirect"
        "&flow_data[after_completion][redirect][return_url]=https%3A%2F%2Fexample.com%2Fdone",
    )
    objects = {
        "customer": customer,
        "product": product,
        "recurring_price": recurring,
        "webhook_endpoint": endpoint,
        "billing_portal_session": portal,
        **_checkout_objects(url, post, customer["id"], product["default_price"]),
        **_invoice_objects(url, post, customer["id"], product["default_price"]),
    }
    events = _all(url, "/v1/events")
    _, _, price = call(url, "GET", f"/v1/prices/{product['default_price']}")
    _, _, retrieved_endpoint = call(url, "GET", f"/v1/webhook_endpoints/{endpoint['id']}")
    objects.update(
        {
            "price": price,
            "retrieved_webhook_endpoint": retrieved_endpoint,
            **{f"event:{e['type']}": e for e in events},
        }
    )
    return objects


def _all(url: str, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, listed = call(url, "GET", f"{path}?limit=100{cursor}")
        assert status == 200, listed
        found.extend(listed["data"])
        if not listed["has_more"]:
            return found
        cursor = f"&starting_after={found[-1]['id']}"


def _checkout_objects(
    url: str, post: Callable[[str, str], dict[str, Any]], customer_id: str, price_id: str
) -> dict[str, dict[str, Any]]:
    """Sessions in every state, their payments (card, declined card, bank debit), a refund."""

    def session(extra: str = "") -> dict[str, Any]:
        return post(
            "/v1/checkout/sessions",
            f"customer={customer_id}&mode=payment&line_items[0][price]={price_id}"
            "&line_items[0][quantity]=2&line_items[1][price_data][currency]=usd"
            "&line_items[1][price_data][unit_amount]=250"
            "&line_items[1][price_data][product_data][name]=Extra&line_items[1][quantity]=1"
            "&success_url=https%3A%2F%2Fexample.com%2Fok&metadata[k]=v" + extra,
        )

    def pay(session_id: str, form: str, expect: int = 200) -> dict[str, Any]:
        status, _, answer = call(
            url, "POST", f"/_sandbox/checkout/sessions/{session_id}/pay", form, key=None
        )
        assert status == expect, answer
        return dict(answer)

    open_session = session()
    card = session("&payment_intent_data[setup_future_usage]=off_session")
    declined = pay(card["id"], "card=4000000000000002", 402)
    paid = pay(card["id"], "card=4000002500003155")
    bank = session()
    pay(bank["id"], "method=bank_debit")
    settled = session()
    pay(settled["id"], "method=bank_debit")
    status, _, settled = call(
        url,
        "POST",
        f"/_sandbox/checkout/sessions/{settled['id']}/settle",
        "outcome=failed",
        key=None,
    )
    assert status == 200
    abandoned = session()
    pay(abandoned["id"], "card=4000000000009995", 402)
    expired = post(f"/v1/checkout/sessions/{abandoned['id']}/expire", "")
    refund = post("/v1/refunds", f"payment_intent={paid['payment_intent']}&amount=100")
    _, _, expanded = call(
        url,
        "GET",
        f"/v1/checkout/sessions/{paid['id']}?expand[]=line_items&expand[]=payment_intent"
        "&expand[]=payment_intent.latest_charge&expand[]=customer",
    )
    _, _, charge = call(url, "GET", f"/v1/charges/{refund['charge']}?expand[]=refunds")
    return {
        "checkout_session_open": open_session,
        "checkout_session_paid": paid,
        "checkout_session_processing": bank,
        "checkout_session_async_failed": settled,
        "checkout_session_expired": expired,
        "checkout_session_expanded": expanded,
        "card_error": declined["error"]["payment_intent"],
        "charge_with_refunds": charge,
        "refund": refund,
        **{
            f"item:{i}": item
            for i, item in enumerate(_all(url, f"/v1/checkout/sessions/{paid['id']}/line_items"))
        },
        **{f"payment_intent:{p['id']}": p for p in _all(url, "/v1/payment_intents")},
        **{f"charge:{c['id']}": c for c in _all(url, "/v1/charges")},
    }


def _invoice_objects(
    url: str, post: Callable[[str, str], dict[str, Any]], customer_id: str, price_id: str
) -> dict[str, dict[str, Any]]:
    """Payment methods and invoices in every state, with their items, lines and payments."""
    status, _, card = call(
        url,
        "POST",
        f"/_sandbox/customers/{customer_id}/attach_card",
        "card=4242424242424242",
        key=None,
    )
    assert status == 200
    token_card = post("/v1/payment_methods", "type=card&card[token]=tok_amex&metadata[k]=v")
    attached = post(f"/v1/payment_methods/{token_card['id']}/attach", f"customer={customer_id}")
    post(f"/v1/payment_methods/{attached['id']}", "billing_details[name]=A")
    detached = post(f"/v1/payment_methods/{attached['id']}/detach", "")

    def invoice(extra: str = "", finalize: bool = True) -> dict[str, Any]:
        draft = post("/v1/invoices", f"customer={customer_id}&metadata[k]=v{extra}")
        post(
            "/v1/invoiceitems",
            f"customer={customer_id}&invoice={draft['id']}&pricing[price]={price_id}&quantity=2",
        )
        post(
            "/v1/invoiceitems",
            f"customer={customer_id}&invoice={draft['id']}&amount=300&currency=usd&description=Fee",
        )
        if not finalize:
            return post(f"/v1/invoices/{draft['id']}", "description=Draft")
        return post(f"/v1/invoices/{draft['id']}/finalize", "")

    draft = invoice(finalize=False)
    opened = invoice("&collection_method=send_invoice&days_until_due=30")
    post(f"/v1/invoices/{opened['id']}/send", "")
    paid = post(f"/v1/invoices/{invoice()['id']}/pay", "")
    voided = post(f"/v1/invoices/{invoice()['id']}/void", "")
    uncollectible = post(f"/v1/invoices/{invoice()['id']}/mark_uncollectible", "")
    out_of_band = post(f"/v1/invoices/{invoice()['id']}/pay", "paid_out_of_band=true")
    pending = post("/v1/invoiceitems", f"customer={customer_id}&amount=5&currency=usd")
    # A card that needs authentication leaves a PaymentIntent in requires_action.
    call(url, "POST", f"/_sandbox/customers/{customer_id}/attach_card", "card=4000002500003155")
    needs_action = invoice()
    status, _, error = call(url, "POST", f"/v1/invoices/{needs_action['id']}/pay", "")
    assert status == 402
    assert error["error"]["payment_intent"]["status"] == "requires_action"
    _, _, expanded = call(
        url, "GET", f"/v1/invoices/{paid['id']}?expand[]=payments&expand[]=customer"
    )
    _, _, customer = call(
        url, "GET", f"/v1/customers/{customer_id}?expand[]=invoice_settings.default_payment_method"
    )
    return {
        "card_from_route": card,
        "card_from_token": token_card,
        "card_detached": detached,
        "customer_with_default": customer,
        "invoice_draft": draft,
        "invoice_open": opened,
        "invoice_paid": paid,
        "invoice_void": voided,
        "invoice_uncollectible": uncollectible,
        "invoice_out_of_band": out_of_band,
        "invoice_expanded": expanded,
        "invoiceitem_pending": pending,
        "payment_intent_requires_action": error["error"]["payment_intent"],
        **{f"invoiceitem:{i['id']}": i for i in _all(url, "/v1/invoiceitems")},
        **{f"line:{li['id']}": li for li in _all(url, f"/v1/invoices/{paid['id']}/lines")},
        **{f"invoice_payment:{p['id']}": p for p in _all(url, "/v1/invoice_payments")},
        **{f"payment_method:{p['id']}": p for p in _all(url, "/v1/payment_methods")},
    }


_CLASSES: dict[str, type] = {
    "customer": stripe.Customer,
    "product": stripe.Product,
    "price": stripe.Price,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
    "billing_portal.session": stripe.billing_portal.Session,
    "checkout.session": stripe.checkout.Session,
    "item": stripe.LineItem,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "refund": stripe.Refund,
    "payment_method": stripe.PaymentMethod,
    "invoice": stripe.Invoice,
    "invoiceitem": stripe.InvoiceItem,
    "line_item": stripe.InvoiceLineItem,
    "invoice_payment": stripe.InvoicePayment,
}


def test_every_object_matches_its_sdk_class(sandbox: SandboxServer) -> None:
    objects = _create_everything(sandbox.url)
    kinds = {o["object"] for o in objects.values()} | {
        o["data"]["object"]["object"] for o in objects.values() if o["object"] == "event"
    }
    assert kinds == set(_CLASSES), f"not covered: {set(_CLASSES) - kinds}"
    event_types = {label.split(":", 1)[1] for label in objects if label.startswith("event:")}
    assert {
        "customer.created",
        "customer.updated",
        "price.created",
        "billing_portal.session.created",
        "checkout.session.completed",
        "checkout.session.expired",
        "checkout.session.async_payment_failed",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.canceled",
        "charge.succeeded",
        "charge.failed",
        "charge.pending",
        "charge.refunded",
        "refund.created",
        "payment_method.attached",
        "payment_method.detached",
        "payment_method.updated",
        "invoice.created",
        "invoice.updated",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.sent",
        "invoiceitem.created",
        "invoice_payment.paid",
        "invoice.payment_action_required",
        "payment_intent.requires_action",
    } <= event_types
    problems: list[str] = []
    for label, obj in objects.items():
        _check_object(obj, label, problems)
        if obj["object"] == "event":
            inner = obj["data"]["object"]
            _check_object(inner, f"{label}.data.object", problems)
    assert problems == []


def test_list_and_deleted_shapes(sandbox: SandboxServer) -> None:
    _, _, listed = call(sandbox.url, "GET", "/v1/customers")
    assert set(listed) == {"object", "data", "has_more", "url"}
    _, _, customer = call(sandbox.url, "POST", "/v1/customers", "name=X")
    _, _, deleted = call(sandbox.url, "DELETE", f"/v1/customers/{customer['id']}")
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}


def test_search_result_shape(sandbox: SandboxServer) -> None:
    call(sandbox.url, "POST", "/v1/customers", "name=Searchable")
    _, _, found = call(sandbox.url, "GET", "/v1/customers/search?query=name%3A%27Searchable%27")
    assert found["object"] == "search_result"
    assert found["url"] == "/v1/customers/search"
    # `object` and `url` are plumbing the SDK class keeps out of its annotations, as on lists.
    page = {k: v for k, v in found.items() if k not in ("object", "url")}
    problems: list[str] = []
    _check(page, stripe.SearchResultObject, "search_result", problems)
    for i, customer in enumerate(found["data"]):
        _check(customer, stripe.Customer, f"search_result.data[{i}]", problems)
    assert problems == []
    assert len(found["data"]) == 1
