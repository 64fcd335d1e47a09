"""Everything the UI is handed by the composition root, in one plain value."""

from __future__ import annotations

from dataclasses import dataclass

from services.browse import BrowseService
from services.secrets import SecretStore
from services.settings import SettingsStore
from services.stripe_gateway import StripeGateway, StripeMode
from services.sync import SyncService


@dataclass(frozen=True)
class AppContext:
    """The services and facts a window needs; built once in `admin_app.wiring`."""

    mode: StripeMode
    operator: str
    database_label: str  # the database URL with any password masked
    gateway: StripeGateway
    browse: BrowseService
    sync: SyncService
    secrets: SecretStore
    settings: SettingsStore
