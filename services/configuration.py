"""Changing settings and secrets: admins only, validated first, audited (without the secret)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import peewee

from services.audit import Authority
from services.errors import ValidationError
from services.lots import LotService, purchase_expiry_months
from services.money import major_units_text
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
    validate_webhook_port,
)
from services.team_settings import PAGE_KEYS, team_pages, with_team_pages, write_team_page

MACHINE = "machine"
TEAM = "team"


@dataclass(frozen=True)
class SettingKey:
    """One setting the Settings dialog has, by the name `admin-app settings` uses."""

    name: str  # e.g. "topup-success-url"
    label: str  # the dialog's label
    scope: str  # MACHINE or TEAM
    default: str  # what applies when it is not set ("" for nothing)


#: Every setting of the Settings dialog but the two secrets (`admin-app secrets set`).
SETTING_KEYS: tuple[SettingKey, ...] = (
    SettingKey("database-url", "Database URL", MACHINE, "SQLite in the user data folder"),
    SettingKey("api-base", "Stripe API address", MACHINE, "https://api.stripe.com"),
    SettingKey("stripe-cli", "Stripe CLI", MACHINE, "`stripe` found on PATH"),
    SettingKey("webhook-port", "Webhook port", MACHINE, "4242"),
    SettingKey("topup-success-url", "After payment", TEAM, ""),
    SettingKey("topup-cancel-url", "After cancelling", TEAM, ""),
    SettingKey("credit-price", "Price per credit", TEAM, "0.10"),
    SettingKey("credit-currency", "Price currency", TEAM, "usd"),
    SettingKey("credit-min", "Smallest custom top-up", TEAM, "100"),
    SettingKey("credit-max", "Largest custom top-up", TEAM, "100000"),
    SettingKey("purchase-expiry-months", "Purchased credits expire", TEAM, "0"),
)
_BY_NAME = {k.name: k for k in SETTING_KEYS}


def setting_key(name: str) -> SettingKey:
    """The setting called `name` (dashes or underscores), else `ValidationError` listing all."""
    found = _BY_NAME.get(name.strip().lower().replace("_", "-"))
    if found is None:
        raise ValidationError(
            f"There is no setting {name.strip()[:80]!r}; the settings are: "
            + ", ".join(k.name for k in SETTING_KEYS)
            + " (secrets: `admin-app secrets set stripe-key|webhook-secret`)."
        )
    return found


@dataclass(frozen=True)
class SettingValue:
    key: SettingKey
    value: str | None  # None: not set, the default applies
    stored_in: str  # where it is kept, for `settings show`


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
    webhook_port: str = ""


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
        shared_db: peewee.Database | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._authority = authority
        self._pricing = pricing
        self._lots = lots
        # Set on a shared PostgreSQL: the team settings are the database's there.
        self._shared_db = shared_db

    @property
    def may_change(self) -> bool:
        return self._authority.can(Permission.MANAGE_SETTINGS)

    def snapshot(self) -> ConfigSnapshot:
        """Current state; reading keyring status can block (D-Bus), so call it off the GUI."""
        return ConfigSnapshot(
            key=self._secrets.status(SecretName.STRIPE_SECRET_KEY),
            webhook=self._secrets.status(SecretName.STRIPE_WEBHOOK_SECRET),
            settings=self.settings(),
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
            webhook_port=validate_webhook_port(change.webhook_port)
            if change.webhook_port.strip()
            else None,
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
            if self._shared_db is not None:
                # The return pages are the team's: written to the database, once per change.
                before = team_pages(self._shared_db)
                for key in PAGE_KEYS:
                    if getattr(settings, key) != before[key]:
                        write_team_page(
                            self._authority, key, getattr(settings, key), "changed in Settings"
                        )
                settings = replace(settings, topup_success_url=None, topup_cancel_url=None)
            self._store.save(settings)
        # The team's prices are the database's, with their own audited action.
        if self._pricing is not None and pricing != self._pricing.current():
            self._pricing.set(pricing, "changed in Settings")
        months = _expiry_months(change.purchase_expiry_months)
        if self._lots is not None and months is not None and months != purchase_expiry_months():
            self._lots.set_purchase_expiry_months(months, "changed in Settings")

    # ---- one setting at a time (`admin-app settings`), validated as the dialog validates
    def settings(self) -> Settings:
        """The settings in force: this machine's file, with the team's pages on a shared DB."""
        local = self._store.load()
        return with_team_pages(local, self._shared_db) if self._shared_db else local

    def values(self) -> list[SettingValue]:
        """Every setting, with its value and where it is kept."""
        settings = self.settings()
        pricing = self._pricing.current() if self._pricing else CreditPricing()
        where_team = "the shared database" if self._shared_db else str(self._store.path)
        found: list[SettingValue] = []
        for key in SETTING_KEYS:
            value = self._value(key, settings, pricing)
            if key.name.startswith("credit-") or key.name == "purchase-expiry-months":
                stored_in = "the database"
            elif key.scope == TEAM:
                stored_in = where_team
            else:
                stored_in = str(self._store.path)
            found.append(SettingValue(key, value, stored_in))
        return found

    @staticmethod
    def _value(key: SettingKey, settings: Settings, pricing: CreditPricing) -> str | None:
        if key.name == "credit-price":
            return major_units_text(pricing.unit_amount, pricing.currency)
        if key.name == "credit-currency":
            return pricing.currency
        if key.name == "credit-min":
            return str(pricing.minimum)
        if key.name == "credit-max":
            return str(pricing.maximum)
        if key.name == "purchase-expiry-months":
            return str(purchase_expiry_months())
        raw = getattr(settings, key.name.replace("-", "_"))
        return None if raw is None else str(raw)

    def set_value(self, name: str, value: str | None) -> SettingValue:
        """Set (or with None, unset) one setting: admins; validated before anything is written;
        one audit row (`settings.change`; the credit prices: `pricing.set`)."""
        key = setting_key(name)
        self._authority.require(Permission.MANAGE_SETTINGS, "settings.change", key.name)
        if value is not None and not value.strip():
            raise ValidationError(f"Give {key.name} a value, or use `settings unset {key.name}`.")
        if key.name.startswith("credit-"):
            self._set_pricing(key, value)
        elif key.name == "purchase-expiry-months":
            if self._lots is None:
                raise ValidationError("The purchase expiry needs the database.")
            months = _expiry_months(value or "0")
            if months is not None and months != purchase_expiry_months():
                self._lots.set_purchase_expiry_months(months, "admin-app settings")
        else:
            self._set_plain(key, value)
        return next(v for v in self.values() if v.key == key)

    def _set_pricing(self, key: SettingKey, value: str | None) -> None:
        if self._pricing is None:
            raise ValidationError("The credit prices need the database.")
        now = self._pricing.current()
        parts = {
            "credit-price": major_units_text(now.unit_amount, now.currency),
            "credit-currency": now.currency,
            "credit-min": str(now.minimum),
            "credit-max": str(now.maximum),
        }
        parts[key.name] = key.default if value is None else value
        if key.name == "credit-currency" and value is None:
            parts["credit-price"] = "0.10"  # the default price is in the default currency
        wanted = parse_pricing(
            parts["credit-price"], parts["credit-currency"], parts["credit-min"],
            parts["credit-max"],
        )  # fmt: skip
        if wanted != now:
            self._pricing.set(wanted, f"admin-app settings {'set' if value else 'unset'}")

    def _set_plain(self, key: SettingKey, value: str | None) -> None:
        attr = key.name.replace("-", "_")
        checked: str | int | None = None
        if value is not None:
            validators: dict[str, Callable[[str], str | int | None]] = {
                "database_url": validate_database_url,
                "api_base": validate_api_base,
                "stripe_cli": validate_stripe_cli,
                "webhook_port": validate_webhook_port,
                "topup_success_url": lambda v: _page_url(v, "The top-up success page"),
                "topup_cancel_url": lambda v: _page_url(v, "The top-up cancel page"),
            }
            checked = validators[attr](value)
        params = {"key": key.name, "value": checked if checked is not None else "(unset)"}
        with self._authority.action(
            Permission.MANAGE_SETTINGS, "settings.change", target=key.name, params=params
        ):
            if attr in PAGE_KEYS and self._shared_db is not None:
                if team_pages(self._shared_db)[attr] != checked:
                    assert checked is None or isinstance(checked, str)
                    write_team_page(self._authority, attr, checked, "admin-app settings")
            else:
                changes: dict[str, Any] = {attr: checked}
                self._store.save(replace(self._store.load(), **changes))

    def set_secret(self, name: SecretName, value: str) -> SecretStatus:
        """Store one secret in the keyring (admins; audited with its hint, never its value)."""
        self._authority.require(Permission.MANAGE_SETTINGS, "settings.change", name.value)
        value = validate_secret(name, value)
        with self._authority.action(
            Permission.MANAGE_SETTINGS, "settings.change", target=name.value,
            params={"secret": name.value, "hint": hint(value)},
        ):  # fmt: skip
            self._secrets.set(name, value)
        return self._secrets.status(name)
