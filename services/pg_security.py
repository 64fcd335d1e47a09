"""A shared PostgreSQL that enforces the roles itself: `admin-app db setup`.

The app's checks (services/permissions.py) hold for people who use the app. A staff member with
`psql` and their own database login does not: so, on PostgreSQL, the database enforces what
matters, whatever client sends the SQL.

* Group roles, one per app role: `billing_finance`, `billing_support`, `billing_admin` (all in
  `billing_staff`), `billing_listener` (the headless `admin-app listen`: the only writer of what
  Stripe's events decide — the mirror, purchases, clawbacks, top-up statuses) and
  `billing_product` (a product backend: reads `credit_balance`, spends through
  `consume_credits`, nothing else). Admins are in `billing_listener`
  too. Each person's login gets exactly one staff group, kept in step with the operator table by
  `billing_sync_role` (SECURITY DEFINER, owned by the no-login `billing_owner`).
* Least privilege by GRANT: no staff role can create objects, TRUNCATE, or UPDATE/DELETE the
  audit log or the credit ledger (append-only for everyone but the owner); finance writes only
  its audit rows and its request journal; the mirror is written by the listener and admins.
* Triggers the client cannot bypass: an audit row's operator and role are always
  `session_user`'s; a ledger `purchase` or `clawback` needs the listener role and a matching
  top-up; a `grant` needs an admin and a reason; a top-up is issued `open` in the issuer's name
  and staff can only expire an open one; the last active admin cannot be removed.

Every refusal is SQLSTATE 42501 (insufficient_privilege), which the app shows as one line
(`services.database`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import peewee

from services import credit_sql
from services.errors import DatabaseDenied, ValidationError
from services.migrations import migrate
from services.models import Operator
from services.operators import sync_role, validate_login
from services.permissions import Role
from services.pricing import CreditPricing

log = logging.getLogger(__name__)

OWNER = "billing_owner"
STAFF = "billing_staff"
LISTENER = "billing_listener"
PRODUCT = "billing_product"
GROUP_OF_ROLE = {
    Role.FINANCE: "billing_finance",
    Role.SUPPORT: "billing_support",
    Role.ADMIN: "billing_admin",
}
MIRRORS = ("customer", "product", "price", "invoice", "subscription")

_ROLES_SQL = """
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['billing_owner', 'billing_staff', 'billing_finance',
                           'billing_support', 'billing_admin', 'billing_listener',
                           'billing_product'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- made meanwhile
      END;
    END IF;
  END LOOP;
END $$;
GRANT billing_staff TO billing_finance, billing_support, billing_admin;
GRANT billing_listener TO billing_admin;
GRANT billing_finance, billing_support, billing_admin, billing_listener, billing_product
  TO billing_owner WITH ADMIN OPTION;
"""

# {s} is the schema (quoted identifier). Privileges are replaced wholesale: re-running setup
# after an upgrade grants exactly this on every table, including new ones.
_GRANTS_SQL = """
REVOKE CREATE ON SCHEMA {s} FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC,
  billing_staff, billing_finance, billing_support, billing_admin, billing_listener,
  billing_product;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM PUBLIC,
  billing_staff, billing_finance, billing_support, billing_admin, billing_listener,
  billing_product;
GRANT USAGE ON SCHEMA {s} TO billing_staff, billing_listener, billing_product, billing_owner;

-- everyone who uses the app reads what it shows, writes its own audit rows and journal
GRANT SELECT ON customer, product, price, invoice, subscription, credit_entry, top_up,
  operator, webhook_event, app_state, schema_version, request_journal, team_setting,
  listener_heartbeat
  TO billing_staff;
GRANT SELECT (id), INSERT ON audit_record TO billing_staff;
GRANT INSERT, UPDATE ON request_journal TO billing_staff;
GRANT USAGE ON SEQUENCE audit_record_id_seq, request_journal_id_seq TO billing_staff;

GRANT SELECT ON audit_record TO billing_finance, billing_admin;

-- support: customer details, top-up links
GRANT INSERT, UPDATE ON customer, top_up TO billing_support;
GRANT USAGE ON SEQUENCE customer_id_seq, top_up_id_seq TO billing_support;

-- admins: the catalog, invoices, grants, operators (and everything the listener does)
GRANT INSERT, UPDATE ON customer, product, price, invoice, top_up, operator TO billing_admin;
GRANT INSERT ON credit_entry, team_setting TO billing_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO billing_admin;

-- the listener: what Stripe's events decide
GRANT SELECT ON customer, product, price, invoice, subscription, credit_entry, top_up,
  operator, webhook_event, app_state, schema_version, request_journal, team_setting,
  listener_heartbeat
  TO billing_listener;
GRANT SELECT (id), INSERT ON audit_record TO billing_listener;
GRANT INSERT, UPDATE, DELETE ON customer, product, price, invoice, subscription, app_state
  TO billing_listener;
GRANT INSERT, UPDATE ON webhook_event TO billing_listener;
GRANT INSERT ON credit_entry TO billing_listener;
GRANT UPDATE ON top_up TO billing_listener;
-- every listener says it runs (its own row only: billing_heartbeat_guard)
GRANT INSERT, UPDATE, DELETE ON listener_heartbeat TO billing_listener;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO billing_listener;

-- credit lots: read wherever balances are read, written only by the ledger's SQL functions
GRANT SELECT ON credit_lot, credit_allocation, credit_account, credit_balance
  TO billing_staff, billing_listener;
GRANT UPDATE (overdraft_limit) ON credit_account TO billing_admin;

-- a product backend reads balances and spends through consume_credits (granted below)
GRANT SELECT ON credit_balance TO billing_product;

-- automatic top-ups: support and admins set them; the listener charges and settles them
GRANT SELECT ON auto_topup_setting, auto_topup_trigger TO billing_staff, billing_listener;
GRANT INSERT, UPDATE ON auto_topup_setting TO billing_support, billing_admin;
GRANT USAGE ON SEQUENCE auto_topup_setting_id_seq TO billing_support;
GRANT UPDATE ON auto_topup_setting TO billing_listener;
GRANT INSERT, UPDATE ON auto_topup_trigger TO billing_listener;
"""

_FUNCTIONS_SQL = """
CREATE OR REPLACE FUNCTION {s}.billing_is_owner() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT pg_has_role(session_user, 'billing_owner', 'MEMBER')
$$;

CREATE OR REPLACE FUNCTION {s}.billing_deny(what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', what USING ERRCODE = 'insufficient_privilege';
END $$;

-- The audit log: the operator and role of a row are the database's, never the client's.
CREATE OR REPLACE FUNCTION {s}.billing_audit_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT {s}.billing_is_owner() THEN
    NEW.operator := session_user;
    NEW.role := coalesce((SELECT o.role FROM {s}.operator o WHERE o.login = session_user),
                         'none');
  END IF;
  RETURN NEW;
END $$;

-- The ledger: purchases and clawbacks come from Stripe's events (the listener), grants from
-- admins with a reason; each in the name of whoever inserts it.
CREATE OR REPLACE FUNCTION {s}.billing_ledger_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF {s}.billing_is_owner() THEN
    RETURN NEW;
  END IF;
  -- spends and expiries: only inside the ledger's SECURITY DEFINER functions (billing_owner's)
  IF NEW.kind IN ('spend', 'expiry') THEN
    IF NOT pg_has_role(current_user, 'billing_owner', 'MEMBER') OR NEW.amount >= 0 THEN
      PERFORM {s}.billing_deny('spends and expiries are written only by consume_credits and '
                               'billing_expire_credits');
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.kind IN ('purchase', 'clawback') THEN
    IF NOT pg_has_role(session_user, 'billing_listener', 'MEMBER') THEN
      PERFORM {s}.billing_deny('only the event listener records purchases and clawbacks');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM {s}.top_up t WHERE t.topup_id = NEW.topup_id
                   AND t.customer_id = NEW.customer_id
                   AND ((NEW.kind = 'purchase' AND NEW.amount = t.credits
                         AND NEW.source = t.topup_id)
                        OR (NEW.kind = 'clawback' AND NEW.amount < 0
                            AND -NEW.amount <= t.credits)))
       -- credit packs sold on an invoice: the paid invoice, as the listener mirrored it
       AND NOT (NEW.kind = 'purchase' AND NEW.topup_id IS NULL AND NEW.amount > 0
                AND EXISTS (SELECT 1 FROM {s}.invoice i WHERE i.stripe_id = NEW.source
                            AND i.customer_id = NEW.customer_id AND i.status = 'paid'))
       -- an automatic top-up: its trigger's PaymentIntent, or a clawback of one
       AND NOT EXISTS (SELECT 1 FROM {s}.auto_topup_trigger a WHERE a.trigger_id = NEW.topup_id
                       AND a.customer_id = NEW.customer_id
                       AND ((NEW.kind = 'purchase' AND NEW.amount = a.credits
                             AND NEW.source = a.payment_intent_id)
                            OR (NEW.kind = 'clawback' AND NEW.amount < 0
                                AND -NEW.amount <= a.credits)))
       -- a refund or lost dispute of an invoice that sold credits: at most what it credited
       AND NOT (NEW.kind = 'clawback' AND NEW.topup_id IS NULL AND NEW.amount < 0
                AND EXISTS (SELECT 1 FROM {s}.credit_entry p WHERE p.kind = 'purchase'
                            AND p.topup_id IS NULL AND p.customer_id = NEW.customer_id
                            AND -NEW.amount <= p.amount
                            AND EXISTS (SELECT 1 FROM {s}.invoice i
                                        WHERE i.stripe_id = p.source)))
       -- reconcile's explicit clawback of a purchase nothing paid for (admins)
       AND NOT (NEW.kind = 'clawback' AND NEW.source LIKE 'unpaid:%'
                AND pg_has_role(session_user, 'billing_admin', 'MEMBER')
                AND EXISTS (SELECT 1 FROM {s}.credit_entry p WHERE p.kind = 'purchase'
                            AND 'unpaid:' || p.source = NEW.source
                            AND p.customer_id = NEW.customer_id
                            AND p.amount = -NEW.amount)) THEN
      PERFORM {s}.billing_deny('a ' || NEW.kind || ' must match its top-up or paid invoice');
    END IF;
  ELSIF NEW.kind = 'grant' THEN
    IF NOT pg_has_role(session_user, 'billing_admin', 'MEMBER') THEN
      PERFORM {s}.billing_deny('only admins grant credits');
    END IF;
    IF NEW.amount <= 0 OR coalesce(btrim(NEW.reason), '') = '' THEN
      PERFORM {s}.billing_deny('a grant needs a positive amount and a reason');
    END IF;
    NEW.operator := session_user;
  ELSE
    IF NOT pg_has_role(session_user, 'billing_admin', 'MEMBER') THEN
      PERFORM {s}.billing_deny('only admins make ' || NEW.kind || ' entries');
    END IF;
    NEW.operator := session_user;
  END IF;
  RETURN NEW;
END $$;

-- The team's settings in force now (JSON values, as services/pricing.py writes them).
CREATE OR REPLACE FUNCTION {s}.billing_team_value(k text, fallback text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT t.value::jsonb #>> '{{}}' FROM {s}.team_setting t WHERE t.key = k
                   ORDER BY t.set_at DESC, t.id DESC LIMIT 1), fallback)
$$;

CREATE OR REPLACE FUNCTION {s}.billing_team_setting_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT {s}.billing_is_owner() THEN
    NEW.set_by := session_user;
    NEW.set_at := extract(epoch FROM now())::bigint;
  END IF;
  RETURN NEW;
END $$;

-- Listener heartbeats: the login and times are the database's (one machine's wrong clock or
-- a forged row cannot make a dead listener look alive); a listener rewrites only its own row;
-- a row goes only a day after it was last seen.
CREATE OR REPLACE FUNCTION {s}.billing_heartbeat_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  now_s bigint := extract(epoch FROM now())::bigint;
BEGIN
  IF {s}.billing_is_owner() THEN
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
  END IF;
  IF TG_OP = 'DELETE' THEN
    IF OLD.seen_at > now_s - 86400 THEN
      PERFORM {s}.billing_deny('a listener heartbeat goes only a day after it was last seen');
    END IF;
    RETURN OLD;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.login <> session_user THEN
    PERFORM {s}.billing_deny('a listener writes only its own heartbeat');
  END IF;
  NEW.login := session_user;
  NEW.seen_at := now_s;
  IF NEW.stopped_at IS NOT NULL THEN
    NEW.stopped_at := now_s;
  END IF;
  IF TG_OP = 'INSERT' THEN
    NEW.started_at := now_s;
  ELSE
    NEW.started_at := OLD.started_at;
  END IF;
  RETURN NEW;
END $$;

-- Top-ups: staff issue them open in their own name and may only expire an open one; what
-- happens after (paid, credited, refunded, disputed) is the listener's.
CREATE OR REPLACE FUNCTION {s}.billing_topup_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF {s}.billing_is_owner() OR pg_has_role(session_user, 'billing_listener', 'MEMBER') THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'open' OR NEW.paid_at IS NOT NULL OR NEW.credited_at IS NOT NULL
       OR NEW.refunded_amount <> 0 THEN
      PERFORM {s}.billing_deny('a top-up is issued open and unpaid');
    END IF;
    IF NEW.product_id IS NULL AND (
         NEW.currency <> {s}.billing_team_value('credit_currency', '{currency}')
         OR NEW.amount <> NEW.credits
                          * {s}.billing_team_value('credit_unit_amount', '{unit}')::bigint
         OR NEW.credits < {s}.billing_team_value('credit_min', '{minimum}')::bigint
         OR NEW.credits > {s}.billing_team_value('credit_max', '{maximum}')::bigint) THEN
      PERFORM {s}.billing_deny('a custom top-up costs its credits at the team''s price, '
                               'within the team''s limits');
    END IF;
    IF NEW.product_id IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM {s}.product pr JOIN {s}.price p ON p.product_id = pr.stripe_id
         WHERE pr.stripe_id = NEW.product_id AND pr.credits = NEW.credits
           AND p.unit_amount = NEW.amount AND p.currency = NEW.currency) THEN
      PERFORM {s}.billing_deny('a credit pack top-up costs one of that pack''s prices');
    END IF;
    NEW.issued_by := session_user;
    RETURN NEW;
  END IF;
  IF OLD.status = 'open' AND NEW.status = 'expired'
     AND (NEW.topup_id, NEW.customer_id, NEW.credits, NEW.amount, NEW.currency,
          NEW.checkout_session_id, NEW.issued_by, NEW.issued_at, NEW.paid_at, NEW.credited_at,
          NEW.refunded_amount, NEW.payment_intent_id)
         IS NOT DISTINCT FROM
         (OLD.topup_id, OLD.customer_id, OLD.credits, OLD.amount, OLD.currency,
          OLD.checkout_session_id, OLD.issued_by, OLD.issued_at, OLD.paid_at, OLD.credited_at,
          OLD.refunded_amount, OLD.payment_intent_id) THEN
    RETURN NEW;
  END IF;
  PERFORM {s}.billing_deny('staff may only expire an open top-up');
  RETURN NULL;
END $$;

-- Operators: made in the admin's name; at least one active admin always remains.
CREATE OR REPLACE FUNCTION {s}.billing_operator_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NOT {s}.billing_is_owner() THEN
    NEW.created_by := session_user;
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION {s}.billing_last_admin_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM {s}.operator WHERE role = 'admin' AND active) THEN
    PERFORM {s}.billing_deny('at least one active admin must remain');
  END IF;
  RETURN NULL;
END $$;

-- The journal: entries in their operator's name; only they (or an admin) change them.
CREATE OR REPLACE FUNCTION {s}.billing_journal_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF {s}.billing_is_owner() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    NEW.operator := session_user;
  ELSIF OLD.operator <> session_user
        AND NOT pg_has_role(session_user, 'billing_admin', 'MEMBER') THEN
    PERFORM {s}.billing_deny('only its operator or an admin changes a journal entry');
  ELSIF NEW.operator IS DISTINCT FROM OLD.operator
        OR NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key THEN
    PERFORM {s}.billing_deny('a journal entry keeps its operator and key');
  END IF;
  RETURN NEW;
END $$;

-- A login's group role follows its operator row (called by operators add/set-role/...).
CREATE OR REPLACE FUNCTION {s}.billing_sync_role(target text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  op record;
  grp text;
  wanted text := NULL;
BEGIN
  IF NOT (pg_has_role(session_user, 'billing_admin', 'MEMBER')
          OR pg_has_role(session_user, 'billing_owner', 'MEMBER')) THEN
    RAISE EXCEPTION 'only admins change who may do what'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = target) THEN
    RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = format(
      'there is no database login %s: ask the database administrator to create it '
      '(CREATE ROLE %s LOGIN)', target, target);
  END IF;
  SELECT o.role, o.active INTO op FROM {s}.operator o WHERE o.login = target;
  IF FOUND AND op.active THEN
    wanted := 'billing_' || op.role;
  END IF;
  FOREACH grp IN ARRAY ARRAY['billing_finance', 'billing_support', 'billing_admin'] LOOP
    IF grp = wanted THEN
      EXECUTE format('GRANT %I TO %I', grp, target);
    ELSIF pg_has_role(target, grp, 'MEMBER') THEN
      EXECUTE format('REVOKE %I FROM %I', grp, target);
    END IF;
  END LOOP;
  RETURN coalesce(wanted, '');
END $$;
"""

_TRIGGERS_SQL = """
DROP TRIGGER IF EXISTS billing_audit_guard ON audit_record;
CREATE TRIGGER billing_audit_guard BEFORE INSERT ON audit_record
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_audit_guard();
DROP TRIGGER IF EXISTS billing_ledger_guard ON credit_entry;
CREATE TRIGGER billing_ledger_guard BEFORE INSERT ON credit_entry
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_ledger_guard();
DROP TRIGGER IF EXISTS billing_topup_guard ON top_up;
CREATE TRIGGER billing_topup_guard BEFORE INSERT OR UPDATE ON top_up
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_topup_guard();
DROP TRIGGER IF EXISTS billing_operator_guard ON operator;
CREATE TRIGGER billing_operator_guard BEFORE INSERT ON operator
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_operator_guard();
DROP TRIGGER IF EXISTS billing_last_admin_guard ON operator;
CREATE CONSTRAINT TRIGGER billing_last_admin_guard AFTER UPDATE OR DELETE ON operator
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_last_admin_guard();
DROP TRIGGER IF EXISTS billing_team_setting_guard ON team_setting;
CREATE TRIGGER billing_team_setting_guard BEFORE INSERT ON team_setting
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_team_setting_guard();
DROP TRIGGER IF EXISTS billing_heartbeat_guard ON listener_heartbeat;
CREATE TRIGGER billing_heartbeat_guard BEFORE INSERT OR UPDATE OR DELETE ON listener_heartbeat
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_heartbeat_guard();
DROP TRIGGER IF EXISTS billing_journal_guard ON request_journal;
CREATE TRIGGER billing_journal_guard BEFORE INSERT OR UPDATE ON request_journal
  FOR EACH ROW EXECUTE FUNCTION {s}.billing_journal_guard();

{credit_functions}
ALTER VIEW {s}.credit_balance OWNER TO billing_owner;
GRANT SELECT ON customer, credit_entry, top_up TO billing_owner;
GRANT INSERT ON credit_entry TO billing_owner;
GRANT SELECT, INSERT, UPDATE ON credit_lot, credit_allocation, credit_account TO billing_owner;
GRANT USAGE ON SEQUENCE credit_entry_id_seq, credit_lot_id_seq, credit_allocation_id_seq,
  credit_account_id_seq TO billing_owner;
GRANT EXECUTE ON FUNCTION {s}.consume_credits(text, bigint, text, text)
  TO billing_product, billing_admin;
GRANT EXECUTE ON FUNCTION {s}.billing_credit_lock(text), {s}.billing_absorb(text)
  TO billing_admin, billing_listener;
GRANT EXECUTE ON FUNCTION {s}.billing_expire_credits() TO billing_admin, billing_listener;
GRANT EXECUTE ON FUNCTION {s}.billing_true_up(text) TO billing_admin;

ALTER FUNCTION {s}.billing_sync_role(text) OWNER TO billing_owner;
REVOKE ALL ON FUNCTION {s}.billing_sync_role(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {s}.billing_sync_role(text) TO billing_admin;
GRANT SELECT ON operator TO billing_owner;
GRANT USAGE ON SCHEMA {s} TO billing_owner;
"""


def can_write(db: peewee.Database, table: str) -> bool:
    """Whether this login may INSERT into `table` (always, on SQLite)."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return True
    cursor = db.execute_sql("SELECT has_table_privilege(%s, 'INSERT')", (table,))  # type: ignore[no-untyped-call]
    return bool(cursor.fetchone()[0])


class _OwnerCursor:
    """Runs setup's SQL without parameters (the plpgsql bodies have their own % signs); a
    refusal says who may run it instead of a driver traceback."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str) -> None:
        try:
            self._cursor.execute(sql)
        except Exception as exc:
            if getattr(exc, "pgcode", None) == "42501":
                raise DatabaseDenied(
                    "db setup must be run by the database's owner (a superuser, or the role "
                    f"that owns the database): {str(exc).strip().splitlines()[0]}"
                ) from None
            raise


def setup(db: peewee.Database, *, admin: str, listeners: list[str] | None = None) -> list[str]:
    """Create or bring up to date the schema, the group roles, grants and guards; make `admin`
    the first admin (if there is none) with its group role, and give `listeners` the listener
    role. Run by the database owner (a superuser or the owner of the schema); idempotent.

    Returns what was done, one line each, for the command's output.
    """
    if not isinstance(db, peewee.PostgresqlDatabase):
        raise ValidationError(
            "db setup is for a shared PostgreSQL; a SQLite database is one person's (see README)."
        )
    done = [f"schema at version {v}" for v in migrate(db)]
    cursor = db.execute_sql("SELECT quote_ident(current_schema())")  # type: ignore[no-untyped-call]
    schema = cursor.fetchone()[0]
    with db.atomic():
        cursor = _OwnerCursor(db.cursor())  # type: ignore[no-untyped-call]
        cursor.execute(_ROLES_SQL)
        cursor.execute(_GRANTS_SQL.format(s=schema))
        defaults = CreditPricing()
        cursor.execute(
            _FUNCTIONS_SQL.format(
                s=schema, unit=defaults.unit_amount, currency=defaults.currency,
                minimum=defaults.minimum, maximum=defaults.maximum,
            )
        )  # fmt: skip
        owned = "\n".join(
            f"ALTER FUNCTION {schema}.{f} OWNER TO billing_owner;" for f in credit_sql.FUNCTIONS
        )
        cursor.execute(_TRIGGERS_SQL.format(s=schema, credit_functions=owned))
        done.append(f"group roles, grants and guards on schema {schema}")
        admin = validate_login(admin)
        if not Operator.select().where(Operator.role == Role.ADMIN.value).exists():
            Operator.insert(
                login=admin, display_name=admin, role=Role.ADMIN.value, active=True,
                created_at=int(time.time()), created_by="db setup",
            ).on_conflict(
                conflict_target=[Operator.login],
                update={Operator.role: Role.ADMIN.value, Operator.active: True},
            ).execute()  # fmt: skip
            done.append(f"{admin} is the first admin")
        sync_role(db, admin)
        for login in listeners or []:
            login = validate_login(login)
            if Operator.get_or_none(Operator.login == login) is None:
                Operator.insert(
                    login=login, display_name=f"{login} (listener)", role=Role.FINANCE.value,
                    active=True, created_at=int(time.time()), created_by="db setup",
                ).execute()  # fmt: skip
            sync_role(db, login)
            db.execute_sql(f'GRANT billing_listener TO "{login}"')  # type: ignore[no-untyped-call]
            done.append(f"{login} may run the listener (admin-app listen)")
    log.info("db setup: %s", "; ".join(done))
    return done
