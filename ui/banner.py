"""The strip across the top that says whose money is at stake."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from services.stripe_gateway import StripeMode

_TEXT = {
    StripeMode.SANDBOX: (
        "Sandbox (training) — no real money. Everything runs against the built-in Stripe "
        "sandbox on this computer."
    ),
    StripeMode.TEST: "Stripe test mode — test data, no real money moves.",
    StripeMode.LIVE: "LIVE MODE — real money. Charges, refunds and links issued here are real.",
}


class ModeBanner(QLabel):
    """Amber for the sandbox, blue for test mode, red for live keys (see resources/style.qss)."""

    def __init__(self, mode: StripeMode, parent: QWidget | None = None) -> None:
        super().__init__(_TEXT[mode], parent)
        self.mode = mode
        self.setObjectName("modeBanner")
        self.setProperty("mode", mode.value)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setAccessibleName(mode.label)
