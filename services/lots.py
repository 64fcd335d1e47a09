"""Credits in lots: where each credit came from, what spends it, and when it expires.

Every ledger entry that adds credits (a purchase, a grant, a plan renewal) opens a **lot**; every
entry that takes credits away (a spend, a clawback, an expiry) draws from lots in a fixed order
and records what it took from which lot (`credit_allocation`), so "how much of what was paid is
left" is the sum of the paid lots' `remaining` (deferred revenue).

The drawing order (also `services.credit_sql`, which implements the same on PostgreSQL):

1. a clawback takes from the lot of the purchase it reverses first;
2. promotional lots (grants) before paid ones (purchases, plan renewals);
3. the soonest expiry first, lots that never expire last;
4. the oldest first.

What no live lot covers is overdraft (`credit_account.debt`): a spend may only go there up to
the customer's overdraft limit (admins set it; 0 by default), a clawback always may (the money
went back). The next lot to arrive pays the overdraft back first.

*Available* = paid + promotional - overdraft; expired lots never count, even before the listener
writes their `expiry` entry. *Pending* (open or settling top-up links) is shown apart and never
spendable.

Concurrency: every change of one customer's ledger holds that customer's `credit_account` row —
SQLite's `BEGIN IMMEDIATE` (one writer at a time), PostgreSQL's `SELECT … FOR UPDATE` inside the
SQL functions. On PostgreSQL this module only calls those functions, so the app and a product
backend calling `consume_credits` share one implementation.
"""

from __future__ import annotations

import calendar
import json
import time
from dataclasses import dataclass
from typing import Any

import peewee

from services import validation
from services.audit import Authority
from services.credit_sql import INSUFFICIENT, KEY_REUSED
from services.errors import AppError, NotFound, ValidationError
from services.models import CreditAccount, Customer, TeamSetting, TopUp
from services.permissions import Permission
from services.topup_status import TopUpStatus

PAID_KINDS = ("purchase", "plan_renewal")
EXPIRY_SETTING = "credit_purchase_expiry_months"


class InsufficientCredits(AppError):
    """A spend larger than the available credits (plus the customer's overdraft limit)."""

    exit_code = 2


class KeyReused(ValidationError):
    """An idempotency key already used to spend a different amount or for another customer."""


@dataclass(frozen=True)
class Balances:
    customer_id: str
    available: int  # paid + promotional - overdraft: what may be spent now
    paid: int
    promotional: int
    overdraft: int  # credits spent on overdraft, not yet paid back
    overdraft_limit: int
    pending: int  # credits of top-up links issued and not yet paid: never spendable
    next_expiry_at: int | None
    next_expiry_credits: int


@dataclass(frozen=True)
class Allocation:
    lot_id: int | None  # None: the part taken on overdraft
    lot_kind: str
    credits: int


@dataclass(frozen=True)
class Spend:
    entry_id: int
    customer_id: str
    credits: int
    key: str
    reference: str
    created_at: int
    available: int  # the customer's available credits right after this call
    replayed: bool  # True: the key was used before; this is that first spend
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True)
class Lot:
    id: int
    kind: str
    amount: int
    remaining: int
    source: str
    created_at: int
    expires_at: int | None


def _is_pg(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def _sql(db: peewee.Database, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]


def _now() -> int:
    return int(time.time())


# ---- the engine: SQLite in Python, PostgreSQL through services.credit_sql -----------------


def lock(db: peewee.Database, customer_id: str) -> None:
    """Hold `customer_id`'s ledger until the transaction ends. Call it before writing a ledger
    entry, then `absorb` after (credits.py's purchase, grant and clawback writers do)."""
    if _is_pg(db):
        _sql(db, "SELECT 1 FROM billing_credit_lock(%s)", (customer_id,))
    else:
        _lock_sqlite(db, customer_id)


def absorb(db: peewee.Database, customer_id: str) -> int:
    """Turn the customer's ledger entries written since the last call into lots and draws."""
    if _is_pg(db):
        return int(_sql(db, "SELECT billing_absorb(%s)", (customer_id,)).fetchone()[0])
    return _absorb_sqlite(db, customer_id)


def true_up(db: peewee.Database, customer_id: str) -> int:
    """Make each of the customer's lots follow its ledger entry again after a hand edit of the
    ledger (reconcile's repair): the difference goes to what is left, or to overdraft. Returns
    how many lots changed. Call it inside the repair's transaction."""
    if _is_pg(db):
        return int(_sql(db, "SELECT billing_true_up(%s)", (customer_id,)).fetchone()[0])
    _absorb_sqlite(db, customer_id)
    changed = _sql(
        db,
        "SELECT l.id, l.amount, l.remaining, e.amount FROM credit_lot l JOIN credit_entry e "
        "ON e.id = l.entry_id WHERE l.customer_id = ? AND e.amount <> l.amount",
        (customer_id,),
    ).fetchall()
    for lot_id, amount, remaining, entry_amount in changed:
        left_over = remaining + entry_amount - amount
        _sql(
            db,
            "UPDATE credit_lot SET amount = ?, remaining = ? WHERE id = ?",
            (entry_amount, max(0, left_over), lot_id),
        )
        if left_over < 0:
            _sql(
                db,
                "UPDATE credit_account SET debt = debt - ? WHERE customer_id = ?",
                (left_over, customer_id),
            )
    return len(changed)


def expire_due(db: peewee.Database) -> int:
    """Write an `expiry` entry for what is left of every lot past its expiry; once per lot,
    however late (the listener calls it at start and on every catch-up). Returns how many."""
    if _is_pg(db):
        with db.atomic():
            return int(_sql(db, "SELECT billing_expire_credits()").fetchone()[0])
    with db.atomic():
        return _expire_sqlite(db)


def _lock_sqlite(db: peewee.Database, customer_id: str) -> tuple[int, int, int]:
    _sql(
        db,
        "INSERT OR IGNORE INTO credit_account (customer_id, overdraft_limit, debt, absorbed_to) "
        "VALUES (?, 0, 0, 0)",
        (customer_id,),
    )
    row = _sql(
        db,
        "SELECT overdraft_limit, debt, absorbed_to FROM credit_account WHERE customer_id = ?",
        (customer_id,),
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _open_lot_sqlite(db: peewee.Database, entry: tuple[Any, ...]) -> None:
    entry_id, customer_id, amount, kind, source, topup_id, created_at, expires_at = entry
    lot_kind = kind if kind in PAID_KINDS else "grant"
    cursor = _sql(
        db,
        "INSERT INTO credit_lot (customer_id, entry_id, kind, priority, amount, remaining, "
        "source, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (customer_id, entry_id, lot_kind, 0 if lot_kind == "grant" else 1, amount, amount,
         topup_id or source, created_at, expires_at),
    )  # fmt: skip
    lot_id = cursor.lastrowid
    owed = _sql(
        db, "SELECT debt FROM credit_account WHERE customer_id = ?", (customer_id,)
    ).fetchone()[0]
    if owed > 0:
        take = min(owed, amount)
        _sql(db, "UPDATE credit_lot SET remaining = remaining - ? WHERE id = ?", (take, lot_id))
        _sql(
            db,
            "UPDATE credit_account SET debt = debt - ? WHERE customer_id = ?",
            (take, customer_id),
        )
        _sql(
            db,
            "INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (?, ?, ?)",
            (entry_id, lot_id, take),
        )


_LIVE_LOTS = (
    "SELECT id, remaining FROM credit_lot WHERE customer_id = ? AND remaining > 0 "
    "AND (expires_at IS NULL OR expires_at > ?) "
    "ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END, priority, "
    "CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END, expires_at, created_at, id"
)


def _draw_sqlite(
    db: peewee.Database,
    customer_id: str,
    entry_id: int,
    credits: int,
    now: int,
    first_lot: int | None,
    debt_limit: int | None,
) -> bool:
    """Draw `credits` for `entry_id` in the documented order; False (nothing written) when
    that would take the overdraft past `debt_limit` (None: no limit)."""
    owed = _sql(
        db, "SELECT debt FROM credit_account WHERE customer_id = ?", (customer_id,)
    ).fetchone()[0]
    lots = _sql(db, _LIVE_LOTS, (customer_id, now, first_lot)).fetchall()
    live = sum(r for _id, r in lots)
    if debt_limit is not None and owed + max(0, credits - live) > debt_limit:
        return False
    need = credits
    for lot_id, remaining in lots:
        if need == 0:
            break
        take = min(need, remaining)
        _sql(db, "UPDATE credit_lot SET remaining = remaining - ? WHERE id = ?", (take, lot_id))
        _sql(
            db,
            "INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (?, ?, ?)",
            (entry_id, lot_id, take),
        )
        need -= take
    if need > 0:
        _sql(
            db,
            "UPDATE credit_account SET debt = debt + ? WHERE customer_id = ?",
            (need, customer_id),
        )
        _sql(
            db,
            "INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (?, NULL, ?)",
            (entry_id, need),
        )
    return True


def _absorb_sqlite(db: peewee.Database, customer_id: str) -> int:
    _limit, _debt, absorbed_to = _lock_sqlite(db, customer_id)
    entries = _sql(
        db,
        "SELECT id, customer_id, amount, kind, source, topup_id, created_at, expires_at "
        "FROM credit_entry WHERE customer_id = ? AND id > ? ORDER BY id",
        (customer_id, absorbed_to),
    ).fetchall()
    now = _now()
    for entry in entries:
        entry_id, _c, amount, kind, source, topup_id = entry[:6]
        if amount > 0:
            _open_lot_sqlite(db, entry)
        elif amount < 0:
            first_lot = None
            paid_for = None
            if kind == "clawback":
                paid_for = topup_id or (
                    source[len("unpaid:") :] if (source or "").startswith("unpaid:") else None
                )
            if paid_for:
                row = _sql(
                    db,
                    "SELECT l.id FROM credit_lot l JOIN credit_entry p ON p.id = l.entry_id "
                    "WHERE p.kind = 'purchase' AND p.source = ? AND l.customer_id = ?",
                    (paid_for, customer_id),
                ).fetchone()
                first_lot = row[0] if row else None
            _draw_sqlite(db, customer_id, entry_id, -amount, now, first_lot, None)
    if entries:
        _sql(
            db,
            "UPDATE credit_account SET absorbed_to = ? WHERE customer_id = ?",
            (entries[-1][0], customer_id),
        )
    return len(entries)


def _expire_sqlite(db: peewee.Database) -> int:
    now = _now()
    due = _sql(
        db,
        "SELECT id, customer_id FROM credit_lot WHERE expires_at <= ? AND remaining > 0 "
        "ORDER BY expires_at, id",
        (now,),
    ).fetchall()
    count = 0
    for lot_id, customer_id in due:
        _absorb_sqlite(db, customer_id)
        kind, amount, remaining, expires_at = _sql(
            db, "SELECT kind, amount, remaining, expires_at FROM credit_lot WHERE id = ?", (lot_id,)
        ).fetchone()
        if remaining <= 0:
            continue
        cursor = _sql(
            db,
            "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, reason, "
            "created_at) VALUES (?, ?, 'expiry', ?, 'expiry', ?, ?)",
            (customer_id, -remaining, f"expiry:{lot_id}",
             f"{remaining} of {amount} credits ({kind}, lot {lot_id}) expired", expires_at),
        )  # fmt: skip
        entry_id = cursor.lastrowid
        _sql(
            db,
            "INSERT INTO credit_allocation (entry_id, lot_id, amount) VALUES (?, ?, ?)",
            (entry_id, lot_id, remaining),
        )
        _sql(db, "UPDATE credit_lot SET remaining = 0 WHERE id = ?", (lot_id,))
        _sql(
            db,
            "UPDATE credit_account SET absorbed_to = ? WHERE customer_id = ?",
            (entry_id, customer_id),
        )
        count += 1
    return count


def _available_sqlite(db: peewee.Database, customer_id: str, now: int) -> int:
    """`billing_available`: live lots - overdraft + entries not yet in lots."""
    row = _sql(
        db,
        "SELECT COALESCE((SELECT SUM(remaining) FROM credit_lot WHERE customer_id = ?1 "
        "AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?2)), 0) "
        "- COALESCE((SELECT debt FROM credit_account WHERE customer_id = ?1), 0) "
        "+ COALESCE((SELECT SUM(amount) FROM credit_entry WHERE customer_id = ?1 AND id > "
        "COALESCE((SELECT absorbed_to FROM credit_account WHERE customer_id = ?1), 0)), 0)",
        (customer_id, now),
    ).fetchone()
    return int(row[0])


def _consume_sqlite(
    db: peewee.Database, customer_id: str, credits: int, key: str, reference: str, operator: str
) -> tuple[int, bool, int]:
    with db.atomic():  # BEGIN IMMEDIATE: one writer at a time
        if not _sql(db, "SELECT 1 FROM customer WHERE stripe_id = ?", (customer_id,)).fetchone():
            raise NotFound(f"No customer {customer_id} in the local mirror.")
        _absorb_sqlite(db, customer_id)
        prior = _sql(
            db,
            "SELECT id, customer_id, amount FROM credit_entry WHERE kind = 'spend' AND source = ?",
            (key,),
        ).fetchone()
        if prior is not None:
            _check_prior(key, customer_id, credits, prior[1], -prior[2])
            return int(prior[0]), True, _available_sqlite(db, customer_id, _now())
        limit = _sql(
            db, "SELECT overdraft_limit FROM credit_account WHERE customer_id = ?", (customer_id,)
        ).fetchone()[0]
        now = _now()
        cursor = _sql(
            db,
            "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, reason, "
            "created_at) VALUES (?, ?, 'spend', ?, ?, ?, ?)",
            (customer_id, -credits, key, operator, reference or None, now),
        )
        entry_id = int(cursor.lastrowid)
        if not _draw_sqlite(db, customer_id, entry_id, credits, now, None, limit):
            raise _Insufficient(customer_id, credits)
        _sql(
            db,
            "UPDATE credit_account SET absorbed_to = ? WHERE customer_id = ?",
            (entry_id, customer_id),
        )
        return entry_id, False, _available_sqlite(db, customer_id, now)


class _Insufficient(Exception):
    """Raised inside the transaction (rolling the spend back), turned into the message after."""

    def __init__(self, customer_id: str, credits: int) -> None:
        super().__init__(customer_id)
        self.customer_id = customer_id
        self.credits = credits


def _check_prior(key: str, customer_id: str, credits: int, prior_customer: str, prior: int) -> None:
    if prior_customer != customer_id or prior != credits:
        raise KeyReused(
            f"The key {key} was already used to spend {prior:,} credits of {prior_customer}: "
            "use a new key for a new spend."
        )


def _consume_pg(
    db: peewee.Database, customer_id: str, credits: int, key: str, reference: str
) -> tuple[int, bool, int]:
    try:
        with db.atomic():
            row = _sql(
                db,
                "SELECT entry_id, replayed, available FROM consume_credits(%s, %s, %s, %s)",
                (customer_id, credits, key, reference or None),
            ).fetchone()
    except peewee.DatabaseError as exc:
        orig = getattr(exc, "orig", None) or exc.__cause__ or exc
        code = getattr(orig, "pgcode", None)
        detail = str(getattr(getattr(orig, "diag", None), "message_primary", "") or orig)
        if code == INSUFFICIENT:
            raise _Insufficient(customer_id, credits) from None
        if code == KEY_REUSED:
            raise KeyReused(f"{detail.strip()}: use a new key for a new spend.") from None
        if code == "P0002":
            raise NotFound(f"No customer {customer_id} in the local mirror.") from None
        if code == "22023":
            raise ValidationError(detail.strip().capitalize() + ".") from None
        raise
    return int(row[0]), bool(row[1]), int(row[2])


def consume(
    db: peewee.Database,
    customer_id: str,
    credits: int,
    key: str,
    reference: str = "",
    operator: str = "app",
) -> Spend:
    """Spend `credits` of `customer_id`'s, exactly once per `key` (see `LotService.consume`)."""
    credits = validation.positive_int(credits, "Credits", maximum=10**12)
    key = validation.text(key, "An idempotency key", max_len=255, required=True)
    reference = validation.text(reference or "", "The reference", max_len=500)
    try:
        if _is_pg(db):
            done = _consume_pg(db, customer_id, credits, key, reference)
        else:
            done = _consume_sqlite(db, customer_id, credits, key, reference, operator)
    except _Insufficient:
        have = balances(db, customer_id)
        extra = f" (overdraft limit {have.overdraft_limit:,})" if have.overdraft_limit else ""
        raise InsufficientCredits(
            f"Not enough credits: {customer_id} has {have.available:,} available{extra}, "
            f"{credits:,} asked. Nothing was spent."
        ) from None
    return _spend(db, *done)


def _spend(db: peewee.Database, entry_id: int, replayed: bool, available: int) -> Spend:
    p = "%s" if _is_pg(db) else "?"
    customer_id, amount, key, reference, created_at = _sql(
        db,
        f"SELECT customer_id, amount, source, reason, created_at FROM credit_entry WHERE id = {p}",
        (entry_id,),
    ).fetchone()
    allocations = tuple(
        Allocation(lot_id, lot_kind or "overdraft", int(credits))
        for lot_id, lot_kind, credits in _sql(
            db,
            "SELECT a.lot_id, l.kind, a.amount FROM credit_allocation a "
            f"LEFT JOIN credit_lot l ON l.id = a.lot_id WHERE a.entry_id = {p} ORDER BY a.id",
            (entry_id,),
        ).fetchall()
    )
    return Spend(
        entry_id, customer_id, -int(amount), key, reference or "", int(created_at),
        available, replayed, allocations,
    )  # fmt: skip


def balances(db: peewee.Database, customer_id: str, now: int | None = None) -> Balances:
    """The customer's balances now (the same numbers as PostgreSQL's `credit_balance` view)."""
    now = _now() if now is None else now
    p = "%s" if _is_pg(db) else "?"
    paid, promotional = _sql(
        db,
        "SELECT COALESCE(SUM(CASE WHEN priority > 0 THEN remaining ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN priority = 0 THEN remaining ELSE 0 END), 0) FROM credit_lot "
        f"WHERE customer_id = {p} AND remaining > 0 AND (expires_at IS NULL OR expires_at > {p})",
        (customer_id, now),
    ).fetchone()
    account = _sql(
        db,
        f"SELECT debt, overdraft_limit, absorbed_to FROM credit_account WHERE customer_id = {p}",
        (customer_id,),
    ).fetchone() or (0, 0, 0)
    unabsorbed = _sql(
        db,
        f"SELECT COALESCE(SUM(amount), 0) FROM credit_entry WHERE customer_id = {p} AND id > {p}",
        (customer_id, account[2]),
    ).fetchone()[0]
    pending = (
        TopUp.select(peewee.fn.COALESCE(peewee.fn.SUM(TopUp.credits), 0))
        .where(
            (TopUp.customer_id == customer_id)
            & (
                (TopUp.status == TopUpStatus.PENDING.value)
                | ((TopUp.status == TopUpStatus.OPEN.value) & (TopUp.expires_at > now))
            )
        )
        .scalar()
    )
    nxt = _sql(
        db,
        "SELECT expires_at, SUM(remaining) FROM credit_lot WHERE customer_id = "
        f"{p} AND remaining > 0 AND expires_at > {p} GROUP BY expires_at ORDER BY expires_at "
        "LIMIT 1",
        (customer_id, now),
    ).fetchone()
    return Balances(
        customer_id=customer_id,
        available=int(paid) + int(promotional) - int(account[0]) + int(unabsorbed),
        paid=int(paid),
        promotional=int(promotional),
        overdraft=int(account[0]),
        overdraft_limit=int(account[1]),
        pending=int(pending or 0),
        next_expiry_at=int(nxt[0]) if nxt else None,
        next_expiry_credits=int(nxt[1]) if nxt else 0,
    )


def all_balances(
    db: peewee.Database, now: int | None = None
) -> dict[str, tuple[int, int, int, int]]:
    """Customer id -> (available, paid, promotional, pending) for every customer with live
    lots, an overdraft, entries not yet in lots or pending links (the rest are all zero)."""
    now = _now() if now is None else now
    p = "%s" if _is_pg(db) else "?"
    found: dict[str, list[int]] = {}

    def row(cid: str) -> list[int]:
        return found.setdefault(cid, [0, 0, 0, 0])

    for cid, paid, promo in _sql(
        db,
        "SELECT customer_id, SUM(CASE WHEN priority > 0 THEN remaining ELSE 0 END), "
        "SUM(CASE WHEN priority = 0 THEN remaining ELSE 0 END) FROM credit_lot "
        f"WHERE remaining > 0 AND (expires_at IS NULL OR expires_at > {p}) GROUP BY customer_id",
        (now,),
    ).fetchall():
        r = row(cid)
        r[0] += int(paid) + int(promo)
        r[1], r[2] = int(paid), int(promo)
    for cid, debt in _sql(
        db, "SELECT customer_id, debt FROM credit_account WHERE debt <> 0"
    ).fetchall():
        row(cid)[0] -= int(debt)
    for cid, unabsorbed in _sql(
        db,
        "SELECT e.customer_id, SUM(e.amount) FROM credit_entry e LEFT JOIN credit_account a "
        "ON a.customer_id = e.customer_id WHERE e.id > COALESCE(a.absorbed_to, 0) "
        "GROUP BY e.customer_id",
    ).fetchall():
        row(cid)[0] += int(unabsorbed)
    for cid, pending in _sql(
        db,
        f"SELECT customer_id, SUM(credits) FROM top_up WHERE status = {p} OR "
        f"(status = {p} AND expires_at > {p}) GROUP BY customer_id",
        (TopUpStatus.PENDING.value, TopUpStatus.OPEN.value, now),
    ).fetchall():
        row(cid)[3] = int(pending)
    return {cid: (r[0], r[1], r[2], r[3]) for cid, r in found.items()}


def lots_of(db: peewee.Database, customer_id: str) -> list[Lot]:
    p = "%s" if _is_pg(db) else "?"
    rows = _sql(
        db,
        "SELECT id, kind, amount, remaining, COALESCE(source, ''), created_at, expires_at "
        f"FROM credit_lot WHERE customer_id = {p} ORDER BY created_at, id",
        (customer_id,),
    ).fetchall()
    return [Lot(int(r[0]), r[1], int(r[2]), int(r[3]), r[4], int(r[5]), r[6]) for r in rows]


def add_months(when: int, months: int) -> int:
    """`when` plus whole calendar months (the 31st becomes the month's last day), in UTC."""
    t = time.gmtime(when)
    month0 = t.tm_mon - 1 + months
    year, month = t.tm_year + month0 // 12, month0 % 12 + 1
    day = min(t.tm_mday, calendar.monthrange(year, month)[1])
    return calendar.timegm((year, month, day, t.tm_hour, t.tm_min, t.tm_sec, 0, 0, 0))


def purchase_expiry_months() -> int:
    """The team's setting: purchased credits expire this many months after the purchase (0:
    never, the default)."""
    row = (
        TeamSetting.select(TeamSetting.value)
        .where(TeamSetting.key == EXPIRY_SETTING)
        .order_by(TeamSetting.set_at.desc(), TeamSetting.id.desc())
        .first()
    )
    try:
        return max(0, int(json.loads(row.value))) if row is not None else 0
    except (TypeError, ValueError):
        return 0


def purchase_expiry(created_at: int) -> int | None:
    """When credits purchased at `created_at` expire under the team's setting (None: never)."""
    months = purchase_expiry_months()
    return add_months(created_at, months) if months else None


def parse_expiry_date(value: str, now: int | None = None) -> int:
    """A grant's expiry typed as YYYY-MM-DD: the end of that day (UTC), in the future."""
    text = (value or "").strip()
    try:
        day = time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValidationError(f"An expiry date is YYYY-MM-DD, not {text!r}.") from None
    at = calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 23, 59, 59, 0, 0, 0))
    if at <= (_now() if now is None else now):
        raise ValidationError(f"The expiry date {text} is not in the future.")
    return at


class LotService:
    """Lots, spending, overdraft and the purchase-expiry setting, with the app's permissions.

    Who may spend from the app: admins, through `Permission.CONSUME_CREDITS` (the CLI's
    `credits consume`). A product backend spends through PostgreSQL's `consume_credits` with the
    `billing_product` role (EXECUTE on that function and SELECT on `credit_balance`, nothing
    else), never through staff logins."""

    def __init__(self, db: peewee.Database, authority: Authority) -> None:
        self._db = db
        self._authority = authority

    def balances(self, customer_id: str) -> Balances:
        self._authority.require(Permission.BROWSE, "credits.show", customer_id)
        return balances(self._db, customer_id)

    def lots(self, customer_id: str) -> list[Lot]:
        self._authority.require(Permission.BROWSE, "credits.show", customer_id)
        return lots_of(self._db, customer_id)

    def consume(
        self, customer_id: str, credits: int, idempotency_key: str, reference: str = ""
    ) -> Spend:
        """Spend credits, atomically and exactly once per key.

        A retry with the same key returns the first spend (`replayed`); the same key with
        another amount or customer raises `KeyReused`. Refused spends write nothing and are not
        remembered: retrying one after credits arrived may succeed.

        Raises:
            InsufficientCredits: more than available + the overdraft limit (exit code 2).
        """
        self._authority.require(Permission.CONSUME_CREDITS, "credits.consume", customer_id)
        return consume(
            self._db, customer_id, credits, idempotency_key, reference,
            self._authority.actor.login,
        )  # fmt: skip

    def set_overdraft(self, customer_id: str, limit: int, reason: str) -> Balances:
        """Allow `customer_id` to spend up to `limit` credits below zero (admins; audited)."""
        reason = validation.text(reason, "A reason", max_len=500, required=True)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 10**9:
            raise ValidationError("An overdraft limit is a whole number of credits, 0 or more.")
        with self._authority.action(
            Permission.GRANT_CREDITS, "credits.overdraft", target=customer_id,
            params={"limit": limit}, reason=reason,
        ):  # fmt: skip
            if not Customer.select().where(Customer.stripe_id == customer_id).exists():
                raise NotFound(f"No customer {customer_id} in the local mirror.")
            with self._db.atomic():
                lock(self._db, customer_id)
                CreditAccount.update(overdraft_limit=limit).where(
                    CreditAccount.customer_id == customer_id
                ).execute()
        return balances(self._db, customer_id)

    def set_purchase_expiry_months(self, months: int, reason: str | None = None) -> int:
        """Purchased credits expire `months` after purchase from now on (0: never). Admins."""
        if isinstance(months, bool) or not isinstance(months, int) or not 0 <= months <= 120:
            raise ValidationError("Purchased credits expire after 0 (never) to 120 months.")
        with self._authority.action(
            Permission.MANAGE_SETTINGS, "credits.purchase_expiry", target="credits",
            params={"before": purchase_expiry_months(), "after": months}, reason=reason,
        ):  # fmt: skip
            TeamSetting.insert(
                key=EXPIRY_SETTING, value=json.dumps(months),
                set_by=self._authority.actor.login, set_at=_now(), reason=reason,
            ).execute()  # fmt: skip
        return purchase_expiry_months()

    def expire_due(self) -> int:
        """Expire what is due (the listener's job; anyone who may see credits can run it)."""
        self._authority.require(Permission.BROWSE, "credits.expire")
        return expire_due(self._db)
