"""Display formatting shared by the panels (dates; money lives in services.money)."""

from __future__ import annotations

from datetime import datetime

from services.money import format_amount

__all__ = ["format_amount", "format_date", "format_datetime"]


def format_date(ts: int | None) -> str:
    """Seconds since the epoch → local `YYYY-MM-DD`; unknown → an em dash."""
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def format_datetime(ts: int | None) -> str:
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
