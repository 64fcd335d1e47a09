"""Pulling customers, invoices, products and prices from Stripe into the local mirror.

Pages of 100, one transaction per page, progress after each page, and a cancel check between
pages: a cancelled pull keeps the pages it finished and is safe to run again.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import peewee
import stripe

from services.audit import Authority
from services.errors import AppError
from services.mirror import upsert
from services.models import Customer, Invoice, Price, Product, StripeMirror, tuples
from services.permissions import Permission
from services.pg_security import can_write
from services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

PAGE_SIZE = 100


class SyncTarget(enum.Enum):
    CUSTOMERS = "customers"
    PRODUCTS = "products"
    INVOICES = "invoices"
    ALL = "all"


@dataclass(frozen=True)
class SyncProgress:
    kind: str  # "customers", "invoices", "products", "prices"
    done: int
    estimate: int | None = None  # "~total": how many the mirror had before this pull


@dataclass(frozen=True)
class SyncSummary:
    seen: dict[str, int]
    changed: dict[str, int]
    marked_deleted: int
    cancelled: bool

    def line(self) -> str:
        parts = [
            f"{kind}: {self.seen[kind]} seen, {self.changed[kind]} changed" for kind in self.seen
        ]
        if self.marked_deleted:
            parts.append(f"{self.marked_deleted} customers marked deleted")
        text = "; ".join(parts) or "nothing to sync"
        return ("Cancelled after " + text) if self.cancelled else text


ProgressFn = Callable[[SyncProgress], None]
CancelFn = Callable[[], bool]


class SyncService:
    """Pulls Stripe objects into the mirror database."""

    def __init__(self, db: peewee.Database, gateway: StripeGateway, authority: Authority) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority

    def may_write(self) -> bool:
        """False on a shared PostgreSQL where this login does not keep the mirror (finance and
        support after `admin-app db setup`: the team's listener and admins do)."""
        return can_write(self._db, "invoice")

    def pull(
        self,
        target: SyncTarget = SyncTarget.ALL,
        *,
        progress: ProgressFn | None = None,
        cancelled: CancelFn | None = None,
    ) -> SyncSummary:
        """Pull `target` from Stripe; see the module docstring for the guarantees.

        The pull is one audited action; its pages commit one by one, so the audit row is
        written at the end (with what was seen and changed) rather than inside one transaction.
        """
        self._authority.require(Permission.SYNC, "sync", target.value)
        try:
            summary = self._pull(target, progress, cancelled)
        except AppError as exc:
            self._authority.record_failure("sync", exc, target=target.value)
            raise
        self._authority.record(
            "sync",
            target=target.value,
            params={
                "seen": summary.seen,
                "changed": summary.changed,
                "marked_deleted": summary.marked_deleted,
                "cancelled": summary.cancelled,
            },
        )
        return summary

    def _pull(
        self,
        target: SyncTarget,
        progress: ProgressFn | None,
        cancelled: CancelFn | None,
    ) -> SyncSummary:
        plan: list[tuple[str, type[StripeMirror], Callable[[stripe.StripeClient], Any]]] = []
        if target in (SyncTarget.CUSTOMERS, SyncTarget.ALL):
            plan.append(
                ("customers", Customer, lambda c: c.v1.customers.list({"limit": PAGE_SIZE}))
            )
        if target in (SyncTarget.INVOICES, SyncTarget.ALL):
            plan.append(("invoices", Invoice, lambda c: c.v1.invoices.list({"limit": PAGE_SIZE})))
        if target in (SyncTarget.PRODUCTS, SyncTarget.ALL):
            plan.append(("products", Product, lambda c: c.v1.products.list({"limit": PAGE_SIZE})))
            plan.append(("prices", Price, lambda c: c.v1.prices.list({"limit": PAGE_SIZE})))
        seen: dict[str, int] = {}
        changed: dict[str, int] = {}
        marked = 0
        for kind, model, lister in plan:
            seen[kind] = changed[kind] = 0
            # Stripe gives no totals; last time's count is a fair estimate ("n of ~total").
            estimate = model.select().count() or None
            ids: set[str] = set()
            for page in self._pages(lister):
                if cancelled is not None and cancelled():
                    return SyncSummary(seen, changed, marked, cancelled=True)
                with self._db.atomic():
                    changed[kind] += upsert(model, page)
                seen[kind] += len(page)
                ids.update(obj["id"] for obj in page)
                if progress is not None:
                    total = max(estimate, seen[kind]) if estimate else None
                    progress(SyncProgress(kind, seen[kind], total))
            if model is Customer:
                marked = self._mark_missing_customers_deleted(ids)
        summary = SyncSummary(seen, changed, marked, cancelled=False)
        log.info("Sync finished: %s", summary.line())
        return summary

    def _pages(
        self, lister: Callable[[stripe.StripeClient], Any]
    ) -> Iterator[list[Mapping[str, Any]]]:
        """stripe-python's auto_paging_iter, cut back into pages of 100 (one transaction each).

        Network errors surface while iterating, so the iteration itself goes through the
        gateway's error translation.
        """
        objects = self._gateway.call(lambda c: iter(lister(c).auto_paging_iter()))
        while True:
            page = self._gateway.call(lambda _c: list(islice(objects, PAGE_SIZE)))
            if not page:
                return
            yield [obj.to_dict(for_json=True) for obj in page]

    def _mark_missing_customers_deleted(self, present: set[str]) -> int:
        """Customers gone from Stripe are marked deleted, not silently kept as if alive."""
        now = int(time.time())
        with self._db.atomic():
            alive = {
                sid
                for (sid,) in tuples(
                    Customer.select(Customer.stripe_id).where(
                        Customer.deleted == False  # noqa: E712 (a peewee expression)
                    )
                )
            }
            gone = sorted(alive - present)
            for start in range(0, len(gone), 500):
                chunk = gone[start : start + 500]
                Customer.update(deleted=True, synced_at=now).where(
                    Customer.stripe_id.in_(chunk)
                ).execute()
        return len(gone)
