"""The composition root: builds every object once and hands it in (no global `mw`)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import peewee

from admin_app.paths import AppPaths
from services import lots
from services.audit import Actor, AuditLog, Authority
from services.auto_topup import AUTO_TOPUP_ROUTES, SCAN_INTERVAL_S, AutoTopUpService
from services.browse import BrowseService
from services.catalog import CatalogService
from services.catchup import CatchUp
from services.configuration import ConfigService
from services.context import AppContext
from services.credits import CREDIT_ROUTES, CreditService
from services.customers import CustomerService
from services.database import open_database, sqlite_url
from services.errors import ConfigurationError, DatabaseDenied, NotAnOperator
from services.events import ROUTES, EventPipeline
from services.export import ExportService
from services.heartbeat import HeartbeatWriter, TeamListeners
from services.identity import current_login, is_shared, os_login
from services.invoices import InvoiceService
from services.journal import Journal
from services.listener import ListenerService
from services.operators import OperatorService, sign_in
from services.overview import OverviewService
from services.pg_security import can_write
from services.pricing import PricingService
from services.private_files import make_private_dir
from services.reconcile import Reconciler
from services.redaction import redact
from services.secrets import SecretName, SecretStore
from services.settings import Settings, SettingsStore, validate_api_base, validate_database_url
from services.stripe_gateway import StripeGateway, StripeMode
from services.stripe_listen import ListenStatus, ListenSupervisor, find_stripe_cli
from services.subscriptions import SubscriptionService
from services.sync import SyncService
from services.topup_attempts import TopUpAttemptReader
from services.webhook_receiver import DEFAULT_PORT, WebhookReceiver

if TYPE_CHECKING:  # imported when started: the window need not wait for the sandbox's code
    from stripe_sandbox import SandboxServer

log = logging.getLogger(__name__)

DB_ENV_VAR = "BILLING_ADMIN_DB"
#: Any sk_test_ key works against the sandbox; this one says where it came from.
SANDBOX_KEY = "sk_test_billing_admin_sandbox"


@dataclass(frozen=True)
class Options:
    """What the command line chose (None: not given)."""

    db: str | None = None
    api_base: str | None = None
    sandbox: bool = False
    # False for commands that only touch the local database: no sandbox is started for them.
    need_stripe: bool = True


@dataclass
class Runtime:
    """The live objects of one run; `close()` stops what was started.

    `context` is None when the person running the app is not an operator; `access_problem`
    then says why, and the app shows no data.
    """

    context: AppContext | None
    database: peewee.Database
    login: str
    database_label: str
    mode: StripeMode
    settings: Settings
    secrets: SecretStore
    access_problem: NotAnOperator | None = None
    sandbox: SandboxServer | None = None
    _closed: bool = field(default=False, repr=False)

    def make_listener(
        self,
        *,
        port: int | None = None,
        receive: bool = True,
        use_cli: bool = True,
        kind: str = "window",
    ) -> ListenerService:
        """Receiver (+ `stripe listen` supervisor) + catch-up for this runtime's account.

        In sandbox mode the supervisor runs the sandbox's own `listen`, so events flow exactly
        as they would from Stripe through the Stripe CLI.
        """
        ctx = self.require_context()
        if not can_write(self.database, "webhook_event"):
            raise DatabaseDenied(
                f"Your database login ({ctx.actor.login}) does not apply Stripe's events on this "
                "shared database: the team's listener does (a database owner runs "
                "`admin-app db setup --listener LOGIN`)."
            )
        gateway = ctx.gateway
        if port is None:
            port = self.settings.webhook_port or DEFAULT_PORT
        receiver = (
            WebhookReceiver(ctx.events, lambda: listener.secrets(), port) if receive else None
        )
        command: list[str] | None
        if self.mode is StripeMode.SANDBOX:
            base = gateway.api_base or ""
            command = [*app_command(), "sandbox-listen", "--api-base", base]
        else:
            cli = find_stripe_cli(self.settings.stripe_cli)
            command = [cli, "listen"] if cli else None
        key = gateway.api_key_for_cli()

        def supervisor(url: str, on_status: Callable[[ListenStatus], None]) -> ListenSupervisor:
            return ListenSupervisor(command, url, key, on_status)

        configured = self.secrets.get(SecretName.STRIPE_WEBHOOK_SECRET)
        listener = ListenerService(
            ctx.events,
            CatchUp(self.database, gateway, ctx.events),
            receiver,
            supervisor if use_cli else None,
            [configured] if configured else [],
            # Spends made by other systems (the SQL function) are caught here.
            scanners=[ctx.auto_topup.scan],
            scan_interval_s=SCAN_INTERVAL_S,
            housekeeping=lambda: lots.expire_due(self.database),
        )
        listener.heartbeat = HeartbeatWriter(
            self.database, listener.beat_state, login=ctx.actor.login, kind=kind
        )
        return listener

    def require_context(self) -> AppContext:
        """The context, or the reason this person may not use the app (exit code 3)."""
        if self.context is None:
            assert self.access_problem is not None
            raise self.access_problem
        return self.context

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.sandbox is not None:
            self.sandbox.stop()
        self.database.close()


def build_runtime(options: Options, paths: AppPaths) -> Runtime:
    """Decide the mode, open the database, start the sandbox if needed, build the services.

    With no secret key configured (keyring or STRIPE_SECRET_KEY), or with ``--sandbox``, the app
    runs against a sandbox: the one at ``--api-base`` if given, else one started here on a free
    loopback port with demo data.
    """
    settings_store = SettingsStore(paths.settings_file)
    settings = settings_store.load()
    secrets = SecretStore()
    key = None if options.sandbox else secrets.get(SecretName.STRIPE_SECRET_KEY)
    sandbox_mode = key is None
    api_base = options.api_base or (None if sandbox_mode else settings.api_base)
    if api_base:
        api_base = validate_api_base(api_base)

    db_url = options.db or os.environ.get(DB_ENV_VAR, "").strip() or None
    if db_url is None:
        if sandbox_mode:
            db_url = sqlite_url(paths.sandbox_database)
        else:
            db_url = settings.database_url or sqlite_url(paths.default_database)
    db_url = validate_database_url(db_url)

    sandbox: SandboxServer | None = None
    if sandbox_mode and api_base is None and options.need_stripe:
        sandbox = _start_local_sandbox(paths.sandbox_state)
        api_base = sandbox.url
    try:
        database = open_database(db_url)
    except BaseException:
        if sandbox is not None:
            sandbox.stop()
        raise

    gateway = StripeGateway(key or SANDBOX_KEY, api_base=api_base, sandbox=sandbox_mode)
    login = current_login(database)
    runtime = Runtime(
        context=None,
        database=database,
        login=login,
        database_label=redact(db_url),
        mode=gateway.mode,
        settings=settings,
        secrets=secrets,
        sandbox=sandbox,
    )
    try:
        actor = sign_in(database, login)
    except NotAnOperator as exc:
        # The log file only: the caller shows it (one stderr line, or the window says why).
        log.info("Not signed in: %s", exc)
        runtime.access_problem = exc
        return runtime
    runtime.context = build_context(
        database, gateway, actor, settings_store, secrets, runtime.database_label
    )
    log.info(
        "Started in %s mode as %s (%s); database %s",
        gateway.mode.value,
        actor.login,
        actor.role.value,
        runtime.database_label,
    )
    return runtime


def app_command() -> list[str]:
    """How to run this app's own command line again (source checkout or frozen build)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "admin_app"]


def build_context(
    database: peewee.Database,
    gateway: StripeGateway,
    actor: Actor,
    settings_store: SettingsStore,
    secrets: SecretStore,
    database_label: str,
) -> AppContext:
    """Every service, acting for `actor`."""
    authority = Authority(database, actor)
    # One journal for every service, so a re-used key is announced wherever it happens.
    journal = Journal(database, authority, scope=gateway.mode.value)
    pricing = PricingService(database, authority)
    # Credits first: their checkout/charge routes are more specific than the mirror's; auto
    # top-ups before them (their payment intents and charges, then the rest go on).
    events = EventPipeline(database, gateway, [*AUTO_TOPUP_ROUTES, *CREDIT_ROUTES, *ROUTES])
    # On a shared PostgreSQL the team settings (return pages, prices) are the database's.
    config = ConfigService(
        settings_store, secrets, authority, pricing, lots.LotService(database, authority),
        shared_db=database if is_shared(database) else None,
    )  # fmt: skip
    credits = CreditService(
        database, gateway, authority, settings_store.load(), journal,
        settings_now=config.settings,
    )  # fmt: skip
    auto_topup = AutoTopUpService(database, gateway, authority, credits)
    credits.after_spend = auto_topup.after_spend  # a spend below the threshold charges, once
    return AppContext(
        pricing=pricing,
        reconcile=Reconciler(database, gateway, authority, events),
        mode=gateway.mode,
        database_label=database_label,
        authority=authority,
        gateway=gateway,
        browse=BrowseService(database, authority),
        customers=CustomerService(database, gateway, authority, journal),
        catalog=CatalogService(database, gateway, authority, journal),
        sync=SyncService(database, gateway, authority),
        config=config,
        # SQLite is single-seat: only the OS user who owns the file (README: Threat model).
        operators=OperatorService(
            database, authority, single_seat=None if is_shared(database) else os_login()
        ),
        audit=AuditLog(database, authority),
        events=events,
        credits=credits,
        auto_topup=auto_topup,
        invoices=InvoiceService(database, gateway, authority, journal),
        journal=journal,
        overview=OverviewService(database, authority),
        topup_attempts=TopUpAttemptReader(gateway, authority),
        exports=ExportService(authority),
        subscriptions=SubscriptionService(database, gateway, authority, journal),
        listeners=TeamListeners(database),
    )


def _start_local_sandbox(state_file: Path) -> SandboxServer:
    from stripe_sandbox import SandboxServer

    try:
        make_private_dir(state_file.parent)
    except OSError as exc:
        raise ConfigurationError(f"Cannot create {state_file.parent}: {exc}") from None
    # The port it served on last time, if free: top-up and portal links issued then still work.
    server = SandboxServer(port=0, state_file=str(state_file), stable_port=True)
    server.start()
    counts = server.seed_demo()
    log.info("Sandbox running at %s (seeded: %s)", server.url, counts)
    return server
