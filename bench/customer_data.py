"""A local database of N realistic customers, for the benches that open the Customers panel.

Names mix ASCII and non-ASCII (Zoë, Jürgen, Straße), emails repeat a few domains, about half the
customers have a phone and a third carry metadata; ids look like Stripe's (`cus_` + 14 base62).
Rows go in with one `executemany` per 10,000: 300,000 customers take a few seconds.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.context import AppContext

FIRST = (
    "Anna", "Ben", "Carla", "Dev", "Eli", "Fatima", "George", "Hana", "Ivan", "Jo", "Zoë",
    "Jürgen", "Åsa", "Søren", "Chloé", "Mateo", "Ngozi", "Priya", "Wei", "Ōta",
)  # fmt: skip
LAST = (
    "Kowalski", "Smith", "Nguyen", "Müller", "Garcia", "Okafor", "Straße", "Lindqvist",
    "O'Brien", "Rossi", "Tanaka", "Dubois", "Haddad", "Kim", "Novak", "Silva",
)  # fmt: skip
DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "example.co.uk")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def customer_values(i: int, rng: random.Random, now: int) -> tuple[object, ...]:
    """One customer's column values, in `COLUMNS` order."""
    first, last = FIRST[rng.randrange(len(FIRST))], LAST[rng.randrange(len(LAST))]
    sid = "cus_" + "".join(rng.choice(_BASE62) for _ in range(14))
    email = f"{first.lower()}.{last.lower()}{i}@{DOMAINS[i % len(DOMAINS)]}"
    phone = f"+1 555 {rng.randrange(10_000_000):07d}" if i % 2 else None
    metadata = {"account_id": f"acct-{i}"} if i % 3 == 0 else {}
    return (
        sid, 0, now - i * 37, json.dumps({"id": sid}), now, f"{first} {last}", email, phone,
        "usd" if i % 4 else "eur", -(i % 5000), json.dumps(metadata, separators=(",", ":")), 0,
    )  # fmt: skip


COLUMNS = (
    "stripe_id", "livemode", "created", "raw", "synced_at", "name", "email", "phone",
    "currency", "balance", "metadata", "deleted",
)  # fmt: skip


def fill_customers(db_path: Path, count: int, seed: int = 15) -> None:
    """Create (migrate) the database at `db_path` and insert `count` customers."""
    from services.database import open_database

    db = open_database(f"sqlite:///{db_path}")
    try:
        conn = db.connection()
        rng = random.Random(seed)
        now = int(time.time())
        sql = (
            f"INSERT INTO customer ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        with db.atomic():
            for start in range(0, count, 10_000):
                stop = min(count, start + 10_000)
                conn.executemany(sql, [customer_values(i, rng, now) for i in range(start, stop)])
        db.execute_sql("ANALYZE")
    finally:
        db.close()


def read_context(db_path: Path, settings_dir: Path) -> AppContext:
    """The services over the database at `db_path`, as the app builds them (no Stripe calls)."""
    from admin_app.wiring import build_context
    from services.database import open_database
    from services.operators import sign_in
    from services.secrets import SecretStore
    from services.settings import SettingsStore
    from services.stripe_gateway import StripeGateway

    db = open_database(f"sqlite:///{db_path}")
    gateway = StripeGateway("sk_test_bench", api_base="http://127.0.0.1:9", sandbox=True)
    return build_context(
        db, gateway, sign_in(db, "bench"), SettingsStore(settings_dir / "settings.json"),
        SecretStore({}), "bench",
    )  # fmt: skip
