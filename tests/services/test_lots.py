"""Credits in lots, on both engines: the drawing order, spending exactly once per key, overdraft,
clawbacks, expiry (also after the listener was down), and carrying an old ledger into lots."""

from __future__ import annotations

import multiprocessing
import random
import time
from typing import Any

import peewee
import pytest

from services import lots, migrations
from services.audit import Authority
from services.credits import CreditService, _write_purchase
from services.database import open_database
from services.errors import NotFound, PermissionDenied, ValidationError
from services.lots import InsufficientCredits, KeyReused, LotService
from services.models import CreditEntry, Customer, TopUp
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.settings import Settings
from services.stripe_gateway import StripeGateway

CUSTOMER = "cus_lots"


def _customer(cid: str = CUSTOMER) -> str:
    now = int(time.time())
    Customer.insert(stripe_id=cid, created=now, raw={}, synced_at=now, name="Lots").execute()
    return cid


def _credits(db: peewee.Database, authority: Authority) -> CreditService:
    gateway = StripeGateway("sk_test_unused", api_base="http://127.0.0.1:9", sandbox=True)
    return CreditService(db, gateway, authority, Settings())


def _purchase(db: peewee.Database, customer: str, credits: int, source: str) -> None:
    with db.atomic():
        assert _write_purchase(customer, credits, source, None, "test purchase", int(time.time()))


def _exec(db: peewee.Database, sql: str, *params: Any) -> Any:
    if isinstance(db, peewee.PostgresqlDatabase):
        sql = sql.replace("?", "%s")
    return db.execute_sql(sql, params)


def _rows(db: peewee.Database, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return list(_exec(db, sql, *params).fetchall())


def check_books(db: peewee.Database, customer: str) -> None:
    """The lots agree with the ledger: nothing overdrawn, every draw accounted for."""
    (ledger,) = _rows(db, "SELECT COALESCE(SUM(amount), 0) FROM credit_entry WHERE customer_id = ?",
                      customer)[0]  # fmt: skip
    (remaining,) = _rows(
        db, "SELECT COALESCE(SUM(remaining), 0) FROM credit_lot WHERE customer_id = ?", customer
    )[0]
    debt = _rows(db, "SELECT debt FROM credit_account WHERE customer_id = ?", customer)
    assert ledger == remaining - (debt[0][0] if debt else 0)
    for lot_id, amount, left in _rows(
        db, "SELECT id, amount, remaining FROM credit_lot WHERE customer_id = ?", customer
    ):
        (drawn,) = _rows(
            db, "SELECT COALESCE(SUM(amount), 0) FROM credit_allocation WHERE lot_id = ?", lot_id
        )[0]
        assert 0 <= left == amount - drawn, f"lot {lot_id}"
    for entry_id, amount in _rows(
        db, "SELECT id, amount FROM credit_entry WHERE customer_id = ? AND amount < 0", customer
    ):
        (drawn,) = _rows(
            db, "SELECT COALESCE(SUM(amount), 0) FROM credit_allocation WHERE entry_id = ?",
            entry_id,
        )[0]  # fmt: skip
        assert drawn == -amount, f"entry {entry_id}"


def test_spending_draws_promotional_then_soonest_expiry_then_oldest(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    credits = _credits(database, authority)
    now = int(time.time())
    _purchase(database, CUSTOMER, 500, "tu_old")
    _purchase(database, CUSTOMER, 300, "tu_new")
    credits.grant(CUSTOMER, 100, "late grant", expires_at=now + 90 * 86400)
    credits.grant(CUSTOMER, 50, "soon grant", expires_at=now + 10 * 86400)
    credits.grant(CUSTOMER, 20, "forever grant")
    b = credits.balances(CUSTOMER)
    assert (b.available, b.paid, b.promotional) == (970, 800, 170)
    assert (b.next_expiry_at, b.next_expiry_credits) == (now + 10 * 86400, 50)
    spend = credits.consume(CUSTOMER, 200, "order-1", "order 1")
    kinds = [(a.lot_kind, a.credits) for a in spend.allocations]
    # soonest-expiring grant, the later one, the grant that never expires, then the oldest paid
    assert kinds == [("grant", 50), ("grant", 100), ("grant", 20), ("purchase", 30)]
    assert (spend.available, spend.replayed, spend.reference) == (770, False, "order 1")
    b = credits.balances(CUSTOMER)
    assert (b.paid, b.promotional, b.next_expiry_at) == (770, 0, None)
    # deferred revenue: what is left of what was paid, lot by lot
    left = {lot.source: lot.remaining for lot in LotService(database, authority).lots(CUSTOMER)}
    assert (left["tu_old"], left["tu_new"]) == (470, 300)
    assert credits.balance(CUSTOMER) == 770
    check_books(database, CUSTOMER)


def test_a_key_spends_once_and_a_reused_key_is_refused(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    _customer("cus_other")
    credits = _credits(database, authority)
    credits.grant(CUSTOMER, 100, "start")
    first = credits.consume(CUSTOMER, 30, "k-1")
    again = credits.consume(CUSTOMER, 30, "k-1")
    assert (again.entry_id, again.replayed, again.allocations) == (
        first.entry_id, True, first.allocations,
    )  # fmt: skip
    with pytest.raises(KeyReused, match="already used to spend 30 credits of cus_lots"):
        credits.consume(CUSTOMER, 31, "k-1")
    with pytest.raises(KeyReused):
        credits.consume("cus_other", 30, "k-1")
    assert credits.balance(CUSTOMER) == 70
    spends = CreditEntry.select().where(CreditEntry.kind == "spend").count()
    assert spends == 1


def test_insufficient_credits_spend_nothing_unless_an_overdraft_is_allowed(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    credits = _credits(database, authority)
    service = LotService(database, authority)
    credits.grant(CUSTOMER, 100, "start")
    with pytest.raises(InsufficientCredits, match="has 100 available, 150 asked") as refused:
        credits.consume(CUSTOMER, 150, "big")
    assert refused.value.exit_code == 2
    assert credits.balance(CUSTOMER) == 100
    assert CreditEntry.select().where(CreditEntry.kind == "spend").count() == 0
    with pytest.raises(ValidationError, match="A reason"):
        service.set_overdraft(CUSTOMER, 100, "")
    assert service.set_overdraft(CUSTOMER, 60, "trusted customer").overdraft_limit == 60
    spend = credits.consume(CUSTOMER, 150, "big")  # the refused key may be used again
    assert [(a.lot_id is None, a.credits) for a in spend.allocations] == [(False, 100), (True, 50)]
    b = credits.balances(CUSTOMER)
    assert (b.available, b.overdraft) == (-50, 50)
    with pytest.raises(InsufficientCredits, match="overdraft limit 60"):
        credits.consume(CUSTOMER, 11, "too-far")
    # the next credits pay the overdraft back first
    _purchase(database, CUSTOMER, 200, "tu_after")
    b = credits.balances(CUSTOMER)
    assert (b.available, b.paid, b.overdraft) == (150, 150, 0)
    check_books(database, CUSTOMER)


def test_bad_consume_input_changes_nothing(database: peewee.Database, authority: Authority) -> None:
    _customer()
    credits = _credits(database, authority)
    credits.grant(CUSTOMER, 10, "start")
    for amount, key in [(0, "a"), (-5, "b"), (5, ""), (5, "x" * 256)]:
        with pytest.raises(ValidationError):
            credits.consume(CUSTOMER, amount, key)
    with pytest.raises(NotFound):
        credits.consume("cus_nobody", 1, "c")
    assert credits.balance(CUSTOMER) == 10


def test_only_admins_consume_from_the_app(database: peewee.Database, authority: Authority) -> None:
    _customer()
    OperatorService(database, authority).add("clerk", Role.FINANCE)
    clerk = _credits(database, Authority(database, sign_in(database, "clerk")))
    with pytest.raises(PermissionDenied, match="consume credits"):
        clerk.consume(CUSTOMER, 1, "k")
    assert clerk.balances(CUSTOMER).available == 0  # reading is everyone's


def test_a_clawback_takes_from_its_own_purchase_first_then_overdraft(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    credits = _credits(database, authority)
    credits.grant(CUSTOMER, 100, "promo")
    _purchase(database, CUSTOMER, 300, "tu_refunded")
    credits.consume(CUSTOMER, 150, "s1")  # 100 from the grant, 50 from the purchase
    with database.atomic():
        lots.lock(database, CUSTOMER)
        CreditEntry.insert(
            customer_id=CUSTOMER, amount=-300, kind="clawback", source="re_1",
            topup_id="tu_refunded", operator="stripe", created_at=int(time.time()),
        ).execute()  # fmt: skip
        lots.absorb(database, CUSTOMER)
    b = credits.balances(CUSTOMER)
    assert (b.available, b.paid, b.promotional, b.overdraft) == (-50, 0, 0, 50)
    check_books(database, CUSTOMER)


def test_pending_topups_are_shown_apart_and_never_spendable(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    credits = _credits(database, authority)
    now = int(time.time())
    for i, (status, expires) in enumerate(
        [("open", now + 3600), ("pending", now - 10), ("open", now - 10), ("credited", now)]
    ):
        TopUp.insert(
            topup_id=f"tu_{i}", customer_id=CUSTOMER, credits=100 * (i + 1), amount=1000,
            currency="usd", status=status, checkout_session_id=f"cs_{i}", issued_by="x",
            issued_at=now, expires_at=expires,
        ).execute()  # fmt: skip
    b = credits.balances(CUSTOMER)
    assert (b.pending, b.available) == (300, 0)  # the open link (100) and the settling one (200)
    with pytest.raises(InsufficientCredits):
        credits.consume(CUSTOMER, 1, "k")


def test_expiry_after_a_listener_outage_is_written_once(
    database: peewee.Database, authority: Authority
) -> None:
    """A grant whose expiry passed while nothing ran: never spendable after that moment, and
    the first expiry run (the listener's start-up) writes its entry exactly once."""
    _customer()
    credits = _credits(database, authority)
    now = int(time.time())
    credits.grant(CUSTOMER, 100, "kept")
    with database.atomic():
        lots.lock(database, CUSTOMER)
        CreditEntry.insert(
            customer_id=CUSTOMER, amount=80, kind="grant", operator="test-admin",
            reason="trial", created_at=now - 86400, expires_at=now - 3600,
        ).execute()  # fmt: skip
        lots.absorb(database, CUSTOMER)
    assert credits.balance(CUSTOMER) == 100  # the expired lot counts for nothing already
    spend = credits.consume(CUSTOMER, 30, "after-expiry")
    assert [a.credits for a in spend.allocations] == [30]
    assert lots.expire_due(database) == 1
    assert lots.expire_due(database) == 0  # again (a second listener, a restart): nothing
    [entry] = [e for e in credits.ledger(CUSTOMER) if e.kind == "expiry"]
    assert (entry.amount, entry.created_at) == (-80, now - 3600)
    assert credits.balance(CUSTOMER) == 70
    check_books(database, CUSTOMER)


def test_purchases_expire_after_the_teams_months(
    database: peewee.Database, authority: Authority
) -> None:
    _customer()
    service = LotService(database, authority)
    with pytest.raises(ValidationError):
        service.set_purchase_expiry_months(-1)
    assert service.set_purchase_expiry_months(12, "use it or lose it") == 12
    _purchase(database, CUSTOMER, 100, "tu_expiring")
    [lot] = service.lots(CUSTOMER)
    assert lot.expires_at == lots.add_months(lot.created_at, 12)
    assert lots.add_months(1706659200, 1) == 1709164800  # 2024-01-31 -> 2024-02-29
    with pytest.raises(ValidationError, match="not in the future"):
        lots.parse_expiry_date("2001-01-01")
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        lots.parse_expiry_date("next year")


# ---- the migration keeps every balance


def test_migration_carries_an_old_ledger_into_lots_keeping_every_balance(db_url: str) -> None:
    """A database made by the release before lots (migrations 1..8), with entries written the
    way that release wrote them, keeps every customer's balance after migrating."""
    db = open_database(db_url, run_migrations=False)
    try:
        migrations.migrate(db, [m for m in migrations.MIGRATIONS if m.version <= 8])
        rnd = random.Random(17)
        now = int(time.time())
        expected: dict[str, int] = {}
        for c in range(12):
            cid = f"cus_old{c}"
            _exec(
                db,
                "INSERT INTO customer (stripe_id, livemode, created, raw, synced_at, balance, "
                "metadata, deleted) VALUES (?, false, 0, '{}', 0, 0, '{}', false)",
                cid,
            )
            total = 0
            for n in range(rnd.randint(0, 12)):
                kind = rnd.choice(["purchase", "purchase", "grant", "clawback", "adjustment"])
                amount = rnd.randint(1, 900) * (-1 if kind == "clawback" else 1)
                if kind == "adjustment":
                    amount = rnd.randint(-300, 300)
                topup = f"tu_{c}_{n - 1}" if kind == "clawback" else f"tu_{c}_{n}"
                source = topup if kind == "purchase" else f"re_{c}_{n}" if amount < 0 else None
                _exec(
                    db,
                    "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, "
                    "reason, created_at, topup_id) VALUES (?, ?, ?, ?, 'old', 'r', ?, ?)",
                    cid, amount, kind, source, now - 1000 + n,
                    topup if kind in ("purchase", "clawback") else None,
                )  # fmt: skip
                total += amount
            expected[cid] = total
        applied = migrations.migrate(db)
        assert 10 in applied
        for cid, total in expected.items():
            b = lots.balances(db, cid)
            assert b.available == total, cid
            assert b.available == b.paid + b.promotional - b.overdraft
            check_books(db, cid)
    finally:
        db.close()


# ---- two processes, one customer, many retries


def _worker(url: str, keys: list[str], barrier: Any, results: Any) -> None:
    db = open_database(url, run_migrations=False)
    out: list[tuple[str, int, bool]] = []
    barrier.wait()
    for key in keys:
        credits = 1 + int(key[1:]) % 3
        try:
            spend = lots.consume(db, CUSTOMER, credits, key, f"ref {key}", "worker")
            out.append((key, spend.entry_id, spend.replayed))
        except InsufficientCredits:
            out.append((key, 0, False))
    db.close()
    results.put(out)


@pytest.mark.parametrize("calls", [10_000])
def test_two_processes_consume_exactly_once_per_key(
    database: peewee.Database, authority: Authority, db_url: str, calls: int
) -> None:
    _customer()
    credits = _credits(database, authority)
    now = int(time.time())
    credits.grant(CUSTOMER, 2000, "promo", expires_at=now + 86400 * 30)
    credits.grant(CUSTOMER, 1000, "promo forever")
    _purchase(database, CUSTOMER, 4000, "tu_a")
    _purchase(database, CUSTOMER, 3000, "tu_b")
    rnd = random.Random(10)
    pool = [f"k{i}" for i in range(7000)]
    # Each process draws with replacement from one pool: it retries its own keys and races the
    # other process for the same ones.
    plans = [[rnd.choice(pool) for _ in range(calls // 2)] for _ in range(2)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    # Durability is not what this test is about: PostgreSQL's commits skip the wait for the
    # disk (locks and visibility are unchanged), so it runs in seconds, not minutes.
    url = db_url + "%20-csynchronous_commit%3Doff" if "options=" in db_url else db_url
    procs = [ctx.Process(target=_worker, args=(url, plan, barrier, results)) for plan in plans]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    by_key: dict[str, set[int]] = {}
    first: dict[str, int] = {}
    for out in outcomes:
        for key, entry_id, replayed in out:
            if entry_id:
                by_key.setdefault(key, set()).add(entry_id)
                if not replayed:
                    first[key] = first.get(key, 0) + 1
    assert all(len(ids) == 1 for ids in by_key.values())  # every retry got the first spend
    assert all(n == 1 for n in first.values())  # exactly one call applied each key
    assert set(first) == set(by_key)
    spends = _rows(
        database,
        "SELECT source, amount FROM credit_entry WHERE kind = 'spend' AND customer_id = ?",
        CUSTOMER,
    )
    assert sorted(k for k, _a in spends) == sorted(by_key)  # no key applied twice
    spent = -sum(a for _k, a in spends)
    assert spent == sum(1 + int(k[1:]) % 3 for k in by_key)
    assert credits.balance(CUSTOMER) == 10_000 - spent
    assert any(entry_id == 0 for out in outcomes for _k, entry_id, _r in out)  # ran dry at last
    assert credits.balance(CUSTOMER) < 3  # refused only when nearly nothing was left
    check_books(database, CUSTOMER)
