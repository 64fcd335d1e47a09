"""Logging: a rotating file in the log directory, warnings on stderr, secrets always redacted."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from services.private_files import create_private_file, make_private_dir
from services.redaction import RedactingFilter

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def setup_logging(log_file: Path | None, *, verbose: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_billing_admin", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    redactor = RedactingFilter()

    stderr = logging.StreamHandler()
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handlers: list[logging.Handler] = [stderr]
    if log_file is not None:
        try:
            make_private_dir(log_file.parent)
            create_private_file(log_file)
            file_handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
            file_handler.setFormatter(logging.Formatter(_FORMAT))
            handlers.append(file_handler)
        except OSError as exc:
            logging.getLogger(__name__).warning("Cannot write the log file %s: %s", log_file, exc)
    for handler in handlers:
        handler.addFilter(redactor)
        handler._billing_admin = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # stripe-python logs request lines at INFO with the full URL; keep them at debug level.
    logging.getLogger("stripe").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
