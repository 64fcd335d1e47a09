"""Catching up on events missed while the app was closed or `stripe listen` was down.

On start and every few minutes, the events Stripe created since the stored cursor (minus an
overlap, for events created at the same second or delivered late) go through the same
store-once pipeline, oldest first. Duplicates cost nothing: the pipeline drops them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from services.events import EventPipeline, Result, Source
from services.models import AppState
from services.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

CURSOR_KEY = "events.catch_up_cursor"
OVERLAP_S = 300
MAX_EVENTS = 10_000  # per run; the next run continues from the new cursor
INTERVAL_S = 180


@dataclass(frozen=True)
class CatchUpSummary:
    seen: int
    applied: int
    duplicates: int
    failed: int
    cursor: int

    def line(self) -> str:
        return (
            f"catch-up: {self.seen} events, {self.applied} applied, "
            f"{self.duplicates} already had, {self.failed} failed"
        )


class CatchUp:
    def __init__(self, db: peewee.Database, gateway: StripeGateway, pipeline: EventPipeline):
        self._db = db
        self._gateway = gateway
        self._pipeline = pipeline

    def cursor(self) -> int | None:
        row = AppState.get_or_none(AppState.key == CURSOR_KEY)
        return int(row.value) if row is not None else None

    def run(self, cancelled: Callable[[], bool] | None = None) -> CatchUpSummary:
        """Fetch and apply everything since the cursor; advance the cursor."""
        start = self.cursor()
        since = (start if start is not None else int(time.time())) - OVERLAP_S

        def fetch(c: Any) -> list[Any]:
            page = c.v1.events.list({"created": {"gte": since}, "limit": 100})
            events = []
            for event in page.auto_paging_iter():  # newest first
                events.append(event)
                if len(events) >= MAX_EVENTS:
                    break
            return events

        events = self._gateway.call(fetch)
        events.sort(key=lambda e: (e.created, e.id))  # oldest first
        counts = {Result.APPLIED: 0, Result.IGNORED: 0, Result.DUPLICATE: 0, Result.FAILED: 0}
        newest = start or since
        for event in events:
            if cancelled is not None and cancelled():
                break
            result = self._pipeline.receive(event.to_dict(for_json=True), Source.CATCH_UP)
            counts[result] += 1
            newest = max(newest, int(event.created))
        AppState.insert(key=CURSOR_KEY, value=str(newest)).on_conflict(
            conflict_target=[AppState.key], update={AppState.value: str(newest)}
        ).execute()
        summary = CatchUpSummary(
            seen=len(events),
            applied=counts[Result.APPLIED] + counts[Result.IGNORED],
            duplicates=counts[Result.DUPLICATE],
            failed=counts[Result.FAILED],
            cursor=newest,
        )
        log.info("%s", summary.line())
        return summary
