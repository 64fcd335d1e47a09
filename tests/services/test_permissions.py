"""Roles, permissions and the audit log, through the services (table-driven where possible)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import peewee
import pytest

from services.audit import Actor, AuditFilter, AuditLog, Authority, Outcome
from services.browse import BrowseService
from services.configuration import ConfigChange, ConfigService
from services.database import open_database
from services.errors import NotAnOperator, PermissionDenied, ValidationError
from services.identity import current_login
from services.models import AuditRecord, Customer, Operator
from services.operators import OperatorService, sign_in
from services.permissions import ROLE_PERMISSIONS, Permission, Role, why_not
from services.secrets import SecretStore
from services.settings import SettingsStore
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import PG_DSN_VAR, TEST_KEY

CASES = [(role, perm) for role in Role for perm in Permission]


def _actor_with(database: peewee.Database, authority: Authority, role: Role) -> Authority:
    login = f"{role.value}-user"
    if Operator.get_or_none(Operator.login == login) is None:
        OperatorService(database, authority).add(login, role)
    return Authority(database, sign_in(database, login))


def _rows(action: str | None = None) -> list[AuditRecord]:
    query = AuditRecord.select().order_by(AuditRecord.id)
    if action:
        query = query.where(AuditRecord.action == action)
    return list(query)


def test_the_table_gives_admins_everything_and_nobody_else_money() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    money = {Permission.CHARGE_INVOICE, Permission.GRANT_CREDITS, Permission.VOID_INVOICE}
    for role in (Role.FINANCE, Role.SUPPORT):
        assert not money & ROLE_PERMISSIONS[role]


@pytest.mark.parametrize(("role", "permission"), CASES, ids=lambda v: getattr(v, "name", v))
def test_every_permission_for_every_role(
    database: peewee.Database, authority: Authority, role: Role, permission: Permission
) -> None:
    acting = _actor_with(database, authority, role)
    before = len(_rows())
    if permission in ROLE_PERMISSIONS[role]:
        acting.require(permission, "probe", target="t1")
        assert len(_rows()) == before  # an allowed read is not an audit event
    else:
        with pytest.raises(PermissionDenied) as info:
            acting.require(permission, "probe", target="t1")
        assert info.value.exit_code == 3
        assert f"'{permission.value}'" in str(info.value)
        (row,) = _rows()[before:]
        assert (row.operator, row.role, row.action, row.target, row.outcome) == (
            f"{role.value}-user",
            role.value,
            "probe",
            "t1",
            "denied",
        )


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_real_service_calls_are_enforced_and_audited(
    database: peewee.Database,
    authority: Authority,
    role: Role,
    tmp_path: Path,
    sandbox: SandboxServer,
) -> None:
    acting = _actor_with(database, authority, role)
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    calls = {
        Permission.BROWSE: lambda: BrowseService(database, acting).customers(),
        Permission.SYNC: lambda: SyncService(database, gateway, acting).pull(SyncTarget.PRODUCTS),
        Permission.VIEW_AUDIT: lambda: AuditLog(database, acting).records(),
        Permission.MANAGE_OPERATORS: lambda: OperatorService(database, acting).add(
            f"new-{uuid.uuid4().hex[:6]}", Role.FINANCE
        ),
        Permission.MANAGE_SETTINGS: lambda: ConfigService(
            SettingsStore(tmp_path / "settings.json"), SecretStore(environ={}), acting
        ).apply(ConfigChange(api_base="http://127.0.0.1:12111")),
    }
    for permission, call in calls.items():
        before = len(_rows())
        if permission in ROLE_PERMISSIONS[role]:
            call()
        else:
            with pytest.raises(PermissionDenied, match=permission.value):
                call()
            assert _rows()[before:][-1].outcome == "denied"


def test_changes_write_one_ok_row_with_their_parameters(
    database: peewee.Database, authority: Authority
) -> None:
    OperatorService(database, authority).add("jdoe", Role.SUPPORT, "Jo Doe")
    (row,) = _rows("operator.add")
    assert (row.operator, row.role, row.target, row.outcome) == (
        "test-admin",
        "admin",
        "jdoe",
        "ok",
    )
    assert row.params == {"login": "jdoe", "role": "support", "display_name": "Jo Doe"}


def test_a_failed_change_leaves_neither_change_nor_ok_row(
    database: peewee.Database, authority: Authority
) -> None:
    def change_then_fail() -> None:
        with authority.action(Permission.EDIT_CUSTOMER, "customer.update", target="cus_x"):
            Customer.insert(
                stripe_id="cus_x", created=1, raw={}, synced_at=1, metadata={}
            ).execute()
            raise RuntimeError("the write after the change failed")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert not Customer.select().exists()
    (row,) = _rows("customer.update")
    assert row.outcome == Outcome.FAILED.value
    assert "the write after the change failed" in row.error


def test_last_admin_cannot_be_demoted_or_deactivated(
    database: peewee.Database, authority: Authority
) -> None:
    ops = OperatorService(database, authority)
    with pytest.raises(ValidationError, match="last active admin"):
        ops.set_role("test-admin", Role.FINANCE)
    with pytest.raises(ValidationError, match="last active admin"):
        ops.deactivate("test-admin")
    assert Operator.get(Operator.login == "test-admin").role == "admin"
    ops.add("second", Role.ADMIN)
    ops.set_role("test-admin", Role.FINANCE)
    assert Operator.get(Operator.login == "test-admin").role == "finance"
    failed = [r for r in _rows() if r.outcome == "failed"]
    assert len(failed) == 2  # both refused attempts are on record


def test_first_sign_in_bootstraps_an_admin_then_strangers_are_refused(
    database: peewee.Database,
) -> None:
    first = sign_in(database, "installer")
    assert first.role is Role.ADMIN
    (row,) = _rows("operator.bootstrap")
    assert row.target == "installer"
    with pytest.raises(NotAnOperator, match="Ask an admin to add you"):
        sign_in(database, "stranger")
    assert Operator.select().count() == 1


def test_a_deactivated_operator_cannot_sign_in(
    database: peewee.Database, authority: Authority
) -> None:
    ops = OperatorService(database, authority)
    ops.add("leaver", Role.SUPPORT)
    ops.deactivate("leaver")
    with pytest.raises(NotAnOperator, match="deactivated"):
        sign_in(database, "leaver")
    ops.reactivate("leaver")
    assert sign_in(database, "leaver") == Actor("leaver", "leaver", Role.SUPPORT)


def test_invalid_operator_input_changes_nothing(
    database: peewee.Database, authority: Authority
) -> None:
    ops = OperatorService(database, authority)
    for bad in ("", "has space", "x" * 80, "-dash"):
        with pytest.raises(ValidationError):
            ops.add(bad, Role.FINANCE)
    with pytest.raises(ValidationError, match="already"):
        ops.add("test-admin", Role.FINANCE)
    assert Operator.select().count() == 1


def test_audit_filters_and_csv_export(
    database: peewee.Database, authority: Authority, tmp_path: Path
) -> None:
    ops = OperatorService(database, authority)
    ops.add("a1", Role.FINANCE)
    ops.add("a2", Role.SUPPORT)
    ops.set_role("a2", Role.FINANCE)
    log = AuditLog(database, authority)
    assert [r.target for r in log.records(AuditFilter(action="operator.add"))] == ["a2", "a1"]
    assert {r.action for r in log.records(AuditFilter(action="operator."))} == {
        "operator.add",
        "operator.set_role",
        "operator.bootstrap",
    }
    assert [r.action for r in log.records(AuditFilter(target="a2"))] == [
        "operator.set_role",
        "operator.add",
    ]
    assert log.records(AuditFilter(since_ms=10**15)) == []
    out = tmp_path / "audit.csv"
    assert log.export_csv(out, AuditFilter(operator="test-admin")) == 4
    lines = out.read_text().splitlines()
    assert lines[0].startswith("time_utc,operator,role,action")
    assert len(lines) == 5
    assert _rows("audit.export")[-1].params == {"rows": 4}


def test_a_finance_clerk_may_export_but_support_may_not_read_the_audit(
    database: peewee.Database, authority: Authority, tmp_path: Path
) -> None:
    finance = AuditLog(database, _actor_with(database, authority, Role.FINANCE))
    assert finance.export_csv(tmp_path / "f.csv") >= 1
    support = AuditLog(database, _actor_with(database, authority, Role.SUPPORT))
    with pytest.raises(PermissionDenied, match="view audit log"):
        support.records()
    with pytest.raises(PermissionDenied):
        support.export_csv(tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_why_not_names_the_permission_and_who_has_it() -> None:
    text = why_not(Role.SUPPORT, Permission.GRANT_CREDITS)
    assert "'grant credits'" in text
    assert "admin" in text
    assert "support" in text


def test_sqlite_identity_is_the_real_uid_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "root-by-claim")
    db = open_database(f"sqlite:///{tmp_path / 'id.sqlite3'}")
    try:
        assert current_login(db) == pwd.getpwuid(os.getuid()).pw_name
    finally:
        db.close()


@pytest.mark.postgres
def test_postgres_identity_is_the_database_login() -> None:
    if not os.environ.get(PG_DSN_VAR):
        pytest.skip(f"PostgreSQL tests need {PG_DSN_VAR}")
    db_url = os.environ[PG_DSN_VAR]
    import psycopg2

    role = f"ba_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(os.environ[PG_DSN_VAR])
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
        parts = urlsplit(db_url)
        as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
        db = open_database(as_role, run_migrations=False)
        try:
            assert current_login(db) == role
            # SET ROLE changes current_user but not who authenticated.
            db.execute_sql("SET ROLE postgres")
            assert current_login(db) == role
        finally:
            db.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP OWNED BY "{role}"')
            cur.execute(f'DROP ROLE "{role}"')
        admin.close()


def test_audit_parameters_read_as_money_and_dates_not_raw_json() -> None:
    from datetime import datetime

    from services.audit import describe_params

    expires = int(datetime(2026, 12, 4, 9, 30).timestamp())
    assert describe_params(
        {"credits": 1500, "amount": 15000, "currency": "usd", "expires_at": expires,
         "checkout_session": "cs_test_1"}
    ) == (
        "amount: $150.00 · checkout session: cs_test_1 · credits: 1,500 · currency: usd · "
        "expires at: 2026-12-04 09:30"
    )  # fmt: skip
    assert describe_params({"amount": 5000, "currency": "jpy"}) == "amount: ¥5,000 · currency: jpy"
    # Nothing said for what is not set; lists read as lists.
    assert describe_params({"expires_at": None, "note": "", "ids": ["a", "b"]}) == "ids: a, b"
    assert describe_params(
        {"before": {"unit_amount": 10, "currency": "usd", "minimum": 100, "maximum": 100000},
         "after": {"unit_amount": 25, "currency": "usd", "minimum": 100, "maximum": 50000}}
    ) == (
        "after: [currency: usd · maximum: 50,000 · minimum: 100 · unit amount: $0.25] · "
        "before: [currency: usd · maximum: 100,000 · minimum: 100 · unit amount: $0.10]"
    )  # fmt: skip
