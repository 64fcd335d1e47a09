"""Read-only views of the local mirror for the panels and the CLI: plain typed rows, no I/O leaks.

Rows are NamedTuples: building 100,000 of them costs a fraction of what dataclasses would, and a
table model can read their fields without any database access.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import peewee

from services import lots
from services.audit import Authority
from services.errors import ValidationError
from services.models import CreditEntry, Customer, Price, Product, tuples
from services.permissions import Permission


class CustomerRow(NamedTuple):
    stripe_id: str
    name: str
    email: str
    phone: str
    currency: str
    balance: int
    created: int
    deleted: bool
    metadata_text: str  # the metadata as stored (JSON text), for search


#: Longer search text is a mistake (a pasted file), not a name: refused before any query.
MAX_SEARCH_CHARS = 1000


def fold(text: str) -> str:
    """Unicode case folding, the same whichever database holds the rows.

    SQLite's LIKE and lower() fold ASCII only (`'Ü' LIKE 'ü'` is false) while PostgreSQL's ILIKE
    folds by its collation; Python's casefold() treats Ünïcödé, ÅSA, ǅemal and Straße alike
    on both.
    """
    return text.casefold()


def search_needle(text: str) -> str:
    """The folded search text, or `ValidationError` when it cannot be a real search."""
    text = text.strip()
    if len(text) > MAX_SEARCH_CHARS:
        raise ValidationError(
            f"The search text is too long ({len(text):,} characters; at most {MAX_SEARCH_CHARS:,})."
        )
    return fold(text)


class PriceRow(NamedTuple):
    stripe_id: str
    product_id: str
    currency: str
    unit_amount: int | None
    active: bool
    lookup_key: str
    recurring: bool = False  # a subscription's price: never on an invoice line or a top-up


class ProductRow(NamedTuple):
    stripe_id: str
    name: str
    active: bool
    credits: int | None
    created: int
    prices: tuple[PriceRow, ...]

    @property
    def default_price(self) -> PriceRow | None:
        active = [p for p in self.prices if p.active]
        return active[0] if active else (self.prices[0] if self.prices else None)


class InvoiceRow(NamedTuple):
    stripe_id: str
    number: str
    customer_id: str
    customer_name: str
    status: str
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    created: int
    due_date: int | None


class CreditBalanceRow(NamedTuple):
    customer_id: str
    customer_name: str
    email: str
    balance: int  # available: paid + promotional - overdraft (services.lots)
    entries: int
    last_entry_at: int
    paid: int = 0
    promotional: int = 0
    pending: int = 0  # in unpaid top-up links: shown apart, never spendable


class BrowseService:
    """Queries over the local database (peewee keeps one connection per thread)."""

    def __init__(self, db: peewee.Database, authority: Authority) -> None:
        self._db = db
        self._authority = authority

    def customers(self, *, include_deleted: bool = False) -> list[CustomerRow]:
        self._authority.require(Permission.BROWSE, "customers.list")
        query = Customer.select(
            Customer.stripe_id,
            peewee.fn.COALESCE(Customer.name, ""),
            peewee.fn.COALESCE(Customer.email, ""),
            peewee.fn.COALESCE(Customer.phone, ""),
            peewee.fn.COALESCE(Customer.currency, ""),
            Customer.balance,
            Customer.created,
            Customer.deleted,
            # Raw JSON text: searchable as is, no per-row parsing for 100k customers.
            peewee.fn.COALESCE(Customer.metadata, "").coerce(False),
        ).order_by(Customer.created.desc(), Customer.id.desc())
        if not include_deleted:
            query = query.where(Customer.deleted == False)  # noqa: E712
        return [CustomerRow._make((*t[:7], bool(t[7]), t[8])) for t in tuples(query)]

    def customers_by_id(self, ids: Collection[str]) -> list[CustomerRow]:
        """These customers' rows (deleted ones too, marked), in one query: what a window
        re-reads when events or a sync changed a few of them (perf-refresh)."""
        self._authority.require(Permission.BROWSE, "customers.list")
        rows: list[CustomerRow] = []
        wanted = sorted(ids)
        for at in range(0, len(wanted), 500):  # SQLite's bound parameters, comfortably
            query = Customer.select(
                Customer.stripe_id,
                peewee.fn.COALESCE(Customer.name, ""),
                peewee.fn.COALESCE(Customer.email, ""),
                peewee.fn.COALESCE(Customer.phone, ""),
                peewee.fn.COALESCE(Customer.currency, ""),
                Customer.balance,
                Customer.created,
                Customer.deleted,
                peewee.fn.COALESCE(Customer.metadata, "").coerce(False),
            ).where(Customer.stripe_id.in_(wanted[at : at + 500]))
            rows += [CustomerRow._make((*t[:7], bool(t[7]), t[8])) for t in tuples(query)]
        return rows

    def find_customers(self, text: str) -> list[CustomerRow]:
        """Customers (newest first) whose name, email or Stripe id contains `text`, in any case.

        Matched in Python with Unicode case folding rather than in SQL, so SQLite and
        PostgreSQL find the same customers (and no LIKE pattern can be too complex).
        """
        needle = search_needle(text)
        rows = self.customers()
        if not needle:
            return rows
        return [r for r in rows if needle in fold(f"{r.name}\n{r.email}\n{r.stripe_id}")]

    def products(self) -> list[ProductRow]:
        self._authority.require(Permission.BROWSE, "products.list")
        prices: dict[str, list[PriceRow]] = {}
        price_query = Price.select(
            Price.stripe_id,
            Price.product_id,
            Price.currency,
            Price.unit_amount,
            Price.active,
            peewee.fn.COALESCE(Price.lookup_key, ""),
            Price.type,
        ).order_by(Price.created.desc(), Price.id.desc())
        for t in tuples(price_query):
            row = PriceRow._make((*t[:4], bool(t[4]), t[5], t[6] == "recurring"))
            prices.setdefault(row.product_id, []).append(row)
        product_query = Product.select(
            Product.stripe_id, Product.name, Product.active, Product.credits, Product.created
        ).order_by(Product.active.desc(), Product.name)
        return [
            ProductRow(sid, name, bool(active), credits, created, tuple(prices.get(sid, ())))
            for sid, name, active, credits, created in tuples(product_query)
        ]

    def credit_balances(self) -> list[CreditBalanceRow]:
        self._authority.require(Permission.BROWSE, "credit_balances.list")
        query = (
            CreditEntry.select(
                CreditEntry.customer_id,
                peewee.fn.COALESCE(Customer.name, ""),
                peewee.fn.COALESCE(Customer.email, ""),
                peewee.fn.SUM(CreditEntry.amount),
                peewee.fn.COUNT(CreditEntry.id),
                peewee.fn.MAX(CreditEntry.created_at),
            )
            .join(
                Customer,
                peewee.JOIN.LEFT_OUTER,
                on=(Customer.stripe_id == CreditEntry.customer_id),
            )
            .group_by(CreditEntry.customer_id, Customer.name, Customer.email)
            .order_by(peewee.fn.MAX(CreditEntry.created_at).desc())
        )
        split = lots.all_balances(self._db)
        rows = []
        for cid, name, email, _total, n, last in tuples(query):
            available, paid, promotional, pending = split.get(cid, (0, 0, 0, 0))
            rows.append(CreditBalanceRow(cid, name, email, available, int(n), int(last or 0),
                                         paid, promotional, pending))  # fmt: skip
        return rows
