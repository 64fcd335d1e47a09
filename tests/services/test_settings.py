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
