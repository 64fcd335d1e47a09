"""What an operation changed: noted by the services that write, collected by whoever runs it."""

from __future__ import annotations

import time

import peewee
import stripe

from services.audit import Authority
from services.changes import ALL, NONE, Changes, collecting, note
from services.credits import CREDIT_ROUTES
from services.events import ROUTES, EventPipeline, Source
from services.operators import sign_in
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


def _gateway(sandbox: SandboxServer) -> StripeGateway:
    return StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)


def test_changes_merge_and_everything_absorbs() -> None:
    a = Changes(customers=frozenset({"cus_1"}), audit=True)
    b = Changes(customers=frozenset({"cus_2"}), events=frozenset({"evt_1"}))
    merged = a | b
    assert merged.customers == {"cus_1", "cus_2"}
    assert merged.events == {"evt_1"}
    assert merged.audit
    assert merged.size() == 3
    assert (merged | ALL) == ALL
    assert not NONE
    assert merged.describe() == "customers 2, events 1, audit"


def test_notes_reach_the_nearest_collector_and_then_the_outer_one() -> None:
    note(customers=["cus_nobody_collects"])  # nothing happens
    with collecting() as outer:
        note(invoices=["in_1"])
        with collecting() as inner:
            note(customers=["cus_1"], catalog=True)
        assert inner.changes() == Changes(customers=frozenset({"cus_1"}), catalog=True)
    assert outer.changes() == Changes(
        customers=frozenset({"cus_1"}), invoices=frozenset({"in_1"}), catalog=True
    )


def test_an_applied_event_names_its_row_and_an_unchanged_one_only_itself(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create({"name": "Before", "email": "b@example.com"})
    pipeline = EventPipeline(database, _gateway(sandbox), CREDIT_ROUTES + ROUTES)
    told: list[Changes] = []
    pipeline.add_change_listener(told.append)

    def deliver(evt_id: str) -> None:
        pipeline.receive(
            {"id": evt_id, "type": "customer.updated", "created": int(time.time()),
             "data": {"object": {"id": customer.id, "object": "customer"}}},
            Source.RECEIVER,
        )  # fmt: skip

    deliver("evt_changes_1")
    assert told[-1] == Changes(
        customers=frozenset({customer.id}), events=frozenset({"evt_changes_1"})
    )
    deliver("evt_changes_2")  # Stripe's customer is as mirrored: only the stored event is new
    assert told[-1] == Changes(events=frozenset({"evt_changes_2"}))
    count = len(told)
    deliver("evt_changes_2")  # a duplicate delivery changes nothing at all
    assert len(told) == count
    pipeline.receive(
        {"id": "evt_changes_3", "type": "unknown.kind", "created": int(time.time()),
         "data": {"object": {"id": "x_1", "object": "thing"}}},
        Source.RECEIVER,
    )  # fmt: skip
    assert told[-1] == Changes(events=frozenset({"evt_changes_3"}))


def test_a_sync_names_what_it_wrote_and_a_no_change_resync_nothing(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    made = {stripe_client.v1.customers.create({"name": f"S {n}"}).id for n in range(3)}
    sync = SyncService(
        database, _gateway(sandbox), Authority(database, sign_in(database, "test-admin"))
    )
    first = sync.pull(SyncTarget.CUSTOMERS)
    assert made <= first.changes.customers
    assert first.changes.audit
    again = sync.pull(SyncTarget.CUSTOMERS)
    assert again.changes == Changes(audit=True)
