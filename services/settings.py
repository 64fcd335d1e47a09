"""Non-secret settings, kept in a small JSON file in the user's config directory.

Secrets are refused here on purpose: they belong in the keyring (see `services.secrets`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.errors import ConfigurationError, ValidationError
from services.private_files import make_private_dir
from services.redaction import redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What a user can change in Settings, besides secrets."""

    # None: SQLite in the user data directory. Otherwise sqlite:///path or postgresql://...
    database_url: str | None = None
    # None: Stripe's own API. Set to talk to a sandbox started elsewhere.
    api_base: str | None = None
    # The Stripe CLI the app runs for `stripe listen`; None: `stripe` found on PATH.
    stripe_cli: str | None = None
    # Top-ups: where Checkout sends the customer afterwards ({CHECKOUT_SESSION_ID} allowed).
    topup_success_url: str | None = None
    topup_cancel_url: str | None = None
    # The webhook receiver's port on 127.0.0.1; None: 4242 (what `stripe listen` forwards to).
    webhook_port: int | None = None
    # (Top-up pages here are used on SQLite only; on a shared PostgreSQL they are the team's,
    # in the database: services/team_settings.py. Credit prices and limits are the team's, in
    # the database: services/pricing.py. A `credit_*` key left in an old settings file is
    # ignored.)


def validate_database_url(url: str) -> str:
    """Return the URL if Billing Admin can use it, else raise `ValidationError`."""
    url = url.strip()
    if url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        if redact(url) != url and "@" in url and url.startswith("postgres"):
            # A password in the URL would land in the settings file; PostgreSQL should use
            # ~/.pgpass, a client certificate or peer auth instead.
            raise ValidationError(
                "Put the database password in ~/.pgpass (or use peer/certificate login), "
                "not in the database URL: settings files are not secret."
            )
        return url
    raise ValidationError(
        "The database URL must start with sqlite:/// (a file on this machine) "
        "or postgresql:// (a shared database)."
    )


#: Where the secret key may be sent: Stripe itself over https, or a sandbox on this machine.
STRIPE_API_HOST = "api.stripe.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def validate_api_base(url: str) -> str:
    """The API address, normalised, if the secret key may be sent there; else `ValidationError`.

    The host is parsed and compared whole (a prefix check let ``http://127.0.0.1@evil`` and
    ``http://127.0.0.1.evil.example`` through): exactly a loopback address over http(s), or
    Stripe's own API host over https. No user info, path, query or fragment.
    """
    text = url.strip()
    problem = _api_base_problem(text)
    if problem is not None:
        raise ValidationError(
            f"The Stripe API address {text[:200]!r} is refused: {problem}. Use "
            f"https://{STRIPE_API_HOST}, or http://127.0.0.1:PORT (localhost, [::1]) "
            "for a local sandbox."
        )
    parts = urlsplit(text)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _api_base_problem(text: str) -> str | None:
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in text):
        return "it contains spaces, control characters or backslashes"
    try:
        parts = urlsplit(text)
        port = parts.port  # a malformed port raises here
    except ValueError:
        return "it is not a valid address"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return "only http:// (a local sandbox) or https:// is allowed"
    if "@" in parts.netloc:
        return "a user name or password in the address is not allowed"
    if parts.path.rstrip("/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        return "it must not have a path, query or fragment"
    host = (parts.hostname or "").lower()
    if host in LOOPBACK_HOSTS:
        return None
    if host == STRIPE_API_HOST and scheme == "https" and port in (None, 443):
        return None
    if host == STRIPE_API_HOST:
        return f"{STRIPE_API_HOST} only over https on its standard port"
    return f"the host {host or '(none)'!r} is neither this machine nor {STRIPE_API_HOST}"


def validate_webhook_port(text: str) -> int:
    """A port for the webhook receiver on 127.0.0.1: 1024..65535 (no root needed)."""
    try:
        port = int(text.strip())
    except ValueError:
        raise ValidationError(f"The webhook port must be a number, not {text.strip()!r}.") from None
    if not 1024 <= port <= 65535:
        raise ValidationError(f"The webhook port must be between 1024 and 65535, not {port}.")
    return port


def validate_stripe_cli(path: str) -> str:
    path = path.strip()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ValidationError(f"{path} is not an executable file (the Stripe CLI, `stripe`).")
    return path


class SettingsStore:
    """Loads and saves `Settings` as JSON; a corrupt file gives a clear error, not a crash."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Settings:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            raise ConfigurationError(f"Cannot read the settings file {self.path}: {exc}") from None
        try:
            raw: Any = json.loads(text)
            if not isinstance(raw, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"The settings file {self.path} is damaged. Fix or delete it, then start again."
            ) from None
        types = {f.name: f.type for f in fields(Settings)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            kind = types.get(key)
            if kind is None:
                continue
            if "int" in str(kind):
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    values[key] = value
            elif value is None or isinstance(value, str):
                values[key] = value
        return Settings(**values)

    def save(self, settings: Settings) -> None:
        """Validate and atomically write the settings file."""
        if settings.database_url:
            settings = replace(settings, database_url=validate_database_url(settings.database_url))
        if settings.api_base:
            settings = replace(settings, api_base=validate_api_base(settings.api_base))
        make_private_dir(self.path.parent)
        data = json.dumps(asdict(settings), indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".settings-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data + "\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise ConfigurationError(f"Cannot save settings to {self.path}: {exc}") from None
        log.info("Saved settings to %s", self.path)
