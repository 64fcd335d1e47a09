"""Stripe events: stored once, applied once, whatever the order and however often they arrive.

`EventPipeline.receive` is the one door for every event — from the webhook receiver, the catch-up
poll and an admin's replay:

1. Insert the event keyed by its `evt_…` id. The unique key decides between two deliveries at
   the same moment (two threads, two processes, two machines on one PostgreSQL): no
   check-then-insert race.
2. Claim it with one conditional UPDATE (`received`/`failed` → `applied`), run its handler and
   commit both together. A concurrent claimer's UPDATE waits for that commit and then matches no
   row, so the handler runs once. A handler that raises rolls back and the event is marked
   `failed` with its error (the receiver answers 500 so Stripe retries; an admin can replay).

Handlers that mirror objects re-read them from Stripe instead of trusting the payload, so an
older event arriving late can never overwrite newer state.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import peewee

from services.audit import Authority
from services.errors import AppError, NotFound, ValidationError
from services.mirror import upsert
from services.models import (
    Customer,
    Invoice,
    Price,
    Product,
    StripeMirror,
    Subscription,
    WebhookEvent,
    tuples,
)
from services.permissions import Permission
from services.redaction import redact
from services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)


class Source(enum.Enum):
    RECEIVER = "receiver"
    CATCH_UP = "catch-up"
    REPLAY = "replay"


class Status(enum.Enum):
    RECEIVED = "received"
    APPLIED = "applied"
    FAILED = "failed"
    IGNORED = "ignored"


class Result(enum.Enum):
    """What happened to one delivery."""

    APPLIED = "applied"
    IGNORED = "ignored"  # stored; nothing to do for this type
    DUPLICATE = "duplicate"  # already applied (or being applied elsewhere): nothing changed
    FAILED = "failed"  # the handler raised; recorded, to be retried


class Ignore(Exception):
    """Raised by a handler: nothing to do for this event, ever; stored `ignored` with why.

    Not an error: retrying cannot change it, so the receiver answers 200 (Stripe stops)."""


class EventRow(NamedTuple):
    evt_id: str
    type: str
    object_id: str
    created: int
    received_at: int
    source: str
    status: str
    attempts: int
    last_error: str
    flagged: str


@dataclass(frozen=True)
class HandlerContext:
    gateway: StripeGateway
    db: peewee.Database


@dataclass(frozen=True)
class Handler:
    """How one kind of event is applied, in two steps.

    `fetch` runs before the transaction and may call Stripe (so no database lock is held during
    a network call); `apply` runs inside the transaction that marks the event applied, touches
    only the database, and returns APPLIED, or IGNORED when there was nothing to do. Either may
    raise to fail the event.
    """

    fetch: Callable[[HandlerContext, Mapping[str, Any]], Any]
    apply: Callable[[HandlerContext, Mapping[str, Any], Any], Status]


def _object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data") or {}
    obj = data.get("object") if isinstance(data, Mapping) else None
    if obj is None and isinstance(event.get("related_object"), Mapping):
        obj = event["related_object"]  # a v2 thin event names its object, without its fields
    return obj if isinstance(obj, Mapping) else {}


def _created(event: Mapping[str, Any]) -> int:
    """Seconds since the epoch: v1 events say so; v2 thin events give an ISO-8601 string."""
    value = event.get("created")
    if isinstance(value, str) and not value.isdigit():
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return 0
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def is_thin(event: Mapping[str, Any]) -> bool:
    """A v2 "thin" event: it names its object and carries no payload (`/v2/core/events/{id}`)."""
    return event.get("object") == "v2.core.event"


def _refresh(model: type[StripeMirror], kind: str, retrieve: Callable[[Any, str], Any]) -> Handler:
    """A handler that re-reads the event's object from Stripe and upserts it (order-safe).

    Only objects of `kind` are mirrored: `customer.tax_id.created` matches `customer.*` but is
    about a tax id. A `*.deleted` event, or a re-read that finds nothing, marks the object
    deleted from what the event showed: nothing to retry, whatever the type.
    """

    def fetch(ctx: HandlerContext, event: Mapping[str, Any]) -> dict[str, Any]:
        obj = _object(event)
        found = obj.get("object")
        if found != kind:
            raise Ignore(f"about a {found or 'nameless object'}, not a {kind}: not mirrored")
        object_id = str(obj.get("id") or "")
        if not object_id:
            raise Ignore(f"the {kind} has no id (a preview, such as an upcoming invoice)")
        gone = {**dict(obj), "id": object_id, "deleted": True}
        if str(event.get("type", "")).endswith(".deleted") or obj.get("deleted") is True:
            return gone
        try:
            fresh = ctx.gateway.call(lambda c: retrieve(c, object_id))
        except NotFound:
            return gone  # deleted in Stripe since the event was sent
        data: dict[str, Any] = fresh.to_dict(for_json=True)
        return {**gone, **data} if data.get("deleted") else data

    def apply(_ctx: HandlerContext, _event: Mapping[str, Any], data: Any) -> Status:
        if not data.get("deleted"):
            upsert(model, [data])
        elif model is Customer:
            # Kept, marked deleted: invoices and credits still name the customer.
            existing = Customer.get_or_none(Customer.stripe_id == data["id"])
            if existing is not None:
                Customer.update(deleted=True).where(Customer.id == existing.id).execute()
            elif data.get("created"):
                upsert(Customer, [data])  # first heard of as it went: what the event showed
            else:
                return Status.IGNORED  # never mirrored, gone, and the event shows nothing
        else:
            model.delete().where(model.stripe_id == data["id"]).execute()
        return Status.APPLIED

    return Handler(fetch, apply)


IGNORE = Handler(lambda _c, _e: None, lambda _c, _e, _d: Status.IGNORED)


#: The routing table: the first pattern matching the event type wins. Later issues replace the
#: placeholders for checkout/payment events (credits) with their real handlers.
ROUTES: list[tuple[str, Handler]] = [
    (
        "customer.subscription.*",
        _refresh(Subscription, "subscription", lambda c, i: c.v1.subscriptions.retrieve(i)),
    ),
    ("customer.*", _refresh(Customer, "customer", lambda c, i: c.v1.customers.retrieve(i))),
    ("product.*", _refresh(Product, "product", lambda c, i: c.v1.products.retrieve(i))),
    ("price.*", _refresh(Price, "price", lambda c, i: c.v1.prices.retrieve(i))),
    ("invoice.*", _refresh(Invoice, "invoice", lambda c, i: c.v1.invoices.retrieve(i))),
]


def route(event_type: str, routes: list[tuple[str, Handler]]) -> Handler:
    for pattern, handler in routes:
        # "customer.*" must not swallow "customer.subscription.*": patterns are tried in order.
        if fnmatch.fnmatchcase(event_type, pattern):
            return handler
    return IGNORE


class EventPipeline:
    """Stores and applies Stripe events; see the module docstring for the guarantees."""

    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        routes: list[tuple[str, Handler]] | None = None,
    ) -> None:
        self._db = db
        self._ctx = HandlerContext(gateway, db)
        self.routes = list(ROUTES if routes is None else routes)
        self._listeners: list[Callable[[str, Result], None]] = []

    def add_listener(self, listener: Callable[[str, Result], None]) -> None:
        """Called (on the receiving thread) after each delivery with the event id and result."""
        self._listeners.append(listener)

    def receive(self, event: Mapping[str, Any], source: Source) -> Result:
        """Store `event` (a verified Stripe event) once and apply it once."""
        evt_id = str(event.get("id") or "")
        event_type = str(event.get("type") or "")
        if not evt_id.startswith("evt_") or not event_type:
            raise ValidationError("Not a Stripe event: it needs an evt_ id and a type.")
        inserted = (
            WebhookEvent.insert(
                evt_id=evt_id,
                type=event_type,
                object_id=str(_object(event).get("id") or "") or None,
                created=_created(event),
                received_at=int(time.time() * 1000),
                source=source.value,
                status=Status.RECEIVED.value,
                attempts=0,
                livemode=bool(event.get("livemode", False)),
                raw=dict(event),
            )
            .on_conflict_ignore()
            .execute()
        )
        log.debug("Event %s %s from %s (new: %s)", evt_id, event_type, source.value, inserted)
        result = self._apply(evt_id, event_type, event)
        for listener in self._listeners:
            try:
                listener(evt_id, result)
            except Exception:
                log.exception("An event listener failed")
        return result

    def replay(self, evt_id: str, authority: Authority) -> Result:
        """Apply a stored event again (admins; audited), e.g. after fixing what made it fail."""
        with authority.action(Permission.REPLAY_EVENTS, "event.replay", target=evt_id) as record:
            row = WebhookEvent.get_or_none(WebhookEvent.evt_id == evt_id)
            if row is None:
                raise ValidationError(f"No stored event {evt_id}.")
            # Replaying re-runs the handler: mirror handlers re-read from Stripe, and money
            # handlers are idempotent by their own unique keys, so this cannot double-apply.
            WebhookEvent.update(status=Status.RECEIVED.value, source=Source.REPLAY.value).where(
                WebhookEvent.evt_id == evt_id
            ).execute()
            record.params = {"type": row.type, "previous_status": row.status}
        result = self._apply(evt_id, row.type, row.raw)
        for listener in self._listeners:
            listener(evt_id, result)
        return result

    def _apply(self, evt_id: str, event_type: str, event: Mapping[str, Any]) -> Result:
        handler = route(event_type, self.routes)
        claimable = [Status.RECEIVED.value, Status.FAILED.value]
        current = WebhookEvent.select(WebhookEvent.status).where(WebhookEvent.evt_id == evt_id)
        if current.scalar() not in claimable:
            return Result.DUPLICATE  # the cheap check; the claim below is the one that counts
        try:
            if is_thin(event) and handler is IGNORE:
                raise Ignore("a v2 thin event; nothing here needs its payload")
            fetched = handler.fetch(self._ctx, event)
            with self._db.atomic():
                claimed = (
                    WebhookEvent.update(
                        status=Status.APPLIED.value,
                        attempts=WebhookEvent.attempts + 1,
                        last_error=None,
                    )
                    .where((WebhookEvent.evt_id == evt_id) & WebhookEvent.status.in_(claimable))
                    .execute()
                )
                if not claimed:
                    return Result.DUPLICATE
                status = handler.apply(self._ctx, event, fetched)
                if status is not Status.APPLIED:
                    WebhookEvent.update(status=status.value).where(
                        WebhookEvent.evt_id == evt_id
                    ).execute()
        except Ignore as why:
            # Settled for good: retrying cannot change it.
            WebhookEvent.update(
                status=Status.IGNORED.value,
                attempts=WebhookEvent.attempts + 1,
                last_error=redact(str(why))[:2000],
            ).where((WebhookEvent.evt_id == evt_id) & WebhookEvent.status.in_(claimable)).execute()
            return Result.IGNORED
        except Exception as exc:
            message = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, AppError):
                log.exception("Handler for %s (%s) failed", evt_id, event_type)
            WebhookEvent.update(
                status=Status.FAILED.value,
                attempts=WebhookEvent.attempts + 1,
                last_error=redact(message)[:2000],
            ).where(WebhookEvent.evt_id == evt_id).execute()
            return Result.FAILED
        return Result.APPLIED if status is Status.APPLIED else Result.IGNORED

    # ---- reading (the Events panel and `admin-app events list`)
    def events(
        self,
        authority: Authority,
        *,
        status: str | None = None,
        event_type: str | None = None,
        limit: int = 5000,
    ) -> list[EventRow]:
        authority.require(Permission.BROWSE, "events.list")
        query = WebhookEvent.select(
            WebhookEvent.evt_id,
            WebhookEvent.type,
            peewee.fn.COALESCE(WebhookEvent.object_id, ""),
            WebhookEvent.created,
            WebhookEvent.received_at,
            WebhookEvent.source,
            WebhookEvent.status,
            WebhookEvent.attempts,
            peewee.fn.COALESCE(WebhookEvent.last_error, ""),
            peewee.fn.COALESCE(WebhookEvent.flagged, ""),
        ).order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
        if status:
            query = query.where(WebhookEvent.status == status)
        if event_type:
            if "*" in event_type:
                query = query.where(WebhookEvent.type.startswith(event_type.rstrip("*")))
            else:
                query = query.where(WebhookEvent.type == event_type)
        return [EventRow._make(t) for t in tuples(query.limit(limit))]

    def payload(self, authority: Authority, evt_id: str) -> str:
        """The stored event, pretty-printed for the payload viewer."""
        authority.require(Permission.BROWSE, "events.show", evt_id)
        row = WebhookEvent.get_or_none(WebhookEvent.evt_id == evt_id)
        if row is None:
            raise NotFound(f"No stored event {evt_id}.")
        return json.dumps(row.raw, indent=2, sort_keys=True)
