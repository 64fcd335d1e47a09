"""Deterministic demo data: customers, two services, credit packs, an archived product, saved
cards, invoices in every state, and subscriptions in every state on a test clock.

Seeding goes through the same resource functions as API requests, so it records the usual
events (invoices are paid through real PaymentIntents and charges, so payments and invoices
agree). Creation times are spread over the past year (relative to now); every other field is
the same on each run.
"""

from __future__ import annotations

import contextlib
import random

from stripe_sandbox import cards
from stripe_sandbox.resources import (
    billing,
    customers,
    invoices,
    payment_methods,
    prices,
    products,
    subscriptions,
    test_clocks,
)
from stripe_sandbox.resources.common import Ctx, record_update
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict

_FIRST = (
    "Amelia", "Bruno", "Chloé", "Dmitri", "Elena", "Farah", "Gustavo", "Hannah", "Ikechukwu",
    "Julia", "Kenji", "Leila", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sanjay",
    "Tamsin", "Umar", "Valentina", "Wei", "Ximena", "Yusuf", "Zofia", "Aoife", "Björn",
    "Carmen", "Dario",
)  # fmt: skip
_LAST = (
    "Okafor", "Lindqvist", "Moreau", "Petrov", "García", "Haddad", "Silva", "Becker", "Nwosu",
    "Rossi", "Tanaka", "Karimi", "Fernández", "Kowalski", "Berg", "Raman", "Dubois", "Costa",
    "Mehta", "Walsh", "Qureshi", "Romano", "Zhang", "Ortega", "Demir", "Nowak", "Byrne",
    "Johansson", "Navarro", "Conti",
)  # fmt: skip
_COMPANIES = (
    ("Northwind Analytics", "northwind.io"),
    ("Bluefin Logistics", "bluefinlogistics.com"),
    ("Copperleaf Health", "copperleaf.health"),
    ("Driftwood Studios", "driftwood.studio"),
    ("Evergreen Legal", "evergreenlegal.com"),
    ("Foxglove Robotics", "foxglove.dev"),
    ("Granite Peak Capital", "granitepeak.capital"),
    ("Harbor & Finch", "harborfinch.co"),
    ("Ironbark Energy", "ironbark.energy"),
    ("Juniper Learning", "juniperlearning.org"),
    ("Kestrel Security", "kestrelsec.com"),
    ("Lumen Biotech", "lumenbio.com"),
    ("Maple & Oak Interiors", "mapleoak.design"),
    ("Nimbus Cloudworks", "nimbuscloud.works"),
    ("Orchard Foods", "orchardfoods.com"),
)
_PLANS = ("starter", "growth", "enterprise")
_CUSTOMER_COUNT = 60
_DAY = 24 * 3600
_YEAR = 365 * _DAY

# Saved cards: customer index -> test card (0341 attaches but every charge declines).
_CARDS = {i: "4242424242424242" for i in (0, 1, 2, 3, 4, 6, *range(16, 60, 4))}
_CARDS[5] = "4000000000000341"
_CARDS[20] = "5555555555554444"

# (customer index, days ago finalized, items as (lookup key, quantity), collection method,
#  days until due, what happens after finalization)
_INVOICES: tuple[tuple[int, float, tuple[tuple[str, int], ...], str, int | None, str], ...] = (
    (0, 200, (("onboarding", 1),), "charge_automatically", None, "pay"),
    (1, 150, (("consulting_hour", 3),), "charge_automatically", None, "pay"),
    (2, 95, (("credits_2000", 1), ("consulting_hour", 1)), "charge_automatically", None, "pay"),
    (3, 40, (("credits_500", 2),), "charge_automatically", None, "pay"),
    (4, 7, (("credits_100", 1),), "charge_automatically", None, "pay"),
    (5, 3, (("credits_500", 1),), "charge_automatically", None, "pay"),  # the card declines
    (6, 1, (("consulting_hour", 2),), "charge_automatically", None, "open"),
    (7, 45, (("onboarding", 1),), "send_invoice", 30, "send"),  # overdue
    (8, 60, (("consulting_hour", 4),), "send_invoice", 14, "send"),  # overdue
    (9, 5, (("credits_2000", 2),), "send_invoice", 30, "send"),
    (10, 120, (("consulting_hour", 6),), "send_invoice", 30, "uncollectible"),
    (11, 30, (("credits_100", 3),), "send_invoice", 30, "void"),
    (14, 20, (("credits_500", 1),), "send_invoice", 30, "paid_out_of_band"),
    (12, 2, (("credits_100", 1),), "charge_automatically", None, "draft"),
    (13, 0.5, (("onboarding", 1), ("consulting_hour", 2)), "send_invoice", 30, "draft"),
)

# (name, description, credits or None, unit amount in cents, lookup key, active)
_CATALOG: tuple[tuple[str, str, int | None, int, str, bool], ...] = (
    ("Consulting hour", "Time with a solutions engineer.", None, 15000, "consulting_hour", True),
    ("Onboarding package", "Guided set-up and data import.", None, 250000, "onboarding", True),
    ("100 credits", "Prepaid usage credits.", 100, 1000, "credits_100", True),
    ("500 credits", "Prepaid usage credits, 10% off.", 500, 4500, "credits_500", True),
    ("2,000 credits", "Prepaid usage credits, 20% off.", 2000, 16000, "credits_2000", True),
    ("50 credits (legacy)", "Retired starter pack.", 50, 600, "credits_50_legacy", False),
)  # fmt: skip


def _ascii(text: str) -> str:
    # Email local parts stay ASCII so every mail client and validator accepts them.
    table = str.maketrans("éöüáíóúñçåäøÖÉ", "eouaiouncaaoOE")
    return text.translate(table).lower()


def seed(store: Store) -> dict[str, int]:
    """Create the demo data set once; later calls create nothing.

    The caller holds ``store.lock``.

    Args:
        store: The sandbox store.

    Returns:
        How many customers, products and prices were created (zeros if already seeded).
    """
    counts = {
        "customers": 0,
        "products": 0,
        "prices": 0,
        "payment_methods": 0,
        "invoices": 0,
        "subscriptions": 0,
        "test_clocks": 0,
    }
    if store.demo_seeded:
        return counts
    now = store.now()
    rng = random.Random(20261028)
    request = RequestInfo(None, None)

    catalog_time = now - _YEAR
    price_ids: dict[str, str] = {}
    for offset, (name, description, credits, amount, lookup_key, active) in enumerate(_CATALOG):
        ctx = Ctx(store, catalog_time + offset * 60, request)
        metadata = {"credits": str(credits)} if credits is not None else {}
        product = products.create(
            ctx, {"name": name, "description": description, "metadata": metadata}, ""
        )
        price = prices.create(
            ctx,
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": amount,
                "lookup_key": lookup_key,
                "nickname": name,
                "active": active,
                "metadata": metadata,
            },
            "",
        )
        # An archived product keeps its (archived) price but no default price, as Stripe
        # refuses inactive default prices.
        price_ids[lookup_key] = price["id"]
        update: JsonDict = {"default_price": price["id"]} if active else {"active": False}
        products.update(ctx, update, product["id"])
        counts["products"] += 1
        counts["prices"] += 1

    # Oldest first, so creation order and `created` agree.
    offsets = sorted((rng.randrange(_YEAR - 86400) for _ in range(_CUSTOMER_COUNT)), reverse=True)
    ids: list[str] = []
    for i, ago in enumerate(offsets):
        first = _FIRST[i % len(_FIRST)]
        # Shift the surname each time the first names wrap, so no full name repeats.
        last = _LAST[(i * 7 + 3 + i // len(_FIRST)) % len(_LAST)]
        company, domain = _COMPANIES[(i * 4) % len(_COMPANIES)]
        params: JsonDict = {
            "name": f"{first} {last}",
            "email": f"{_ascii(first)}.{_ascii(last)}@{domain}",
            "phone": f"+1 {rng.choice(('415', '212', '312', '617', '206'))} 555 {i:04d}",
            "description": company,
        }
        if i % 3 == 0:
            params["metadata"] = {
                "account_id": f"acct-{1001 + i}",
                "plan": _PLANS[(i // 3) % len(_PLANS)],
            }
        created = customers.create(Ctx(store, now - ago, request), params, "")
        counts["customers"] += 1
        ids.append(created["id"])
    for i, number in sorted(_CARDS.items()):
        _save_card(Ctx(store, now - offsets[i] + 3600, request), ids[i], number)
        counts["payment_methods"] += 1
    for spec in _INVOICES:
        _invoice(store, now, ids, offsets, price_ids, spec)
        counts["invoices"] += 1
    before = {k: len(store.objects[k]) for k in ("customer", "payment_method", "invoice")}
    _subscriptions(store, now)
    counts["customers"] += len(store.objects["customer"]) - before["customer"]
    counts["payment_methods"] += len(store.objects["payment_method"]) - before["payment_method"]
    counts["invoices"] += len(store.objects["invoice"]) - before["invoice"]
    counts["prices"] += len(_PLANS_CATALOG)
    counts["products"] += len(_PLANS_CATALOG)
    counts["subscriptions"] = len(store.objects["subscription"])
    counts["test_clocks"] = 1
    store.demo_seeded = True
    store.touch()
    return counts


def _save_card(ctx: Ctx, customer_id: str, number: str) -> None:
    """Attach a test card and make it the customer's invoice default."""
    card = cards.lookup(number)
    assert card is not None
    customer = ctx.store.objects["customer"][customer_id]
    details = payment_methods.billing_details(customer["email"], customer["name"])
    pm = payment_methods.new_card(ctx, card, details)
    payment_methods.attach(ctx, pm, customer_id)
    before = deep_copy(customer)
    customer["invoice_settings"]["default_payment_method"] = pm["id"]
    record_update(ctx, "customer", before, customer)


def _invoice(
    store: Store,
    now: int,
    ids: list[str],
    offsets: list[int],
    price_ids: dict[str, str],
    spec: tuple[int, float, tuple[tuple[str, int], ...], str, int | None, str],
) -> None:
    """Create, finalize and settle one demo invoice at its point in the past."""
    index, days_ago, items, method, days_until_due, outcome = spec
    request = RequestInfo(None, None)
    customer_id = ids[index]
    # Never before the customer (and their card) existed.
    start = max(now - int(days_ago * _DAY), now - offsets[index] + 7200)

    def at(seconds: int) -> Ctx:
        return Ctx(store, start + seconds, request)

    params: JsonDict = {"customer": customer_id, "collection_method": method}
    if days_until_due is not None:
        params["days_until_due"] = days_until_due
    invoice = invoices.create(at(0), params, "")
    for lookup_key, quantity in items:
        invoices.create_item(
            at(60),
            {
                "customer": customer_id,
                "invoice": invoice["id"],
                "pricing": {"price": price_ids[lookup_key]},
                "quantity": quantity,
            },
            "",
        )
    if outcome == "draft":
        return
    invoices.finalize(at(600), {}, invoice["id"])
    if outcome == "pay":
        # The demo's declining card leaves its invoice open with one failed attempt.
        with contextlib.suppress(ApiError):
            invoices.pay(at(3600), {}, invoice["id"])
    elif outcome == "send":
        invoices.send(at(900), {}, invoice["id"])
    elif outcome == "uncollectible":
        invoices.send(at(900), {}, invoice["id"])
        invoices.mark_uncollectible(at(80 * _DAY), {}, invoice["id"])
    elif outcome == "void":
        invoices.void(at(5 * _DAY), {}, invoice["id"])
    elif outcome == "paid_out_of_band":
        invoices.send(at(900), {}, invoice["id"])
        invoices.pay(at(10 * _DAY), {"paid_out_of_band": True}, invoice["id"])


# Recurring plans: (key, product name, credits or None, unit amount, interval).
_PLANS_CATALOG: tuple[tuple[str, str, int | None, int, str], ...] = (
    ("pro", "Pro plan", None, 4900, "month"),
    ("credit_plan", "1,000 credits monthly", 1000, 9000, "month"),
    ("seats", "Extra seats", None, 1200, "month"),
    ("team", "Team plan", None, 9900, "month"),
    ("enterprise", "Enterprise plan", None, 120000, "year"),
    ("starter", "Starter plan", None, 1900, "month"),
    ("support", "Priority support", None, 25000, "month"),
)
# How long before now the demo clock starts; subscriptions then live through it.
_CLOCK_HISTORY_DAYS = 70


def _subscriptions(store: Store, now: int) -> None:
    """Three customers on one test clock ("Demo clock") with nine subscriptions that went
    through their history on it: renewals paid, a failed renewal (past_due), a trial, an
    incomplete one, a send_invoice one, a scheduled cancellation, a canceled one and a
    paused one. The clock ends at the seeding time (rounded down to the minute)."""
    request = RequestInfo(None, None)
    end = now - now % 60
    start = end - _CLOCK_HISTORY_DAYS * _DAY
    ctx = Ctx(store, start, request)
    plan: dict[str, str] = {}
    for key, name, credits, amount, interval in _PLANS_CATALOG:
        metadata = {"credits": str(credits)} if credits is not None else {}
        product = products.create(ctx, {"name": name, "metadata": metadata}, "")
        price = prices.create(
            ctx,
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": interval},
                "lookup_key": f"plan_{key}",
                "nickname": name,
                "metadata": metadata,
            },
            "",
        )
        products.update(ctx, {"default_price": price["id"]}, product["id"])
        plan[key] = price["id"]
    # Made "now" (it is deleted 30 days after), set back to the start of the history.
    clock = test_clocks.create(
        Ctx(store, end, request), {"frozen_time": start, "name": "Demo clock"}, ""
    )

    def at(when: int) -> Ctx:
        return Ctx(store, when, request)

    def advance(to: int) -> None:
        test_clocks.advance(at(to), {"frozen_time": to}, clock["id"])

    def customer(name: str, email: str, company: str) -> str:
        made = customers.create(
            at(start),
            {"name": name, "email": email, "description": company, "test_clock": clock["id"]},
            "",
        )
        return str(made["id"])

    def subscribe(customer_id: str, key: str, when: int, **extra: object) -> JsonDict:
        quantity = extra.pop("quantity", 1)
        params: JsonDict = {
            "customer": customer_id,
            "items": [{"price": plan[key], "quantity": quantity}],
        }
        params.update(extra)
        return subscriptions.create(at(when), params, "")

    northwind = customer("Amelia Okafor", "amelia.okafor@northwind.io", "Northwind Analytics")
    bluefin = customer(
        "Bruno Lindqvist", "bruno.lindqvist@bluefinlogistics.com", "Bluefin Logistics"
    )
    copperleaf = customer("Chloe Moreau", "chloe.moreau@copperleaf.health", "Copperleaf Health")
    _save_card(at(start), northwind, "4242424242424242")
    _save_card(at(start), bluefin, "4242424242424242")

    subscribe(northwind, "pro", start, metadata={"tier": "pro"})
    subscribe(northwind, "credit_plan", start)
    seats = subscribe(northwind, "seats", start, quantity=5)
    support = subscribe(
        copperleaf, "support", start, collection_method="send_invoice", days_until_due=45
    )
    starter = subscribe(
        copperleaf, "starter", start, collection_method="send_invoice", days_until_due=30
    )
    # A renewal that fails within the last few days, a retry still ahead: the Team plan
    # starts on the first day whose monthly renewal lands 2 to 5 days before the end.
    for day in range(21, _CLOCK_HISTORY_DAYS):
        team_start = start + day * _DAY
        renewals = [
            billing.boundary(team_start, "month", 1, n)
            for n in range(1, 4)
            if billing.boundary(team_start, "month", 1, n) <= end
        ]
        # Four days wide: no month-long period ends on Mar 29-31 of a common year.
        if renewals and end - 5 * _DAY <= renewals[-1] <= end - 2 * _DAY:
            break
    else:  # pragma: no cover - months are 28 to 31 days long
        raise AssertionError("no start day for the demo Team plan")
    advance(start + 10 * _DAY)
    for paid_by_transfer in (support, starter):
        first = store.objects["subscription"][paid_by_transfer["id"]]["latest_invoice"]
        invoices.pay(at(start + 10 * _DAY), {"paid_out_of_band": True}, first)
    advance(start + 20 * _DAY)
    subscriptions.cancel(
        at(start + 20 * _DAY), {"cancellation_details": {"feedback": "unused"}}, starter["id"]
    )
    advance(team_start)
    subscribe(bluefin, "team", team_start)
    advance(start + 45 * _DAY)
    subscribe(
        copperleaf,
        "pro",
        start + 45 * _DAY,
        trial_period_days=7,
        trial_settings={"end_behavior": {"missing_payment_method": "pause"}},
    )
    advance(start + 50 * _DAY)
    subscribe(bluefin, "enterprise", start + 50 * _DAY, trial_period_days=30)
    # Bluefin's card starts declining before the Team plan's last renewal.
    advance(end - 6 * _DAY)
    _save_card(at(end - 6 * _DAY), bluefin, "4000000000000341")
    advance(end - 2 * 3600)
    subscribe(bluefin, "starter", end - 2 * 3600, payment_behavior="default_incomplete")
    advance(end - 3600)
    subscriptions.update(at(end - 3600), {"cancel_at_period_end": True}, seats["id"])
    advance(end)
