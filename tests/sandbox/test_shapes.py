"""Every object on the wire matches stripe-python's resource class for API 2026-10-28.endive:
no field the class does not annotate, and every non-Optional annotated field present."""

from __future__ import annotations

import inspect
import typing
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
    _, _, events = call(url, "GET", "/v1/events?limit=100")
    _, _, price = call(url, "GET", f"/v1/prices/{product['default_price']}")
    _, _, retrieved_endpoint = call(url, "GET", f"/v1/webhook_endpoints/{endpoint['id']}")
    return {
        "customer": customer,
        "product": product,
        "price": price,
        "recurring_price": recurring,
        "webhook_endpoint": endpoint,
        "retrieved_webhook_endpoint": retrieved_endpoint,
        **{f"event:{e['type']}": e for e in events["data"]},
    }


_CLASSES: dict[str, type] = {
    "customer": stripe.Customer,
    "product": stripe.Product,
    "price": stripe.Price,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
}


def test_every_object_matches_its_sdk_class(sandbox: SandboxServer) -> None:
    objects = _create_everything(sandbox.url)
    assert {"event:customer.created", "event:customer.updated", "event:price.created"} <= set(
        objects
    )
    problems: list[str] = []
    for label, obj in objects.items():
        cls = _CLASSES[obj["object"]]
        _check(obj, cls, label, problems)
        if obj["object"] == "event":
            inner = obj["data"]["object"]
            _check(inner, _CLASSES[inner["object"]], f"{label}.data.object", problems)
    assert problems == []


def test_list_and_deleted_shapes(sandbox: SandboxServer) -> None:
    _, _, listed = call(sandbox.url, "GET", "/v1/customers")
    assert set(listed) == {"object", "data", "has_more", "url"}
    _, _, customer = call(sandbox.url, "POST", "/v1/customers", "name=X")
    _, _, deleted = call(sandbox.url, "DELETE", f"/v1/customers/{customer['id']}")
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}
