"""``/v2/core/events``: thin events, in Stripe's v2 shape, and the thin payload they deliver.

Stripe makes a thin version of some snapshot events (``charge.dispute.created`` has the thin
``v1.charge.dispute.created``, https://docs.stripe.com/webhooks/migrate-snapshot-to-thin-events);
the thin event names the snapshot event in ``snapshot_event`` and points at the object in
``related_object`` instead of carrying it. The sandbox emits the thin version of the snapshot
types in ``THIN_VERSIONS``. ``listen --forward-thin-to`` delivers them, signed like snapshot
events, with the thin payload ``StripeClient.parse_event_notification`` reads.

v2 differs from v1: ``created`` is an ISO-8601 string with milliseconds, lists are
``{"data", "next_page_url", "previous_page_url"}`` paged by an opaque ``page`` token, and
errors are ``{"error": {"type", "code", "message"}}``.
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime
from typing import NotRequired

from stripe.params.v2.core import (
    EventListParams,
    EventListParamsCreated,
    EventRetrieveParams,
)

from stripe_sandbox.resources.common import Ctx, Route
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, invalid, new_id

KIND = "v2.core.event"

# Snapshot event type -> (thin event type, the related object's type and its URL pattern).
THIN_VERSIONS: dict[str, tuple[str, str, str]] = {
    "charge.dispute.created": ("v1.charge.dispute.created", "dispute", "/v1/disputes/{id}"),
}

# The fields of the thin payload a destination receives (the rest is fetched).
NOTIFICATION_FIELDS = ("id", "object", "type", "created", "livemode", "related_object", "context")

MAX_TYPES = 20


# The validator resolves a params class's forward references in its own module.
_FORWARD_REFS = (EventListParamsCreated,)


class V2EventListParams(EventListParams):
    """``EventListParams`` plus the ``page`` token that ``next_page_url`` carries."""

    page: NotRequired[str]


def iso_millis(seconds: float) -> str:
    """Unix seconds as v2's ``2026-11-26T12:00:00.123Z``."""
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def record_thin(
    store: Store, snapshot: JsonDict, obj: JsonDict, request: RequestInfo
) -> JsonDict | None:
    """Record the thin version of a snapshot event, if Stripe has one the sandbox emits.

    Args:
        store: The sandbox state (lock held).
        snapshot: The snapshot event just recorded (``evt_…``).
        obj: The object the event is about.
        request: The API request that caused it (``reason`` is null without one).
    """
    known = THIN_VERSIONS.get(snapshot["type"])
    if known is None:
        return None
    thin_type, related_type, url = known
    reason: JsonDict | None = None
    if request.id is not None:
        reason = {
            "type": "request",
            "request": {"id": request.id, "idempotency_key": request.idempotency_key or ""},
        }
    event: JsonDict = {
        "id": new_id("evt_test", 46),
        "object": KIND,
        "context": None,
        # Milliseconds from the wall clock, moved like the sandbox clock.
        "created": iso_millis(time.time() + store.clock_offset),
        "livemode": False,
        "reason": reason,
        "related_object": {
            "id": obj["id"],
            "type": related_type,
            "url": url.replace("{id}", obj["id"]),
        },
        "snapshot_event": snapshot["id"],
        "type": thin_type,
    }
    store.add(event)
    return event


def notification(event: JsonDict) -> JsonDict:
    """The thin payload delivered for a v2 event (no ``reason``/``snapshot_event``: fetch)."""
    return {k: deep_copy(event[k]) for k in NOTIFICATION_FIELDS if event.get(k) is not None}


# ---------------------------------------------------------------- API


def not_found(event_id: str) -> ApiError:
    """The v2 404 for an unknown event."""
    return ApiError(404, f"No such v2.core.event: '{event_id}'", code="not_found")


def retrieve(ctx: Ctx, params: JsonDict, event_id: str) -> JsonDict:
    """``GET /v2/core/events/{id}``."""
    event = ctx.store.get(KIND, event_id)
    if event is None:
        raise not_found(event_id)
    copied: JsonDict = deep_copy(event)
    return copied


def _page_token(position: int) -> str:
    return base64.urlsafe_b64encode(f"v2evt:{position}".encode()).decode().rstrip("=")


def _page_position(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "v2evt" or not number.isdigit():
            raise ValueError(token)
        return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("The page token is invalid.", param="page") from None


def _parse_time(value: str, param: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(
            f"Invalid timestamp: {param} must be an RFC 3339 date-time such as "
            "2026-11-26T12:00:00.000Z.",
            param=param,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return iso_millis(parsed.timestamp())


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v2/core/events``: newest first, ``object_id`` (the related object),
    ``types`` (at most 20), ``created[gt|gte|lt|lte]`` (RFC 3339), ``limit`` 1 to 100
    (default 20), and the ``page`` token of ``next_page_url`` / ``previous_page_url``."""
    limit = params.get("limit", 20)
    if not 1 <= limit <= 100:
        raise invalid("limit must be between 1 and 100.", param="limit")
    types = params.get("types")
    if types is not None and len(types) > MAX_TYPES:
        raise invalid(f"You may pass at most {MAX_TYPES} values in `types`.", param="types")
    bounds = {
        op: _parse_time(value, f"created[{op}]")
        for op, value in (params.get("created") or {}).items()
    }
    object_id = params.get("object_id")

    def keep(e: JsonDict) -> bool:
        created = e["created"]
        return (
            (object_id is None or e["related_object"]["id"] == object_id)
            and (types is None or e["type"] in types)
            and ("gt" not in bounds or created > bounds["gt"])
            and ("gte" not in bounds or created >= bounds["gte"])
            and ("lt" not in bounds or created < bounds["lt"])
            and ("lte" not in bounds or created <= bounds["lte"])
        )

    ordered = [e for e in ctx.store.newest_first(KIND) if keep(e)]
    start = _page_position(params["page"]) if "page" in params else 0
    page = ordered[start : start + limit]

    def url(position: int) -> str:
        parts = [f"page={_page_token(position)}", f"limit={limit}"]
        if object_id is not None:
            parts.append(f"object_id={object_id}")
        parts.extend(f"types[{i}]={t}" for i, t in enumerate(types or []))
        parts.extend(f"created[{op}]={value}" for op, value in bounds.items())
        return "/v2/core/events?" + "&".join(parts)

    return {
        "data": [deep_copy(e) for e in page],
        "next_page_url": url(start + limit) if start + limit < len(ordered) else None,
        "previous_page_url": url(max(start - limit, 0)) if start > 0 else None,
    }


ROUTES = [
    Route("GET", "/v2/core/events", V2EventListParams, list_),
    Route("GET", "/v2/core/events/{id}", EventRetrieveParams, retrieve),
]
