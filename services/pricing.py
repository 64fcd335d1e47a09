"""Team settings for credits: the price of one credit, its currency, and the custom top-up limits.

They are the team's, kept in the shared database (`team_setting`, append-only history), not in
anyone's `settings.json`: a support login that could edit its own config file could otherwise
sell 100,000 credits for a dollar. Only admins change them, through one audited action (and on
a PostgreSQL set up by `admin-app db setup`, the database refuses anyone else and checks every
new custom top-up against them). A top-up is checked again against the prices in force when it
was issued when its payment arrives (`services.credits`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import peewee

from services import changes, validation
from services.audit import Authority
from services.errors import ValidationError
from services.models import TeamSetting
from services.money import format_amount
from services.permissions import Permission


@dataclass(frozen=True)
class CreditPricing:
    """Custom top-ups: `unit_amount` minor units of `currency` per credit, `minimum` to
    `maximum` credits at a time. The defaults hold until an admin sets the team's."""

    unit_amount: int = 10
    currency: str = "usd"
    minimum: int = 100
    maximum: int = 100_000

    def describe(self) -> str:
        return (
            f"{format_amount(self.unit_amount, self.currency)} per credit, "
            f"{self.minimum:,} to {self.maximum:,} credits"
        )


_KEYS = {
    "credit_unit_amount": "unit_amount",
    "credit_currency": "currency",
    "credit_min": "minimum",
    "credit_max": "maximum",
}


def pricing_at(when: int | None = None) -> CreditPricing:
    """The pricing in force at `when` (seconds; None: now)."""
    values: dict[str, object] = {}
    for key, attr in _KEYS.items():
        query = TeamSetting.select(TeamSetting.value).where(TeamSetting.key == key)
        if when is not None:
            query = query.where(TeamSetting.set_at <= when)
        row = query.order_by(TeamSetting.set_at.desc(), TeamSetting.id.desc()).first()
        if row is not None:
            values[attr] = json.loads(row.value)
    try:
        return CreditPricing(**values)  # type: ignore[arg-type]
    except TypeError:
        return CreditPricing()


def parse_pricing(price: str, currency: str, minimum: str, maximum: str) -> CreditPricing:
    """From what a person typed: price in major units ("0.10"), currency, limits in credits."""
    code = validation.currency(currency)
    unit = validation.amount_in_minor_units(price, code)
    low = validation.positive_int(minimum, "The smallest custom top-up")
    high = validation.positive_int(maximum, "The largest custom top-up", maximum=10_000_000)
    if low > high:
        raise ValidationError("The smallest custom top-up is larger than the largest.")
    if low * unit < 50:
        raise ValidationError("The smallest custom top-up must cost at least 0.50 (Stripe).")
    return CreditPricing(unit, code, low, high)


class PricingService:
    """Reading (everyone) and changing (admins, audited) the team's credit pricing."""

    def __init__(self, db: peewee.Database, authority: Authority) -> None:
        self._db = db
        self._authority = authority

    def current(self) -> CreditPricing:
        return pricing_at(None)

    def set(self, pricing: CreditPricing, reason: str | None = None) -> CreditPricing:
        """Make `pricing` the team's from now on; one audit row with the old and new values."""
        before = self.current()
        changed = {
            key: getattr(pricing, attr)
            for key, attr in _KEYS.items()
            if getattr(pricing, attr) != getattr(before, attr)
        }
        reason = (reason or "").strip() or None
        with self._authority.action(
            Permission.MANAGE_SETTINGS, "pricing.set", target="credits",
            params={"before": asdict(before), "after": asdict(pricing)}, reason=reason,
        ):  # fmt: skip
            now = int(time.time())
            for key, value in changed.items():
                TeamSetting.insert(
                    key=key, value=json.dumps(value), set_by=self._authority.actor.login,
                    set_at=now, reason=reason,
                ).execute()  # fmt: skip
            changes.note(settings=True)
        return self.current()
