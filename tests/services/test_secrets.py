"""Secrets: keyring with environment overrides, validation, a machine with no keyring, redaction."""

from __future__ import annotations

import logging

import keyring
import pytest
from keyring.backends import fail

from services.errors import ConfigurationError, ValidationError
from services.redaction import RedactingFilter, redact
from services.secrets import SecretName, SecretSource, SecretStore, validate_secret
from tests.helpers.memory_keyring import MemoryKeyring

KEY = "sk_test_51AbCdEfGhIjKlMn0123456789"


def test_keyring_round_trip(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore(environ={})
    assert store.get(SecretName.STRIPE_SECRET_KEY) is None
    store.set(SecretName.STRIPE_SECRET_KEY, f"  {KEY} ")
    assert store.get(SecretName.STRIPE_SECRET_KEY) == KEY
    status = store.status(SecretName.STRIPE_SECRET_KEY)
    assert status.source is SecretSource.KEYRING
    assert status.hint == "sk_test_…6789"
    store.delete(SecretName.STRIPE_SECRET_KEY)
    assert store.get(SecretName.STRIPE_SECRET_KEY) is None


def test_environment_overrides_keyring() -> None:
    store = SecretStore(environ={"STRIPE_SECRET_KEY": "sk_test_fromtheenvironment"})
    store.set(SecretName.STRIPE_SECRET_KEY, KEY)
    assert store.get(SecretName.STRIPE_SECRET_KEY) == "sk_test_fromtheenvironment"
    assert store.status(SecretName.STRIPE_SECRET_KEY).source is SecretSource.ENVIRONMENT


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (SecretName.STRIPE_SECRET_KEY, "pk_test_123456789", "publishable"),
        (SecretName.STRIPE_SECRET_KEY, "hello", "sk_test_"),
        (SecretName.STRIPE_SECRET_KEY, "sk_test_ with space", "sk_test_"),
        (SecretName.STRIPE_WEBHOOK_SECRET, "sk_test_123456789", "whsec_"),
    ],
)
def test_bad_secrets_are_refused_and_nothing_is_stored(
    memory_keyring: MemoryKeyring, name: SecretName, value: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SecretStore(environ={}).set(name, value)
    assert memory_keyring.store == {}


def test_valid_webhook_secret() -> None:
    assert (
        validate_secret(SecretName.STRIPE_WEBHOOK_SECRET, " whsec_abc123def ") == "whsec_abc123def"
    )


def test_no_keyring_on_this_machine_is_a_clear_message() -> None:
    keyring.set_keyring(fail.Keyring())
    store = SecretStore(environ={})
    assert store.get(SecretName.STRIPE_SECRET_KEY) is None
    assert store.keyring_problem is not None
    assert "STRIPE_SECRET_KEY" in store.keyring_problem
    with pytest.raises(ConfigurationError, match="environment variable"):
        store.set(SecretName.STRIPE_SECRET_KEY, KEY)
    assert "none" in store.backend_description()


def test_environment_works_without_a_keyring() -> None:
    keyring.set_keyring(fail.Keyring())
    store = SecretStore(environ={"STRIPE_SECRET_KEY": KEY})
    assert store.get(SecretName.STRIPE_SECRET_KEY) == KEY


def test_redact_masks_keys_and_url_passwords() -> None:
    text = f"key {KEY} and rk_live_abcdef123 whsec_zzz999 at postgresql://u:pw@h/db"
    clean = redact(text)
    for secret in (KEY, "rk_live_abcdef123", "whsec_zzz999", ":pw@"):
        assert secret not in clean
    assert "sk_test_…redacted" in clean


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("using %s", KEY)
    finally:
        logger.filters.clear()
    assert KEY not in caplog.text
    assert "sk_test_…redacted" in caplog.text
