"""A database holding a few hand-checked rows of every list, in USD and in JPY (zero-decimal).

The values are chosen so an export can be checked by eye: -$2.10, ¥1,500, 2025-12-01 09:30 UTC.
"""

from __future__ import annotations

from pathlib import Path

import peewee

from services.database import open_database
from services.identity import current_login
from services.models import CreditEntry, Customer, Invoice, Price, Product, TopUp, WebhookEvent
from services.operators import sign_in

#: 2025-12-01T09:30:00+00:00
T0 = 1_764_581_400
T0_ISO = "2025-12-01T09:30:00+00:00"
EVIL_NAME = '=HYPERLINK("http://x","y")'


def _mirror(model: type[peewee.Model], stripe_id: str, created: int, **fields: object) -> None:
    model.insert(stripe_id=stripe_id, created=created, raw={}, synced_at=T0, **fields).execute()


def seed(db: peewee.Database) -> None:
    """Customers, products, invoices, credits, top-ups and an event; times from `T0`."""
    with db.atomic():
        _mirror(Customer, "cus_usd", T0, name="Ada Lovelace", email="ada@example.com",
                phone="+44 20 7946 0001", currency="usd", balance=-210)  # fmt: skip
        _mirror(Customer, "cus_jpy", T0 - 60, name="山田 花子", email="hanako@example.jp",
                currency="jpy", balance=1500)  # fmt: skip
        _mirror(Customer, "cus_evil", T0 - 120, name=EVIL_NAME, email="evil@example.com")
        _mirror(Product, "prod_usd", T0, name="Pack USD", credits=500, default_price_id="price_usd")
        _mirror(Price, "price_usd", T0, product_id="prod_usd", currency="usd", unit_amount=1000)
        _mirror(Product, "prod_jpy", T0, name="Pack JPY", default_price_id="price_jpy")
        _mirror(Price, "price_jpy", T0, product_id="prod_jpy", currency="jpy", unit_amount=1500)
        _mirror(Invoice, "in_usd", T0, customer_id="cus_usd", number="USD-0001", status="paid",
                currency="usd", total=2599, amount_due=2599, amount_paid=2599,
                amount_remaining=0)  # fmt: skip
        _mirror(Invoice, "in_jpy", T0 - 60, customer_id="cus_jpy", number="JPY-0001",
                status="open", currency="jpy", total=1500, amount_due=1500, amount_paid=0,
                amount_remaining=1500, due_date=T0 + 86_400)  # fmt: skip
        CreditEntry.insert_many(
            [
                {
                    "customer_id": "cus_usd",
                    "amount": 500,
                    "kind": "grant",
                    "source": "g1",
                    "operator": "test",
                    "reason": "goodwill",
                    "created_at": T0,
                },
                {
                    "customer_id": "cus_usd",
                    "amount": -210,
                    "kind": "clawback",
                    "source": "re_1",
                    "operator": "stripe",
                    "reason": "",
                    "created_at": T0 + 60,
                },
            ]
        ).execute()
        TopUp.insert_many(
            [
                {
                    "topup_id": "tu_usd",
                    "customer_id": "cus_usd",
                    "credits": 500,
                    "amount": 5000,
                    "currency": "usd",
                    "status": "credited",
                    "checkout_session_id": "cs_usd",
                    "issued_by": "test",
                    "issued_at": T0,
                    "expires_at": T0 + 86_340,
                    "paid_at": T0 + 600,
                },
                {
                    "topup_id": "tu_jpy",
                    "customer_id": "cus_jpy",
                    "credits": 100,
                    "amount": 1500,
                    "currency": "jpy",
                    "status": "open",
                    "checkout_session_id": "cs_jpy",
                    "issued_by": "test",
                    "issued_at": T0 - 60,
                    "expires_at": T0 + 86_280,
                },
            ]
        ).execute()
        WebhookEvent.insert(
            evt_id="evt_1", type="customer.updated", object_id="cus_usd", created=T0,
            received_at=T0 * 1000 + 500, source="receiver", status="applied", attempts=1, raw={},
        ).execute()  # fmt: skip


def seeded_database(path: Path) -> str:
    """A SQLite file with `seed()`'s rows whose first operator (admin) is this OS login."""
    url = f"sqlite:///{path}"
    db = open_database(url)
    try:
        sign_in(db, current_login(db))
        seed(db)
    finally:
        db.close()
    return url
