"""CSV exports of every list: one writer for the window and the command line.

The same rows give the same file whichever side asked. Columns are named as in the CLI's JSON.

- **Money** is a decimal amount in the currency's minor-unit precision (`-2.10` USD, `1500` JPY:
  Stripe's zero-decimal currencies, `services.money`), next to a `currency` column.
- **Times** are ISO 8601 in UTC (`2026-12-01T09:30:00+00:00`).
- **Formula injection** (OWASP "CSV Injection"): a *text* cell starting with `=`, `+`, `-`, `@`,
  a tab or a carriage return gets a leading `'`, so a spreadsheet shows it as text instead of
  running it (a customer named `=HYPERLINK(…)` stays a name). Number, money and time cells are
  not guarded: the exporter builds them itself from integers, so they can only be digits with an
  optional leading minus and one decimal point — `-2.10` stays a number a spreadsheet can add up.
  A negative number that arrives as *text* (a name such as `-5`) is guarded like any other text.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from services.errors import ValidationError
from services.money import major_units_text
from services.permissions import Permission

if TYPE_CHECKING:  # services.audit writes its own CSV with this module
    from services.audit import Authority

#: OWASP's list of characters that make a spreadsheet treat a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Kind(enum.Enum):
    TEXT = "text"
    NUMBER = "number"  # an int
    MONEY = "money"  # an int in the minor unit; the row's currency comes from `Field.currency`
    SECONDS = "seconds"  # a Unix time in seconds
    MILLIS = "millis"  # a Unix time in milliseconds
    BOOL = "bool"


@dataclass(frozen=True)
class Field:
    """One CSV column: its header, how to read it from a row, and what kind of value it is."""

    name: str
    get: Callable[[Any], Any]
    kind: Kind = Kind.TEXT
    currency: Callable[[Any], str] | None = None  # for MONEY


def neutralize(text: str) -> str:
    """A text cell a spreadsheet shows as text: formula starters get a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def decimal_amount(amount: int, currency: str) -> str:
    """`-210, "usd"` → `"-2.10"`; `1500, "jpy"` → `"1500"` (no separators, no symbol)."""
    return major_units_text(int(amount), currency or "")


def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _cell(f: Field, row: Any) -> str:
    value = f.get(row)
    if value is None or (value == "" and f.kind is not Kind.TEXT):
        return ""
    if f.kind is Kind.TEXT:
        return neutralize(str(value))
    if f.kind is Kind.NUMBER:
        return str(int(value))
    if f.kind is Kind.MONEY:
        assert f.currency is not None, f.name
        return decimal_amount(value, f.currency(row))
    if f.kind is Kind.SECONDS:
        return iso_utc(int(value)) if value else ""
    if f.kind is Kind.MILLIS:
        return iso_utc(int(value) / 1000) if value else ""
    return "true" if value else "false"


@dataclass(frozen=True)
class Table:
    """The CSV shape of one list (customers, invoices, …)."""

    name: str
    fields: tuple[Field, ...]

    def header(self) -> list[str]:
        return [f.name for f in self.fields]

    def cells(self, row: Any) -> list[str]:
        return [_cell(f, row) for f in self.fields]


def write(out: TextIO, table: Table, rows: Iterable[Any]) -> int:
    """Write the header and `rows` to `out`; return how many rows."""
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as spreadsheets expect
    writer.writerow(table.header())
    count = 0
    for row in rows:
        writer.writerow(table.cells(row))
        count += 1
    return count


def to_text(table: Table, rows: Iterable[Any]) -> str:
    buffer = io.StringIO()
    write(buffer, table, rows)
    return buffer.getvalue()


def write_file(path: Path, table: Table, rows: Sequence[Any]) -> int:
    """Write a CSV file whole or not at all (a temporary file renamed into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except (OSError, ValueError) as exc:
        raise ValidationError(
            f"Cannot write {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        # Plain UTF-8 without a byte-order mark: the same bytes as `--csv` on stdout, and a
        # header scripts can read as is.
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            count = write(fh, table, rows)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ValidationError(f"Cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


class ExportService:
    """Exports for one operator: needs the *export* permission, and each file is audited."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    def require(self, table: Table) -> None:
        """Raise `PermissionDenied` (audited) unless this operator may export."""
        self._authority.require(Permission.EXPORT, f"{table.name}.export")

    def to_file(self, path: Path, table: Table, rows: Sequence[Any]) -> int:
        """Write `rows` to `path` as CSV; return how many. Recorded in the audit log."""
        self.require(table)
        count = write_file(path, table, rows)
        self._authority.record(f"{table.name}.export", target=str(path), params={"rows": count})
        return count

    def to_stream(self, out: TextIO, table: Table, rows: Iterable[Any]) -> int:
        """Write `rows` as CSV to `out` (e.g. stdout); recorded in the audit log."""
        self.require(table)
        count = write(out, table, rows)
        self._authority.record(f"{table.name}.export", target="stdout", params={"rows": count})
        return count


def _currency(row: Any) -> str:
    return str(row.currency or "")


def _money(name: str, get: Callable[[Any], Any]) -> Field:
    return Field(name, get, Kind.MONEY, _currency)


def _price_currency(row: Any) -> str:
    price = row.default_price
    return price.currency if price else ""


CUSTOMERS = Table(
    "customers",
    (
        Field("id", lambda r: r.stripe_id),
        Field("name", lambda r: r.name),
        Field("email", lambda r: r.email),
        Field("phone", lambda r: r.phone),
        _money("balance", lambda r: r.balance),
        Field("currency", _currency),
        Field("created", lambda r: r.created, Kind.SECONDS),
    ),
)

PRODUCTS = Table(
    "products",
    (
        Field("id", lambda r: r.stripe_id),
        Field("name", lambda r: r.name),
        Field("active", lambda r: r.active, Kind.BOOL),
        Field("credits", lambda r: r.credits, Kind.NUMBER),
        Field("price", lambda r: r.default_price.stripe_id if r.default_price else ""),
        Field(
            "amount",
            lambda r: r.default_price.unit_amount if r.default_price else None,
            Kind.MONEY,
            _price_currency,
        ),
        Field("currency", _price_currency),
        Field("prices", lambda r: len(r.prices), Kind.NUMBER),
        Field("created", lambda r: r.created, Kind.SECONDS),
    ),
)

INVOICES = Table(
    "invoices",
    (
        Field("id", lambda r: r.stripe_id),
        Field("number", lambda r: r.number),
        Field("customer", lambda r: r.customer_id),
        Field("customer_name", lambda r: r.customer_name),
        Field("status", lambda r: r.status),
        Field("overdue", lambda r: r.overdue, Kind.BOOL),
        _money("total", lambda r: r.total),
        _money("amount_due", lambda r: r.amount_due),
        _money("amount_paid", lambda r: r.amount_paid),
        _money("amount_remaining", lambda r: r.amount_remaining),
        Field("currency", _currency),
        Field("created", lambda r: r.created, Kind.SECONDS),
        Field("due_date", lambda r: r.due_date, Kind.SECONDS),
    ),
)

CREDIT_BALANCES = Table(
    "credit_balances",
    (
        Field("customer", lambda r: r.customer_id),
        Field("customer_name", lambda r: r.customer_name),
        Field("email", lambda r: r.email),
        Field("credits", lambda r: r.balance, Kind.NUMBER),
        Field("entries", lambda r: r.entries, Kind.NUMBER),
        Field("last_change", lambda r: r.last_entry_at, Kind.SECONDS),
    ),
)

CREDIT_LEDGER = Table(
    "credit_ledger",
    (
        Field("id", lambda r: r.id, Kind.NUMBER),
        Field("time", lambda r: r.created_at, Kind.SECONDS),
        Field("customer", lambda r: r.customer_id),
        Field("credits", lambda r: r.amount, Kind.NUMBER),
        Field("kind", lambda r: r.kind),
        Field("source", lambda r: r.source),
        Field("operator", lambda r: r.operator),
        Field("reason", lambda r: r.reason),
    ),
)

TOPUPS = Table(
    "topups",
    (
        Field("id", lambda r: r.topup_id),
        Field("customer", lambda r: r.customer_id),
        Field("customer_name", lambda r: r.customer_name),
        Field("credits", lambda r: r.credits, Kind.NUMBER),
        _money("amount", lambda r: r.amount),
        Field("currency", _currency),
        Field("status", lambda r: r.status),
        Field("issued_by", lambda r: r.issued_by),
        Field("issued_at", lambda r: r.issued_at, Kind.SECONDS),
        Field("expires_at", lambda r: r.expires_at, Kind.SECONDS),
        Field("paid_at", lambda r: r.paid_at, Kind.SECONDS),
        Field("checkout_session", lambda r: r.checkout_session_id),
        Field("flagged", lambda r: r.flagged),
    ),
)

EVENTS = Table(
    "events",
    (
        Field("id", lambda r: r.evt_id),
        Field("type", lambda r: r.type),
        Field("object", lambda r: r.object_id),
        Field("created", lambda r: r.created, Kind.SECONDS),
        Field("received_at", lambda r: r.received_at, Kind.MILLIS),
        Field("source", lambda r: r.source),
        Field("status", lambda r: r.status),
        Field("attempts", lambda r: r.attempts, Kind.NUMBER),
        Field("last_error", lambda r: r.last_error),
        Field("flagged", lambda r: r.flagged),
    ),
)


def _params(row: Any) -> str:
    return json.dumps(row.params, sort_keys=True)


AUDIT = Table(
    "audit",
    (
        Field("time_utc", lambda r: r.at, Kind.MILLIS),
        Field("operator", lambda r: r.operator),
        Field("role", lambda r: r.role),
        Field("action", lambda r: r.action),
        Field("target", lambda r: r.target),
        Field("outcome", lambda r: r.outcome),
        Field("reason", lambda r: r.reason),
        Field("params", _params),
        Field("stripe_request_id", lambda r: r.stripe_request_id),
        Field("idempotency_key", lambda r: r.idempotency_key),
        Field("error", lambda r: r.error),
    ),
)

SUBSCRIPTIONS = Table(
    "subscriptions",
    (
        Field("id", lambda r: r.stripe_id),
        Field("customer", lambda r: r.customer_id),
        Field("customer_name", lambda r: r.customer_name),
        Field("plan", lambda r: r.plan),
        Field("prices", lambda r: r.price_ids),
        Field("status", lambda r: r.status),
        Field("quantity", lambda r: r.quantity, Kind.NUMBER),
        _money("amount", lambda r: r.amount),
        Field("interval", lambda r: r.interval),
        _money("mrr", lambda r: r.mrr),
        Field("currency", _currency),
        Field("current_period_end", lambda r: r.current_period_end, Kind.SECONDS),
        Field("cancel_at_period_end", lambda r: r.cancel_at_period_end, Kind.BOOL),
        Field("cancels_at", lambda r: r.cancels_at, Kind.SECONDS),
        Field("canceled_at", lambda r: r.canceled_at, Kind.SECONDS),
        Field("ended_at", lambda r: r.ended_at, Kind.SECONDS),
        Field("trial_end", lambda r: r.trial_end, Kind.SECONDS),
        Field("pause_collection", lambda r: r.pause_collection),
        Field("collection_method", lambda r: r.collection_method),
        Field("created", lambda r: r.created, Kind.SECONDS),
    ),
)

#: The window's lists by panel name, and what File ▸ Export writes for each.
PANEL_TABLES = {
    "customers": CUSTOMERS,
    "products": PRODUCTS,
    "invoices": INVOICES,
    "credits": CREDIT_BALANCES,
    "topups": TOPUPS,
    "events": EVENTS,
    "audit": AUDIT,
    "subscriptions": SUBSCRIPTIONS,
}
