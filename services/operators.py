"""Operators: staff known to the app, their roles, and signing in."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import peewee

from services.audit import Actor, Authority
from services.errors import NotAnOperator, ValidationError
from services.models import Operator
from services.permissions import Permission, Role

log = logging.getLogger(__name__)

_LOGIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@\-]{0,62}$")


@dataclass(frozen=True)
class OperatorInfo:
    login: str
    display_name: str
    role: Role
    active: bool
    created_at: int
    created_by: str


def _info(op: Operator) -> OperatorInfo:
    return OperatorInfo(
        op.login, op.display_name, Role(op.role), bool(op.active), op.created_at, op.created_by
    )


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValidationError(f"Unknown role {text!r}: choose one of {choices}.") from None


def validate_login(login: str) -> str:
    login = login.strip()
    if not _LOGIN_RE.match(login):
        raise ValidationError(
            f"{login!r} is not a valid login: use letters, digits and . _ - @ (at most 63)."
        )
    return login


def sign_in(db: peewee.Database, login: str) -> Actor:
    """The `Actor` for `login`; the very first operator ever is bootstrapped as admin.

    Raises:
        NotAnOperator: `login` is unknown or deactivated (the app then shows no data).
    """
    with db.atomic():
        op = Operator.get_or_none(Operator.login == login)
        if op is None and not Operator.select().exists():
            _lock_operators(db)  # only a bootstrap needs it (staff may not lock on PostgreSQL)
            op = Operator.get_or_none(Operator.login == login)
        if op is None and not Operator.select().exists():
            now = int(time.time())
            op = Operator.create(
                login=login,
                display_name=login,
                role=Role.ADMIN.value,
                active=True,
                created_at=now,
                created_by=login,
            )
            # Recorded like any other change, in the same transaction.
            Authority(db, Actor(login, login, Role.ADMIN)).record(
                "operator.bootstrap", target=login, params={"role": Role.ADMIN.value}
            )
            log.info("Bootstrapped %s as the first admin", login)
    if op is None:
        raise NotAnOperator(
            f"You ({login}) are not a Billing Admin operator yet. Ask an admin to add you: "
            f"admin-app operators add {login} --role finance|support|admin"
        )
    if not op.active:
        raise NotAnOperator(
            f"Your operator account ({login}) is deactivated. Ask an admin to reactivate it."
        )
    return Actor(op.login, op.display_name, Role(op.role))


def sync_role(db: peewee.Database, login: str) -> None:
    """On a PostgreSQL set up by `admin-app db setup`, give `login`'s database login the group
    role of its operator row (none when deactivated), in the same transaction."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return
    if not db.execute_sql("SELECT to_regproc('billing_sync_role') IS NOT NULL").fetchone()[0]:  # type: ignore[no-untyped-call]
        return  # not set up: the app's checks are the only ones
    try:
        with db.atomic():  # a savepoint, so the message below is the error, not an aborted txn
            db.execute_sql("SELECT billing_sync_role(%s)", (login,))  # type: ignore[no-untyped-call]
    except peewee.ProgrammingError as exc:
        raise ValidationError(str(getattr(exc, "orig", exc)).strip().splitlines()[0]) from None


def _lock_operators(db: peewee.Database) -> None:
    """Serialize the bootstrap: two first starts at once must not both become admin."""
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("LOCK TABLE operator IN SHARE ROW EXCLUSIVE MODE")  # type: ignore[no-untyped-call]
    # SQLite: the insert takes the write lock; the unique login decides between racers.


class OperatorService:
    """Listing and managing operators; changes need 'manage operators' and are audited.

    Args:
        single_seat: on SQLite, the one OS login that may use the database: adding anyone else
            is refused (a file database cannot keep a second person to their role). None on a
            shared PostgreSQL.
    """

    def __init__(
        self, db: peewee.Database, authority: Authority, single_seat: str | None = None
    ) -> None:
        self._db = db
        self._authority = authority
        self._single_seat = single_seat

    @property
    def me(self) -> Actor:
        return self._authority.actor

    def all(self) -> list[OperatorInfo]:
        self._authority.require(Permission.BROWSE, "operators.list")
        return [_info(op) for op in Operator.select().order_by(Operator.login)]

    def add(self, login: str, role: Role, display_name: str | None = None) -> OperatorInfo:
        login = validate_login(login)
        name = (display_name or "").strip() or login
        params = {"login": login, "role": role.value, "display_name": name}
        with self._authority.action(
            Permission.MANAGE_OPERATORS, "operator.add", target=login, params=params
        ):
            if self._single_seat is not None and login != self._single_seat:
                raise ValidationError(
                    f"This SQLite database is single-seat: only {self._single_seat} (the OS "
                    f"user who owns it) can use it, so {login} cannot be added. Several people "
                    "with roles need a shared PostgreSQL database (README: Threat model)."
                )
            if Operator.get_or_none(Operator.login == login) is not None:
                raise ValidationError(f"{login} is already an operator.")
            op = Operator.create(
                login=login,
                display_name=name,
                role=role.value,
                active=True,
                created_at=int(time.time()),
                created_by=self.me.login,
            )
            sync_role(self._db, login)
        return _info(op)

    def set_role(self, login: str, role: Role) -> OperatorInfo:
        params = {"role": role.value}
        with self._authority.action(
            Permission.MANAGE_OPERATORS, "operator.set_role", target=login, params=params
        ) as record:
            op = self._get_for_update(login)
            record.params["previous_role"] = op.role
            if op.role == Role.ADMIN.value and role is not Role.ADMIN and op.active:
                self._ensure_another_admin(login)
            op.role = role.value
            op.save()
            sync_role(self._db, login)
        return _info(op)

    def deactivate(self, login: str) -> OperatorInfo:
        return self._set_active(login, active=False)

    def reactivate(self, login: str) -> OperatorInfo:
        return self._set_active(login, active=True)

    def _set_active(self, login: str, *, active: bool) -> OperatorInfo:
        action = "operator.reactivate" if active else "operator.deactivate"
        with self._authority.action(Permission.MANAGE_OPERATORS, action, target=login):
            op = self._get_for_update(login)
            if not active and op.role == Role.ADMIN.value and op.active:
                self._ensure_another_admin(login)
            op.active = active
            op.save()
            sync_role(self._db, login)
        return _info(op)

    def _get_for_update(self, login: str) -> Operator:
        _lock_operators(self._db)
        op = Operator.get_or_none(Operator.login == login)
        if op is None:
            raise ValidationError(f"{login} is not an operator.")
        return op

    @staticmethod
    def _ensure_another_admin(login: str) -> None:
        others = (
            Operator.select()
            .where(
                (Operator.role == Role.ADMIN.value)
                & (Operator.active == True)  # noqa: E712 (a peewee expression)
                & (Operator.login != login)
            )
            .exists()
        )
        if not others:
            raise ValidationError(
                f"{login} is the last active admin: make someone else admin first."
            )
