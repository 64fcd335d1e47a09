"""The local mirror of Stripe and the app's own records (peewee models).

Models are bound to a database by `services.database.open_database`; there is no global database.
Rows never leave `services/`: queries turn them into plain typed values first.

Changing a model needs a new migration in `services.migrations`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import peewee


class JSONText(peewee.TextField):
    """JSON stored as text, so SQLite and PostgreSQL behave the same."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


def scalar_sql(db: peewee.Database, sql: str) -> Any:
    """The first column of the first row of a raw SQL query."""
    return db.execute_sql(sql).fetchone()[0]  # type: ignore[no-untyped-call]


def tuples(query: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of a select as plain tuples (peewee's stubs type `.tuples()` as models)."""
    return iter(query.tuples())


class BaseModel(peewee.Model):
    id = peewee.AutoField()

    class Meta:
        legacy_table_names = False


class StripeMirror(BaseModel):
    """Fields every mirrored Stripe object has (dj-stripe's StripeModel, much reduced)."""

    stripe_id = peewee.CharField(max_length=255, unique=True)
    livemode = peewee.BooleanField(default=False)
    created = peewee.BigIntegerField()  # Stripe's `created`, seconds since the epoch
    raw = JSONText()  # the whole object as Stripe sent it
    synced_at = peewee.BigIntegerField()  # when we last wrote it, seconds since the epoch


class Customer(StripeMirror):
    name = peewee.TextField(null=True)
    email = peewee.TextField(null=True, index=True)
    phone = peewee.TextField(null=True)
    currency = peewee.CharField(max_length=3, null=True)
    balance = peewee.BigIntegerField(default=0)  # Stripe customer balance, minor units
    description = peewee.TextField(null=True)
    metadata = JSONText(default=dict)
    deleted = peewee.BooleanField(default=False)
    # Local only: never sent to Stripe, never overwritten by a pull.
    notes = peewee.TextField(null=True)
    tags = JSONText(null=True)


class Product(StripeMirror):
    name = peewee.TextField()
    description = peewee.TextField(null=True)
    active = peewee.BooleanField(default=True)
    default_price_id = peewee.CharField(max_length=255, null=True)
    metadata = JSONText(default=dict)
    # metadata[credits] as a positive integer when this product is a credit pack
    credits = peewee.IntegerField(null=True)


class Price(StripeMirror):
    product_id = peewee.CharField(max_length=255, index=True)  # Stripe product id
    currency = peewee.CharField(max_length=3)
    unit_amount = peewee.BigIntegerField(null=True)
    active = peewee.BooleanField(default=True)
    lookup_key = peewee.TextField(null=True)
    nickname = peewee.TextField(null=True)
    type = peewee.CharField(max_length=16, default="one_time")
    metadata = JSONText(default=dict)


class Invoice(StripeMirror):
    customer_id = peewee.CharField(max_length=255, index=True)  # Stripe customer id
    number = peewee.TextField(null=True)
    status = peewee.CharField(max_length=32, null=True)
    currency = peewee.CharField(max_length=3)
    total = peewee.BigIntegerField(default=0)
    amount_due = peewee.BigIntegerField(default=0)
    amount_paid = peewee.BigIntegerField(default=0)
    amount_remaining = peewee.BigIntegerField(default=0)
    due_date = peewee.BigIntegerField(null=True)
    hosted_invoice_url = peewee.TextField(null=True)
    # raw's status_transitions.paid_at, as a column: the Overview sums by it over 200k invoices.
    paid_at = peewee.BigIntegerField(null=True)

    class Meta:
        # Covering the Overview's queries: read from the index alone, never the wide rows.
        indexes = (
            (("currency", "paid_at", "amount_paid"), False),
            (("status", "currency", "due_date", "amount_remaining"), False),
        )


class CreditEntry(BaseModel):
    """One line of a customer's credit ledger; the balance is the sum. Append-only.

    (kind, source) is unique: a purchase's source is its top-up id, so a top-up can be credited
    at most once, whatever happens to the events; a clawback's source is the refund id.
    """

    customer_id = peewee.CharField(max_length=255, index=True)  # Stripe customer id
    amount = peewee.BigIntegerField()  # signed number of credits
    kind = peewee.CharField(max_length=16)  # purchase, grant, clawback, adjustment
    source = peewee.TextField(null=True)  # top-up id, payment intent, refund...
    operator = peewee.TextField()
    reason = peewee.TextField(null=True)
    created_at = peewee.BigIntegerField()
    topup_id = peewee.CharField(max_length=64, null=True, index=True)
    expires_at = peewee.BigIntegerField(null=True)  # credits it adds expire then (services.lots)

    class Meta:
        indexes = (
            (("kind", "source"), True),
            (("created_at", "kind", "amount"), False),
            (("customer_id", "id"), False),
        )


class CreditLot(BaseModel):
    """Credits that arrived together (one positive ledger entry) and what is left of them.

    Written only by `services.lots` (on PostgreSQL, by its SQL functions)."""

    customer_id = peewee.CharField(max_length=255, index=True)
    entry_id = peewee.BigIntegerField(unique=True)  # the credit_entry that brought them
    kind = peewee.CharField(max_length=16)  # purchase, grant, plan_renewal
    priority = peewee.IntegerField()  # 0 promotional (drawn first), 1 paid
    amount = peewee.BigIntegerField()
    remaining = peewee.BigIntegerField()
    source = peewee.TextField(null=True)
    created_at = peewee.BigIntegerField()
    expires_at = peewee.BigIntegerField(null=True, index=True)

    class Meta:
        table_name = "credit_lot"


class CreditAllocation(BaseModel):
    """How much a negative entry (spend, clawback, expiry) took from which lot; `lot_id` NULL
    is the part taken on overdraft. A lot's own entry settling a debt also has one."""

    entry_id = peewee.BigIntegerField(index=True)
    lot_id = peewee.BigIntegerField(null=True, index=True)
    amount = peewee.BigIntegerField()  # credits, positive

    class Meta:
        table_name = "credit_allocation"


class CreditAccount(BaseModel):
    """Per customer: the overdraft allowed and used, and the last ledger entry turned into
    lots. Its row is the lock every ledger change of that customer takes."""

    customer_id = peewee.CharField(max_length=255, unique=True)
    overdraft_limit = peewee.BigIntegerField(default=0)
    debt = peewee.BigIntegerField(default=0)
    absorbed_to = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "credit_account"


class TopUp(BaseModel):
    """A request for payment of credits, through a Stripe Checkout link."""

    topup_id = peewee.CharField(max_length=64, unique=True)  # tu_…
    customer_id = peewee.CharField(max_length=255, index=True)
    credits = peewee.BigIntegerField()
    amount = peewee.BigIntegerField()  # minor units
    currency = peewee.CharField(max_length=3)
    product_id = peewee.CharField(max_length=255, null=True)  # the credit pack, if one
    status = peewee.CharField(
        max_length=16, index=True
    )  # open paid credited expired failed refunded disputed
    checkout_session_id = peewee.CharField(max_length=255, unique=True)
    url = peewee.TextField(null=True)
    payment_intent_id = peewee.CharField(max_length=255, null=True, index=True)
    issued_by = peewee.TextField()
    issued_at = peewee.BigIntegerField()
    expires_at = peewee.BigIntegerField()
    paid_at = peewee.BigIntegerField(null=True)
    credited_at = peewee.BigIntegerField(null=True)
    refunded_amount = peewee.BigIntegerField(default=0)
    flagged = peewee.TextField(null=True)

    class Meta:
        indexes = ((("currency", "paid_at", "amount"), False),)


ALL_MODELS: list[type[peewee.Model]] = [Customer, Product, Price, Invoice, CreditEntry]


class Operator(BaseModel):
    """A staff member known to the app; identity is the OS login (SQLite) or database login (PG)."""

    login = peewee.CharField(max_length=255, unique=True)
    display_name = peewee.TextField()
    role = peewee.CharField(max_length=16)  # services.permissions.Role values
    active = peewee.BooleanField(default=True)
    created_at = peewee.BigIntegerField()
    created_by = peewee.TextField()


class AuditRecord(BaseModel):
    """One append-only line of the audit log. No code path updates or deletes these rows."""

    at = peewee.BigIntegerField(index=True)  # milliseconds since the epoch
    operator = peewee.TextField(index=True)
    role = peewee.CharField(max_length=16)
    action = peewee.CharField(max_length=64, index=True)
    target = peewee.TextField(null=True, index=True)
    params = JSONText(default=dict)  # redacted; never a secret
    outcome = peewee.CharField(max_length=16)  # ok, refused, denied, failed
    stripe_request_id = peewee.TextField(null=True)
    idempotency_key = peewee.TextField(null=True)
    reason = peewee.TextField(null=True)
    error = peewee.TextField(null=True)


class Subscription(StripeMirror):
    customer_id = peewee.CharField(max_length=255, index=True)
    status = peewee.CharField(max_length=32)
    # The earliest item's period end: since API 2025-03-31 periods live on the items.
    current_period_end = peewee.BigIntegerField(null=True)
    cancel_at_period_end = peewee.BooleanField(default=False)
    # Migration 12 (services.mirror.subscription_row fills them from the items).
    currency = peewee.CharField(max_length=3, null=True)
    amount = peewee.BigIntegerField(default=0)  # per billing interval, every item, minor units
    billing_interval = peewee.CharField(max_length=8, null=True)  # day, week, month, year
    interval_count = peewee.IntegerField(default=1)
    quantity = peewee.IntegerField(default=0)  # every item's quantity added up
    mrr = peewee.BigIntegerField(default=0)  # contribution to MRR, per month, minor units
    price_ids = peewee.TextField(default="")  # " price_a price_b ": items' prices, for filters
    product_ids = peewee.TextField(default="")
    items = JSONText(default=list)  # services.mirror.subscription_items
    current_period_start = peewee.BigIntegerField(null=True)
    cancel_at = peewee.BigIntegerField(null=True)
    canceled_at = peewee.BigIntegerField(null=True)
    ended_at = peewee.BigIntegerField(null=True)
    trial_end = peewee.BigIntegerField(null=True)
    pause_collection = peewee.CharField(max_length=32, null=True)  # the behavior, when paused
    collection_method = peewee.CharField(max_length=32, null=True)

    class Meta:
        indexes = (
            (("status", "currency", "mrr"), False),
            # Covering the Overview's figures: read from the index alone, never the wide rows.
            (("currency", "status", "amount", "billing_interval", "interval_count", "mrr",
              "created", "ended_at", "canceled_at", "trial_end"), False),
        )  # fmt: skip


class WebhookEvent(BaseModel):
    """Every verified Stripe event, stored once (the unique `evt_id` decides), applied once."""

    evt_id = peewee.CharField(max_length=255, unique=True)
    type = peewee.CharField(max_length=128, index=True)
    object_id = peewee.CharField(max_length=255, null=True, index=True)
    created = peewee.BigIntegerField(index=True)  # Stripe's `created`, seconds
    received_at = peewee.BigIntegerField()  # milliseconds
    source = peewee.CharField(max_length=16)  # receiver, catch-up, replay
    status = peewee.CharField(max_length=16, index=True)  # received, applied, failed, ignored
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    flagged = peewee.TextField(null=True)  # why this event needs a person's attention
    livemode = peewee.BooleanField(default=False)
    raw = JSONText()


class AppState(BaseModel):
    """Small named values the app keeps across runs (e.g. the event catch-up cursor)."""

    key = peewee.CharField(max_length=64, unique=True)
    value = peewee.TextField()


class RequestJournal(BaseModel):
    """One Stripe request made on an operator's behalf: intent before the call, outcome after.

    Never holds a secret: the arguments are kept only as a hash (`fingerprint`) and a redacted
    one-line `summary`. `idempotency_key` is unique: one entry per key, however often re-run.
    """

    created_at = peewee.BigIntegerField(index=True)  # seconds; the key's first use
    updated_at = peewee.BigIntegerField()
    operator = peewee.TextField(index=True)
    action = peewee.CharField(max_length=64, index=True)
    target = peewee.TextField(null=True)
    summary = peewee.TextField()
    fingerprint = peewee.CharField(max_length=64, index=True)
    idempotency_key = peewee.CharField(max_length=255, unique=True)
    # pending, succeeded, failed, unknown, forgotten (services.journal.JournalOutcome)
    outcome = peewee.CharField(max_length=16, index=True)
    object_id = peewee.CharField(max_length=255, null=True)
    error = peewee.TextField(null=True)
    attempts = peewee.IntegerField(default=1)
    resolved_by = peewee.TextField(null=True)
    reason = peewee.TextField(null=True)

    class Meta:
        table_name = "request_journal"


class ListenerHeartbeat(BaseModel):
    """One running listener (a window's or the headless `admin-app listen`), rewritten every
    half minute: the team sees when its listener was last seen, and two forwarding at once."""

    instance = peewee.CharField(max_length=64, unique=True)  # random, per process start
    login = peewee.TextField()
    host = peewee.TextField()
    pid = peewee.IntegerField()
    kind = peewee.CharField(max_length=16)  # window, headless
    started_at = peewee.BigIntegerField()  # seconds
    seen_at = peewee.BigIntegerField(index=True)  # seconds
    stopped_at = peewee.BigIntegerField(null=True)
    receiving = peewee.BooleanField(default=False)
    listen_state = peewee.CharField(max_length=32)  # services.stripe_listen.ListenState value
    listen_session = peewee.TextField(null=True)  # which `stripe listen` forwards to it
    detail = peewee.TextField(null=True)  # the listener's one-line state

    class Meta:
        table_name = "listener_heartbeat"


class TeamSetting(BaseModel):
    """One change of a team-wide setting (credit prices and limits): append-only history; the
    value in force at a time is the newest row for its key set at or before it."""

    key = peewee.CharField(max_length=64, index=True)
    value = peewee.TextField()  # JSON
    set_by = peewee.TextField()
    set_at = peewee.BigIntegerField(index=True)  # seconds
    reason = peewee.TextField(null=True)

    class Meta:
        table_name = "team_setting"


ALL_MODELS.extend(
    [
        Operator,
        AuditRecord,
        Subscription,
        WebhookEvent,
        AppState,
        TopUp,
        RequestJournal,
        TeamSetting,
        CreditLot,
        CreditAllocation,
        CreditAccount,
        ListenerHeartbeat,
    ]
)


class AutoTopUpSetting(BaseModel):
    """A customer's low-balance threshold and automatic top-up (services.auto_topup)."""

    customer_id = peewee.CharField(max_length=255, unique=True)
    enabled = peewee.BooleanField(default=False)
    threshold = peewee.BigIntegerField(default=0)  # credits
    pack_product_id = peewee.CharField(max_length=255, null=True)
    failure_limit = peewee.IntegerField(default=3)
    failures = peewee.IntegerField(default=0)  # in a row, since the last success or enabling
    attention = peewee.TextField(null=True)  # why a person should look (the decline), or None
    attention_at = peewee.BigIntegerField(null=True)
    updated_by = peewee.TextField()
    updated_at = peewee.BigIntegerField()

    class Meta:
        table_name = "auto_topup_setting"


class AutoTopUpTrigger(BaseModel):
    """One automatic top-up: made when a balance fell below its threshold, with its one
    idempotency key; at most one `in_flight` per customer (a partial unique index)."""

    trigger_id = peewee.CharField(max_length=64, unique=True)
    customer_id = peewee.CharField(max_length=255, index=True)
    status = peewee.CharField(max_length=16, index=True)  # in_flight, succeeded, failed
    pack_product_id = peewee.CharField(max_length=255)
    credits = peewee.BigIntegerField()
    amount = peewee.BigIntegerField()
    currency = peewee.CharField(max_length=3)
    balance = peewee.BigIntegerField()  # the available balance that set it off
    idempotency_key = peewee.CharField(max_length=255, unique=True)
    payment_method_id = peewee.CharField(max_length=255, null=True)
    payment_intent_id = peewee.CharField(max_length=255, null=True, unique=True)
    created_at = peewee.BigIntegerField()
    settled_at = peewee.BigIntegerField(null=True)
    failure = peewee.TextField(null=True)

    class Meta:
        table_name = "auto_topup_trigger"


ALL_MODELS.extend([AutoTopUpSetting, AutoTopUpTrigger])
