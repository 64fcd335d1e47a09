"""Who may do what, and the audit row of each attempt: the details the broader permission tests
did not pin down (docs/mutants.md: audit and permissions)."""

from __future__ import annotations

import time
from pathlib import Path

import peewee
import pytest

from services import changes
from services.audit import AuditFilter, AuditLog, Authority
from services.errors import AppError, PermissionDenied, StripeRefused, StripeUnreachable
from services.models import AuditRecord, Customer
from services.operators import OperatorService, sign_in
from services.permissions import Permission, Role, why_not
from services.redaction import redact


def _acting(database: peewee.Database, authority: Authority, role: Role) -> Authority:
    OperatorService(database, authority).add(f"{role.value}-clerk", role)
    return Authority(database, sign_in(database, f"{role.value}-clerk"))


@pytest.mark.parametrize(
    ("role", "may", "may_not"),
    [
        (Role.FINANCE, Permission.EXPORT, Permission.GRANT_CREDITS),
        (Role.SUPPORT, Permission.ISSUE_TOPUP_LINK, Permission.VIEW_AUDIT),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_authority_can_answers_for_the_signed_in_role(
    database: peewee.Database,
    authority: Authority,
    role: Role,
    may: Permission,
    may_not: Permission,
) -> None:
    """What the UI asks to hide or disable a button: the operator's own role decides."""
    acting = _acting(database, authority, role)
    assert acting.can(may)
    assert not acting.can(may_not)
    assert authority.can(may_not)  # the admin


def test_why_not_lists_every_role_that_has_the_permission() -> None:
    assert why_not(Role.SUPPORT, Permission.EXPORT) == (
        "Permission denied: 'export' is needed (role finance, admin); your role is support."
    )
    assert why_not(Role.FINANCE, Permission.GRANT_CREDITS) == (
        "Permission denied: 'grant credits' is needed (role admin); your role is finance."
    )


def _rows(action: str) -> list[AuditRecord]:
    return list(AuditRecord.select().where(AuditRecord.action == action).order_by(AuditRecord.id))


def test_a_recorded_change_is_one_row_with_who_when_what_and_why(
    database: peewee.Database, authority: Authority
) -> None:
    before_ms = int(time.time() * 1000)
    authority.record(
        "settings.key",
        target="secret store",
        params={"key": "sk_test_abcdef123456", "path": Path("/tmp/x"), "count": 3},
        reason="rotated: the old key sk_live_oldkey123 leaked",
    )
    after_ms = int(time.time() * 1000)
    (row,) = _rows("settings.key")
    assert (row.operator, row.role, row.target, row.outcome) == (
        "test-admin",
        "admin",
        "secret store",
        "ok",
    )
    assert before_ms <= row.at <= after_ms  # milliseconds since the epoch, now
    # Parameters are JSON (a path becomes its text) and never hold a secret; nor does the reason.
    assert row.params == {"key": "sk_test_…redacted", "path": "/tmp/x", "count": 3}
    assert row.reason == "rotated: the old key sk_live_…redacted leaked"
    assert (row.error, row.stripe_request_id, row.idempotency_key) == (None, None, None)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (StripeRefused("Stripe refused: No such key sk_test_abcdef1234", request_id="req_1"),
         "refused"),
        (PermissionDenied("The key may not read invoices", request_id="req_2"), "denied"),
        (StripeUnreachable("Cannot reach Stripe"), "failed"),
    ],
    ids=["refused", "denied", "failed"],
)  # fmt: skip
def test_a_failure_outside_an_action_is_recorded_with_its_outcome_and_request_id(
    database: peewee.Database, authority: Authority, error: AppError, outcome: str
) -> None:
    authority.record_failure("sync.pull", error, target="invoices")
    (row,) = _rows("sync.pull")
    assert (row.target, row.outcome, row.stripe_request_id) == (
        "invoices",
        outcome,
        error.request_id,
    )
    assert row.error == redact(str(error))
    assert "sk_test_abc" not in row.error


def test_a_stripe_first_action_with_nothing_local_to_write_still_leaves_its_ok_row(
    database: peewee.Database, authority: Authority
) -> None:
    with authority.action(
        Permission.ISSUE_PORTAL_LINK, "portal.link", target="cus_1", stripe_first=True
    ) as record:
        record.stripe_request_id = "req_portal"
        record.idempotency_key = "key_portal"
    (row,) = _rows("portal.link")
    assert (row.outcome, row.target, row.stripe_request_id, row.idempotency_key) == (
        "ok",
        "cus_1",
        "req_portal",
        "key_portal",
    )


def test_a_failure_after_a_stripe_first_action_committed_is_not_recorded_as_failed(
    database: peewee.Database, authority: Authority
) -> None:
    """Stripe said yes and the outcome was written with its "ok" row: what fails afterwards
    (e.g. telling the window) does not turn that row into a second, contradicting one."""

    def update_then_fail() -> None:
        with authority.action(
            Permission.EDIT_CUSTOMER, "customer.update", target="cus_2", stripe_first=True
        ) as record:
            with record.writes():
                Customer.insert(
                    stripe_id="cus_2", created=1, raw={}, synced_at=1, metadata={}
                ).execute()
            raise RuntimeError("after the commit")

    with pytest.raises(RuntimeError, match="after the commit"):
        update_then_fail()
    assert Customer.select().where(Customer.stripe_id == "cus_2").exists()
    assert [r.outcome for r in _rows("customer.update")] == ["ok"]


def test_a_stripe_first_action_that_fails_before_writing_is_recorded_with_stripes_request_id(
    database: peewee.Database, authority: Authority
) -> None:
    with (
        pytest.raises(StripeRefused),
        authority.action(
            Permission.EDIT_CUSTOMER, "customer.update", target="cus_3", stripe_first=True
        ),
    ):
        raise StripeRefused("Stripe refused the request: Invalid email", request_id="req_bad")
    (row,) = _rows("customer.update")
    assert (row.outcome, row.stripe_request_id, row.error) == (
        "refused",
        "req_bad",
        "Stripe refused the request: Invalid email",
    )


def test_the_audit_log_lists_action_names_and_filters_by_end_time_and_count(
    database: peewee.Database, authority: Authority
) -> None:
    for n in range(3):
        authority.record("probe.second", target=f"t{n}")
    authority.record("probe.first")
    log = AuditLog(database, authority)
    assert {"probe.first", "probe.second"} <= set(log.actions())
    assert log.actions() == sorted(set(log.actions()))
    newest = log.records(AuditFilter(action="probe.second", limit=2))
    assert [r.target for r in newest] == ["t2", "t1"]
    first_at = min(r.at for r in log.records())
    assert log.records(AuditFilter(until_ms=first_at)) == []
    assert log.records(AuditFilter(until_ms=first_at + 1)) != []


@pytest.mark.parametrize("stripe_first", [False, True], ids=["in-its-transaction", "stripe-first"])
def test_a_denial_inside_an_action_is_recorded_once_as_denied(
    database: peewee.Database, authority: Authority, stripe_first: bool
) -> None:
    """A permission checked inside another action writes its own "denied" row, which must
    outlive the action's rolled-back transaction; the enclosing action adds no second row."""
    support = _acting(database, authority, Role.SUPPORT)
    with (
        pytest.raises(PermissionDenied, match="grant credits"),
        support.action(Permission.BROWSE, "probe.outer", target="cus_9", stripe_first=stripe_first),
    ):
        support.require(Permission.GRANT_CREDITS, "probe.inner", target="cus_9")
    rows = list(AuditRecord.select().where(AuditRecord.action.startswith("probe.")))
    assert [(r.action, r.outcome, r.target) for r in rows] == [("probe.inner", "denied", "cus_9")]
    assert rows[0].error == why_not(Role.SUPPORT, Permission.GRANT_CREDITS)


def test_every_audit_row_tells_the_window_the_log_changed(
    database: peewee.Database, authority: Authority
) -> None:
    with changes.collecting() as noted:
        authority.record("probe.noted")
    assert noted.changes().audit
    support = _acting(database, authority, Role.SUPPORT)
    with changes.collecting() as noted, pytest.raises(PermissionDenied):
        support.require(Permission.GRANT_CREDITS, "probe.denied")
    assert noted.changes().audit


def test_a_failed_action_is_recorded_with_its_reason_and_the_kind_of_error(
    database: peewee.Database, authority: Authority
) -> None:
    """An unexpected error is named by its type (a bug, not a refusal), and the reason the
    operator gave is kept on the failed row as on an "ok" one."""

    def fail() -> None:
        with authority.action(
            Permission.GRANT_CREDITS, "credits.grant", target="cus_5", reason="goodwill"
        ):
            raise KeyError("amount")

    with pytest.raises(KeyError):
        fail()
    (row,) = _rows("credits.grant")
    assert (row.outcome, row.reason, row.error) == ("failed", "goodwill", "KeyError: 'amount'")
