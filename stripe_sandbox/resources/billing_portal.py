"""``/v1/billing_portal/sessions``: customer portal links served by the sandbox itself."""

from __future__ import annotations

from stripe.params.billing_portal import SessionCreateParams

from stripe_sandbox.resources.common import Ctx, Route, check_url, render
from stripe_sandbox.wire import ApiError, JsonDict, invalid, new_id

# Stripe creates a default portal configuration per account; the sandbox has exactly one.
DEFAULT_CONFIGURATION = "bpc_sandboxdefault000000"

_SUBSCRIPTION_FLOWS = (
    "subscription_cancel",
    "subscription_pause",
    "subscription_update",
    "subscription_update_confirm",
)


def portal_url(base_url: str, session_id: str) -> str:
    """Where a portal session's hosted page lives."""
    return f"{base_url}/_sandbox/portal/{session_id}"


def _flow(given: JsonDict) -> JsonDict:
    kind = given["type"]
    if kind in _SUBSCRIPTION_FLOWS:
        # The sandbox has no subscriptions, so every subscription id is unknown.
        sub = given.get(kind, {}).get("subscription", "")
        raise ApiError(
            400,
            f"No such subscription: '{sub}'",
            code="resource_missing",
            param=f"flow_data[{kind}][subscription]",
        )
    if kind not in ("payment_method_update", "customer_update"):
        raise invalid(
            "Invalid flow_data[type]: must be one of customer_update, payment_method_update, "
            "subscription_cancel, subscription_pause, subscription_update, or "
            "subscription_update_confirm",
            param="flow_data[type]",
        )
    after = given.get("after_completion", {"type": "portal_homepage"})
    after_type = after["type"]
    redirect = after.get("redirect")
    if redirect is not None:
        check_url(redirect["return_url"], "flow_data[after_completion][redirect][return_url]")
    if after_type == "redirect" and redirect is None:
        raise invalid(
            "Missing required param: flow_data[after_completion][redirect].",
            param="flow_data[after_completion][redirect]",
            code="parameter_missing",
        )
    hosted = after.get("hosted_confirmation")
    return {
        "after_completion": {
            "hosted_confirmation": (
                {"custom_message": hosted.get("custom_message")}
                if after_type == "hosted_confirmation"
                else None
            ),
            "redirect": (
                {"return_url": redirect["return_url"]}
                if after_type == "redirect" and redirect
                else None
            ),
            "type": after_type,
        },
        "customer_update": None,
        "subscription_cancel": None,
        "subscription_pause": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "type": kind,
    }


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/billing_portal/sessions``: a session whose ``url`` is a local page."""
    if "customer_account" in params:
        raise invalid(
            "The Stripe sandbox does not support `customer_account` yet.",
            param="customer_account",
        )
    customer_id = params.get("customer")
    if not customer_id:
        raise invalid(
            "Missing required param: customer.", param="customer", code="parameter_missing"
        )
    if ctx.store.get("customer", customer_id) is None:
        raise ApiError(
            400, f"No such customer: '{customer_id}'", code="resource_missing", param="customer"
        )
    configuration = params.get("configuration", DEFAULT_CONFIGURATION)
    if configuration != DEFAULT_CONFIGURATION:
        raise ApiError(
            400,
            f"No such configuration: '{configuration}'",
            code="resource_missing",
            param="configuration",
        )
    if params.get("on_behalf_of"):
        raise ApiError(
            400,
            f"No such account: '{params['on_behalf_of']}'",
            code="resource_missing",
            param="on_behalf_of",
        )
    session_id = new_id("bps", 24)
    after_expiration = params.get("after_expiration")
    session: JsonDict = {
        "id": session_id,
        "object": "billing_portal.session",
        "after_expiration": None
        if after_expiration is None
        else {
            "customer_login": {
                "expires_at": after_expiration.get("customer_login", {}).get("expires_at")
            },
            "type": after_expiration["type"],
        },
        "configuration": configuration,
        "created": ctx.now,
        "customer": customer_id,
        "customer_account": None,
        "flow": _flow(params["flow_data"]) if "flow_data" in params else None,
        "livemode": False,
        "locale": params.get("locale"),
        "on_behalf_of": None,
        "return_url": check_url(params["return_url"], "return_url")
        if "return_url" in params
        else None,
        "url": portal_url(ctx.store.base_url, session_id),
    }
    ctx.store.add(session)
    ctx.store.record_event("billing_portal.session.created", session, ctx.request, ctx.now)
    return render(ctx.store, session, params.get("expand", []))


ROUTES = [
    Route("POST", "/v1/billing_portal/sessions", SessionCreateParams, create),
]
