"""Changing settings and secrets: admins only, validated first, audited (without the secret)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from services.audit import Authority
from services.errors import ValidationError
from services.lots import LotService, purchase_expiry_months
from services.permissions import Permission
from services.pricing import CreditPricing, PricingService, parse_pricing
from services.secrets import SecretName, SecretStatus, SecretStore, hint, validate_secret
from services.settings import (
    LOOPBACK_HOSTS,
    Settings,
    SettingsStore,
    validate_api_base,
    validate_database_url,
    validate_stripe_cli,
)


@dataclass(frozen=True)
class ConfigSnapshot:
    """What Settings shows: where each secret comes from (never the secret), and the settings."""

    key: SecretStatus
    webhook: SecretStatus
    settings: Settings
    keyring_backend: str
    keyring_problem: str | None
    pricing: CreditPricing = field(default_factory=CreditPricing)
    purchase_expiry_months: int = 0  # the team's (services.lots); 0: purchases never expire


@dataclass(frozen=True)
class ConfigChange:
    """A requested change; empty secrets mean "keep the current one"."""

    secret_key: str = ""
    webhook_secret: str = ""
    database_url: str = ""
    api_base: str = ""
    stripe_cli: str = ""
    topup_success_url: str = ""
    topup_cancel_url: str = ""
    credit_price: str = "0.10"  # per credit, in major units of credit_currency
    credit_currency: str = "usd"
    credit_min: str = "100"
    credit_max: str = "100000"
    purchase_expiry_months: str = ""  # empty: unchanged


def _expiry_months(text: str) -> int | None:
    """None when unchanged; else 0 (never) to 120 months."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 120:
        raise ValidationError("Purchased credits expire after 0 (never) to 120 months.")
    return int(text)


def _page_url(value: str, label: str) -> str | None:
    """A page Checkout sends the customer to: https:// anywhere, or http:// on this machine
    (the sandbox). Parsed, not prefix-matched: ``http://127.0.0.1.evil.example`` is refused."""
    value = value.strip()
    if not value:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        raise ValidationError(f"{label} is not a valid address.") from None
    host = (parts.hostname or "").lower()
    secure = parts.scheme == "https" and host and "@" not in parts.netloc
    local = parts.scheme == "http" and host in LOOPBACK_HOSTS and "@" not in parts.netloc
    if any(c.isspace() for c in value) or not (secure or local):
        raise ValidationError(f"{label} must be an https:// address.")
    return value


class ConfigService:
    def __init__(
        self,
        store: SettingsStore,
        secrets: SecretStore,
        authority: Authority,
        pricing: PricingService | None = None,
        lots: LotService | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._authority = authority
        self._pricing = pricing
        self._lots = lots

    @property
    def may_change(self) -> bool:
        return self._authority.can(Permission.MANAGE_SETTINGS)

    def snapshot(self) -> ConfigSnapshot:
        """Current state; reading keyring status can block (D-Bus), so call it off the GUI."""
        return ConfigSnapshot(
            key=self._secrets.status(SecretName.STRIPE_SECRET_KEY),
            webhook=self._secrets.status(SecretName.STRIPE_WEBHOOK_SECRET),
            settings=self._store.load(),
            keyring_backend=self._secrets.backend_description(),
            keyring_problem=self._secrets.keyring_problem,
            pricing=self._pricing.current() if self._pricing else CreditPricing(),
            purchase_expiry_months=purchase_expiry_months() if self._lots else 0,
        )

    def validate(self, change: ConfigChange) -> tuple[str, str, Settings, CreditPricing]:
        """Everything checked before anything is written; raises `ValidationError`."""
        key = (
            validate_secret(SecretName.STRIPE_SECRET_KEY, change.secret_key)
            if (change.secret_key.strip())
            else ""
        )
        webhook = (
            validate_secret(SecretName.STRIPE_WEBHOOK_SECRET, change.webhook_secret)
            if (change.webhook_secret.strip())
            else ""
        )
        settings = Settings(
            database_url=validate_database_url(change.database_url)
            if change.database_url.strip()
            else None,
            api_base=validate_api_base(change.api_base) if change.api_base.strip() else None,
            stripe_cli=validate_stripe_cli(change.stripe_cli)
            if change.stripe_cli.strip()
            else None,
            topup_success_url=_page_url(change.topup_success_url, "The top-up success page"),
            topup_cancel_url=_page_url(change.topup_cancel_url, "The top-up cancel page"),
        )
        pricing = parse_pricing(
            change.credit_price, change.credit_currency, change.credit_min, change.credit_max
        )
        _expiry_months(change.purchase_expiry_months)
        return key, webhook, settings, pricing

    def apply(self, change: ConfigChange) -> None:
        """Validate, then store secrets in the keyring and settings in the file; audited."""
        self._authority.require(Permission.MANAGE_SETTINGS, "settings.change")
        key, webhook, settings, pricing = self.validate(change)
        params: dict[str, object] = {k: v for k, v in asdict(settings).items() if v}
        if key:
            params["secret_key"] = hint(key)  # which key, recognisably, never the key itself
        if webhook:
            params["webhook_secret"] = hint(webhook)
        with self._authority.action(Permission.MANAGE_SETTINGS, "settings.change", params=params):
            if key:
                self._secrets.set(SecretName.STRIPE_SECRET_KEY, key)
            if webhook:
                self._secrets.set(SecretName.STRIPE_WEBHOOK_SECRET, webhook)
            self._store.save(settings)
        # The team's prices are the database's, with their own audited action.
        if self._pricing is not None and pricing != self._pricing.current():
            self._pricing.set(pricing, "changed in Settings")
        months = _expiry_months(change.purchase_expiry_months)
        if self._lots is not None and months is not None and months != purchase_expiry_months():
            self._lots.set_purchase_expiry_months(months, "changed in Settings")
