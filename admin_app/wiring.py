"""The composition root: builds every object once and hands it in (no global `mw`)."""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import peewee

from admin_app.paths import AppPaths
from services.browse import BrowseService
from services.context import AppContext
from services.database import open_database, sqlite_url
from services.errors import ConfigurationError
from services.redaction import redact
from services.secrets import SecretName, SecretStore
from services.settings import SettingsStore, validate_api_base, validate_database_url
from services.stripe_gateway import StripeGateway
from services.sync import SyncService
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


@dataclass
class Runtime:
    """The live objects of one run; `close()` stops what was started."""

    context: AppContext
    database: peewee.Database
    sandbox: SandboxServer | None = None
    _closed: bool = field(default=False, repr=False)

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
    if sandbox_mode and api_base is None:
        sandbox = _start_local_sandbox(paths.sandbox_state)
        api_base = sandbox.url
    try:
        database = open_database(db_url)
    except BaseException:
        if sandbox is not None:
            sandbox.stop()
        raise

    gateway = StripeGateway(key or SANDBOX_KEY, api_base=api_base, sandbox=sandbox_mode)
    context = AppContext(
        mode=gateway.mode,
        operator=_operator_name(),
        database_label=redact(db_url),
        gateway=gateway,
        browse=BrowseService(database),
        sync=SyncService(database, gateway),
        secrets=secrets,
        settings=settings_store,
    )
    log.info("Started in %s mode; database %s", gateway.mode.value, redact(db_url))
    return Runtime(context=context, database=database, sandbox=sandbox)


def _start_local_sandbox(state_file: Path) -> SandboxServer:
    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"Cannot create {state_file.parent}: {exc}") from None
    server = SandboxServer(port=0, state_file=str(state_file))
    server.start()
    counts = server.seed_demo()
    log.info("Sandbox running at %s (seeded: %s)", server.url, counts)
    return server


def _operator_name() -> str:
    """The OS login of the person running the app (roles arrive with the operators issue)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
