"""``/v1/subscriptions``: reading subscriptions.

The sandbox does not create subscriptions yet, so an account's list is empty and any id is
Stripe's 404 ``resource_missing`` ("No such subscription") — what Stripe answers for a
subscription of another account or one that never existed. Events about subscriptions (from
Stripe's fixtures, or another integration) therefore re-read as gone, as they would there.
"""

from __future__ import annotations

from stripe.params import SubscriptionListParams, SubscriptionRetrieveParams

from stripe_sandbox.resources.common import Ctx, Route, created_matches, paginate, render
from stripe_sandbox.wire import JsonDict, missing


def retrieve(ctx: Ctx, params: JsonDict, subscription_id: str) -> JsonDict:
    """``GET /v1/subscriptions/{id}``."""
    subscription = ctx.store.get("subscription", subscription_id)
    if subscription is None:
        raise missing("subscription", subscription_id)
    return render(ctx.store, subscription, params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/subscriptions`` with ``customer``, ``status``, ``collection_method`` and
    ``created`` filters (``status`` defaults to every status but ``canceled``, as Stripe's)."""
    status = params.get("status")

    def keep(s: JsonDict) -> bool:
        if status in (None, "") and s.get("status") == "canceled":
            return False
        if status not in (None, "", "all") and s.get("status") != status:
            return False
        return all(
            s.get(k) == params[k] for k in ("customer", "collection_method") if k in params
        ) and created_matches(s["created"], params.get("created"))

    items = [s for s in ctx.store.objects["subscription"].values() if keep(s)]
    return paginate(ctx, "subscription", "subscription", items, params, "/v1/subscriptions")


ROUTES = [
    Route("GET", "/v1/subscriptions", SubscriptionListParams, list_),
    Route("GET", "/v1/subscriptions/{id}", SubscriptionRetrieveParams, retrieve),
]
