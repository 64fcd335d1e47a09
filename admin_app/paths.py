"""Where Billing Admin keeps its files: platform directories, or one folder for tests and demos."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "billing-admin"
HOME_VAR = "BILLING_ADMIN_HOME"  # one folder for everything (tests, demos, portable installs)


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def default_database(self) -> Path:
        return self.data_dir / "billing-admin.sqlite3"

    @property
    def sandbox_database(self) -> Path:
        # The sandbox's fake objects never mix with a real account's mirror.
        return self.data_dir / "sandbox.sqlite3"

    @property
    def sandbox_state(self) -> Path:
        return self.data_dir / "sandbox-state.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "billing-admin.log"

    @classmethod
    def detect(cls) -> AppPaths:
        home = os.environ.get(HOME_VAR, "").strip()
        if home:
            root = Path(home).expanduser()
            return cls(root / "config", root / "data", root / "logs")
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )


def resources_dir() -> Path:
    """The resources folder, next to the packages in a checkout (and in the frozen app)."""
    return Path(__file__).resolve().parent.parent / "resources"
