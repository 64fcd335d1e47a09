"""``/v1/webhook_endpoints``: where events are delivered (loopback URLs only)."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from stripe.params import (
    WebhookEndpointCreateParams,
    WebhookEndpointDeleteParams,
    WebhookEndpointListParams,
    WebhookEndpointRetrieveParams,
    WebhookEndpointUpdateParams,
)

from stripe_sandbox.resources.common import (
    Ctx,
    Route,
    apply_metadata,
    blank_to_none,
    paginate,
    render,
)
from stripe_sandbox.wire import JsonDict, invalid, missing, new_id

_LOOPBACK_NAMES = ("localhost",)


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` is http(s) to this machine (127.0.0.0/8, ``localhost`` or ``[::1]``).

    The sandbox must never send traffic off the machine, so every other host is refused.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str) -> str:
    if not is_loopback_url(url):
        raise invalid(
            f"Invalid URL: {url}. The Stripe sandbox only delivers webhooks to loopback "
            "addresses (http://127.0.0.1, http://localhost or http://[::1]).",
            param="url",
        )
    return url


def _check_events(events: list[str]) -> list[str]:
    if not events:
        raise invalid(
            "Missing required param: enabled_events.",
            param="enabled_events",
            code="parameter_missing",
        )
    return list(dict.fromkeys(events))


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/webhook_endpoints``; only this response carries the ``whsec_`` secret."""
    endpoint: JsonDict = {
        "id": new_id("we", 24),
        "object": "webhook_endpoint",
        "api_version": params.get("api_version"),
        "application": None,
        "created": ctx.now,
        "description": blank_to_none(params.get("description")),
        "enabled_events": _check_events(params["enabled_events"]),
        "livemode": False,
        "metadata": apply_metadata({}, params.get("metadata", {})),
        "status": "enabled",
        "url": _check_url(params["url"]),
    }
    secret = "whsec_" + secrets.token_hex(16)
    ctx.store.add(endpoint)
    ctx.store.endpoint_secrets[endpoint["id"]] = secret
    out = render(ctx.store, endpoint, params.get("expand", []))
    out["secret"] = secret
    return out


def _live(ctx: Ctx, endpoint_id: str) -> JsonDict:
    endpoint = ctx.store.get("webhook_endpoint", endpoint_id)
    if endpoint is None:
        raise missing("webhook_endpoint", endpoint_id)
    return endpoint


def retrieve(ctx: Ctx, params: JsonDict, endpoint_id: str) -> JsonDict:
    """``GET /v1/webhook_endpoints/{id}``."""
    return render(ctx.store, _live(ctx, endpoint_id), params.get("expand", []))


def update(ctx: Ctx, params: JsonDict, endpoint_id: str) -> JsonDict:
    """``POST /v1/webhook_endpoints/{id}``: url, enabled_events, description, disabled,
    metadata."""
    endpoint = _live(ctx, endpoint_id)
    url = _check_url(params["url"]) if "url" in params else endpoint["url"]
    events = (
        _check_events(params["enabled_events"])
        if "enabled_events" in params
        else endpoint["enabled_events"]
    )
    metadata = (
        apply_metadata(endpoint["metadata"], params["metadata"])
        if "metadata" in params
        else endpoint["metadata"]
    )
    endpoint["url"] = url
    endpoint["enabled_events"] = events
    endpoint["metadata"] = metadata
    if "description" in params:
        endpoint["description"] = blank_to_none(params["description"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if params["disabled"] else "enabled"
    ctx.store.touch()
    return render(ctx.store, endpoint, params.get("expand", []))


def delete(ctx: Ctx, params: JsonDict, endpoint_id: str) -> JsonDict:
    """``DELETE /v1/webhook_endpoints/{id}``."""
    _live(ctx, endpoint_id)
    ctx.store.endpoint_secrets.pop(endpoint_id, None)
    return dict(ctx.store.remove("webhook_endpoint", endpoint_id))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/webhook_endpoints``."""
    items = list(ctx.store.objects["webhook_endpoint"].values())
    return paginate(
        ctx, "webhook_endpoint", "webhook_endpoint", items, params, "/v1/webhook_endpoints"
    )


ROUTES = [
    Route("POST", "/v1/webhook_endpoints", WebhookEndpointCreateParams, create),
    Route("GET", "/v1/webhook_endpoints", WebhookEndpointListParams, list_),
    Route("GET", "/v1/webhook_endpoints/{id}", WebhookEndpointRetrieveParams, retrieve),
    Route("POST", "/v1/webhook_endpoints/{id}", WebhookEndpointUpdateParams, update),
    Route("DELETE", "/v1/webhook_endpoints/{id}", WebhookEndpointDeleteParams, delete),
]
