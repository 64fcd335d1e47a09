"""``/v1/events``: retrieve and list the events every write records."""

from __future__ import annotations

from fnmatch import fnmatchcase

from stripe.params import EventListParams, EventRetrieveParams

from stripe_sandbox.resources.common import Ctx, Route, created_matches, paginate, render
from stripe_sandbox.wire import JsonDict, invalid, missing


def retrieve(ctx: Ctx, params: JsonDict, event_id: str) -> JsonDict:
    """``GET /v1/events/{id}``."""
    event = ctx.store.get("event", event_id)
    if event is None:
        raise missing("event", event_id)
    return render(ctx.store, event, params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/events`` filtered by ``type`` (``*`` wildcards allowed, as on Stripe),
    ``types[]`` (exact names, at most 20) and ``created``."""
    if "type" in params and "types" in params:
        raise invalid(
            "You may only specify one of these parameters: type, types.",
            param="types",
            code="parameters_exclusive",
        )
    pattern = params.get("type")
    types = params.get("types")
    if types is not None and len(types) > 20:
        raise invalid("You may pass at most 20 values in `types`.", param="types")
    delivered = params.get("delivery_success")

    def keep(e: JsonDict) -> bool:
        return (
            (pattern is None or fnmatchcase(e["type"], pattern))
            and (types is None or e["type"] in types)
            and created_matches(e["created"], params.get("created"))
            and (delivered is None or (e["pending_webhooks"] == 0) == delivered)
        )

    items = [e for e in ctx.store.objects["event"].values() if keep(e)]
    return paginate(ctx, "event", "event", items, params, "/v1/events")


ROUTES = [
    Route("GET", "/v1/events", EventListParams, list_),
    Route("GET", "/v1/events/{id}", EventRetrieveParams, retrieve),
]
