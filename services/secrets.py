"""Stripe secrets: the OS keyring, with environment variables as overrides.

Secrets never reach the database, the settings file or the log. A machine without a usable keyring
(keyring's `fail.Keyring` raises `NoKeyringError`) still works with the environment variables; the
app says so instead of crashing.
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass

from services.errors import ConfigurationError, ValidationError

log = logging.getLogger(__name__)

KEYRING_SERVICE = "billing-admin"


class SecretName(enum.Enum):
    """The secrets the app knows; the value is the environment variable that overrides it."""

    STRIPE_SECRET_KEY = "STRIPE_SECRET_KEY"
    STRIPE_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"

    @property
    def label(self) -> str:
        return {
            SecretName.STRIPE_SECRET_KEY: "Stripe secret key",
            SecretName.STRIPE_WEBHOOK_SECRET: "Stripe webhook signing secret",
        }[self]


class SecretSource(enum.Enum):
    ENVIRONMENT = "environment variable"
    KEYRING = "OS keyring"


@dataclass(frozen=True)
class SecretStatus:
    """Where a secret comes from, without the secret itself (safe to show and log)."""

    name: SecretName
    source: SecretSource | None
    hint: str  # e.g. "sk_test_…4242"


_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")


def validate_secret(name: SecretName, value: str) -> str:
    """Return the stripped secret, or raise `ValidationError` saying what a valid one looks like."""
    value = value.strip()
    if name is SecretName.STRIPE_SECRET_KEY:
        if value.startswith(("pk_test_", "pk_live_")):
            raise ValidationError(
                "That is a publishable key (pk_…). Billing Admin needs a secret key (sk_…) "
                "or a restricted key (rk_…)."
            )
        if (
            not value.startswith(_KEY_PREFIXES)
            or len(value) < 12
            or any(c.isspace() for c in value)
        ):
            raise ValidationError(
                "That does not look like a Stripe secret key: it should start with "
                "sk_test_, sk_live_, rk_test_ or rk_live_."
            )
    elif not value.startswith("whsec_") or len(value) < 10 or any(c.isspace() for c in value):
        raise ValidationError(
            "That does not look like a webhook signing secret: it should start with whsec_."
        )
    return value


def hint(value: str) -> str:
    """A recognisable but harmless rendering of a secret: its prefix and last four characters."""
    prefix_end = value.find("_", value.find("_") + 1) + 1 if value.startswith(("sk_", "rk_")) else 6
    return f"{value[:prefix_end]}…{value[-4:]}"


class SecretStore:
    """Reads and writes the app's secrets; environment variables win over the keyring."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.keyring_problem: str | None = None

    def get(self, name: SecretName) -> str | None:
        """The secret's value, or None when it is configured nowhere."""
        from_env = self._environ.get(name.value, "").strip()
        if from_env:
            return from_env
        return self._from_keyring(name)

    def status(self, name: SecretName) -> SecretStatus:
        from_env = self._environ.get(name.value, "").strip()
        if from_env:
            return SecretStatus(name, SecretSource.ENVIRONMENT, hint(from_env))
        stored = self._from_keyring(name)
        if stored:
            return SecretStatus(name, SecretSource.KEYRING, hint(stored))
        return SecretStatus(name, None, "")

    def set(self, name: SecretName, value: str) -> None:
        """Validate and store a secret in the OS keyring."""
        import keyring.errors  # on first use: the window paints before the keyring is read

        value = validate_secret(name, value)
        try:
            keyring.set_password(KEYRING_SERVICE, name.value, value)
        except keyring.errors.KeyringError as exc:
            raise ConfigurationError(self._no_keyring_message(exc, name)) from None
        log.info("Stored the %s in the OS keyring", name.label)

    def delete(self, name: SecretName) -> None:
        """Remove a secret from the keyring; removing one that is not there is fine."""
        import keyring.errors  # on first use: the window paints before the keyring is read

        try:
            keyring.delete_password(KEYRING_SERVICE, name.value)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            raise ConfigurationError(self._no_keyring_message(exc, name)) from None

    def backend_description(self) -> str:
        """Which keyring backend this machine has, for Settings and the self-test."""
        import keyring.errors  # on first use: the window paints before the keyring is read

        backend = keyring.get_keyring()
        name = f"{type(backend).__module__}.{type(backend).__qualname__}"
        if name.startswith("keyring.backends.fail."):
            return "none (no OS keyring available on this machine)"
        return name

    def _from_keyring(self, name: SecretName) -> str | None:
        import keyring.errors  # on first use: the window paints before the keyring is read

        try:
            value = keyring.get_password(KEYRING_SERVICE, name.value)
        except keyring.errors.KeyringError as exc:
            # Normal on a headless box: the environment variables are the way there.
            self.keyring_problem = (
                f"No usable OS keyring on this machine ({type(exc).__name__}). Use the "
                "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET environment variables instead."
            )
            log.info("%s", self.keyring_problem)
            return None
        return value.strip() if value else None

    @staticmethod
    def _no_keyring_message(exc: Exception, name: SecretName) -> str:
        return (
            f"No usable OS keyring on this machine ({type(exc).__name__}). "
            f"Set the {name.value} environment variable instead."
        )
