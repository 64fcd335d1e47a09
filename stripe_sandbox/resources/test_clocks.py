"""``/v1/test_helpers/test_clocks``: simulated time for the customers created on a clock.

Advancing a clock runs, in time order, everything due for its customers' subscriptions up
to the new frozen time (``billing.run_due``), moving the frozen time to each action as it
runs. The work is done within the request; the response shows the clock as Stripe answers
an advance (``status: advancing``, ``status_details.advancing.target_frozen_time``) and the
clock is ``ready`` at the target time by the next read. Events:
``test_helpers.test_clock.advancing``, everything the advance caused, then
``test_helpers.test_clock.ready``.

Stripe's limits: a clock holds at most 3 customers (each with at most 3 subscriptions); an
advance may go at most two intervals of the shortest subscription interval on the clock
beyond the current frozen time; a clock is deleted 30 days after creation
(``deletes_after``; the sandbox keeps it until deleted).
"""

from __future__ import annotations

from stripe.params.test_helpers import (
    TestClockAdvanceParams,
    TestClockCreateParams,
    TestClockDeleteParams,
    TestClockListParams,
    TestClockRetrieveParams,
)

from stripe_sandbox.resources import billing
from stripe_sandbox.resources.common import Ctx, Route, paginate, render
from stripe_sandbox.store import deep_copy
from stripe_sandbox.wire import JsonDict, invalid, missing, new_id

KIND = "test_helpers.test_clock"
MAX_CUSTOMERS = 3
LIFETIME = 30 * billing.DAY


def _live(ctx: Ctx, clock_id: str) -> JsonDict:
    clock = ctx.store.get(KIND, clock_id)
    if clock is None:
        raise missing("test_clock", clock_id)
    return clock


def customers_of(ctx: Ctx, clock_id: str) -> list[JsonDict]:
    """The live customers on a clock."""
    return [c for c in ctx.store.objects["customer"].values() if c.get("test_clock") == clock_id]


def check_room(ctx: Ctx, clock_id: str, param: str) -> None:
    """Refuse a new customer on a clock that is unknown or full.

    Raises:
        ApiError: 400 ``resource_missing`` or the clock already has 3 customers.
    """
    clock = ctx.store.get(KIND, clock_id)
    if clock is None:
        raise invalid(f"No such test clock: '{clock_id}'", param=param, code="resource_missing")
    if len(customers_of(ctx, clock_id)) >= MAX_CUSTOMERS:
        raise invalid(
            f"A test clock can have at most {MAX_CUSTOMERS} customers; {clock_id} is full.",
            param=param,
        )


def create(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``POST /v1/test_helpers/test_clocks`` with ``frozen_time`` and ``name``."""
    clock: JsonDict = {
        "id": new_id("clock", 24),
        "object": KIND,
        "created": ctx.now,
        "deletes_after": ctx.now + LIFETIME,
        "frozen_time": params["frozen_time"],
        "livemode": False,
        "name": params.get("name"),
        "status": "ready",
        "status_details": {},
    }
    ctx.store.add(clock)
    ctx.store.record_event(f"{KIND}.created", clock, ctx.request, ctx.now)
    return render(ctx.store, clock, params.get("expand", []))


def retrieve(ctx: Ctx, params: JsonDict, clock_id: str) -> JsonDict:
    """``GET /v1/test_helpers/test_clocks/{id}``."""
    return render(ctx.store, _live(ctx, clock_id), params.get("expand", []))


def list_(ctx: Ctx, params: JsonDict, _id: str) -> JsonDict:
    """``GET /v1/test_helpers/test_clocks``, newest first."""
    items = list(ctx.store.objects[KIND].values())
    return paginate(ctx, KIND, "test_clock", items, params, "/v1/test_helpers/test_clocks")


def _subscriptions(ctx: Ctx, clock_id: str) -> list[JsonDict]:
    return [
        s
        for s in ctx.store.objects["subscription"].values()
        if s["test_clock"] == clock_id and s["status"] not in billing.ENDED
    ]


def advance(ctx: Ctx, params: JsonDict, clock_id: str) -> JsonDict:
    """``POST /v1/test_helpers/test_clocks/{id}/advance`` with ``frozen_time``."""
    clock = _live(ctx, clock_id)
    target = int(params["frozen_time"])
    current = int(clock["frozen_time"])
    if target <= current:
        raise invalid(
            f"The frozen_time ({target}) must be after the clock's current frozen_time "
            f"({current}).",
            param="frozen_time",
        )
    subs = _subscriptions(ctx, clock_id)
    limits = []
    for sub in subs:
        interval, count = billing.recurring_of(ctx.store, sub)
        limits.append(billing.boundary(current, interval, count, 2))
    if limits and target > min(limits):
        raise invalid(
            "Cannot advance the test clock more than two intervals of its shortest "
            f"subscription interval at once: the furthest it can go now is {min(limits)}. "
            "Advance in steps.",
            param="frozen_time",
        )
    store = ctx.store
    clock.update(
        {"status": "advancing", "status_details": {"advancing": {"target_frozen_time": target}}}
    )
    store.record_event(f"{KIND}.advancing", clock, ctx.request, ctx.now)
    answer = render(store, clock, params.get("expand", []))

    def move(when: int) -> None:
        clock["frozen_time"] = when

    billing.run_due(store, subs, target, move)
    clock.update({"frozen_time": target, "status": "ready", "status_details": {}})
    store.touch()
    store.record_event(f"{KIND}.ready", clock, ctx.request, ctx.now)
    return answer


def delete(ctx: Ctx, params: JsonDict, clock_id: str) -> JsonDict:
    """``DELETE /v1/test_helpers/test_clocks/{id}``: the clock, its customers and their
    subscriptions go (``customer.subscription.deleted``, ``customer.deleted``, then
    ``test_helpers.test_clock.deleted``)."""
    clock = _live(ctx, clock_id)
    store = ctx.store
    for sub in list(store.objects["subscription"].values()):
        if sub["test_clock"] != clock_id:
            continue
        if sub["status"] not in billing.ENDED:
            sub.update({"status": "canceled", "ended_at": clock["frozen_time"]})
            sub["canceled_at"] = sub["canceled_at"] or clock["frozen_time"]
            store.record_event("customer.subscription.deleted", sub, ctx.request, ctx.now)
        for item_id in billing.hidden(store, sub).get("items", []):
            store.objects["subscription_item"].pop(item_id, None)
        store.remove("subscription", sub["id"])
    for customer in customers_of(ctx, clock_id):
        store.remove("customer", customer["id"])
        store.record_event("customer.deleted", customer, ctx.request, ctx.now)
    snapshot = deep_copy(clock)
    stub = store.remove(KIND, clock_id)
    store.record_event(f"{KIND}.deleted", snapshot, ctx.request, ctx.now)
    return dict(stub)


ROUTES = [
    Route("POST", "/v1/test_helpers/test_clocks", TestClockCreateParams, create),
    Route("GET", "/v1/test_helpers/test_clocks", TestClockListParams, list_),
    Route("GET", "/v1/test_helpers/test_clocks/{id}", TestClockRetrieveParams, retrieve),
    Route("DELETE", "/v1/test_helpers/test_clocks/{id}", TestClockDeleteParams, delete),
    Route("POST", "/v1/test_helpers/test_clocks/{id}/advance", TestClockAdvanceParams, advance),
]
