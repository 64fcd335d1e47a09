"""Products and prices: CRUD, filters, expand, lookup keys, Stripe's deletion rule."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer


def test_product_crud_and_active_is_boolean(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(
        {"name": "100 credits", "metadata": {"credits": "100"}}
    )
    assert product.id.startswith("prod_")
    assert product.active is True
    archived = stripe_client.v1.products.update(product.id, {"active": False})
    assert archived.active is False
    assert archived.updated >= product.updated
    active_ids = [p.id for p in stripe_client.v1.products.list({"active": True}).data]
    inactive_ids = [p.id for p in stripe_client.v1.products.list({"active": False}).data]
    assert product.id in inactive_ids
    assert product.id not in active_ids
    deleted = stripe_client.v1.products.delete(product.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.products.retrieve(product.id)
    assert excinfo.value.http_status == 404


def test_product_with_prices_cannot_be_deleted(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create({"name": "Service"})
    stripe_client.v1.prices.create({"product": product.id, "currency": "usd", "unit_amount": 5})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.products.delete(product.id)
    assert excinfo.value.http_status == 400
    assert stripe_client.v1.products.retrieve(product.id).id == product.id


def test_price_one_time_shape(stripe_client: stripe.StripeClient) -> None:
    price = stripe_client.v1.prices.create(
        {
            "currency": "USD",
            "unit_amount": 4500,
            "product_data": {"name": "500 credits", "metadata": {"credits": "500"}},
            "lookup_key": "credits_500",
            "nickname": "500 pack",
        }
    )
    assert price.id.startswith("price_")
    assert price.type == "one_time"
    assert price.billing_scheme == "per_unit"
    assert price.currency == "usd"
    assert price.unit_amount == 4500
    assert str(price.unit_amount_decimal) == "4500"
    assert price.recurring is None
    product = stripe_client.v1.products.retrieve(str(price.product))
    assert product.metadata.to_dict() == {"credits": "500"}


def test_expand_default_price_and_product(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create(
        {"name": "2,000 credits", "default_price_data": {"currency": "usd", "unit_amount": 16000}}
    )
    assert isinstance(product.default_price, str)
    expanded = stripe_client.v1.products.retrieve(product.id, {"expand": ["default_price"]})
    assert isinstance(expanded.default_price, stripe.Price)
    assert expanded.default_price.unit_amount == 16000
    price = stripe_client.v1.prices.retrieve(product.default_price, {"expand": ["product"]})
    assert isinstance(price.product, stripe.Product)
    assert price.product.name == "2,000 credits"
    listed = stripe_client.v1.prices.list({"expand": ["data.product"], "product": product.id})
    assert isinstance(listed.data[0].product, stripe.Product)
    products = stripe_client.v1.products.list({"expand": ["data.default_price"]})
    assert isinstance(products.data[0].default_price, stripe.Price)


def test_price_filters_and_lookup_keys(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    counts = sandbox.seed_demo()
    # 60 customers with one-off invoices, and 3 on the demo test clock with 9 subscriptions
    # on 7 recurring plans (and their 18 invoices).
    assert counts == {
        "customers": 63,
        "products": 13,
        "prices": 13,
        "payment_methods": 21,
        "invoices": 33,
        "subscriptions": 9,
        "test_clocks": 1,
    }
    assert sandbox.seed_demo() == {
        "customers": 0,
        "products": 0,
        "prices": 0,
        "payment_methods": 0,
        "invoices": 0,
        "subscriptions": 0,
        "test_clocks": 0,
    }
    found = stripe_client.v1.prices.list({"lookup_keys": ["credits_100", "credits_2000"]})
    assert sorted(p.unit_amount or 0 for p in found.data) == [1000, 16000]
    inactive = stripe_client.v1.prices.list({"active": False})
    assert [p.lookup_key for p in inactive.data] == ["credits_50_legacy"]
    assert stripe_client.v1.prices.list({"currency": "eur"}).data == []
    assert len(stripe_client.v1.prices.list({"type": "one_time"}).data) == 6
    archived = stripe_client.v1.products.list({"active": False})
    assert [p.name for p in archived.data] == ["50 credits (legacy)"]
    packs = [p for p in stripe_client.v1.products.list({"limit": 100}).data if "credits" in p.name]
    # Packs, and the monthly credit plan of the demo subscriptions.
    assert {p.metadata["credits"] for p in packs} == {"50", "100", "500", "2000", "1000"}


def test_lookup_key_conflict_and_transfer(stripe_client: stripe.StripeClient) -> None:
    product = stripe_client.v1.products.create({"name": "Pack"})
    first = stripe_client.v1.prices.create(
        {"product": product.id, "currency": "usd", "unit_amount": 100, "lookup_key": "pack"}
    )
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.prices.create(
            {"product": product.id, "currency": "usd", "unit_amount": 90, "lookup_key": "pack"}
        )
    assert excinfo.value.param == "lookup_key"
    second = stripe_client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 90,
            "lookup_key": "pack",
            "transfer_lookup_key": True,
        }
    )
    assert second.lookup_key == "pack"
    assert stripe_client.v1.prices.retrieve(first.id).lookup_key is None


def test_price_update(stripe_client: stripe.StripeClient) -> None:
    price = stripe_client.v1.prices.create(
        {"product_data": {"name": "P"}, "currency": "usd", "unit_amount": 100}
    )
    updated = stripe_client.v1.prices.update(
        price.id, {"active": False, "nickname": "old", "metadata": {"k": "v"}}
    )
    assert updated.active is False
    assert updated.nickname == "old"
    assert updated.metadata.to_dict() == {"k": "v"}


def test_price_for_missing_product(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.prices.create(
            {"product": "prod_missing", "currency": "usd", "unit_amount": 1}
        )
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.param == "product"
