"""Which settings are the team's and which are this machine's, and where each is kept.

*Machine* settings (the database URL, the Stripe API address, the Stripe CLI, the webhook port;
the window's size and place) describe one computer and stay in its `settings.json`. *Team*
settings (the Checkout return pages, the price per credit and the custom top-up limits) must be
the same on every seat: on a shared PostgreSQL they live in the database (`team_setting`, an
append-only history, written by admins only), so a change made on one seat is what every seat
uses for the next top-up. On a one-person SQLite database the return pages stay in its
`settings.json` (there is only one seat); the credit prices are in the database on both
(`services.pricing`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import peewee

from services.audit import Authority
from services.models import TeamSetting
from services.settings import Settings

#: Team settings other than the credit prices (those are `services.pricing`'s keys).
PAGE_KEYS = ("topup_success_url", "topup_cancel_url")


def team_pages(db: peewee.Database) -> dict[str, str | None]:
    """The team's Checkout return pages in force now (None: not set)."""
    found: dict[str, str | None] = dict.fromkeys(PAGE_KEYS)
    for key in PAGE_KEYS:
        row = (
            TeamSetting.select(TeamSetting.value)
            .where(TeamSetting.key == key)
            .order_by(TeamSetting.set_at.desc(), TeamSetting.id.desc())
            .first()
        )
        if row is not None:
            value = json.loads(row.value)
            found[key] = value if isinstance(value, str) and value else None
    return found


def with_team_pages(settings: Settings, db: peewee.Database) -> Settings:
    """`settings` with the return pages the team's (the database's) on a shared database."""
    if not isinstance(db, peewee.PostgresqlDatabase):
        return settings
    pages = team_pages(db)
    return replace(
        settings,
        topup_success_url=pages["topup_success_url"],
        topup_cancel_url=pages["topup_cancel_url"],
    )


def write_team_page(authority: Authority, key: str, value: str | None, reason: str) -> None:
    """Append one change of a return page; call inside the audited action that allows it."""
    if key not in PAGE_KEYS:
        raise KeyError(key)
    TeamSetting.insert(
        key=key, value=json.dumps(value), set_by=authority.actor.login,
        set_at=int(time.time()), reason=reason,
    ).execute()  # fmt: skip
