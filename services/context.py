"""Everything the UI is handed by the composition root, in one plain value."""

from __future__ import annotations

from dataclasses import dataclass

from services.audit import Actor, AuditLog, Authority
from services.auto_topup import AutoTopUpService
from services.browse import BrowseService
from services.catalog import CatalogService
from services.configuration import ConfigService
from services.credits import CreditService
from services.customers import CustomerService
from services.events import EventPipeline
from services.export import ExportService
from services.heartbeat import TeamListeners
from services.invoices import InvoiceService
from services.journal import Journal
from services.operators import OperatorService
from services.overview import OverviewService
from services.pricing import PricingService
from services.reconcile import Reconciler
from services.stripe_gateway import StripeGateway, StripeMode
from services.subscriptions import SubscriptionService
from services.sync import SyncService
from services.topup_attempts import TopUpAttemptReader


@dataclass(frozen=True)
class AppContext:
    """The services and facts a window needs; built once in `admin_app.wiring`."""

    mode: StripeMode
    database_label: str  # the database URL with any password masked
    authority: Authority
    gateway: StripeGateway
    browse: BrowseService
    customers: CustomerService
    catalog: CatalogService
    sync: SyncService
    config: ConfigService
    operators: OperatorService
    audit: AuditLog
    events: EventPipeline
    credits: CreditService
    invoices: InvoiceService
    journal: Journal
    overview: OverviewService
    pricing: PricingService
    reconcile: Reconciler
    topup_attempts: TopUpAttemptReader
    exports: ExportService
    auto_topup: AutoTopUpService
    subscriptions: SubscriptionService
    #: The team's listeners' heartbeats (the status bar's "Listener seen 1 min ago").
    listeners: TeamListeners | None = None

    @property
    def actor(self) -> Actor:
        return self.authority.actor
