"""Forward-only schema migrations, one numbered step each, applied in order at start-up.

Each step is frozen: it describes the tables as they were at that version, never the current
models, so an old database and a new one end up with the same schema. Each step runs in its own
transaction together with the bump of `schema_version`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_schema

from services import credit_sql
from services.errors import DatabaseError, PermissionDenied
from services.models import JSONText

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[peewee.Database], None]


def _frozen_table(
    db: peewee.Database, name: str, columns: dict[str, peewee.Field]
) -> type[peewee.Model]:
    meta = type("Meta", (), {"database": db, "table_name": name})
    return type(f"Frozen_{name}", (peewee.Model,), {"Meta": meta, **columns})


def _mirror_columns() -> dict[str, peewee.Field]:
    return {
        "stripe_id": peewee.CharField(max_length=255, unique=True),
        "livemode": peewee.BooleanField(default=False),
        "created": peewee.BigIntegerField(),
        "raw": JSONText(),
        "synced_at": peewee.BigIntegerField(),
    }


def _v1_initial(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    tables: dict[str, dict[str, peewee.Field]] = {
        "customer": {
            **_mirror_columns(),
            "name": text(null=True),
            "email": text(null=True, index=True),
            "phone": text(null=True),
            "currency": char(max_length=3, null=True),
            "balance": big(default=0),
            "description": text(null=True),
            "metadata": JSONText(default=dict),
            "deleted": peewee.BooleanField(default=False),
        },
        "product": {
            **_mirror_columns(),
            "name": text(),
            "description": text(null=True),
            "active": peewee.BooleanField(default=True),
            "default_price_id": char(max_length=255, null=True),
            "metadata": JSONText(default=dict),
            "credits": peewee.IntegerField(null=True),
        },
        "price": {
            **_mirror_columns(),
            "product_id": char(max_length=255, index=True),
            "currency": char(max_length=3),
            "unit_amount": big(null=True),
            "active": peewee.BooleanField(default=True),
            "lookup_key": text(null=True),
            "nickname": text(null=True),
            "type": char(max_length=16, default="one_time"),
            "metadata": JSONText(default=dict),
        },
        "invoice": {
            **_mirror_columns(),
            "customer_id": char(max_length=255, index=True),
            "number": text(null=True),
            "status": char(max_length=32, null=True),
            "currency": char(max_length=3),
            "total": big(default=0),
            "amount_due": big(default=0),
            "amount_paid": big(default=0),
            "amount_remaining": big(default=0),
            "due_date": big(null=True),
            "hosted_invoice_url": text(null=True),
        },
        "credit_entry": {
            "customer_id": char(max_length=255, index=True),
            "amount": big(),
            "kind": char(max_length=16),
            "source": text(null=True),
            "operator": text(),
            "reason": text(null=True),
            "created_at": big(),
        },
    }
    db.create_tables([_frozen_table(db, name, cols) for name, cols in tables.items()])


def _v2_operators_and_audit(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    tables: dict[str, dict[str, peewee.Field]] = {
        "operator": {
            "login": char(max_length=255, unique=True),
            "display_name": text(),
            "role": char(max_length=16),
            "active": peewee.BooleanField(default=True),
            "created_at": big(),
            "created_by": text(),
        },
        "audit_record": {
            "at": big(index=True),
            "operator": text(index=True),
            "role": char(max_length=16),
            "action": char(max_length=64, index=True),
            "target": text(null=True, index=True),
            "params": JSONText(default=dict),
            "outcome": char(max_length=16),
            "stripe_request_id": text(null=True),
            "idempotency_key": text(null=True),
            "reason": text(null=True),
            "error": text(null=True),
        },
    }
    db.create_tables([_frozen_table(db, name, cols) for name, cols in tables.items()])


def _v3_customer_local_fields(db: peewee.Database) -> None:
    # Local-only: never sent to Stripe.
    migrator = SchemaMigrator.from_database(db)
    migrate_schema(
        migrator.add_column("customer", "notes", peewee.TextField(null=True)),
        migrator.add_column("customer", "tags", JSONText(null=True)),
    )


def _v4_events(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    tables: dict[str, dict[str, peewee.Field]] = {
        "subscription": {
            **_mirror_columns(),
            "customer_id": char(max_length=255, index=True),
            "status": char(max_length=32),
            "current_period_end": big(null=True),
            "cancel_at_period_end": peewee.BooleanField(default=False),
        },
        "webhook_event": {
            "evt_id": char(max_length=255, unique=True),
            "type": char(max_length=128, index=True),
            "object_id": char(max_length=255, null=True, index=True),
            "created": big(index=True),
            "received_at": big(),
            "source": char(max_length=16),
            "status": char(max_length=16, index=True),
            "attempts": peewee.IntegerField(default=0),
            "last_error": text(null=True),
            "flagged": text(null=True),
            "livemode": peewee.BooleanField(default=False),
            "raw": JSONText(),
        },
        "app_state": {
            "key": char(max_length=64, unique=True),
            "value": text(),
        },
    }
    db.create_tables([_frozen_table(db, name, cols) for name, cols in tables.items()])


def _v5_topups(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    db.create_tables(
        [
            _frozen_table(
                db,
                "top_up",
                {
                    "topup_id": char(max_length=64, unique=True),
                    "customer_id": char(max_length=255, index=True),
                    "credits": big(),
                    "amount": big(),
                    "currency": char(max_length=3),
                    "product_id": char(max_length=255, null=True),
                    "status": char(max_length=16, index=True),
                    "checkout_session_id": char(max_length=255, unique=True),
                    "url": text(null=True),
                    "payment_intent_id": char(max_length=255, null=True, index=True),
                    "issued_by": text(),
                    "issued_at": big(),
                    "expires_at": big(),
                    "paid_at": big(null=True),
                    "credited_at": big(null=True),
                    "refunded_amount": big(default=0),
                    "flagged": text(null=True),
                },
            )
        ]
    )
    migrator = SchemaMigrator.from_database(db)
    migrate_schema(
        migrator.add_column("credit_entry", "topup_id", char(max_length=64, null=True)),
        migrator.add_index("credit_entry", ("topup_id",), False),
        # The guard against crediting twice: one purchase per top-up, one clawback per refund.
        migrator.add_index("credit_entry", ("kind", "source"), True),
    )


def _v6_request_journal(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    db.create_tables(
        [
            _frozen_table(
                db,
                "request_journal",
                {
                    "created_at": big(index=True),
                    "updated_at": big(),
                    "operator": text(index=True),
                    "action": char(max_length=64, index=True),
                    "target": text(null=True),
                    "summary": text(),
                    "fingerprint": char(max_length=64, index=True),
                    "idempotency_key": char(max_length=255, unique=True),
                    "outcome": char(max_length=16, index=True),
                    "object_id": char(max_length=255, null=True),
                    "error": text(null=True),
                    "attempts": peewee.IntegerField(default=1),
                    "resolved_by": text(null=True),
                    "reason": text(null=True),
                },
            )
        ]
    )


def _v7_team_settings(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    db.create_tables(
        [
            _frozen_table(
                db,
                "team_setting",
                {
                    "key": char(max_length=64, index=True),
                    "value": text(),
                    "set_by": text(),
                    "set_at": big(index=True),
                    "reason": text(null=True),
                },
            )
        ]
    )


def _v8_overview_indexes(db: peewee.Database) -> None:
    # The Overview sums invoices by the day they were paid: Stripe keeps that in the raw JSON
    # (status_transitions.paid_at), too slow to parse for 200,000 invoices on every look.
    migrator = SchemaMigrator.from_database(db)
    migrate_schema(migrator.add_column("invoice", "paid_at", peewee.BigIntegerField(null=True)))
    for row_id, raw in db.execute_sql("SELECT id, raw FROM invoice").fetchall():  # type: ignore[no-untyped-call]
        paid_at = ((json.loads(raw) or {}).get("status_transitions") or {}).get("paid_at")
        if paid_at:
            db.execute_sql(  # type: ignore[no-untyped-call]
                "UPDATE invoice SET paid_at = %s WHERE id = %s"
                if isinstance(db, peewee.PostgresqlDatabase)
                else "UPDATE invoice SET paid_at = ? WHERE id = ?",
                (int(paid_at), row_id),
            )
    migrate_schema(
        # Covering indexes: the Overview reads them alone, never the wide rows (raw JSON).
        migrator.add_index("invoice", ("currency", "paid_at", "amount_paid"), False),
        migrator.add_index(
            "invoice", ("status", "currency", "due_date", "amount_remaining"), False
        ),
        migrator.add_index("credit_entry", ("created_at", "kind", "amount"), False),
        migrator.add_index("top_up", ("currency", "paid_at", "amount"), False),
    )


def _v9_listener_heartbeat(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    db.create_tables(
        [
            _frozen_table(
                db,
                "listener_heartbeat",
                {
                    "instance": char(max_length=64, unique=True),
                    "login": text(),
                    "host": text(),
                    "pid": peewee.IntegerField(),
                    "kind": char(max_length=16),
                    "started_at": big(),
                    "seen_at": big(index=True),
                    "stopped_at": big(null=True),
                    "receiving": peewee.BooleanField(default=False),
                    "listen_state": char(max_length=32),
                    "listen_session": text(null=True),
                    "detail": text(null=True),
                },
            )
        ]
    )


def _v10_credit_lots(db: peewee.Database) -> None:
    big, char = peewee.BigIntegerField, peewee.CharField
    tables: dict[str, dict[str, peewee.Field]] = {
        "credit_lot": {
            "customer_id": char(max_length=255, index=True),
            "entry_id": big(unique=True),
            "kind": char(max_length=16),
            "priority": peewee.IntegerField(),
            "amount": big(),
            "remaining": big(),
            "source": peewee.TextField(null=True),
            "created_at": big(),
            "expires_at": big(null=True, index=True),
        },
        "credit_allocation": {
            "entry_id": big(index=True),
            "lot_id": big(null=True, index=True),
            "amount": big(),
        },
        "credit_account": {
            "customer_id": char(max_length=255, unique=True),
            "overdraft_limit": big(default=0),
            "debt": big(default=0),
            "absorbed_to": big(default=0),
        },
    }
    db.create_tables([_frozen_table(db, name, cols) for name, cols in tables.items()])
    migrator = SchemaMigrator.from_database(db)
    migrate_schema(
        migrator.add_column("credit_entry", "expires_at", big(null=True)),
        migrator.add_index("credit_entry", ("customer_id", "id"), False),
    )
    customers = [
        row[0]
        for row in db.execute_sql(  # type: ignore[no-untyped-call]
            "SELECT DISTINCT customer_id FROM credit_entry ORDER BY customer_id"
        ).fetchall()
    ]
    # Carry every existing entry into lots, oldest first, with the same code the app uses
    # afterwards: it touches only the tables made above and the ledger, which it never changes.
    if isinstance(db, peewee.PostgresqlDatabase):
        schema = db.execute_sql("SELECT quote_ident(current_schema())").fetchone()[0]  # type: ignore[no-untyped-call]
        # No parameters: the plpgsql bodies have their own % signs.
        db.cursor().execute(credit_sql.V10_SQL.format(s=schema))  # type: ignore[no-untyped-call]
        for customer in customers:
            db.execute_sql("SELECT billing_absorb(%s)", (customer,))  # type: ignore[no-untyped-call]
    else:
        from services import lots  # the SQLite twin of the SQL functions

        for customer in customers:
            lots.absorb(db, customer)


def _v11_auto_topup(db: peewee.Database) -> None:
    text, big, char = peewee.TextField, peewee.BigIntegerField, peewee.CharField
    tables: dict[str, dict[str, peewee.Field]] = {
        "auto_topup_setting": {
            "customer_id": char(max_length=255, unique=True),
            "enabled": peewee.BooleanField(default=False),
            "threshold": big(default=0),
            "pack_product_id": char(max_length=255, null=True),
            "failure_limit": peewee.IntegerField(default=3),
            "failures": peewee.IntegerField(default=0),
            "attention": text(null=True),
            "attention_at": big(null=True),
            "updated_by": text(),
            "updated_at": big(),
        },
        "auto_topup_trigger": {
            "trigger_id": char(max_length=64, unique=True),
            "customer_id": char(max_length=255, index=True),
            "status": char(max_length=16, index=True),
            "pack_product_id": char(max_length=255),
            "credits": big(),
            "amount": big(),
            "currency": char(max_length=3),
            "balance": big(),
            "idempotency_key": char(max_length=255, unique=True),
            "payment_method_id": char(max_length=255, null=True),
            "payment_intent_id": char(max_length=255, null=True, unique=True),
            "created_at": big(),
            "settled_at": big(null=True),
            "failure": text(null=True),
        },
    }
    db.create_tables([_frozen_table(db, name, cols) for name, cols in tables.items()])
    # Never two charges in flight for one customer: the database decides, not a check in code
    # (a burst of spends on several threads or machines makes one trigger; the rest conflict).
    db.execute_sql(  # type: ignore[no-untyped-call]
        "CREATE UNIQUE INDEX auto_topup_one_in_flight ON auto_topup_trigger (customer_id) "
        "WHERE status = 'in_flight'"
    )


def _v12_subscriptions(db: peewee.Database) -> None:
    # Subscriptions become first-class: what each one bills, normalised to a month (MRR), its
    # cancellation and pause, read from the items as the pinned API version has them.
    big, char, text = peewee.BigIntegerField, peewee.CharField, peewee.TextField
    migrator = SchemaMigrator.from_database(db)
    migrate_schema(
        migrator.add_column("subscription", "currency", char(max_length=3, null=True)),
        migrator.add_column("subscription", "amount", big(default=0)),
        migrator.add_column("subscription", "billing_interval", char(max_length=8, null=True)),
        migrator.add_column("subscription", "interval_count", peewee.IntegerField(default=1)),
        migrator.add_column("subscription", "quantity", peewee.IntegerField(default=0)),
        migrator.add_column("subscription", "mrr", big(default=0)),
        migrator.add_column("subscription", "price_ids", text(default="")),
        migrator.add_column("subscription", "product_ids", text(default="")),
        migrator.add_column("subscription", "items", JSONText(default=list)),
        migrator.add_column("subscription", "current_period_start", big(null=True)),
        migrator.add_column("subscription", "cancel_at", big(null=True)),
        migrator.add_column("subscription", "canceled_at", big(null=True)),
        migrator.add_column("subscription", "ended_at", big(null=True)),
        migrator.add_column("subscription", "trial_end", big(null=True)),
        migrator.add_column("subscription", "pause_collection", char(max_length=32, null=True)),
        migrator.add_column("subscription", "collection_method", char(max_length=32, null=True)),
        migrator.add_index("subscription", ("status", "currency", "mrr"), False),
        # Covering the Overview's figures: read from the index alone, never the wide rows.
        migrator.add_index(
            "subscription",
            (
                "currency",
                "status",
                "amount",
                "billing_interval",
                "interval_count",
                "mrr",
                "created",
                "ended_at",
                "canceled_at",
                "trial_end",
            ),
            False,
        ),
    )
    # Frozen, so no mapping of today's code here: the rows' stored copy is emptied instead, and
    # the next sync (or event) finds it changed and writes every new column from Stripe's object.
    db.execute_sql("UPDATE subscription SET raw = '{}'")  # type: ignore[no-untyped-call]


MIGRATIONS: list[Migration] = [
    Migration(1, "customers, products, prices, invoices, credit ledger", _v1_initial),
    Migration(2, "operators and the audit log", _v2_operators_and_audit),
    Migration(3, "local notes and tags on customers", _v3_customer_local_fields),
    Migration(4, "webhook events, subscriptions, app state", _v4_events),
    Migration(5, "credit top-ups; one purchase per top-up", _v5_topups),
    Migration(6, "the request journal: intent and outcome of Stripe requests", _v6_request_journal),
    Migration(7, "team settings (credit prices and limits), append-only", _v7_team_settings),
    Migration(8, "invoices' paid date as a column; indexes for the Overview", _v8_overview_indexes),
    Migration(9, "listener heartbeats: who receives events, when", _v9_listener_heartbeat),
    Migration(10, "credit lots, spending, overdraft and expiry", _v10_credit_lots),
    Migration(
        11, "automatic top-ups: settings per customer, one trigger in flight", _v11_auto_topup
    ),
    Migration(12, "subscriptions: items, amounts, MRR, cancellation and pause", _v12_subscriptions),
]


class _SchemaVersion(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    description = peewee.TextField()
    applied_at = peewee.BigIntegerField()

    class Meta:
        table_name = "schema_version"


def current_version(db: peewee.Database) -> int:
    with db.bind_ctx([_SchemaVersion]):
        if not db.table_exists("schema_version"):
            return 0
        latest = _SchemaVersion.select(peewee.fn.MAX(_SchemaVersion.version)).scalar()
        return int(latest or 0)


def _may_create(db: peewee.Database) -> bool:
    """Whether this login may create tables here (always on SQLite)."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return True
    sql = "SELECT has_schema_privilege(current_schema(), 'CREATE')"
    return bool(db.execute_sql(sql).fetchone()[0])  # type: ignore[no-untyped-call]


def latest_version() -> int:
    return MIGRATIONS[-1].version


def migrate(db: peewee.Database, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied.

    Raises:
        DatabaseError: the database is newer than this app, or a step failed (that step is
            rolled back; earlier steps stay).
    """
    steps = MIGRATIONS if migrations is None else migrations
    applied: list[int] = []
    with db.bind_ctx([_SchemaVersion]):
        # Two machines starting at once on a shared database may both try this; IF NOT EXISTS
        # and the primary key on `version` make the loser fail cleanly instead of half-applying.
        try:
            if not db.table_exists("schema_version"):
                db.create_tables([_SchemaVersion], safe=True)
            have = current_version(db)
            if have < (steps[-1].version if steps else 0) and not _may_create(db):
                raise PermissionDenied("this login may not change the schema")
        except (PermissionDenied, peewee.ProgrammingError):
            # Denied, or no schema this login may use at all (PostgreSQL: "no schema has been
            # selected to create in"): a login without its group role yet.
            raise DatabaseError(
                "This shared database is not set up for this version of Billing Admin, or your "
                "login has no role in it yet: a database owner runs `admin-app db setup`, and an "
                "admin adds you (`admin-app operators add LOGIN --role …`)."
            ) from None
        newest = steps[-1].version if steps else 0
        if have > newest:
            raise DatabaseError(
                f"This database has schema version {have}, newer than this Billing Admin "
                f"understands ({newest}). Update the app before using this database."
            )
        for step in steps:
            if step.version <= have:
                continue
            try:
                with db.atomic():
                    step.apply(db)
                    _SchemaVersion.create(
                        version=step.version,
                        description=step.description,
                        applied_at=int(time.time()),
                    )
            except peewee.DatabaseError as exc:
                raise DatabaseError(
                    f"Updating the database to version {step.version} ({step.description}) "
                    f"failed: {exc}"
                ) from exc
            log.info("Database migrated to version %d: %s", step.version, step.description)
            applied.append(step.version)
    return applied
