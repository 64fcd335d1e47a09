"""The Stripe API address decides where the secret key goes: the host is compared whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import ValidationError
from services.settings import Settings, SettingsStore, validate_api_base

ACCEPTED = [
    ("http://127.0.0.1:12111", "http://127.0.0.1:12111"),
    ("http://127.0.0.1:12111/", "http://127.0.0.1:12111"),
    ("  http://127.0.0.1  ", "http://127.0.0.1"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("HTTP://LOCALHOST:8080", "http://localhost:8080"),
    ("http://[::1]:12111", "http://[::1]:12111"),
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ("https://api.stripe.com", "https://api.stripe.com"),
    ("https://api.stripe.com/", "https://api.stripe.com"),
    ("https://api.stripe.com:443", "https://api.stripe.com:443"),
]

REFUSED = [
    # The two attacks from the issue: user info, and a host that merely starts like loopback.
    ("http://127.0.0.1@127.0.0.2:12111", "user name"),
    ("http://127.0.0.1.evil.example", "neither this machine"),
    ("http://127.0.0.1:12111@evil.example", "user name"),
    ("http://user:pw@127.0.0.1:12111", "user name"),
    ("http://127.0.0.2:12111", "neither this machine"),
    ("http://localhost.evil.example", "neither this machine"),
    ("http://localhost.", "neither this machine"),
    ("http://[::1%25eth0]:80", "neither this machine"),
    ("http://127.0.0.1%2eevil.example", "neither this machine"),
    ("http://0x7f000001", "neither this machine"),
    ("http://example.com", "neither this machine"),
    ("https://evil.example", "neither this machine"),
    ("https://api.stripe.com.evil.example", "neither this machine"),
    ("https://evil.example/api.stripe.com", "path"),
    ("http://api.stripe.com", "only over https"),
    ("https://api.stripe.com:8443", "only over https"),
    ("ftp://127.0.0.1", "only http"),
    ("file:///etc/passwd", "only http"),
    ("javascript:alert(1)", "only http"),
    ("127.0.0.1:12111", "only http"),
    ("//127.0.0.1:12111", "only http"),
    ("http://127.0.0.1:12111/v1/../", "path"),
    ("http://127.0.0.1:12111?x=1", "path"),
    ("http://127.0.0.1:12111#frag", "path"),
    ("http://127.0.0.1:12111\\@evil.example", "backslashes"),
    ("http://127.0.0.1:12111\r\nHost: evil", "control characters"),
    ("http://127.0.0.1 .evil.example", "spaces"),
    ("http://127.0.0.1:99999", "not a valid address"),
    ("http://127.0.0.1:port", "not a valid address"),
    ("http://", "neither this machine"),
]


@pytest.mark.parametrize(("url", "normalised"), ACCEPTED)
def test_loopback_and_stripe_itself_are_accepted(url: str, normalised: str) -> None:
    assert validate_api_base(url) == normalised


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_every_other_address_is_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match="is refused") as refused:
        validate_api_base(url)
    assert reason in str(refused.value)
    assert "https://api.stripe.com" in str(refused.value)


def test_a_refused_address_is_not_saved(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    store.save(Settings(api_base="http://127.0.0.1:12111"))
    with pytest.raises(ValidationError):
        store.save(Settings(api_base="http://127.0.0.1@127.0.0.2:12111"))
    assert store.load().api_base == "http://127.0.0.1:12111"
