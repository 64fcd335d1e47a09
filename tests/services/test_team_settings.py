"""Team settings on a shared PostgreSQL: what an admin sets on one seat is what every seat uses
for the next top-up link; a seat's own settings file cannot override it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stripe

from services.configuration import ConfigChange, ConfigService
from services.credits import CreditService
from services.customers import CustomerDraft, CustomerService
from services.errors import PermissionDenied
from services.pricing import PricingService
from services.secrets import SecretStore
from services.settings import Settings, SettingsStore
from services.stripe_gateway import StripeGateway
from stripe_sandbox import SandboxServer
from tests.services.test_pg_security import Team, _open_as, team  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgres
TEAM_PAGE = "https://team.example/thanks?s={CHECKOUT_SESSION_ID}"


def test_a_page_set_on_one_seat_is_every_seats(
    team: Team,  # noqa: F811
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
    tmp_path: Path,
) -> None:
    gateway = StripeGateway("sk_test_unused", api_base=sandbox.url, sandbox=True)
    db, adm = _open_as(team, "adm")
    try:
        admin_file = SettingsStore(tmp_path / "admin.json")
        config = ConfigService(
            admin_file, SecretStore({}), adm, PricingService(db, adm), shared_db=db
        )
        config.set_value("topup-success-url", TEAM_PAGE)
        # The dialog's Save on the admin's seat keeps the team's pages out of its file.
        config.apply(
            ConfigChange(topup_success_url=TEAM_PAGE, topup_cancel_url="https://team.example/no")
        )
        assert json.loads(admin_file.path.read_text())["topup_success_url"] is None
        assert config.settings().topup_cancel_url == "https://team.example/no"
    finally:
        db.close()

    db, sup = _open_as(team, "sup")
    try:
        # A support seat with an old page of its own in its settings file.
        own_file = SettingsStore(tmp_path / "support.json")
        own_file.save(Settings(topup_success_url="https://local.example/ignored"))
        config = ConfigService(
            own_file, SecretStore({}), sup, PricingService(db, sup), shared_db=db
        )
        shown = {v.key.name: v for v in config.values()}
        assert shown["topup-success-url"].value == TEAM_PAGE
        assert shown["topup-success-url"].stored_in == "the shared database"
        with pytest.raises(PermissionDenied):
            config.set_value("topup-success-url", "https://support.example/mine")
        customer = CustomerService(db, gateway, sup).create(
            CustomerDraft(email="team.page@example.com", name="Team Page"), None
        )
        credits = CreditService(db, gateway, sup, Settings(), settings_now=config.settings)
        link = credits.issue_topup(customer.stripe_id, credits=300)
        session = stripe_client.v1.checkout.sessions.retrieve(link.topup.checkout_session_id)
        assert session.success_url == TEAM_PAGE
        assert session.cancel_url == "https://team.example/no"
    finally:
        db.close()
