"""The in-memory state of the sandbox: objects, events, secrets and the idempotency cache.

Objects are kept in their wire shape (plain JSON dicts) so responses, events and the state
file all share one representation. Every access happens under ``Store.lock``; the server
holds it for the whole handling of an API request, which makes each request atomic.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.wire import API_VERSION, JsonDict, new_id

STATE_FORMAT = 1

# Object types with a collection, keyed by their `object` value.
KINDS = (
    "customer",
    "product",
    "price",
    "event",
    "webhook_endpoint",
    "billing_portal.session",
    "checkout.session",
    "item",
    "payment_method",
    "payment_intent",
    "charge",
    "refund",
    "invoiceitem",
    "invoice",
    "line_item",
    "invoice_payment",
    "dispute",
    "v2.core.event",
    "subscription",
    "subscription_item",
    "test_helpers.test_clock",
    "tax_id",
    "card",
)

# Where hosted pages live until the server knows its real address.
DEFAULT_BASE_URL = "http://127.0.0.1:12111"

# Stripe keeps idempotency keys for 24 hours; a bounded cache is the local equivalent.
IDEMPOTENCY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class IdempotentResult:
    """The stored first response to an idempotent request."""

    fingerprint: str
    status: int
    body: bytes
    request_id: str


@dataclass(frozen=True)
class RequestInfo:
    """What an event's ``request`` field records about the request that caused it."""

    id: str | None
    idempotency_key: str | None


EventListener = Callable[[JsonDict, list[JsonDict]], None]


class Store:
    """All sandbox data, guarded by one re-entrant lock.

    Args:
        on_event: Called (under the lock) with each new event and the webhook endpoints it
            should be delivered to; it must only enqueue, never block.
    """

    def __init__(self, on_event: EventListener | None = None) -> None:
        self.lock = threading.RLock()
        self.on_event = on_event
        self.objects: dict[str, dict[str, JsonDict]] = {}
        self.seq: dict[str, int] = {}
        self.deleted: dict[str, JsonDict] = {}
        self.endpoint_secrets: dict[str, str] = {}
        self.idempotency: OrderedDict[tuple[str, str], IdempotentResult] = OrderedDict()
        self.demo_seeded = False
        self.dirty = False
        # Base URL of hosted pages (checkout, portal, invoices); the server sets its own.
        self.base_url = DEFAULT_BASE_URL
        # The port last served on (kept across restarts and resets): links issued earlier
        # (Checkout, portal) point at it, so a restart binds it again when it is free.
        self.port = 0
        # Seconds added to the wall clock by POST /_sandbox/clock/advance.
        self.clock_offset = 0
        # Ordered child ids of a parent (a Checkout Session's line items...).
        self.children: dict[str, list[str]] = {}
        # What Stripe keeps about an object without showing it (a Checkout Session's
        # payment_intent_data...), by object id.
        self.hidden: dict[str, JsonDict] = {}
        # Earliest `expires_at` of an open Checkout Session (None: nothing can expire;
        # 0: unknown, scan on the next request).
        self.next_expiry: int | None = None
        # When set, events are stamped with this time instead of the one passed in: the
        # request's wall time while a test clock's simulated time drives object timestamps.
        self.event_clock: int | None = None
        self._next_seq = 0
        self.reset()

    def reset(self) -> None:
        """Drop every object, event, endpoint and cached idempotent response."""
        with self.lock:
            self.objects = {kind: {} for kind in KINDS}
            self.seq = {}
            self.deleted = {}
            self.endpoint_secrets = {}
            self.idempotency.clear()
            self.demo_seeded = False
            self.clock_offset = 0
            self.children = {}
            self.hidden = {}
            self.next_expiry = None
            self._next_seq = 0
            self.dirty = True

    def now(self) -> int:
        """The sandbox's current time in Unix seconds (wall clock plus any advance)."""
        return int(time.time()) + self.clock_offset

    # ------------------------------------------------------------ objects

    def add(self, obj: JsonDict) -> JsonDict:
        """Store a new object under its ``object`` kind and give it a creation sequence."""
        kind = obj["object"]
        self._next_seq += 1
        self.objects[kind][obj["id"]] = obj
        self.seq[obj["id"]] = self._next_seq
        self.dirty = True
        return obj

    def get(self, kind: str, object_id: str) -> JsonDict | None:
        """Return the live object of this kind with this id, or None."""
        return self.objects.get(kind, {}).get(object_id)

    def remove(self, kind: str, object_id: str) -> JsonDict:
        """Delete an object and return Stripe's deletion stub for it."""
        self.objects[kind].pop(object_id)
        self.seq.pop(object_id, None)
        stub: JsonDict = {"id": object_id, "object": kind, "deleted": True}
        self.deleted[object_id] = stub
        self.dirty = True
        return stub

    def touch(self) -> None:
        """Mark the state as changed so the state file gets rewritten."""
        self.dirty = True

    def newest_first(self, kind: str) -> list[JsonDict]:
        """All live objects of a kind, newest first; ties broken by creation order."""
        seq = self.seq
        return sorted(
            self.objects[kind].values(),
            key=lambda o: (o.get("created", 0), seq.get(o["id"], 0)),
            reverse=True,
        )

    def sort_key(self, obj: JsonDict) -> tuple[int, int]:
        """The ordering key of ``newest_first`` (larger is newer)."""
        return (obj.get("created", 0), self.seq.get(obj["id"], 0))

    # ------------------------------------------------------------ events

    def record_event(
        self,
        event_type: str,
        obj: JsonDict,
        request: RequestInfo,
        now: int,
        previous_attributes: JsonDict | None = None,
    ) -> JsonDict:
        """Record an event for a change and hand it to the webhook listener.

        Args:
            event_type: Such as ``customer.updated``.
            obj: The object after the change (snapshotted here).
            request: The API request that caused it (ids are None for seeding).
            now: Event creation time in Unix seconds.
            previous_attributes: For ``*.updated`` events, the changed fields' old values.
        """
        endpoints = [
            ep
            for ep in self.objects["webhook_endpoint"].values()
            if ep["status"] == "enabled"
            and ("*" in ep["enabled_events"] or event_type in ep["enabled_events"])
        ]
        data: JsonDict = {"object": deep_copy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = deep_copy(previous_attributes)
        event: JsonDict = {
            "id": new_id("evt", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": now if self.event_clock is None else self.event_clock,
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {"id": request.id, "idempotency_key": request.idempotency_key},
            "type": event_type,
        }
        self.add(event)
        if endpoints and self.on_event is not None:
            self.on_event(event, [dict(ep) for ep in endpoints])
        return event

    # ------------------------------------------------------------ idempotency

    def remember(self, scope: tuple[str, str], result: IdempotentResult) -> None:
        """Cache the first response for an idempotency key, evicting the oldest if full."""
        self.idempotency[scope] = result
        while len(self.idempotency) > IDEMPOTENCY_CACHE_SIZE:
            self.idempotency.popitem(last=False)

    # ------------------------------------------------------------ persistence

    def snapshot(self) -> str:
        """Serialise everything worth keeping across restarts (not the idempotency cache)."""
        state = {
            "format": STATE_FORMAT,
            "next_seq": self._next_seq,
            "objects": self.objects,
            "seq": self.seq,
            "deleted": self.deleted,
            "endpoint_secrets": self.endpoint_secrets,
            "demo_seeded": self.demo_seeded,
            "clock_offset": self.clock_offset,
            "children": self.children,
            "hidden": self.hidden,
            "port": self.port,
        }
        return json.dumps(state, separators=(",", ":"))

    def load(self, text: str) -> None:
        """Replace the state with a snapshot produced by :meth:`snapshot`.

        Raises:
            ValueError: The text is not a sandbox state file of a known format.
        """
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a sandbox state file: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a sandbox state file (unknown format)")
        with self.lock:
            self.reset()
            objects: dict[str, dict[str, JsonDict]] = state["objects"]
            for kind in KINDS:
                self.objects[kind] = dict(objects.get(kind, {}))
            self.seq = {str(k): int(v) for k, v in state["seq"].items()}
            self.deleted = dict(state["deleted"])
            self.endpoint_secrets = dict(state["endpoint_secrets"])
            self.demo_seeded = bool(state["demo_seeded"])
            # Later additions to format 1: absent in older state files.
            self.clock_offset = int(state.get("clock_offset", 0))
            self.children = {str(k): list(v) for k, v in state.get("children", {}).items()}
            self.hidden = {str(k): dict(v) for k, v in state.get("hidden", {}).items()}
            self.port = int(state.get("port", 0))
            self.next_expiry = 0
            self._next_seq = int(state["next_seq"])
            self.dirty = False


def deep_copy(obj: Any) -> Any:
    """Copy a JSON value (faster than ``copy.deepcopy`` for plain dicts and lists)."""
    if isinstance(obj, dict):
        return {k: deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [deep_copy(v) for v in obj]
    return obj
