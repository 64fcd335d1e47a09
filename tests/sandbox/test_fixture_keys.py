"""Top-level fields of sandbox objects against Stripe's published fixtures (fixtures3.json in
github.com/stripe/openapi): a field Stripe omits must be omitted, not sent as null.

The expected key sets are copied from that file's `resources` (customer, invoice,
checkout.session, charge, payment_intent). Where the fixture and the pinned stripe-python
16.1.0 disagree, the difference is listed with its reason: the fixtures lag the API.
"""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call

FIXTURE_KEYS: dict[str, frozenset[str]] = {
    "customer": frozenset(
        [
            "address",
            "balance",
            "created",
            "currency",
            "default_source",
            "delinquent",
            "description",
            "discount",
            "email",
            "id",
            "invoice_prefix",
            "invoice_settings",
            "livemode",
            "metadata",
            "name",
            "next_invoice_sequence",
            "object",
            "phone",
            "preferred_locales",
            "shipping",
            "tax_exempt",
            "test_clock",
        ]
    ),
    "invoice": frozenset(
        [
            "account_country",
            "account_name",
            "account_tax_ids",
            "amount_due",
            "amount_overpaid",
            "amount_paid",
            "amount_remaining",
            "amount_shipping",
            "application",
            "attempt_count",
            "attempted",
            "auto_advance",
            "automatic_tax",
            "automatically_finalizes_at",
            "billing_reason",
            "collection_method",
            "created",
            "currency",
            "custom_fields",
            "customer",
            "customer_account",
            "customer_address",
            "customer_email",
            "customer_name",
            "customer_phone",
            "customer_shipping",
            "customer_tax_exempt",
            "customer_tax_ids",
            "default_payment_method",
            "default_source",
            "default_tax_rates",
            "description",
            "discounts",
            "due_date",
            "effective_at",
            "ending_balance",
            "footer",
            "from_invoice",
            "hosted_invoice_url",
            "id",
            "invoice_pdf",
            "issuer",
            "last_finalization_error",
            "latest_revision",
            "lines",
            "livemode",
            "metadata",
            "next_payment_attempt",
            "number",
            "object",
            "on_behalf_of",
            "parent",
            "payment_settings",
            "period_end",
            "period_start",
            "post_payment_credit_notes_amount",
            "pre_payment_credit_notes_amount",
            "receipt_number",
            "rendering",
            "shipping_cost",
            "shipping_details",
            "starting_balance",
            "statement_descriptor",
            "status",
            "status_transitions",
            "subscription",
            "subtotal",
            "subtotal_excluding_tax",
            "test_clock",
            "total",
            "total_discount_amounts",
            "total_excluding_tax",
            "total_pretax_credit_amounts",
            "total_taxes",
            "webhooks_delivered_at",
        ]
    ),
    "checkout.session": frozenset(
        [
            "adaptive_pricing",
            "after_expiration",
            "allow_promotion_codes",
            "amount_subtotal",
            "amount_total",
            "automatic_tax",
            "billing_address_collection",
            "cancel_url",
            "client_reference_id",
            "client_secret",
            "collected_information",
            "consent",
            "consent_collection",
            "created",
            "currency",
            "currency_conversion",
            "custom_fields",
            "custom_text",
            "customer",
            "customer_account",
            "customer_creation",
            "customer_details",
            "customer_email",
            "discounts",
            "expires_at",
            "id",
            "integration_identifier",
            "invoice",
            "invoice_creation",
            "livemode",
            "locale",
            "managed_payments",
            "metadata",
            "mode",
            "object",
            "origin_context",
            "payment_intent",
            "payment_link",
            "payment_method_collection",
            "payment_method_configuration_details",
            "payment_method_options",
            "payment_method_types",
            "payment_status",
            "permissions",
            "phone_number_collection",
            "recovered_from",
            "saved_payment_method_options",
            "setup_intent",
            "shipping_address_collection",
            "shipping_cost",
            "shipping_options",
            "status",
            "submit_type",
            "subscription",
            "success_url",
            "total_details",
            "ui_mode",
            "url",
            "wallet_options",
        ]
    ),
    "charge": frozenset(
        [
            "amount",
            "amount_captured",
            "amount_refunded",
            "application",
            "application_fee",
            "application_fee_amount",
            "balance_transaction",
            "billing_details",
            "calculated_statement_descriptor",
            "captured",
            "created",
            "currency",
            "customer",
            "description",
            "disputed",
            "failure_balance_transaction",
            "failure_code",
            "failure_message",
            "fraud_details",
            "id",
            "livemode",
            "metadata",
            "object",
            "on_behalf_of",
            "outcome",
            "paid",
            "payment_intent",
            "payment_method",
            "payment_method_details",
            "receipt_email",
            "receipt_number",
            "receipt_url",
            "refunded",
            "refunds",
            "review",
            "shipping",
            "source",
            "source_transfer",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "status",
            "transfer_data",
            "transfer_group",
        ]
    ),
}

# Sandbox fields the fixture lacks, each a field of the pinned stripe-python's type.
NEWER_THAN_FIXTURE: dict[str, frozenset[str]] = {
    # Customer names and Accounts v2 (API 2025-): stripe.Customer has all three.
    "customer": frozenset({"business_name", "customer_account", "individual_name"}),
    # stripe.Invoice.amount_paid_off_stripe (out-of-band payments).
    "invoice": frozenset({"amount_paid_off_stripe"}),
    # stripe.checkout.Session: payment method filters and tax ID collection settings.
    "checkout.session": frozenset(
        {"allowed_payment_method_types", "excluded_payment_method_types", "tax_id_collection"}
    ),
    # stripe.Charge.radar_options.
    "charge": frozenset({"radar_options"}),
}
# Fixture fields the sandbox leaves out on purpose.
NOT_SENT: dict[str, frozenset[str]] = {
    # Removed from invoices in API 2025-03-31 (now parent.subscription_details); stripe-python
    # 16.1.0's Invoice has no `subscription`.
    "invoice": frozenset({"subscription"}),
    # Managed Payments and Checkout permissions are previews the sandbox does not offer; the
    # fixture shows them in use ({"enabled": true}), not their value for other sessions.
    "checkout.session": frozenset({"managed_payments", "permissions"}),
    # Includable since API 2022-11-15: present only with expand[]=refunds.
    "charge": frozenset({"refunds"}),
}


@pytest.fixture
def objects(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> dict[str, dict]:
    customer = stripe_client.v1.customers.create({"email": "keys@example.com"})
    session = stripe_client.v1.checkout.sessions.create(
        {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1000,
                        "product_data": {"name": "Credits"},
                    },
                    "quantity": 1,
                }
            ],
        }
    )
    status, _, _ = call(
        sandbox.url,
        "POST",
        f"/_sandbox/checkout/sessions/{session.id}/pay",
        "card=4242424242424242",
        key=None,
    )
    assert status == 200
    invoice = stripe_client.v1.invoices.create({"customer": customer.id})
    return {
        "customer": stripe_client.v1.customers.retrieve(customer.id).to_dict(),
        "invoice": stripe_client.v1.invoices.retrieve(str(invoice.id)).to_dict(),
        "checkout.session": stripe_client.v1.checkout.sessions.retrieve(session.id).to_dict(),
        "charge": stripe_client.v1.charges.list().data[0].to_dict(),
    }


@pytest.mark.parametrize("kind", sorted(FIXTURE_KEYS))
def test_top_level_keys_match_stripe_fixture(kind: str, objects: dict[str, dict]) -> None:
    sent = set(objects[kind])
    expected = (FIXTURE_KEYS[kind] | NEWER_THAN_FIXTURE.get(kind, frozenset())) - NOT_SENT.get(
        kind, frozenset()
    )
    assert sorted(sent - expected) == [], "sent but Stripe omits"
    assert sorted(expected - sent) == [], "Stripe sends but the sandbox does not"


def test_listed_differences_are_fields_of_the_pinned_types() -> None:
    classes = {
        "customer": stripe.Customer,
        "invoice": stripe.Invoice,
        "checkout.session": stripe.checkout.Session,
        "charge": stripe.Charge,
    }
    for kind, fields in NEWER_THAN_FIXTURE.items():
        annotations: dict[str, object] = {}
        for klass in reversed(classes[kind].__mro__):
            annotations.update(getattr(klass, "__annotations__", {}))
        assert fields <= set(annotations), kind
    invoice_fields: dict[str, object] = {}
    for klass in reversed(stripe.Invoice.__mro__):
        invoice_fields.update(getattr(klass, "__annotations__", {}))
    assert "subscription" not in invoice_fields
