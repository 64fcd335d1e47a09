"""A shared PostgreSQL set up by `admin-app db setup` enforces the roles itself.

Real login roles (one per app role, plus the listener) connect with their own sessions: the
app's own actions work or are refused as the permission table says, and a staff member with
`psql` is refused by the database — whatever SQL they send.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee
import psycopg2
import pytest
import stripe

from services.audit import Authority
from services.database import open_database
from services.errors import DatabaseDenied, PermissionDenied, ValidationError
from services.models import AuditRecord, CreditEntry, Customer, Operator, TopUp
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.pg_security import setup
from stripe_sandbox import SandboxServer
from tests.conftest import PG_DSN_VAR
from tests.e2e.test_cli import _env
from tests.sandbox.raw_http import call

pytestmark = pytest.mark.postgres


def _dsn() -> str:
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_VAR} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    return dsn


@dataclass
class Team:
    schema: str
    logins: dict[str, str]  # fin, sup, adm, lst, outsider -> login

    def url(self, who: str) -> str:
        parts = urlsplit(_dsn())
        host = parts.hostname or "127.0.0.1"
        netloc = f"{self.logins[who]}@{host}:{parts.port or 5432}"
        return urlunsplit(
            (parts.scheme, netloc, parts.path, f"options=-csearch_path%3D{self.schema}", "")
        )

    def sql(self, who: str) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.url(who).split("?")[0], options=f"-csearch_path={self.schema}")
        conn.autocommit = True
        return conn


@pytest.fixture
def team() -> Iterator[Team]:
    """A fresh schema set up by `db setup` as its owner, and five real logins."""
    dsn = _dsn()
    tag = uuid.uuid4().hex[:8]
    schema = f"t_sec_{tag}"
    logins = {who: f"ba_{tag}_{who}" for who in ("fin", "sup", "adm", "lst", "outsider")}
    owner = psycopg2.connect(dsn)
    owner.autocommit = True
    try:
        yield from _make_team(owner, dsn, schema, logins)
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for login in logins.values():
                cur.execute(f'DROP ROLE IF EXISTS "{login}"')
        owner.close()


def _make_team(
    owner: psycopg2.extensions.connection, dsn: str, schema: str, logins: dict[str, str]
) -> Iterator[Team]:
    with owner.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
        for login in logins.values():
            cur.execute(f'CREATE ROLE "{login}" LOGIN')
    t = Team(schema, logins)
    sep = "&" if "?" in dsn else "?"
    db = open_database(f"{dsn}{sep}options=-csearch_path%3D{schema}")
    try:
        setup(db, admin=logins["adm"], listeners=[logins["lst"]])
        admin = Authority(db, sign_in(db, logins["adm"]))
        operators = OperatorService(db, admin)
        operators.add(logins["fin"], Role.FINANCE)
        operators.add(logins["sup"], Role.SUPPORT)
        now = int(time.time())
        Customer.insert(stripe_id="cus_team", created=now, raw={}, synced_at=now,
                        email="team@example.com").execute()  # fmt: skip
        TopUp.insert(
            topup_id="tu_paid", customer_id="cus_team", credits=700, amount=7000,
            currency="usd", status="credited", checkout_session_id="cs_paid", issued_by="x",
            issued_at=now, expires_at=now + 3600, paid_at=now, credited_at=now,
        ).execute()  # fmt: skip
        TopUp.insert(
            topup_id="tu_open", customer_id="cus_team", credits=100, amount=1000,
            currency="usd", status="open", checkout_session_id="cs_open", issued_by="x",
            issued_at=now, expires_at=now + 3600,
        ).execute()  # fmt: skip
        CreditEntry.insert(
            customer_id="cus_team", amount=700, kind="purchase", source="tu_paid",
            topup_id="tu_paid", operator="system", created_at=now,
        ).execute()  # fmt: skip
    finally:
        db.close()
    yield t


def _open_as(team: Team, who: str) -> tuple[peewee.Database, Authority]:
    db = open_database(team.url(who))
    return db, Authority(db, sign_in(db, team.logins[who]))


def test_operators_get_their_group_role_and_lose_it(team: Team) -> None:
    conn = team.sql("adm")
    with conn.cursor() as cur:

        def member(who: str, group: str) -> bool:
            cur.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (team.logins[who], group))
            return bool(cur.fetchone()[0])

        assert member("fin", "billing_finance")
        assert not member("fin", "billing_admin")
        assert member("sup", "billing_support")
        assert member("adm", "billing_admin")
        assert member("adm", "billing_listener")
        assert member("lst", "billing_listener")
        assert not member("lst", "billing_admin")
        assert not member("outsider", "billing_staff")
    conn.close()
    db, admin = _open_as(team, "adm")
    try:
        operators = OperatorService(db, admin)
        operators.set_role(team.logins["fin"], Role.SUPPORT)
        operators.deactivate(team.logins["sup"])
        with pytest.raises(ValidationError, match="no database login"):
            operators.add("ba_nobody_here", Role.FINANCE)
        assert Operator.get_or_none(Operator.login == "ba_nobody_here") is None  # rolled back
    finally:
        db.close()
    conn = team.sql("adm")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_has_role(%s, 'billing_support', 'MEMBER'), "
                    "pg_has_role(%s, 'billing_finance', 'MEMBER'), "
                    "pg_has_role(%s, 'billing_staff', 'MEMBER')",
                    (team.logins["fin"], team.logins["fin"], team.logins["sup"]))  # fmt: skip
        assert cur.fetchone() == (True, False, False)
    conn.close()


def test_each_role_works_through_the_app(team: Team, sandbox: SandboxServer) -> None:
    from services.catchup import CURSOR_KEY, CatchUp
    from services.credits import CREDIT_ROUTES, CreditService
    from services.customers import CustomerDraft, CustomerService
    from services.events import ROUTES, EventPipeline, Source
    from services.models import AppState
    from services.pg_security import can_write
    from services.settings import Settings
    from services.stripe_gateway import StripeGateway

    gateway = StripeGateway("sk_test_unused", api_base=sandbox.url, sandbox=True)
    # support issues a paid top-up link and expires it, in its own name
    db, sup = _open_as(team, "sup")
    try:
        customer = CustomerService(db, gateway, sup).create(
            CustomerDraft(email="buyer@example.com", name="Buyer"), None
        )
        credits = CreditService(db, gateway, sup, Settings())
        link = credits.issue_topup(customer.stripe_id, None, credits=300)
        assert TopUp.get(TopUp.topup_id == link.topup.topup_id).issued_by == team.logins["sup"]
        assert credits.expire_topup(link.topup.topup_id).status == "expired"
        assert not can_write(db, "webhook_event")  # events are the listener's
        paid = credits.issue_topup(customer.stripe_id, None, credits=200).topup
    finally:
        db.close()
    status, _, _ = call(
        sandbox.url, "POST", f"/_sandbox/checkout/sessions/{paid.checkout_session_id}/pay",
        "card=4242424242424242", key=None,
    )  # fmt: skip
    assert status == 200
    # the listener applies Stripe's event: the purchase passes the ledger's guard
    db, _lst = _open_as(team, "lst")
    try:
        pipeline = EventPipeline(db, gateway, [*CREDIT_ROUTES, *ROUTES])
        assert pipeline.may_apply()
        client = stripe.StripeClient("sk_test_unused", base_addresses={"api": sandbox.url})
        [event] = client.v1.events.list({"type": "checkout.session.completed"}).data
        assert pipeline.receive(event.to_dict(for_json=True), Source.RECEIVER).value == "applied"
        # ...and catches up on everything else (its cursor is its own to write).
        catch_up = CatchUp(db, gateway, pipeline)
        AppState.insert(key=CURSOR_KEY, value="0").execute()
        summary = catch_up.run()
        assert (summary.seen > 0, summary.failed) == (True, 0), summary
        assert CreditEntry.get(CreditEntry.source == paid.topup_id).amount == 200
    finally:
        db.close()
    # finance reads balances and the audit log; its audit rows are its own
    db, fin = _open_as(team, "fin")
    try:
        credits = CreditService(db, gateway, fin, Settings())
        assert credits.balance("cus_team") == 700
        with pytest.raises(PermissionDenied):
            credits.grant("cus_team", 5, "a favour")  # the app says no first
        assert AuditRecord.select().where(AuditRecord.operator == team.logins["fin"]).exists()
        # ...and the database says no to what the app would have let through
        with pytest.raises(DatabaseDenied, match="Your database login may not do that"):
            Customer.update(email="x@example.com").execute()
    finally:
        db.close()
    db, adm = _open_as(team, "adm")
    try:
        credits = CreditService(db, gateway, adm, Settings())
        credits.grant("cus_team", 50, "goodwill for the outage")
        assert credits.balance("cus_team") == 750
        grant = CreditEntry.get(CreditEntry.kind == "grant")
        assert grant.operator == team.logins["adm"]
    finally:
        db.close()


# Each row: who, the SQL a staff member with psql sends, and what must happen.
ATTACKS = [
    ("fin", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', 100000, 'purchase', 'tu_forged', 'x', 0)", "denied"),
    ("fin", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', 777, 'grant', 'g', 'x', 0)", "denied"),
    ("fin", "UPDATE top_up SET status = 'open' WHERE topup_id = 'tu_paid'", "denied"),
    ("fin", "UPDATE invoice SET status = 'paid'", "denied"),
    ("fin", "UPDATE customer SET email = 'me@example.com'", "denied"),
    ("fin", "DELETE FROM operator WHERE role = 'admin'", "denied"),
    ("fin", "INSERT INTO operator (login, display_name, role, active, created_at, created_by)"
            " VALUES ('evil', 'e', 'admin', true, 0, 'x')", "denied"),
    ("fin", "UPDATE operator SET role = 'admin'", "denied"),
    ("fin", "CREATE TABLE mine (x int)", "denied"),
    ("fin", "SET ROLE billing_admin", "denied"),
    ("fin", "SET ROLE billing_owner", "denied"),
    ("fin", "SET SESSION AUTHORIZATION postgres", "denied"),
    ("fin", "TRUNCATE audit_record", "denied"),
    ("fin", "UPDATE audit_record SET operator = 'someone'", "denied"),
    ("fin", "DELETE FROM audit_record", "denied"),
    ("fin", "DELETE FROM credit_entry", "denied"),
    ("fin", "SELECT billing_sync_role(session_user)", "denied"),
    ("fin", "UPDATE webhook_event SET status = 'received'", "denied"),
    ("fin", "INSERT INTO app_state (key, value) VALUES ('events.catch_up_cursor', '0')",
     "denied"),
    ("sup", "INSERT INTO top_up (topup_id, customer_id, credits, amount, currency, status,"
            " checkout_session_id, issued_by, issued_at, expires_at, refunded_amount)"
            " VALUES ('tu_x', 'cus_team', 9, 1, 'usd', 'credited', 'cs_x', 'x', 0, 0, 0)",
     "denied"),
    ("sup", "UPDATE top_up SET status = 'credited' WHERE topup_id = 'tu_open'", "denied"),
    ("sup", "INSERT INTO top_up (topup_id, customer_id, credits, amount, currency, status,"
            " checkout_session_id, issued_by, issued_at, expires_at, refunded_amount)"
            " VALUES ('tu_cheap', 'cus_team', 100000, 100000, 'usd', 'open', 'cs_c', 'x', 0, 0,"
            " 0)", "denied"),
    ("sup", "INSERT INTO top_up (topup_id, customer_id, credits, amount, currency, status,"
            " checkout_session_id, issued_by, issued_at, expires_at, refunded_amount)"
            " VALUES ('tu_vnd', 'cus_team', 1000, 10000, 'vnd', 'open', 'cs_v', 'x', 0, 0, 0)",
     "denied"),
    ("sup", "INSERT INTO top_up (topup_id, customer_id, credits, amount, currency, status,"
            " checkout_session_id, issued_by, issued_at, expires_at, refunded_amount)"
            " VALUES ('tu_fair', 'cus_team', 1000, 10000, 'usd', 'open', 'cs_f', 'x', 0, 0, 0)",
     "allowed"),
    ("sup", "INSERT INTO top_up (topup_id, customer_id, credits, amount, currency, status,"
            " checkout_session_id, issued_by, issued_at, expires_at, refunded_amount,"
            " product_id) VALUES ('tu_pack', 'cus_team', 100000, 1, 'usd', 'open', 'cs_p', 'x',"
            " 0, 0, 0, 'prod_whatever')", "denied"),
    ("sup", "INSERT INTO team_setting (key, value, set_by, set_at)"
            " VALUES ('credit_unit_amount', '1', 'x', 0)", "denied"),
    ("fin", "INSERT INTO team_setting (key, value, set_by, set_at)"
            " VALUES ('credit_max', '5000000', 'x', 0)", "denied"),
    ("sup", "UPDATE top_up SET status = 'open', credited_at = NULL WHERE topup_id = 'tu_paid'",
     "denied"),
    ("sup", "UPDATE top_up SET credits = 100000 WHERE topup_id = 'tu_open'", "denied"),
    ("sup", "UPDATE top_up SET status = 'expired', url = NULL WHERE topup_id = 'tu_open'",
     "allowed"),
    ("sup", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', 5, 'grant', 'g', 'x', 0)", "denied"),
    ("sup", "SELECT operator, action, params FROM audit_record", "denied"),
    ("adm", "DELETE FROM operator", "denied"),
    ("adm", "UPDATE operator SET active = false WHERE role = 'admin'", "denied"),
    ("adm", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at,"
            " reason) VALUES ('cus_team', 5, 'grant', 'g', 'x', 0, '  ')", "denied"),
    ("adm", "UPDATE credit_entry SET amount = 1", "denied"),
    ("adm", "TRUNCATE credit_entry", "denied"),
    ("lst", "INSERT INTO credit_entry (customer_id, amount, kind, source, topup_id, operator,"
            " created_at) VALUES ('cus_team', 100000, 'purchase', 'tu_open', 'tu_open', 's', 0)",
     "denied"),
    ("lst", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at,"
            " reason) VALUES ('cus_team', 5, 'grant', 'g', 'x', 0, 'why')", "denied"),
    ("lst", "UPDATE operator SET role = 'admin'", "denied"),
    ("lst", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', 5000, 'purchase', 'in_unpaid', 's', 0)", "denied"),
    ("lst", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', -700, 'clawback', 'unpaid:tu_paid', 's', 0)", "denied"),
    ("fin", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', -700, 'clawback', 'unpaid:tu_paid', 's', 0)", "denied"),
    ("adm", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', -700, 'clawback', 'unpaid:tu_paid', 's', 0)", "allowed"),
    ("adm", "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at)"
            " VALUES ('cus_team', -9999, 'clawback', 'unpaid:tu_paid', 's', 0)", "denied"),
    ("outsider", "SELECT count(*) FROM {s}.credit_entry", "denied"),
]  # fmt: skip


@pytest.mark.parametrize(("who", "sql", "expected"), ATTACKS)
def test_direct_sql_is_refused_by_the_database(
    team: Team, who: str, sql: str, expected: str
) -> None:
    conn = team.sql(who)
    try:
        with conn.cursor() as cur:
            sql = sql.replace("{s}", f'"{team.schema}"')
            if expected == "allowed":
                cur.execute(sql)
                return
            with pytest.raises(psycopg2.Error) as caught:
                cur.execute(sql)
            assert caught.value.pgcode == "42501", caught.value.pgerror
    finally:
        conn.close()
    # The money and the admins are untouched.
    check = team.sql("adm")
    with check.cursor() as cur:
        cur.execute("SELECT coalesce(sum(amount), 0) FROM credit_entry")
        assert cur.fetchone()[0] == 700
        cur.execute("SELECT status FROM top_up WHERE topup_id = 'tu_paid'")
        assert cur.fetchone()[0] == "credited"
        cur.execute("SELECT count(*) FROM operator WHERE role = 'admin' AND active")
        assert cur.fetchone()[0] == 1
    check.close()


def test_an_audit_row_is_always_in_the_name_of_its_session(team: Team) -> None:
    conn = team.sql("fin")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO audit_record (at, operator, role, action, params, outcome)"
            " VALUES (0, %s, 'admin', 'credits.grant', '{}', 'ok') RETURNING id",
            (team.logins["adm"],),
        )
        row_id = cur.fetchone()[0]
    conn.close()
    check = team.sql("adm")
    with check.cursor() as cur:
        cur.execute("SELECT operator, role FROM audit_record WHERE id = %s", (row_id,))
        assert cur.fetchone() == (team.logins["fin"], "finance")
    check.close()


def test_the_command_line_says_one_line_for_a_database_refusal(
    team: Team, tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Finance may sync in the app's table; on an enforced database the mirror is the
    listener's, so the database refuses — one line, exit 3, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "admin_app", "--db", team.url("fin"), "--api-base",
         "http://127.0.0.1:9", "customers", "show", "cus_team", "--json"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    grant = subprocess.run(
        [sys.executable, "-m", "admin_app", "--db", team.url("fin"), "credits", "grant",
         "--customer", "cus_team", "--credits", "777", "--reason", "LOGNAME trick"],
        env={**_env(tmp_path), "LOGNAME": team.logins["adm"], "USER": team.logins["adm"]},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert grant.returncode == 3
    assert len(grant.stderr.strip().splitlines()) == 1, grant.stderr
    assert "Traceback" not in grant.stderr
    sandbox.seed_demo()
    sync = subprocess.run(
        [sys.executable, "-m", "admin_app", "--db", team.url("fin"), "--api-base", sandbox.url,
         "sync", "customers"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert sync.returncode == 3, sync.stderr
    assert sync.stderr.strip().splitlines() == [
        "admin-app: Your database login may not do that (permission denied for table customer)"
        " — ask an admin."
    ]


def test_a_staff_login_on_a_database_not_set_up_gets_one_line(tmp_path: Path) -> None:
    dsn = _dsn()
    tag = uuid.uuid4().hex[:8]
    login, schema = f"ba_{tag}_new", f"t_new_{tag}"
    owner = psycopg2.connect(dsn)
    owner.autocommit = True
    with owner.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
        cur.execute(f'CREATE ROLE "{login}" LOGIN')
        cur.execute(f'REVOKE CREATE ON SCHEMA "{schema}" FROM PUBLIC')
        cur.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{login}"')
    try:
        parts = urlsplit(dsn)
        url = urlunsplit((parts.scheme, f"{login}@{parts.hostname}:{parts.port or 5432}",
                          parts.path, f"options=-csearch_path%3D{schema}", ""))  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "admin_app", "--db", url, "operators", "list"],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode in (1, 3), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "db setup" in result.stderr
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
            cur.execute(f'DROP ROLE "{login}"')
        owner.close()


# The app's own commands on an enforced database, per role: (command, exit code for finance,
# support, admin). 0 = works, 3 = refused (by the app's table or, for sync, the database).
COMMANDS = [
    (["customers", "list"], 0, 0, 0),
    (["credits", "show", "--customer", "cus_team"], 0, 0, 0),
    (["operators", "list"], 0, 0, 0),
    (["events", "list"], 0, 0, 0),
    (["audit", "list"], 0, 3, 0),
    (["pricing", "show"], 0, 0, 0),
    (["credits", "grant", "--customer", "cus_team", "--credits", "5", "--reason", "goodwill"],
     3, 3, 0),
    (["pricing", "set", "--price", "0.20", "--reason", "new prices"], 3, 3, 0),
    (["events", "replay", "--failed"], 3, 3, 0),
    (["sync", "invoices"], 3, 3, 0),
]  # fmt: skip


def test_each_roles_commands_work_or_are_refused_in_one_line(
    team: Team, tmp_path: Path, sandbox: SandboxServer
) -> None:
    sandbox.seed_demo()  # so that a sync has something to write
    wrong = []
    for args, *codes in COMMANDS:
        for who, expected in zip(("fin", "sup", "adm"), codes, strict=True):
            result = subprocess.run(
                [sys.executable, "-m", "admin_app", "--db", team.url(who), "--api-base",
                 sandbox.url, *args],
                env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            lines = result.stderr.strip().splitlines()
            if result.returncode != expected or (expected and len(lines) != 1):
                wrong.append((who, args, result.returncode, result.stderr[-300:]))
    assert wrong == []


def test_a_login_without_a_role_and_a_staff_db_setup_get_one_line(
    team: Team, tmp_path: Path
) -> None:
    def run(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "admin_app", "--db", team.url(who), *args],
            env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    stranger = run("outsider", "whoami")
    assert stranger.returncode in (1, 3)
    assert len(stranger.stderr.strip().splitlines()) == 1, stranger.stderr
    assert "operators add" in stranger.stderr
    setup_as_staff = run("fin", "db", "setup", "--admin", team.logins["fin"])
    assert setup_as_staff.returncode == 3, setup_as_staff.stderr
    assert len(setup_as_staff.stderr.strip().splitlines()) == 1, setup_as_staff.stderr
    assert "owner" in setup_as_staff.stderr


def test_the_listener_credits_a_credit_plan_and_claws_back_its_refund(
    team: Team, sandbox: SandboxServer
) -> None:
    """The ledger's guard lets the listener write a paid subscription invoice's credits and the
    clawback of its refund (at most what the invoice credited), nothing more."""
    from services.catchup import CURSOR_KEY, CatchUp
    from services.credits import CREDIT_ROUTES
    from services.events import ROUTES, EventPipeline
    from services.models import AppState
    from services.stripe_gateway import StripeGateway

    client = stripe.StripeClient("sk_test_unused", base_addresses={"api": sandbox.url})
    customer = client.v1.customers.create({"email": "plan@example.com",
                                           "payment_method": "pm_card_visa"})  # fmt: skip
    pm = client.v1.customers.payment_methods.list(customer.id).data[0].id
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm}})
    product = client.v1.products.create({"name": "Plan", "metadata": {"credits": "40"}})
    price = client.v1.prices.create({"product": product.id, "unit_amount": 900, "currency": "usd",
                                     "recurring": {"interval": "month"}})  # fmt: skip
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    [invoice] = client.v1.invoices.list({"subscription": sub.id}).data
    intent = client.v1.invoice_payments.list({"invoice": invoice.id}).data[0].payment
    client.v1.refunds.create({"payment_intent": str(intent.payment_intent), "amount": 450})
    gateway = StripeGateway("sk_test_unused", api_base=sandbox.url, sandbox=True)
    db, _lst = _open_as(team, "lst")
    try:
        pipeline = EventPipeline(db, gateway, [*CREDIT_ROUTES, *ROUTES])
        AppState.insert(key=CURSOR_KEY, value="0").execute()
        summary = CatchUp(db, gateway, pipeline).run()
        assert summary.failed == 0, summary
        entries = {
            (e.kind, e.amount, e.source)
            for e in CreditEntry.select().where(CreditEntry.customer_id == customer.id)
        }
        refund = client.v1.refunds.list({"payment_intent": str(intent.payment_intent)}).data[0]
        assert entries == {("purchase", 40, invoice.id), ("clawback", -20, refund.id)}
    finally:
        db.close()
