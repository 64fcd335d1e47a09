"""Read-only views of the local mirror for the panels and the CLI: plain typed rows, no I/O leaks.

Rows are NamedTuples: building 100,000 of them costs a fraction of what dataclasses would, and a
table model can read their fields without any database access.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

import peewee

from services import lots
from services.audit import Authority
from services.errors import ValidationError
from services.models import CreditEntry, Customer, Price, Product, tuples
from services.packed_text import PackedText
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


#: Joins a customer's text fields in `CustomerColumns.text` (ASCII unit separator). Python's
#: str.split() counts it as whitespace, so no search term can contain it.
FIELD_SEPARATOR = "\x1f"


@dataclass(frozen=True, eq=False)
class CustomerColumns:
    """Every listed customer, column by column: what the Customers panel holds at 300,000 rows.

    No tuple per customer: its Stripe id, name, email and phone are one string (`text`, joined
    by `FIELD_SEPARATOR`: one string instead of four saves ~150 bytes a customer, 44 MB at
    300,000), and those strings are packed 64 to an object (`PackedText`: ~60 bytes less a
    customer again, 17 MB at 300,000); amounts and times are 8-byte array items rather than
    int objects; the few distinct currencies and the common "{}" metadata are shared rather
    than one string per row. Row `i` is `row(i)`, built when asked for. A separator inside a
    field (a control character no one types) is shown as U+FFFD.
    """

    text: PackedText
    currency: list[str]
    balance: array[int]
    created: array[int]
    deleted: bytearray
    metadata_text: list[str]
    _shared: dict[str, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.text)

    def fields(self, i: int) -> list[str]:
        """Customer `i`'s [Stripe id, name, email, phone]."""
        return self.text[i].split(FIELD_SEPARATOR)

    def column(self, k: int) -> list[str]:
        """Field `k` (0 Stripe id, 1 name, 2 email, 3 phone) of every customer, in order."""
        return [t.split(FIELD_SEPARATOR)[k] for t in self.text]

    def index_of(self, stripe_id: str) -> int:
        """The row of the customer `stripe_id`; ValueError when there is none."""
        return self.text.index_prefixed(stripe_id + FIELD_SEPARATOR)

    def row(self, i: int) -> CustomerRow:
        sid, name, email, phone = self.text[i].split(FIELD_SEPARATOR)
        meta = self.metadata_text[i] if self.metadata_text else ""
        return CustomerRow(
            sid, name, email, phone, self.currency[i], self.balance[i], self.created[i],
            bool(self.deleted[i]), meta,
        )  # fmt: skip

    def drop_metadata(self) -> None:
        """Forget the metadata text once the search text holds it (~10 MB at 300,000).

        Rows made after this have `metadata_text` "" (nothing shows it; search has it).
        """
        self.metadata_text.clear()

    @classmethod
    def empty(cls) -> CustomerColumns:
        return cls(PackedText(), [], array("q"), array("q"), bytearray(), [])

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, ...]]) -> CustomerColumns:
        """Columns from `CustomerRow`s (or tuples in its field order)."""
        columns = cls.empty()
        columns.extend(rows)
        return columns

    def copy(self) -> CustomerColumns:
        """The same customers in new containers (the strings themselves are shared)."""
        return CustomerColumns(
            self.text.copy(), list(self.currency), array("q", self.balance),
            array("q", self.created), bytearray(self.deleted), list(self.metadata_text),
            dict(self._shared),
        )  # fmt: skip

    def put(self, i: int, row: tuple[Any, ...]) -> None:
        """Customer `i` becomes `row` (a `CustomerRow` or a tuple in its field order)."""
        one = CustomerColumns.from_rows([row])
        currency = one.currency[0]
        self.text[i], self.currency[i] = one.text[0], self._shared.setdefault(currency, currency)
        self.balance[i], self.created[i] = one.balance[0], one.created[0]
        self.deleted[i] = one.deleted[0]
        if self.metadata_text:
            self.metadata_text[i] = one.metadata_text[0]

    def delete(self, i: int) -> None:
        """Forget customer `i` (the rows after it move up one)."""
        del self.text[i], self.currency[i], self.balance[i], self.created[i], self.deleted[i]
        if self.metadata_text:
            del self.metadata_text[i]

    def prepend(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Put `rows` first (newest first, as the services list customers)."""
        new = CustomerColumns.from_rows(rows)
        self.text.prepend(list(new.text))
        self.currency[:0] = [self._shared.setdefault(c, c) for c in new.currency]
        self.balance[:0] = new.balance
        self.created[:0] = new.created
        self.deleted[:0] = new.deleted
        if self.metadata_text:
            self.metadata_text[:0] = new.metadata_text

    def extend(self, rows: Iterable[tuple[Any, ...]], *, metadata: bool = True) -> None:
        """Append rows (tuples in `CustomerRow` field order), sharing repeated short values.

        Column by column (C-level `extend`/`map`): ~4x faster than a Python loop per row.
        `metadata=False` (columns whose metadata was dropped, see `drop_metadata`) keeps none.
        """
        batch = list(rows)
        if not batch:
            return
        sid, name, email, phone, currency, balance, created, deleted, meta = zip(
            *batch, strict=True
        )
        sep = FIELD_SEPARATOR
        fields = list(zip(sid, name, email, phone, strict=True))
        text = [f"{s}{sep}{n}{sep}{e}{sep}{p or ''}" for s, n, e, p in fields]
        if sum(map(str.count, text, repeat(sep))) != 3 * len(text):
            text = [
                sep.join(f.replace(sep, "\ufffd") for f in (s, n, e, p or ""))
                for s, n, e, p in fields
            ]
        share = self._shared.setdefault
        self.text.extend(text)
        self.currency.extend(map(share, currency, currency))
        self.balance.extend(balance)
        self.created.extend(created)
        self.deleted.extend(map(bool, deleted))
        if metadata:
            # Most customers have "{}": one string for all of them, not one per row.
            self.metadata_text.extend([share(m, m) if len(m) <= 2 else m for m in meta])


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
        query = self._customer_query(include_deleted)
        return [CustomerRow._make((*t[:7], bool(t[7]), t[8])) for t in tuples(query)]

    def _customer_query(self, include_deleted: bool) -> peewee.ModelSelect[Customer]:
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
        return query

    def customer_columns(
        self, *, include_deleted: bool = False, limit: int | None = None
    ) -> CustomerColumns:
        """`customers()` as columns (see `CustomerColumns`): the same rows in the same order;
        with `limit`, only the first that many (what the window shows before the rest).

        Read with the driver's cursor in batches, without a tuple per row kept: at 300,000
        customers this is what lets the Customers panel stay compact.
        """
        columns = CustomerColumns.empty()
        for batch in self.customer_batches(include_deleted=include_deleted, limit=limit):
            columns.extend(batch)
        return columns

    def customer_batches(
        self, *, include_deleted: bool = False, limit: int | None = None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """`customer_columns()`'s rows as plain tuples in `CustomerRow` field order, a few
        thousand at a time (for a caller that builds more than columns as they come)."""
        self._authority.require(Permission.BROWSE, "customers.list")
        query = self._customer_query(include_deleted)
        if limit is not None:
            query = query.limit(limit)
        sql, params = query.sql()
        cursor = self._db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
        while batch := cursor.fetchmany(5000):
            yield batch

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
