"""Credit prices and limits are the team's, in the database: a settings file cannot change them."""

from __future__ import annotations

import json
from pathlib import Path

import peewee
import pytest

from services.audit import Authority
from services.errors import PermissionDenied, ValidationError
from services.models import AuditRecord, TeamSetting
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.pricing import CreditPricing, PricingService, parse_pricing, pricing_at
from services.settings import SettingsStore


def test_defaults_until_an_admin_sets_the_teams(authority: Authority) -> None:
    assert pricing_at() == CreditPricing(10, "usd", 100, 100_000)
    PricingService(authority._db, authority).set(CreditPricing(25, "eur", 1000, 50_000), "Q1")
    assert pricing_at() == CreditPricing(25, "eur", 1000, 50_000)
    [row] = AuditRecord.select().where(AuditRecord.action == "pricing.set")
    assert row.reason == "Q1"
    assert row.params["before"]["unit_amount"] == 10
    assert row.params["after"]["unit_amount"] == 25


def test_the_price_in_force_at_a_time_is_kept(database: peewee.Database) -> None:
    TeamSetting.insert(key="credit_unit_amount", value="20", set_by="a", set_at=1000).execute()
    TeamSetting.insert(key="credit_unit_amount", value="30", set_by="a", set_at=2000).execute()
    assert pricing_at(999).unit_amount == 10
    assert pricing_at(1500).unit_amount == 20
    assert pricing_at(2000).unit_amount == 30
    assert pricing_at().unit_amount == 30


def test_only_admins_change_prices(database: peewee.Database, authority: Authority) -> None:
    OperatorService(database, authority).add("sup", Role.SUPPORT)
    support = Authority(database, sign_in(database, "sup"))
    with pytest.raises(PermissionDenied):
        PricingService(database, support).set(CreditPricing(1, "usd", 100, 5_000_000))
    assert pricing_at() == CreditPricing()
    assert not TeamSetting.select().exists()


@pytest.mark.parametrize(
    ("price", "currency", "low", "high", "message"),
    [
        ("0.001", "usd", "100", "1000", "Amount"),
        ("0.10", "dollars", "100", "1000", "urrency"),
        ("0.10", "usd", "1000", "10", "larger than the largest"),
        ("0.001", "usd", "1", "10", "Amount"),
        ("0.01", "usd", "1", "10", "at least 0.50"),
        ("0.10", "usd", "-5", "10", "smallest"),
    ],
)
def test_bad_prices_are_refused(
    price: str, currency: str, low: str, high: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_pricing(price, currency, low, high)


def test_a_settings_file_does_not_set_the_price(
    database: peewee.Database, authority: Authority, tmp_path: Path
) -> None:
    """The support login that wrote credit_unit_amount: 1 into its settings.json."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"credit_unit_amount": 1, "credit_currency": "vnd",
                                "credit_max": 5_000_000}))  # fmt: skip
    SettingsStore(path).load()  # loads fine, and ignores them
    from services.credits import CreditService
    from services.stripe_gateway import StripeGateway

    credits = CreditService(
        database, StripeGateway("sk_test_x", api_base="http://127.0.0.1:9", sandbox=True),
        authority, SettingsStore(path).load(),
    )  # fmt: skip
    assert credits.quote_custom(100_000) == (1_000_000, "usd")  # $10,000, not $1,000
    with pytest.raises(ValidationError, match="100 to 100,000"):
        credits.quote_custom(5_000_000)
