"""Catching up on events missed while the app was closed or `stripe listen` was down.

On start and every few minutes, the events Stripe created since the stored cursor (minus an
overlap, for events created at the same second or delivered late) go through the same
store-once pipeline, oldest first. Duplicates cost nothing: the pipeline drops them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import peewee

from services.errors import NotFound
from services.events import EventPipeline, Result, Source
from services.models import AppState
from services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

CURSOR_KEY = "events.catch_up_cursor"  # `created` of the newest event caught up on
CURSOR_ID_KEY = "events.catch_up_cursor_id"  # and its id: the place to page on from
OVERLAP_S = 300
PAGE = 100
INTERVAL_S = 180
RETENTION_S = 30 * 86400  # Stripe's Events API keeps 30 days


@dataclass(frozen=True)
class CatchUpSummary:
    seen: int
    applied: int
    duplicates: int
    failed: int
    cursor: int
    #: Set when part of the gap is older than Stripe keeps events: run reconcile for it.
    gap_note: str = ""

    def line(self) -> str:
        text = (
            f"catch-up: {self.seen} events, {self.applied} applied, "
            f"{self.duplicates} already had, {self.failed} failed"
        )
        return f"{text}; {self.gap_note}" if self.gap_note else text


class CatchUp:
    """Pages through every event since the cursor, oldest first, however long the gap.

    With the id of the newest event it has, it asks for the pages *after* it
    (`ending_before`, which Stripe pages towards newer events), applies each page oldest first
    and moves the cursor once the page is stored: a crash or stop mid-gap resumes at the last
    page, and a gap of any length is walked in pages of 100 without holding it in memory.
    Without an id (first run, or the id's event has aged out of Stripe) it lists by time.
    """

    def __init__(self, db: peewee.Database, gateway: StripeGateway, pipeline: EventPipeline):
        self._db = db
        self._gateway = gateway
        self._pipeline = pipeline

    def cursor(self) -> int | None:
        row = AppState.get_or_none(AppState.key == CURSOR_KEY)
        return int(row.value) if row is not None else None

    def _cursor_id(self) -> str | None:
        row = AppState.get_or_none(AppState.key == CURSOR_ID_KEY)
        return str(row.value) if row is not None and row.value else None

    def _save_cursor(self, created: int, evt_id: str) -> None:
        for key, value in ((CURSOR_KEY, str(created)), (CURSOR_ID_KEY, evt_id)):
            AppState.insert(key=key, value=value).on_conflict(
                conflict_target=[AppState.key], update={AppState.value: value}
            ).execute()

    def run(self, cancelled: Callable[[], bool] | None = None) -> CatchUpSummary:
        """Fetch and apply everything since the cursor, page by page; advance the cursor."""
        stop = cancelled or (lambda: False)
        counts = {Result.APPLIED: 0, Result.IGNORED: 0, Result.DUPLICATE: 0, Result.FAILED: 0}
        start = self.cursor()
        newest = start or 0
        gap_note = ""
        now = int(time.time())
        cursor_id = self._cursor_id()
        pages: Iterator[list[Any]]
        if cursor_id is not None:
            pages = self._pages_after(cursor_id)
        else:
            since = (start if start is not None else now) - OVERLAP_S
            if start is not None and since < now - RETENTION_S:
                gap_note = _retention_note(since)
            pages = self._pages_since(max(since, now - RETENTION_S))
        try:
            newest = self._apply(pages, stop, counts, newest)
        except NotFound:
            # The cursor's event is older than Stripe keeps: what came between is gone.
            gap_note = _retention_note(start or now)
            AppState.delete().where(AppState.key == CURSOR_ID_KEY).execute()
            newest = self._apply(self._pages_since(now - RETENTION_S), stop, counts, newest)
        return self._summary(counts, newest, gap_note)

    def _apply(
        self,
        pages: Iterator[list[Any]],
        stop: Callable[[], bool],
        counts: dict[Result, int],
        newest: int,
    ) -> int:
        """Store and apply each page's events in order; the cursor moves once a page (or the
        part of it done before a stop) is stored, so a crash repeats at most one page."""
        for page in pages:
            last = ""
            for event in page:
                if stop():
                    break
                counts[self._pipeline.receive(event.to_dict(for_json=True), Source.CATCH_UP)] += 1
                newest = max(newest, int(event.created))
                last = event.id
            if last:
                self._save_cursor(newest, last)
            if stop():
                break
        return newest

    def _pages_after(self, evt_id: str) -> Iterator[list[Any]]:
        """Pages of the events newer than `evt_id`, the oldest page first, each oldest first."""
        before = evt_id
        while True:
            params = {"ending_before": before, "limit": PAGE}
            page = self._gateway.call(lambda c, p=params: c.v1.events.list(p))  # type: ignore[misc]
            events = list(reversed(page.data))
            if not events:
                return
            yield events
            if not page.has_more:
                return
            before = events[-1].id

    def _pages_since(self, since: int) -> Iterator[list[Any]]:
        """Every event created since `since`, oldest first, in pages (listed newest first, so
        the whole window is read before the first is applied; used without an id only)."""

        def fetch(c: Any) -> list[Any]:
            page = c.v1.events.list({"created": {"gte": since}, "limit": PAGE})
            return list(page.auto_paging_iter())

        events = self._gateway.call(fetch)
        events.reverse()  # Stripe's own order, oldest first (ids do not sort by time)
        for i in range(0, len(events), PAGE):
            yield events[i : i + PAGE]

    def _summary(self, counts: dict[Result, int], newest: int, gap_note: str) -> CatchUpSummary:
        summary = CatchUpSummary(
            seen=sum(counts.values()),
            applied=counts[Result.APPLIED] + counts[Result.IGNORED],
            duplicates=counts[Result.DUPLICATE],
            failed=counts[Result.FAILED],
            cursor=newest,
            gap_note=gap_note,
        )
        if gap_note:
            log.warning("%s", summary.line())
        else:
            log.info("%s", summary.line())
        return summary


def _retention_note(since: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(since))
    return (
        f"events from before {when} UTC may be missing: Stripe keeps them 30 days, and the "
        "gap is longer; check what changed then against Stripe by hand"
    )
