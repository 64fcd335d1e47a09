"""Keep secrets out of every log line and message, whatever code path produced them."""

from __future__ import annotations

import logging
import re

# Stripe secret, restricted and webhook-signing keys; publishable keys are not secret.
_SECRET_RE = re.compile(r"\b((?:sk|rk)_(?:test|live)_|whsec_)[A-Za-z0-9_]+")
# user:password@ in a database URL
_URL_PASSWORD_RE = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact(text: str) -> str:
    """Return `text` with Stripe secrets and URL passwords masked.

    The key's prefix stays so a reader can still tell test from live.
    """
    text = _SECRET_RE.sub(lambda m: m.group(1) + "…redacted", text)
    return _URL_PASSWORD_RE.sub(r"\1***@", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message and any traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
