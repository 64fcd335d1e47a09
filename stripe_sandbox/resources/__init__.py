"""One module per emulated Stripe resource; each exports its ``ROUTES``."""

from __future__ import annotations

from stripe_sandbox.resources import (
    billing_portal,
    checkout,
    customers,
    disputes,
    events,
    invoices,
    payment_methods,
    payments,
    prices,
    products,
    sources,
    subscriptions,
    tax_ids,
    test_clocks,
    v2_events,
    webhook_endpoints,
)
from stripe_sandbox.resources.common import Route

API_ROUTES: list[Route] = [
    *sources.ROUTES,
    *tax_ids.ROUTES,
    *customers.ROUTES,
    *products.ROUTES,
    *prices.ROUTES,
    *events.ROUTES,
    *webhook_endpoints.ROUTES,
    *billing_portal.ROUTES,
    *checkout.ROUTES,
    *payments.ROUTES,
    *payment_methods.ROUTES,
    # Before invoices: /v1/invoices/create_preview is not an invoice id.
    *subscriptions.ROUTES,
    *test_clocks.ROUTES,
    *invoices.ROUTES,
    *disputes.ROUTES,
    *v2_events.ROUTES,
]
