"""Non-secret settings: a JSON file, validated, and never a home for secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import ConfigurationError, ValidationError
from services.settings import Settings, SettingsStore


def test_round_trip(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "cfg" / "settings.json")
    assert store.load() == Settings()
    wanted = Settings(database_url="postgresql://billing@db.internal/billing", api_base=None)
    store.save(wanted)
    assert store.load() == wanted


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="damaged"):
        SettingsStore(path).load()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(database_url="postgresql://billing:hunter2@db/billing"),
        Settings(database_url="mysql://db/billing"),
        Settings(api_base="http://example.com"),
    ],
)
def test_invalid_settings_are_refused_and_the_file_is_unchanged(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.save(Settings(api_base="http://127.0.0.1:12111"))
    before = path.read_text()
    with pytest.raises(ValidationError):
        store.save(settings)
    assert path.read_text() == before
    assert "hunter2" not in before


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/thanks?s={CHECKOUT_SESSION_ID}", True),
        ("http://127.0.0.1:8000/thanks", True),
        ("http://localhost/thanks", True),
        ("http://127.0.0.1.evil.example/thanks", False),
        ("http://127.0.0.1@evil.example/thanks", False),
        ("http://example.com/thanks", False),
        ("javascript:alert(1)", False),
        ("https:///no-host", False),
        ("https://exa mple.com/", False),
    ],
)
def test_top_up_pages_are_parsed_not_prefix_matched(url: str, ok: bool) -> None:
    from services.configuration import _page_url
    from services.errors import ValidationError

    if ok:
        assert _page_url(url, "The top-up success page") == url
    else:
        with pytest.raises(ValidationError, match="success page"):
            _page_url(url, "The top-up success page")
