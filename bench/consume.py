"""Spending credits: `lots.consume` throughput (ops/s), one process, one customer, a fresh key per
call, on SQLite and (when BILLING_ADMIN_TEST_PG_DSN is set, in a private schema dropped after)
PostgreSQL through its `consume_credits` function.

Baseline, in the same run and on the same database: a bare single-statement spend,
`UPDATE bare_balance SET credits = credits - ? WHERE customer_id = ? AND credits >= ?`, one
transaction per call (no lots, no idempotency key, no allocation rows). Goals: on PostgreSQL
at least 0.2x the bare rate (both wait for the same commit; a consume is one function call);
on SQLite, where a commit costs little, at least 0.05x and 1,000 ops/s (a consume is about 15
statements — the key check, the lock row, the entry, each lot drawn and its allocation —
against the bare spend's one).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee

from bench.results import Line, Result
from services import lots
from services.database import open_database
from services.models import CreditEntry, Customer

PG_DSN_VAR = "BILLING_ADMIN_TEST_PG_DSN"
CALLS = 3_000
QUICK_CALLS = 300
CUSTOMER = "cus_bench"


@contextmanager
def _backends(tmp: Path) -> Iterator[list[tuple[str, str]]]:
    found = [("SQLite", f"sqlite:///{tmp / 'consume.sqlite3'}")]
    dsn = os.environ.get(PG_DSN_VAR)
    admin = None
    schema = f"bench_consume_{uuid.uuid4().hex[:8]}"
    if dsn:
        import psycopg2

        admin = psycopg2.connect(dsn)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in dsn else "?"
        found.append(("PostgreSQL", f"{dsn}{sep}options=-csearch_path%3D{schema}"))
    try:
        yield found
    finally:
        if admin is not None:
            admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.close()


def _measure(label: str, url: str, calls: int) -> list[Line]:
    db = open_database(url)
    p = "%s" if isinstance(db, peewee.PostgresqlDatabase) else "?"
    try:
        now = int(time.time())
        Customer.insert(stripe_id=CUSTOMER, created=now, raw={}, synced_at=now).execute()
        with db.atomic():
            lots.lock(db, CUSTOMER)
            for i in range(20):  # a realistic handful of lots: grants and purchases
                CreditEntry.insert(
                    customer_id=CUSTOMER, amount=calls, kind="grant" if i % 2 else "purchase",
                    source=f"bench_{i}", operator="bench", created_at=now + i,
                    expires_at=now + 86400 * (i + 1) if i % 3 == 0 else None,
                ).execute()  # fmt: skip
            lots.absorb(db, CUSTOMER)
        db.execute_sql(
            "CREATE TABLE bare_balance (customer_id VARCHAR(255) PRIMARY KEY, credits BIGINT)"
        )
        db.execute_sql(f"INSERT INTO bare_balance VALUES ({p}, {p})", (CUSTOMER, 20 * calls))
        rates: dict[str, list[float]] = {"bare": [], "ours": []}
        for run in range(3):
            t0 = time.perf_counter()
            for _ in range(calls):
                with db.atomic():
                    db.execute_sql(
                        "UPDATE bare_balance SET credits = credits - 1 "
                        f"WHERE customer_id = {p} AND credits >= 1",
                        (CUSTOMER,),
                    )
            rates["bare"].append(calls / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(calls):
                lots.consume(db, CUSTOMER, 1, f"bench-{run}-{i}", "bench", "bench")
            rates["ours"].append(calls / (time.perf_counter() - t0))
    finally:
        db.close()
    ours = sorted(rates["ours"])[1]
    bare = sorted(rates["bare"])[1]
    ratio = ours / bare
    goal = "ratio >= 0.2x" if label == "PostgreSQL" else "ratio >= 0.05x and >= 1,000 ops/s"
    ok = ratio >= 0.2 if label == "PostgreSQL" else (ratio >= 0.05 and ours >= 1000)
    name = f"consume, {label}"
    text = (
        f"{name}: {ours:,.0f} ops/s (bare single UPDATE: {bare:,.0f} ops/s; ratio "
        f"{ratio:.2f}x; median of 3 x {calls:,}){'' if ok else '  BELOW GOAL'}"
    )
    return [Result(name, round(ours, 1), "ops/s", round(bare, 1), round(ratio, 3),
                   goal, ok, text)]  # fmt: skip


def run(quick: bool = False) -> list[Line]:
    calls = QUICK_CALLS if quick else CALLS
    lines: list[Line] = []
    with (
        tempfile.TemporaryDirectory(prefix="billing-admin-consume-") as tmp,
        _backends(Path(tmp)) as backends,
    ):
        for label, url in backends:
            lines.extend(_measure(label, url, calls))
    return lines


if __name__ == "__main__":
    import sys

    for line in run(quick="--quick" in sys.argv):
        print(line)
