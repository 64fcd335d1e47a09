"""First sync pull and a no-change re-sync of 10,000 customers from the sandbox, next to a bare one.

Ours: `SyncService.pull(CUSTOMERS)` into the mirror (SQLite file; PostgreSQL too when
BILLING_ADMIN_TEST_PG_DSN is set, in a private schema dropped after). Baseline, in the same run
and interleaved with ours: stripe-python's `auto_paging_iter` and one `executemany` per page of
100 into a plain table (id, email, name, JSON) — the least a pull through stripe-python costs.
Five repetitions each; medians with min and max. Goal: ratio <= 1.2x.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import stripe

from bench.results import Line, Result, spread
from services.audit import Authority
from services.database import open_database
from services.models import Customer
from services.operators import sign_in
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer

KEY = "sk_test_bench_sync"
CUSTOMERS = 10_000
REPS = 5
GOAL = 1.2
PG_DSN_VAR = "BILLING_ADMIN_TEST_PG_DSN"


def _seed(srv: SandboxServer, client: stripe.StripeClient, count: int) -> None:
    """10,000 customers cloned from one genuine one straight into the sandbox's store."""
    genuine = client.v1.customers.create({"email": "bench@example.com", "name": "Bench"})
    stored = srv._store.get("customer", genuine.id)
    assert stored is not None
    for n in range(1, count):
        clone = copy.deepcopy(stored)
        clone.update(id=f"cus_bench{n:06d}", email=f"c{n}@example.com", name=f"Customer {n}")
        srv._store.add(clone)


class _Bare:
    """The baseline's plain table, over sqlite3 or psycopg2."""

    def __init__(self, conn: Any, placeholder: str) -> None:
        self.conn = conn
        p = placeholder
        self.sql = (
            f"INSERT INTO bare_customer (id, email, name, raw) VALUES ({p}, {p}, {p}, {p}) "
            "ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, "
            "raw = excluded.raw"
        )

    def empty(self) -> None:
        cur = self.conn.cursor()
        cur.execute("DROP TABLE IF EXISTS bare_customer")
        cur.execute(
            "CREATE TABLE bare_customer (id TEXT PRIMARY KEY, email TEXT, name TEXT, raw TEXT)"
        )
        self.conn.commit()

    def pull(self, client: stripe.StripeClient) -> int:
        objects = iter(client.v1.customers.list({"limit": 100}).auto_paging_iter())
        done = 0
        while page := list(islice(objects, 100)):
            rows = [(o.id, o.email, o.name, json.dumps(o.to_dict(for_json=True)))
                    for o in page]  # fmt: skip
            cur = self.conn.cursor()
            cur.executemany(self.sql, rows)
            self.conn.commit()
            done += len(rows)
        return done


@contextmanager
def _backends(tmp: Path) -> Iterator[list[tuple[str, str, _Bare]]]:
    """(label, database URL for ours, bare table) for SQLite and, with a DSN, PostgreSQL."""
    found = [("SQLite", f"sqlite:///{tmp / 'ours.sqlite3'}",
              _Bare(sqlite3.connect(tmp / "bare.sqlite3"), "?"))]  # fmt: skip
    dsn = os.environ.get(PG_DSN_VAR)
    admin = None
    schema = f"bench_sync_{uuid.uuid4().hex[:8]}"
    if dsn:
        import psycopg2

        admin = psycopg2.connect(dsn)
        admin.autocommit = True
        admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
        bare = psycopg2.connect(dsn, options=f"-csearch_path={schema}")
        sep = "&" if "?" in dsn else "?"
        found.append(
            ("PostgreSQL", f"{dsn}{sep}options=-csearch_path%3D{schema}", _Bare(bare, "%s"))
        )
    try:
        yield found
    finally:
        for _, _, bare_table in found:
            bare_table.conn.close()
        if admin is not None:
            admin.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.close()


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _measure(srv: SandboxServer, label: str, url: str, bare: _Bare, count: int) -> list[Line]:
    client = stripe.StripeClient(KEY, base_addresses={"api": srv.url})
    db = open_database(url)
    try:
        sync = SyncService(db, StripeGateway(KEY, api_base=srv.url, sandbox=True),
                           Authority(db, sign_in(db, "bench")))  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in ("bare1", "ours1", "bare2", "ours2")}
        for _ in range(REPS):
            bare.empty()
            Customer.delete().execute()
            times["bare1"].append(_timed(lambda: bare.pull(client)))
            times["ours1"].append(_timed(lambda: sync.pull(SyncTarget.CUSTOMERS)))
            times["bare2"].append(_timed(lambda: bare.pull(client)))
            times["ours2"].append(_timed(lambda: sync.pull(SyncTarget.CUSTOMERS)))
        assert Customer.select().count() == count
    finally:
        db.close()
    lines: list[Line] = []
    for what, ours, base in (
        ("first pull", "ours1", "bare1"),
        ("no-change re-sync", "ours2", "bare2"),
    ):
        value, baseline = statistics.median(times[ours]), statistics.median(times[base])
        ratio = value / baseline
        met = ratio <= GOAL
        lines.append(Result(
            name=f"sync {what}, {count:,} customers, {label}", value=round(value, 3),
            unit="s", baseline=round(baseline, 3), ratio=round(ratio, 3),
            goal=f"ratio <= {GOAL}x", met=met,
            text=(f"sync {what}, {count:,} customers, {label}: {spread(times[ours])}  "
                  f"(bare auto_paging_iter + executemany: {spread(times[base])}; ratio "
                  f"{ratio:.2f}x, goal <= {GOAL}x){'' if met else '  BELOW GOAL'}"),
        ))  # fmt: skip
    return lines


def run(quick: bool = False) -> list[Line]:
    logging.getLogger("stripe_sandbox").setLevel(logging.WARNING)
    logging.getLogger("services.sync").setLevel(logging.WARNING)
    count = 500 if quick else CUSTOMERS
    srv = SandboxServer(port=0)
    srv.start()
    try:
        _seed(srv, stripe.StripeClient(KEY, base_addresses={"api": srv.url}), count)
        lines: list[Line] = []
        with (
            tempfile.TemporaryDirectory(prefix="billing-admin-sync-") as tmp,
            _backends(Path(tmp)) as backends,
        ):
            for label, url, bare in backends:
                lines += _measure(srv, label, url, bare, count)
        if not os.environ.get(PG_DSN_VAR):
            lines.append(
                f"sync on PostgreSQL: skipped ({PG_DSN_VAR} is not set; e.g. "
                "postgresql://postgres@127.0.0.1:5432/test)"
            )
        return lines
    finally:
        srv.stop()


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
