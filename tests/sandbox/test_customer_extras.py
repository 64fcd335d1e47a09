"""Customer tax IDs and card sources, and the deleted-object events of everything deletable."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


def _types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list({"limit": 100}).data)]


def test_tax_ids_create_list_retrieve_delete(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"name": "Acme GmbH"})
    vat = stripe_client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "DE123456789"}
    )
    assert vat.id.startswith("txi_")
    assert (vat.type, vat.value, vat.country, vat.customer) == (
        "eu_vat",
        "DE123456789",
        "DE",
        customer.id,
    )
    assert vat.owner is not None
    assert (vat.owner.type, vat.owner.customer) == ("customer", customer.id)
    assert vat.verification is not None
    assert vat.verification.status == "pending"
    ein = stripe_client.v1.customers.tax_ids.create(
        customer.id, {"type": "us_ein", "value": "12-3456789"}
    )
    assert ein.verification is not None
    assert ein.verification.status == "unavailable"
    listed = stripe_client.v1.customers.tax_ids.list(customer.id)
    assert [t.id for t in listed.data] == [ein.id, vat.id]
    assert stripe_client.v1.customers.tax_ids.retrieve(customer.id, vat.id).value == "DE123456789"
    expanded = stripe_client.v1.customers.retrieve(customer.id, {"expand": ["tax_ids"]})
    assert [t.id for t in expanded.tax_ids.data] == [ein.id, vat.id]
    deleted = stripe_client.v1.customers.tax_ids.delete(customer.id, vat.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as gone:
        stripe_client.v1.customers.tax_ids.retrieve(customer.id, vat.id)
    assert gone.value.http_status == 404
    assert _types(stripe_client)[-3:] == [
        "customer.tax_id.created",
        "customer.tax_id.created",
        "customer.tax_id.deleted",
    ]
    event = stripe_client.v1.events.list({"type": "customer.tax_id.deleted"}).data[0]
    assert event.data.object["value"] == "DE123456789"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ("type=eu_vat&value=DE12", "value", "tax_id_invalid"),
        ("type=eu_vat&value=US123456789", "value", "tax_id_invalid"),
        ("type=gb_vat&value=123456789", "value", "tax_id_invalid"),
        ("type=us_ein&value=123456789", "value", "tax_id_invalid"),
        ("type=xx_tin&value=1", "type", None),
        ("type=eu_vat", "value", "parameter_missing"),
    ],
)
def test_bad_tax_ids_are_refused(
    stripe_client: stripe.StripeClient,
    sandbox: SandboxServer,
    body: str,
    param: str,
    code: str | None,
) -> None:
    customer = stripe_client.v1.customers.create({})
    status, _, answer = call(sandbox.url, "POST", f"/v1/customers/{customer.id}/tax_ids", body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    if code is not None:
        assert answer["error"]["code"] == code
    assert stripe_client.v1.customers.tax_ids.list(customer.id).data == []


def test_tax_id_of_another_customer_is_missing(stripe_client: stripe.StripeClient) -> None:
    one = stripe_client.v1.customers.create({})
    other = stripe_client.v1.customers.create({})
    tax_id = stripe_client.v1.customers.tax_ids.create(
        one.id, {"type": "gb_vat", "value": "GB123456789"}
    )
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.tax_ids.delete(other.id, tax_id.id)


def test_card_sources_added_and_deleted(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"email": "src@example.com"})
    visa = stripe_client.v1.customers.payment_sources.create(
        customer.id, {"source": "tok_visa", "metadata": {"k": "v"}}
    )
    assert isinstance(visa, stripe.Card)
    assert visa.id.startswith("card_")
    assert (visa.brand, visa.last4, visa.funding, visa.customer) == (
        "Visa",
        "4242",
        "credit",
        customer.id,
    )
    assert stripe_client.v1.customers.retrieve(customer.id).default_source == visa.id
    master = stripe_client.v1.customers.payment_sources.create(
        customer.id, {"source": "tok_mastercard"}
    )
    assert isinstance(master, stripe.Card)
    assert master.brand == "MasterCard"
    assert stripe_client.v1.customers.retrieve(customer.id).default_source == visa.id
    listed = stripe_client.v1.customers.payment_sources.list(customer.id)
    assert [s.id for s in listed.data] == [master.id, visa.id]
    expanded = stripe_client.v1.customers.retrieve(customer.id, {"expand": ["default_source"]})
    assert isinstance(expanded.default_source, stripe.Card)
    deleted = stripe_client.v1.customers.payment_sources.delete(customer.id, visa.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(customer.id).default_source == master.id
    types = _types(stripe_client)
    assert types[types.index("customer.created") + 1 :] == [
        "customer.source.created",
        "customer.updated",
        "customer.source.created",
        "customer.source.deleted",
        "customer.updated",
    ]


def test_bad_sources_are_refused(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({})
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.customers.payment_sources.create(customer.id, {"source": "tok_nope"})
    assert bad.value.param == "source"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.update(customer.id, {"default_source": "card_nope"})
    assert unknown.value.param == "default_source"


def test_customer_create_with_source(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"source": "tok_amex"})
    assert isinstance(customer.default_source, str)
    card = stripe_client.v1.customers.payment_sources.retrieve(customer.id, customer.default_source)
    assert isinstance(card, stripe.Card)
    assert card.brand == "American Express"


def test_deleting_records_deleted_events_with_the_object_as_it_was(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    customer = stripe_client.v1.customers.create({"name": "Gone"})
    product = stripe_client.v1.products.create({"name": "Gone too"})
    invoice = stripe_client.v1.invoices.create({"customer": customer.id})
    item = stripe_client.v1.invoice_items.create(
        {"customer": customer.id, "invoice": str(invoice.id), "amount": 500, "currency": "usd"}
    )
    deleted_invoice = stripe_client.v1.invoices.delete(str(invoice.id))
    assert deleted_invoice.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.retrieve(str(invoice.id))
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoice_items.retrieve(item.id)
    stripe_client.v1.products.delete(product.id)
    stripe_client.v1.customers.delete(customer.id)
    events = {
        e.type: e.data.object
        for e in stripe_client.v1.events.list({"type": "*.deleted"}).data
        if e.type in ("invoice.deleted", "product.deleted", "customer.deleted")
    }
    assert events["invoice.deleted"]["id"] == invoice.id
    assert events["invoice.deleted"]["status"] == "draft"
    assert events["invoice.deleted"]["total"] == 500
    assert events["product.deleted"]["name"] == "Gone too"
    assert events["customer.deleted"]["name"] == "Gone"


def test_only_draft_invoices_can_be_deleted(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({})
    invoice = stripe_client.v1.invoices.create(
        {"customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30}
    )
    stripe_client.v1.invoice_items.create(
        {"customer": customer.id, "invoice": str(invoice.id), "amount": 500, "currency": "usd"}
    )
    stripe_client.v1.invoices.finalize_invoice(str(invoice.id))
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.invoices.delete(str(invoice.id))
    assert refused.value.param == "id"
    assert stripe_client.v1.invoices.retrieve(str(invoice.id)).status == "open"


def test_invoice_upcoming_is_an_id_less_preview(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    customer = stripe_client.v1.customers.create({"email": "renews@example.com"})
    path = f"/_sandbox/customers/{customer.id}/invoice_upcoming"
    status, _, body = call(sandbox.url, "POST", path, key=None)
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("invoice_upcoming_none", "customer")
    item = stripe_client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 1500, "currency": "usd", "description": "Seats"}
    )
    status, _, body = call(sandbox.url, "POST", path, "days=3", key=None)
    assert status == 200, body
    event = stripe_client.v1.events.retrieve(body["id"])
    assert event.type == "invoice.upcoming"
    assert event.request is not None
    assert event.request.id is None
    preview = event.data.object
    assert "id" not in preview
    assert preview["object"] == "invoice"
    assert preview["billing_reason"] == "upcoming"
    assert preview["status"] == "draft"
    assert preview["customer"] == customer.id
    assert preview["amount_due"] == 1500
    assert preview["created"] == event.created + 3 * 86_400
    assert preview["next_payment_attempt"] > preview["created"]
    [line] = preview["lines"]["data"]
    assert line["id"].startswith("il_tmp_")
    assert line["parent"]["invoice_item_details"]["invoice_item"] == item.id
    # A preview changes nothing: the item stays pending and no invoice exists.
    assert stripe_client.v1.invoice_items.retrieve(item.id).invoice is None
    assert stripe_client.v1.invoices.list().data == []
    # stripe-python builds an Invoice from it, one without an id.
    parsed = stripe.Event.construct_from(event.to_dict(), stripe.api_key)
    assert isinstance(parsed.data.object, stripe.Invoice)
    assert "id" not in parsed.data.object.to_dict()
    for bad in ("days=0", "days=x", "days=366"):
        status, _, body = call(sandbox.url, "POST", path, bad, key=None)
        assert (status, body["error"]["param"]) == (400, "days")
    status, _, _ = call(sandbox.url, "POST", "/_sandbox/customers/cus_nope/invoice_upcoming")
    assert status == 404
