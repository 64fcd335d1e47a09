"""Customers through real stripe-python: CRUD, lists, pagination, metadata, expand."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer


def test_create_retrieve_update_delete(stripe_client: stripe.StripeClient) -> None:
    created = stripe_client.v1.customers.create(
        {"email": "ada@example.com", "name": "Ada Lovelace", "metadata": {"plan": "growth"}}
    )
    assert created.id.startswith("cus_")
    assert len(created.id) == len("cus_") + 14
    assert created.balance == 0
    assert created.currency is None
    assert created.livemode is False
    assert created.metadata.to_dict() == {"plan": "growth"}

    fetched = stripe_client.v1.customers.retrieve(created.id)
    assert fetched.email == "ada@example.com"

    updated = stripe_client.v1.customers.update(
        created.id, {"phone": "+44 20 7946 0000", "address": {"city": "London"}}
    )
    assert updated.phone == "+44 20 7946 0000"
    assert updated.address is not None
    assert updated.address.city == "London"
    assert updated.address.line1 is None

    deleted = stripe_client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    stub = stripe_client.v1.customers.retrieve(created.id)
    assert stub.to_dict().get("deleted") is True
    assert "email" not in stub.to_dict()
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.update(created.id, {"name": "Ghost"})
    assert excinfo.value.http_status == 404
    assert excinfo.value.code == "resource_missing"


def test_unknown_customer_is_404(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.retrieve("cus_doesnotexist00")
    assert excinfo.value.http_status == 404
    assert excinfo.value.code == "resource_missing"
    assert "No such customer" in str(excinfo.value.user_message)


def test_metadata_unset_one_key_and_clear_all(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"metadata": {"a": "1", "b": "2", "c": "3"}})
    after_unset = stripe_client.v1.customers.update(customer.id, {"metadata": {"a": ""}})
    assert after_unset.metadata.to_dict() == {"b": "2", "c": "3"}
    cleared = stripe_client.v1.customers.update(customer.id, {"metadata": ""})
    assert cleared.metadata.to_dict() == {}


def test_list_newest_first_and_email_filter(stripe_client: stripe.StripeClient) -> None:
    ids = [
        stripe_client.v1.customers.create({"email": f"user{i}@example.com"}).id for i in range(5)
    ]
    page = stripe_client.v1.customers.list({"limit": 3})
    assert [c.id for c in page.data] == ids[::-1][:3]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    only = stripe_client.v1.customers.list({"email": "user2@example.com"})
    assert [c.id for c in only.data] == [ids[2]]


def test_auto_paging_walks_everything_once(stripe_client: stripe.StripeClient) -> None:
    ids = {stripe_client.v1.customers.create({"name": f"c{i}"}).id for i in range(23)}
    seen = [c.id for c in stripe_client.v1.customers.list({"limit": 5}).auto_paging_iter()]
    assert len(seen) == 23
    assert set(seen) == ids


def test_ending_before_pages_backwards(stripe_client: stripe.StripeClient) -> None:
    ids = [stripe_client.v1.customers.create({"name": f"c{i}"}).id for i in range(6)]
    newest_first = ids[::-1]
    page = stripe_client.v1.customers.list({"ending_before": newest_first[4], "limit": 2})
    assert [c.id for c in page.data] == newest_first[2:4]
    assert page.has_more is True
    walked = stripe_client.v1.customers.list(
        {"ending_before": newest_first[5], "limit": 2}
    ).auto_paging_iter()
    assert sorted(c.id for c in walked) == sorted(newest_first[:5])


def test_created_filter(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    sandbox.seed_demo()
    everyone = list(stripe_client.v1.customers.list({"limit": 100}).auto_paging_iter())
    cutoff = sorted(c.created for c in everyone)[30]
    recent = list(
        stripe_client.v1.customers.list(
            {"created": {"gte": cutoff}, "limit": 100}
        ).auto_paging_iter()
    )
    assert recent
    assert all(c.created >= cutoff for c in recent)
    assert len(recent) == sum(1 for c in everyone if c.created >= cutoff)
    exact = stripe_client.v1.customers.list({"created": cutoff})
    assert all(c.created == cutoff for c in exact.data)
    assert exact.data


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range(stripe_client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.list({"limit": limit})
    assert excinfo.value.param == "limit"


def test_expand_includable_lists(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"name": "X"})
    fetched = stripe_client.v1.customers.retrieve(customer.id, {"expand": ["subscriptions"]})
    assert fetched.subscriptions is not None
    assert fetched.subscriptions.data == []
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.retrieve(customer.id, {"expand": ["email"]})
    assert excinfo.value.param == "expand"
