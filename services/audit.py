"""Who may do what, and an append-only record of everything that was done or refused.

`Authority` is what every service holds: the signed-in operator plus the audit log. A service
asks it for a permission before reading, and wraps every change in `Authority.action(...)`, which
writes exactly one audit row: `ok` inside the same transaction as the change (so a failed change
leaves neither the change nor an "ok" row), or `denied` / `refused` / `failed` afterwards.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import peewee

from services import changes
from services.errors import AppError, PermissionDenied, StripeRefused
from services.models import AuditRecord, tuples
from services.money import format_amount
from services.permissions import Permission, Role, allowed, why_not
from services.redaction import redact

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    OK = "ok"
    REFUSED = "refused"  # Stripe said no (declined, invalid, bad key)
    DENIED = "denied"  # the operator lacks the permission
    FAILED = "failed"  # anything else went wrong; nothing was changed


@dataclass(frozen=True)
class Actor:
    """The operator on whose behalf services act."""

    login: str
    display_name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission)


@dataclass
class ActionRecord:
    """Filled in by the code inside `Authority.action` before it ends."""

    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stripe_request_id: str | None = None
    idempotency_key: str | None = None
    _writes: Callable[[], AbstractContextManager[None]] | None = field(
        default=None, repr=False, compare=False
    )

    def writes(self) -> AbstractContextManager[None]:
        """The one short transaction for the action's local changes and its "ok" row.

        In a `stripe_first` action the body calls Stripe with no transaction open, then writes
        what Stripe answered inside this block; elsewhere the body is one transaction already
        and this adds nothing."""
        return self._writes() if self._writes is not None else nullcontext()


#: Parameter names holding money in minor units (formatted with the row's `currency`).
_MONEY_KEYS = frozenset(
    {"amount", "unit_amount", "total", "amount_due", "amount_paid", "amount_remaining",
     "refunded_amount"}
)  # fmt: skip
#: Parameter names holding a time in seconds since the epoch.
_TIME_KEYS = frozenset({"expires_at", "due_date", "paid_at", "issued_at", "created", "since",
                        "until", "at"})  # fmt: skip


def describe_params(params: Mapping[str, Any], currency: str | None = None) -> str:
    """An audit row's parameters as a person reads them: money formatted in its currency (never
    raw cents), times as local date and time, nested values in brackets; keys sorted."""
    currency = str(params.get("currency") or currency or "") or None
    parts = []
    for key in sorted(params):
        value = params[key]
        label = key.replace("_", " ")
        if isinstance(value, Mapping):
            parts.append(f"{label}: [{describe_params(value, currency)}]")
        elif key in _MONEY_KEYS and isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{label}: {format_amount(value, currency) if currency else value}")
        elif key in _TIME_KEYS and isinstance(value, int) and value > 10**8:
            seconds = value / 1000 if value > 10**11 else value
            parts.append(f"{label}: {datetime.fromtimestamp(seconds):%Y-%m-%d %H:%M}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
            parts.append(f"{label}: {value:,}")
        elif isinstance(value, list | tuple):
            parts.append(f"{label}: {', '.join(str(v) for v in value)}")
        elif value is None or value == "":
            continue
        else:
            parts.append(f"{label}: {value}")
    return " · ".join(parts)


class AuditRow(NamedTuple):
    id: int
    at: int  # milliseconds since the epoch
    operator: str
    role: str
    action: str
    target: str
    params: dict[str, Any]
    outcome: str
    stripe_request_id: str
    idempotency_key: str
    reason: str
    error: str


@dataclass(frozen=True)
class AuditFilter:
    operator: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "operator.")
    target: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int | None = None


def _clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-safe and redacted: audit parameters never hold a secret."""
    text = redact(json.dumps(dict(params), default=str, sort_keys=True))
    cleaned: dict[str, Any] = json.loads(text)
    return cleaned


class _Denial(PermissionDenied):
    """A refusal `Authority.require` has recorded, with what it recorded."""

    def __init__(self, message: str, action: str, target: str | None) -> None:
        super().__init__(message)
        self.action = action
        self.target = target
        self.audited = True  # so an enclosing action() does not record it twice


def _outcome_for(exc: BaseException) -> Outcome:
    if isinstance(exc, PermissionDenied):
        return Outcome.DENIED
    if isinstance(exc, StripeRefused):
        return Outcome.REFUSED
    return Outcome.FAILED


class Authority:
    """Permission checks and audit records for one signed-in operator."""

    def __init__(self, db: peewee.Database, actor: Actor) -> None:
        self._db = db
        self.actor = actor

    def can(self, permission: Permission) -> bool:
        return self.actor.can(permission)

    def require(self, permission: Permission, action: str, target: str | None = None) -> None:
        """Raise `PermissionDenied` (and record the attempt) unless the operator may do this."""
        if self.actor.can(permission):
            return
        message = why_not(self.actor.role, permission)
        self._write(action, Outcome.DENIED, ActionRecord(target=target), error=message)
        raise _Denial(message, action, target)

    @contextmanager
    def action(
        self,
        permission: Permission,
        action: str,
        *,
        target: str | None = None,
        params: Mapping[str, Any] | None = None,
        reason: str | None = None,
        stripe_first: bool = False,
    ) -> Iterator[ActionRecord]:
        """Check `permission`, run the body, and audit the outcome.

        The body runs in one transaction and the "ok" row joins it. With `stripe_first` no
        transaction is open while the body runs: it calls Stripe (on SQLite a transaction
        holds the write lock, so a slow call would lock out every other writer, the webhook
        listener included), then writes the outcome inside `record.writes()`, the short
        transaction the "ok" row joins.
        """
        self.require(permission, action, target)
        record = ActionRecord(target=target, params=dict(params or {}))
        committed = rolled_back = False

        @contextmanager
        def writes() -> Iterator[None]:
            nonlocal committed, rolled_back
            try:
                with self._db.atomic():
                    yield
                    self._write(action, Outcome.OK, record, reason=reason)
            except BaseException:
                rolled_back = True
                raise
            committed = True

        try:
            if stripe_first:
                record._writes = writes
                yield record
                if not committed:  # nothing local to change: the "ok" row alone
                    with writes():
                        pass
            else:
                with writes():
                    yield record
        except BaseException as exc:
            if committed or isinstance(exc, GeneratorExit):
                raise
            if getattr(exc, "audited", False):
                if rolled_back and isinstance(exc, _Denial):
                    # Its "denied" row was written inside the transaction that just rolled
                    # back: written again, or the refusal would leave no trace.
                    self._audit_failure(exc.action, Outcome.DENIED, ActionRecord(exc.target), exc)
                raise
            if isinstance(exc, AppError) and exc.request_id and not record.stripe_request_id:
                record.stripe_request_id = exc.request_id
            self._audit_failure(action, _outcome_for(exc), record, exc, reason=reason)
            raise

    def _audit_failure(
        self,
        action: str,
        outcome: Outcome,
        record: ActionRecord,
        exc: BaseException,
        *,
        reason: str | None = None,
    ) -> None:
        """The row of an action that did not happen; a failure to write it is logged, so the
        operator still sees the action's own error."""
        error = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
        try:
            self._write(action, outcome, record, reason=reason, error=error)
        except peewee.PeeweeException:
            log.exception("Could not write the audit row for a failed %s", action)

    def record(
        self,
        action: str,
        *,
        target: str | None = None,
        params: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """Record a change made on the operator's behalf outside `action()` (e.g. the first
        sign-in, or a repair whose steps each have their own transaction)."""
        self._write(
            action, Outcome.OK, ActionRecord(target=target, params=dict(params or {})),
            reason=reason,
        )  # fmt: skip

    def record_failure(self, action: str, exc: AppError, *, target: str | None = None) -> None:
        """Record an action that failed outside `action()` (e.g. a long, paged sync)."""
        record = ActionRecord(target=target, stripe_request_id=exc.request_id)
        self._write(action, _outcome_for(exc), record, error=str(exc))

    def _write(
        self,
        action: str,
        outcome: Outcome,
        record: ActionRecord,
        *,
        reason: str | None = None,
        error: str | None = None,
    ) -> None:
        # Inside a caller's transaction this joins it; otherwise it is its own statement.
        AuditRecord.insert(
            at=int(time.time() * 1000),
            operator=self.actor.login,
            role=self.actor.role.value,
            action=action,
            target=record.target,
            params=_clean_params(record.params),
            outcome=outcome.value,
            stripe_request_id=record.stripe_request_id,
            idempotency_key=record.idempotency_key,
            reason=redact(reason) if reason else None,
            error=redact(error) if error else None,
        ).execute()
        changes.note(audit=True)


class AuditLog:
    """Reading and exporting the audit log (finance and admins)."""

    def __init__(self, db: peewee.Database, authority: Authority) -> None:
        self._db = db
        self._authority = authority

    def records(self, flt: AuditFilter | None = None) -> list[AuditRow]:
        self._authority.require(Permission.VIEW_AUDIT, "audit.list")
        return self._query(flt or AuditFilter())

    def actions(self) -> list[str]:
        """Distinct action names, for the panel's filter."""
        self._authority.require(Permission.VIEW_AUDIT, "audit.list")
        query = AuditRecord.select(AuditRecord.action).distinct().order_by(AuditRecord.action)
        return [a for (a,) in tuples(query)]

    def export_csv(self, path: Path, flt: AuditFilter | None = None) -> int:
        """Write the matching rows to `path` as CSV; return how many. Recorded in the log."""
        with self._authority.action(Permission.EXPORT, "audit.export", target=str(path)) as record:
            self._authority.require(Permission.VIEW_AUDIT, "audit.export", str(path))
            rows = self._query(flt or AuditFilter())
            # Imported here: services.export reads rows of this module's types.
            from services.export import AUDIT, write_file

            write_file(path, AUDIT, rows)
            record.params = {"rows": len(rows)}
        return len(rows)

    def _query(self, flt: AuditFilter) -> list[AuditRow]:
        query = AuditRecord.select(
            AuditRecord.id,
            AuditRecord.at,
            AuditRecord.operator,
            AuditRecord.role,
            AuditRecord.action,
            peewee.fn.COALESCE(AuditRecord.target, ""),
            AuditRecord.params,
            AuditRecord.outcome,
            peewee.fn.COALESCE(AuditRecord.stripe_request_id, ""),
            peewee.fn.COALESCE(AuditRecord.idempotency_key, ""),
            peewee.fn.COALESCE(AuditRecord.reason, ""),
            peewee.fn.COALESCE(AuditRecord.error, ""),
        ).order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
        if flt.operator:
            query = query.where(AuditRecord.operator == flt.operator)
        if flt.action:
            if flt.action.endswith("."):
                query = query.where(AuditRecord.action.startswith(flt.action))
            else:
                query = query.where(AuditRecord.action == flt.action)
        if flt.target:
            query = query.where(AuditRecord.target.contains(flt.target))
        if flt.since_ms is not None:
            query = query.where(AuditRecord.at >= flt.since_ms)
        if flt.until_ms is not None:
            query = query.where(AuditRecord.at < flt.until_ms)
        if flt.limit:
            query = query.limit(flt.limit)
        rows = []
        for t in tuples(query):
            params = t[6]
            if isinstance(params, str):  # selected raw: JSONText is not applied to tuples
                params = json.loads(params)
            rows.append(AuditRow._make((*t[:6], params or {}, *t[7:])))
        return rows
