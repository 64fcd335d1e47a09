"""The listener writes `expiry` entries for lots that expired while it was down: at its start,
exactly once, however often it starts again (window or headless: both run `ListenerService`)."""

from __future__ import annotations

import threading
import time

import peewee

from services import lots
from services.catchup import CatchUp
from services.events import EventPipeline
from services.listener import ListenerService
from services.models import CreditEntry, Customer
from services.stripe_gateway import StripeGateway
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.services.test_lots import check_books


def _listener(db: peewee.Database, sandbox: SandboxServer, ran: threading.Event) -> ListenerService:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    pipeline = EventPipeline(db, gateway)

    def housekeeping() -> None:  # what wiring passes: lots.expire_due, then a signal for us
        lots.expire_due(db)
        ran.set()

    return ListenerService(pipeline, CatchUp(db, gateway, pipeline), None, None, [],
                           housekeeping=housekeeping)  # fmt: skip


def test_lots_that_expired_during_an_outage_expire_once_when_the_listener_starts(
    database: peewee.Database, sandbox: SandboxServer
) -> None:
    now = int(time.time())
    Customer.insert(stripe_id="cus_out", created=now, raw={}, synced_at=now).execute()
    with database.atomic():
        lots.lock(database, "cus_out")
        for amount, expires in [(80, now - 7200), (40, now - 60), (25, None)]:
            CreditEntry.insert(
                customer_id="cus_out", amount=amount, kind="grant", operator="test-admin",
                reason="promo", created_at=now - 86400, expires_at=expires,
            ).execute()  # fmt: skip
        lots.absorb(database, "cus_out")
    # while the listener was down: only the lot that never expires is spendable already
    assert lots.balances(database, "cus_out").available == 25
    for _restart in range(2):
        ran = threading.Event()
        listener = _listener(database, sandbox, ran)
        listener.start(catch_up=True)
        try:
            assert ran.wait(60), listener.state.line()
        finally:
            listener.stop()
    expiries = sorted(
        (e.amount, e.created_at) for e in CreditEntry.select().where(CreditEntry.kind == "expiry")
    )
    assert expiries == [(-80, now - 7200), (-40, now - 60)]  # once each, dated when they expired
    assert lots.balances(database, "cus_out").available == 25
    check_books(database, "cus_out")
