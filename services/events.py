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
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import peewee

from services import changes
from services.audit import Authority
from services.errors import (
    AppError,
    AuthenticationFailed,
    ConfigurationError,
    DatabaseError,
    NotFound,
    PermissionDenied,
    RateLimited,
    StripeUnreachable,
    ValidationError,
)
from services.mirror import note_rows, upsert
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
    REJECTED = "rejected"


class Result(enum.Enum):
    """What happened to one delivery."""

    APPLIED = "applied"
    IGNORED = "ignored"  # stored; nothing to do for this type
    DUPLICATE = "duplicate"  # already applied (or being applied elsewhere): nothing changed
    FAILED = "failed"  # a transient failure; recorded, to be retried (the receiver answers 500)
    REJECTED = "rejected"  # signed but unusable, or a permanent error: flagged, answered 200


#: Seconds since the epoch beyond any real event (the year 5138): larger is not a timestamp.
MAX_CREATED = 10**11

#: After this many failed attempts an event is flagged and `replay_failed` leaves it alone.
MAX_ATTEMPTS = 5
#: Stripe retries a failed delivery for up to three days (live mode); after that, nobody will.
RETRY_WINDOW_S = 3 * 24 * 3600


class Ignore(Exception):
    """Raised by a handler: nothing to do for this event, ever; stored `ignored` with why.

    Not an error: retrying cannot change it, so the receiver answers 200 (Stripe stops)."""


class Reject(Exception):
    """Raised by a handler: the event is signed but unusable (a field its type promises is
    missing or of the wrong kind). Stored `rejected` with why and flagged; answered 200."""


#: Failures a later attempt can get past: the network, Stripe's own trouble, a key or setting
#: being fixed, a database lock. Everything else is permanent for this event.
TRANSIENT: tuple[type[BaseException], ...] = (
    StripeUnreachable,
    RateLimited,
    AuthenticationFailed,
    PermissionDenied,
    ConfigurationError,
    DatabaseError,
    peewee.OperationalError,
    peewee.InterfaceError,
    TimeoutError,
    ConnectionError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


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
    #: Set for types that change nothing here: the event is stored `ignored` with this reason
    #: in one statement, with no claim and no Stripe call.
    ignore_reason: str | None = None


def event_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
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
        seconds = int(value or 0)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e309 is inf
        return 0
    return seconds if 0 <= seconds < MAX_CREATED else 0  # a 64-bit column holds it


def is_thin(event: Mapping[str, Any]) -> bool:
    """A v2 "thin" event: it names its object and carries no payload (`/v2/core/events/{id}`)."""
    return event.get("object") == "v2.core.event"


def _refresh(
    model: type[StripeMirror],
    kind: str,
    retrieve: Callable[[Any, str], Any],
    *,
    deleted_means_gone: bool = True,
) -> Handler:
    """A handler that re-reads the event's object from Stripe and upserts it (order-safe).

    Only objects of `kind` are mirrored: `customer.tax_id.created` matches `customer.*` but is
    about a tax id. A `*.deleted` event, or a re-read that finds nothing, marks the object
    deleted from what the event showed: nothing to retry, whatever the type. With
    `deleted_means_gone=False` a `*.deleted` event is re-read like any other (a subscription's
    `customer.subscription.deleted` means canceled: Stripe still has it, and churn counts it).
    """

    def fetch(ctx: HandlerContext, event: Mapping[str, Any]) -> dict[str, Any]:
        obj = event_object(event)
        found = obj.get("object")
        if found != kind:
            raise Ignore(f"about a {found or 'nameless object'}, not a {kind}: not mirrored")
        object_id = str(obj.get("id") or "")
        if not object_id:
            raise Ignore(f"the {kind} has no id (a preview, such as an upcoming invoice)")
        gone = {**dict(obj), "id": object_id, "deleted": True}
        deleted_type = str(event.get("type", "")).endswith(".deleted") and deleted_means_gone
        if deleted_type or obj.get("deleted") is True:
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
                changes.note(customers=[str(data["id"])])
            elif data.get("created"):
                upsert(Customer, [data])  # first heard of as it went: what the event showed
            else:
                return Status.IGNORED  # never mirrored, gone, and the event shows nothing
        else:
            model.delete().where(model.stripe_id == data["id"]).execute()
            note_rows(model, [{"stripe_id": data["id"], "product_id": data.get("product")}])
        return Status.APPLIED

    return Handler(fetch, apply)


def via(kind: str, field: str, parent: str, refresh: Handler) -> Handler:
    """A handler for an event about a sub-object (`kind`: a customer's card or tax id, an
    invoice's payment): it refreshes the parent named in `field` instead, and never mirrors
    the sub-object as if it were the parent."""

    def fetch(ctx: HandlerContext, event: Mapping[str, Any]) -> Any:
        obj = event_object(event)
        if obj.get("object") != kind:
            raise Ignore(f"about a {obj.get('object') or 'nameless object'}, not a {kind}")
        named = obj.get(field)
        parent_id = named.get("id") if isinstance(named, Mapping) else named
        if not isinstance(parent_id, str) or not parent_id:
            raise Ignore(f"the {kind} names no {parent}")
        as_parent = {
            "type": f"{parent}.updated",
            "data": {"object": {"id": parent_id, "object": parent}},
        }
        return refresh.fetch(ctx, as_parent)

    return Handler(fetch, refresh.apply)


def _ignored(reason: str) -> Handler:
    """An explicit outcome for a type that changes nothing here: stored `ignored`, with why."""

    def fetch(_ctx: HandlerContext, _event: Mapping[str, Any]) -> None:
        raise Ignore(reason)

    return Handler(fetch, lambda _c, _e, _d: Status.IGNORED, ignore_reason=reason)


IGNORE = Handler(lambda _c, _e: None, lambda _c, _e, _d: Status.IGNORED, ignore_reason="")

CUSTOMER = _refresh(Customer, "customer", lambda c, i: c.v1.customers.retrieve(i))
INVOICE = _refresh(Invoice, "invoice", lambda c, i: c.v1.invoices.retrieve(i))

#: The routing table: the first pattern matching the event type wins, so sub-object types come
#: before their parent's wildcard. Every type here has a row in README's table of events. The
#: credits' routes (Checkout, refunds, disputes) come first; see `services.credits`.
ROUTES: list[tuple[str, Handler]] = [
    (
        "customer.subscription.*",
        _refresh(
            Subscription,
            "subscription",
            lambda c, i: c.v1.subscriptions.retrieve(i),
            deleted_means_gone=False,
        ),
    ),
    # A customer's sub-objects: their own kind, refreshing the customer they belong to.
    ("customer.source.*", via("card", "customer", "customer", CUSTOMER)),
    ("customer.tax_id.*", via("tax_id", "customer", "customer", CUSTOMER)),
    ("customer.discount.*", via("discount", "customer", "customer", CUSTOMER)),
    ("customer.cash_balance*", _ignored("a customer's cash balance: not mirrored")),
    ("customer_cash_balance_transaction.*", _ignored("a cash balance entry: not mirrored")),
    ("customer.*", CUSTOMER),
    ("product.*", _refresh(Product, "product", lambda c, i: c.v1.products.retrieve(i))),
    ("price.*", _refresh(Price, "price", lambda c, i: c.v1.prices.retrieve(i))),
    # Invoices: every status change re-reads the invoice; `invoice.upcoming` (a preview with
    # no id) is ignored by `_refresh`. The explicit rows say which types were considered.
    ("invoice.paid", INVOICE),
    ("invoice.payment_failed", INVOICE),
    ("invoice.payment_action_required", INVOICE),
    ("invoice.marked_uncollectible", INVOICE),
    ("invoice.voided", INVOICE),
    ("invoice.upcoming", _ignored("an upcoming invoice is a preview with no id: not mirrored")),
    ("invoice.*", INVOICE),
    ("invoice_payment.*", via("invoice_payment", "invoice", "invoice", INVOICE)),
    ("invoiceitem.*", _ignored("invoice items are read with their invoice, not mirrored")),
    # The old web app credited on these; here a top-up settles only from its Checkout
    # session's events (services.credits), so a PaymentIntent event alone credits nothing.
    (
        "payment_intent.*",
        _ignored(
            "a payment intent alone credits nothing: top-ups settle from their Checkout session"
        ),
    ),
]


def route(event_type: str, routes: list[tuple[str, Handler]]) -> Handler:
    for pattern, handler in routes:
        # "customer.*" must not swallow "customer.subscription.*": patterns are tried in order.
        if fnmatch.fnmatchcase(event_type, pattern):
            return handler
    return IGNORE


def _malformed(event: Mapping[str, Any], evt_id: str, event_type: str) -> str:
    """Why a signed event cannot be used, whatever its handler ("" when it can)."""
    if not evt_id.startswith("evt_") or len(evt_id) > 255:
        return f"the event's id {evt_id[:40]!r} is not a Stripe event id"
    if not event_type:
        return "the event has no type"
    if is_thin(event):
        related = event.get("related_object")
        if related is not None and not isinstance(related, Mapping):
            return "the thin event's related_object is not an object"
        return ""
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created < MAX_CREATED:
        return f"the event's created {str(created)[:40]!r} is not a Unix timestamp"
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        return "the event has no data.object"
    return ""


def _give_up_reason(attempts: int, created: int, now: float) -> str:
    if attempts >= MAX_ATTEMPTS:
        return f"failed {attempts} times: needs a person (not replayed automatically)"
    if created and now - created > RETRY_WINDOW_S:
        return "failed, and older than Stripe's 3 days of retries: needs a person"
    return ""


def flag_event(evt_id: str, why: str) -> None:
    """Mark a stored event as needing a person, with why (the Events panel's ⚑)."""
    log.warning("Event %s flagged: %s", evt_id, why)
    WebhookEvent.update(flagged=why).where(WebhookEvent.evt_id == evt_id).execute()
    changes.note(events=[evt_id])


class ReplayReport(NamedTuple):
    """What `replay_failed` did: each replayed event's result, and those flagged instead."""

    results: dict[str, Result]
    flagged: list[str]

    def summary(self) -> str:
        if not self.results and not self.flagged:
            return "No failed events to replay."
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.value] = counts.get(result.value, 0) + 1
        parts = [f"{n} {what}" for what, n in sorted(counts.items())]
        if self.flagged:
            parts.append(f"{len(self.flagged)} flagged for a person (too many attempts or too old)")
        return f"Replayed {len(self.results)} failed events: " + ", ".join(parts) + "."


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
        self._change_listeners: list[Callable[[changes.Changes], None]] = []

    def may_apply(self) -> bool:
        """False for a login that only reads events (a shared database set up by `admin-app db
        setup`: the team's listener applies them)."""
        if not isinstance(self._db, peewee.PostgresqlDatabase):
            return True
        sql = "SELECT has_table_privilege('webhook_event', 'INSERT')"
        return bool(self._db.execute_sql(sql).fetchone()[0])  # type: ignore[no-untyped-call]

    def add_listener(self, listener: Callable[[str, Result], None]) -> None:
        """Called (on the receiving thread) after each delivery with the event id and result."""
        self._listeners.append(listener)

    def receive(self, event: Mapping[str, Any], source: Source) -> Result:
        """Store `event` (a verified Stripe event) once and apply it once.

        A signed event without an `evt_` id or a type is still stored — under an id made from
        its contents, `rejected` — so the delivery is answered, recorded once, and shown."""
        if not isinstance(event, Mapping):
            raise ValidationError("Not a Stripe event: the payload is not a JSON object.")
        evt_id = str(event.get("id") or "")
        event_type = str(event.get("type") or "")
        problem = _malformed(event, evt_id, event_type)
        if problem and not (evt_id.startswith("evt_") and len(evt_id) <= 255):
            digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode())
            evt_id = f"evt_unusable_{digest.hexdigest()[:32]}"
        handler = route(event_type, self.routes)
        # Settled at once (rejected, or a type that changes nothing here): one INSERT with the
        # final status — a burst of `stripe listen`'s everything-forwarding costs one write each.
        settled: tuple[Status, str | None, str | None] | None = None
        if problem:
            settled = (Status.REJECTED, problem, f"rejected: {problem}")
        elif handler.ignore_reason is not None:
            why = handler.ignore_reason or (
                "a v2 thin event; nothing here needs its payload" if is_thin(event) else None
            )
            settled = (Status.IGNORED, why, None)
        status, why, flag = settled or (Status.RECEIVED, None, None)
        inserted = (
            WebhookEvent.insert(
                evt_id=evt_id,
                # Cut to the column's 128: PostgreSQL refuses a longer one (and Stripe would
                # retry that delivery for three days), SQLite would keep it.
                type=event_type[:128] or "(no type)",
                object_id=str(event_object(event).get("id") or "")[:255] or None,
                created=_created(event),
                received_at=int(time.time() * 1000),
                source=source.value,
                status=status.value,
                attempts=1 if settled else 0,
                last_error=redact(why)[:2000] if why else None,
                flagged=flag,
                livemode=event.get("livemode") is True,
                raw=dict(event),
            )
            .on_conflict_ignore()
            .as_rowcount()
            .execute()
        )
        log.debug("Event %s %s from %s (new: %s)", evt_id, event_type, source.value, inserted)
        with changes.collecting() as noted:
            if settled and inserted == 1:
                if flag:
                    log.warning("Event %s flagged: %s", evt_id, flag)
                result = Result.REJECTED if problem else Result.IGNORED
            else:
                result = self._apply(evt_id, event_type, event, problem, fresh=inserted == 1)
        self._tell(evt_id, result, noted)
        return result

    def add_change_listener(self, listener: Callable[[changes.Changes], None]) -> None:
        """Called (on the receiving thread) after each delivery with what it changed: the
        stored event itself, and the rows its handler wrote (the window updates just those)."""
        self._change_listeners.append(listener)

    def _tell(self, evt_id: str, result: Result, noted: changes.Collector) -> None:
        if result is not Result.DUPLICATE:
            noted.add("events", [evt_id])
        what = noted.changes()
        for listener in self._listeners:
            try:
                listener(evt_id, result)
            except Exception:
                log.exception("An event listener failed")
        if not what:
            return
        for change_listener in self._change_listeners:
            try:
                change_listener(what)
            except Exception:
                log.exception("An event change listener failed")

    def replay(self, evt_id: str, authority: Authority) -> Result:
        """Apply a stored event again (admins; audited), e.g. after fixing what made it fail."""
        with authority.action(Permission.REPLAY_EVENTS, "event.replay", target=evt_id) as record:
            row = WebhookEvent.get_or_none(WebhookEvent.evt_id == evt_id)
            if row is None:
                raise ValidationError(f"No stored event {evt_id}.")
            # Replaying re-runs the handler: mirror handlers re-read from Stripe, and money
            # handlers are idempotent by their own unique keys, so this cannot double-apply.
            WebhookEvent.update(
                status=Status.RECEIVED.value, source=Source.REPLAY.value, flagged=None
            ).where(WebhookEvent.evt_id == evt_id).execute()
            record.params = {"type": row.type, "previous_status": row.status}
        raw = row.raw if isinstance(row.raw, Mapping) else {}
        with changes.collecting() as noted:
            result = self._apply(evt_id, row.type, raw, _malformed(raw, evt_id, row.type))
        if row.status == Status.APPLIED.value and result is Result.IGNORED:
            # Nothing left to do is what a replay of an applied event finds (its effect is
            # there): it stays `applied`, never turned into `ignored`.
            WebhookEvent.update(status=Status.APPLIED.value, last_error=None).where(
                WebhookEvent.evt_id == evt_id
            ).execute()
            result = Result.APPLIED
        noted.add("events", [evt_id])  # its status and source changed, whatever the result
        self._tell(evt_id, result, noted)
        return result

    def replay_failed(self, authority: Authority) -> ReplayReport:
        """Replay every `failed` event that Stripe would still retry (admins; each audited).

        Events that failed `MAX_ATTEMPTS` times or are older than Stripe's retry window are
        flagged for a person instead, and left as they are."""
        authority.require(Permission.REPLAY_EVENTS, "event.replay_failed")
        failed = list(
            tuples(
                WebhookEvent.select(
                    WebhookEvent.evt_id, WebhookEvent.attempts, WebhookEvent.created
                )
                .where(
                    (WebhookEvent.status == Status.FAILED.value) & WebhookEvent.flagged.is_null()
                )
                .order_by(WebhookEvent.created, WebhookEvent.id)
            )
        )
        results: dict[str, Result] = {}
        flagged: list[str] = []
        now = time.time()
        for evt_id, attempts, created in failed:
            why = _give_up_reason(attempts or 0, created or 0, now)
            if why:
                flag_event(evt_id, why)
                flagged.append(evt_id)
                continue
            results[evt_id] = self.replay(evt_id, authority)
        return ReplayReport(results, flagged)

    def _apply(
        self,
        evt_id: str,
        event_type: str,
        event: Mapping[str, Any],
        problem: str = "",
        *,
        fresh: bool = False,
    ) -> Result:
        handler = route(event_type, self.routes)
        claimable = [Status.RECEIVED.value, Status.FAILED.value]
        if not fresh:  # the cheap check, before any Stripe call; the claim below is the one
            current = WebhookEvent.select(WebhookEvent.status).where(WebhookEvent.evt_id == evt_id)
            if current.scalar() not in claimable:
                return Result.DUPLICATE
        try:
            if problem:
                raise Reject(problem)
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
            self._settle_as(evt_id, claimable, Status.IGNORED, str(why))
            return Result.IGNORED
        except Exception as exc:
            message = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            if is_transient(exc):
                log.warning("Event %s (%s) failed, to be retried: %s", evt_id, event_type, exc)
                self._settle_as(evt_id, claimable, Status.FAILED, message)
                row = WebhookEvent.get_or_none(WebhookEvent.evt_id == evt_id)
                give_up = row and _give_up_reason(row.attempts or 0, row.created or 0, time.time())
                if give_up:
                    flag_event(evt_id, give_up)
                return Result.FAILED
            if not isinstance(exc, (Reject, AppError)):
                log.exception("Handler for %s (%s) failed for good", evt_id, event_type)
            self._settle_as(evt_id, claimable, Status.REJECTED, message)
            flag_event(evt_id, f"rejected: {message}"[:2000])
            return Result.REJECTED
        return Result.APPLIED if status is Status.APPLIED else Result.IGNORED

    @staticmethod
    def _settle_as(evt_id: str, claimable: list[str], status: Status, why: str) -> None:
        WebhookEvent.update(
            status=status.value,
            attempts=WebhookEvent.attempts + 1,
            last_error=redact(why)[:2000],
        ).where((WebhookEvent.evt_id == evt_id) & WebhookEvent.status.in_(claimable)).execute()

    # ---- reading (the Events panel and `admin-app events list`)
    def events(
        self,
        authority: Authority,
        *,
        status: str | None = None,
        event_type: str | None = None,
        flagged: bool = False,
        limit: int | None = 5000,
        ids: Collection[str] | None = None,
    ) -> list[EventRow]:
        """Stored events, newest first; `ids`: only those (a window updating changed rows)."""
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
        if flagged:
            query = query.where(WebhookEvent.flagged.is_null(False))
        if ids is not None:
            query = query.where(WebhookEvent.evt_id.in_(list(ids)))
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
