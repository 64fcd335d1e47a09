"""Deterministic demo data: customers, two services, credit packs and an archived product.

Seeding goes through the same resource functions as API requests, so it records the usual
``*.created`` events. Creation times are spread over the past year (relative to now); every
other field is the same on each run.
"""

from __future__ import annotations

import random
import time

from stripe_sandbox.resources import customers, prices, products
from stripe_sandbox.resources.common import Ctx
from stripe_sandbox.store import RequestInfo, Store
from stripe_sandbox.wire import JsonDict

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
_YEAR = 365 * 24 * 3600

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
    counts = {"customers": 0, "products": 0, "prices": 0}
    if store.demo_seeded:
        return counts
    now = int(time.time())
    rng = random.Random(20261028)
    request = RequestInfo(None, None)

    catalog_time = now - _YEAR
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
        update: JsonDict = {"default_price": price["id"]} if active else {"active": False}
        products.update(ctx, update, product["id"])
        counts["products"] += 1
        counts["prices"] += 1

    # Oldest first, so creation order and `created` agree.
    offsets = sorted((rng.randrange(_YEAR - 86400) for _ in range(_CUSTOMER_COUNT)), reverse=True)
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
        customers.create(Ctx(store, now - ago, request), params, "")
        counts["customers"] += 1
    store.demo_seeded = True
    store.touch()
    return counts
