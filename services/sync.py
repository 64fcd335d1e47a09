"""Pulling customers, invoices, products, prices and subscriptions from Stripe into the mirror.

Pages of 100, one transaction per page, progress after each page, and a cancel check between
pages: a cancelled pull keeps the pages it finished and is safe to run again.

Stripe's pages are read as plain JSON (`raw_request`, as the reconciler does): building typed
stripe-python objects only to turn them back into dicts cost more than the HTTP itself. The next
page is fetched on a worker thread while the current one is written, never more than one ahead.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import peewee

from services.audit import Authority
from services.changes import NONE, Changes, collecting, note
from services.errors import AppError
from services.mirror import upsert
from services.models import (
    Customer,
    Invoice,
    Price,
    Product,
    StripeMirror,
    Subscription,
    tuples,
)
from services.permissions import Permission
from services.pg_security import can_write
from services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

PAGE_SIZE = 100
#: Stripe lists only subscriptions that have not ended unless asked for every status.
_LIST_PARAMS: dict[str, dict[str, str]] = {"/v1/subscriptions": {"status": "all"}}


class SyncTarget(enum.Enum):
    CUSTOMERS = "customers"
    PRODUCTS = "products"
    INVOICES = "invoices"
    SUBSCRIPTIONS = "subscriptions"
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
    #: The rows the pull wrote (what a window updates); `changes.ALL` when too many to name.
    changes: Changes = NONE

    def line(self) -> str:
        parts = [
            f"{kind}: {self.seen[kind]} seen, {self.changed[kind]} changed" for kind in self.seen
        ]
        if self.marked_deleted:
            parts.append(f"{self.marked_deleted} customers marked deleted")
        text = "; ".join(parts) or "nothing to sync"
        return ("Cancelled after " + text) if self.cancelled else text


ProgressFn = Callable[[SyncProgress], None]
_Page = tuple[list[dict[str, Any]], str | None]  # a page's objects, and the id to continue after
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
            with collecting() as noted:
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
        noted.flags.add("audit")
        return replace(summary, changes=noted.changes())

    def _pull(
        self,
        target: SyncTarget,
        progress: ProgressFn | None,
        cancelled: CancelFn | None,
    ) -> SyncSummary:
        plan: list[tuple[str, type[StripeMirror], str]] = []
        if target in (SyncTarget.CUSTOMERS, SyncTarget.ALL):
            plan.append(("customers", Customer, "/v1/customers"))
        if target in (SyncTarget.INVOICES, SyncTarget.ALL):
            plan.append(("invoices", Invoice, "/v1/invoices"))
        if target in (SyncTarget.PRODUCTS, SyncTarget.ALL):
            plan.append(("products", Product, "/v1/products"))
            plan.append(("prices", Price, "/v1/prices"))
        if target in (SyncTarget.SUBSCRIPTIONS, SyncTarget.ALL):
            plan.append(("subscriptions", Subscription, "/v1/subscriptions"))
        seen: dict[str, int] = {}
        changed: dict[str, int] = {}
        marked = 0
        for kind, model, path in plan:
            seen[kind] = changed[kind] = 0
            # Stripe gives no totals; last time's count is a fair estimate ("n of ~total").
            estimate = model.select().count() or None
            ids: set[str] = set()
            pages = self._pages(path)
            try:
                for page in pages:
                    if cancelled is not None and cancelled():
                        return SyncSummary(seen, changed, marked, cancelled=True)
                    with self._db.atomic():
                        changed[kind] += upsert(model, page)
                    seen[kind] += len(page)
                    ids.update(obj["id"] for obj in page)
                    if progress is not None:
                        total = max(estimate, seen[kind]) if estimate else None
                        progress(SyncProgress(kind, seen[kind], total))
            finally:
                pages.close()  # stops the prefetch now, not whenever the generator is collected
            if model is Customer:
                marked = self._mark_missing_customers_deleted(ids)
        summary = SyncSummary(seen, changed, marked, cancelled=False)
        log.info("Sync finished: %s", summary.line())
        return summary

    def _page(self, path: str, starting_after: str | None) -> _Page:
        """One list page as plain JSON, and the id to continue after (None on the last page).

        Goes through the gateway, so a Stripe error comes out typed, on whichever thread."""
        params: dict[str, Any] = {"limit": PAGE_SIZE, **_LIST_PARAMS.get(path, {})}
        if starting_after:
            params["starting_after"] = starting_after
        response = self._gateway.call(lambda c: c.raw_request("get", path, **params))
        page = json.loads(response.body)
        data: list[dict[str, Any]] = page.get("data") or []
        more = bool(page.get("has_more")) and bool(data)
        return data, (str(data[-1]["id"]) if more else None)

    def _pages(self, path: str) -> Generator[list[dict[str, Any]]]:
        """Every page of a Stripe list, page N+1 fetched on a worker while page N is written.

        At most one page is in flight ahead of the caller. Closing the generator (a cancelled
        pull, an error while writing) waits for that one request and fetches nothing more; an
        error fetching a page is raised here, where the caller asks for that page.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prefetch") as pool:
            ahead: Future[_Page] | None = None
            try:
                data, after = self._page(path, None)
                while True:
                    if after is not None:
                        ahead = pool.submit(self._page, path, after)
                    if data:
                        yield data
                    if ahead is None:
                        return
                    data, after = ahead.result()
                    ahead = None
            finally:
                if ahead is not None:
                    ahead.cancel()

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
                note(customers=chunk)
        return len(gone)
