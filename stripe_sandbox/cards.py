"""Stripe's test cards and what a charge on each one does.

Numbers and outcomes follow https://docs.stripe.com/testing: the error ``code``,
``decline_code`` and message of a declined charge are the ones Stripe returns for that card.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stripe_sandbox.wire import JsonDict

# Outcomes of a charge attempt.
SUCCEEDS = "succeeds"
DECLINES = "declines"
# Needs 3D Secure: off-session payments (invoices) stop with `requires_action`; on a hosted
# page the sandbox completes the authentication as the cardholder would.
AUTHENTICATES = "authenticates"

# What Stripe does after a successful charge on some test cards.
DISPUTE_FRAUDULENT = "dispute_fraudulent"


@dataclass(frozen=True)
class Decline:
    """How Stripe reports a declined card."""

    code: str
    decline_code: str | None
    message: str
    reason: str
    param: str | None = None
    network_status: str = "declined_by_network"
    type: str = "issuer_declined"


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.", "generic_decline")


@dataclass(frozen=True)
class TestCard:
    """One test card number: brand details and what charging it does."""

    number: str
    brand: str
    funding: str
    outcome: str = SUCCEEDS
    decline: Decline | None = None
    country: str = "US"
    # Something that happens to a charge once it succeeded (a dispute), or None.
    after_success: str | None = None

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        """A stable fingerprint per number, like Stripe's (16 characters)."""
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]


def _card(
    number: str,
    brand: str = "visa",
    funding: str = "credit",
    outcome: str = SUCCEEDS,
    decline: Decline | None = None,
) -> TestCard:
    return TestCard(number, brand, funding, outcome, decline)


CARDS: dict[str, TestCard] = {
    c.number: c
    for c in (
        _card("4242424242424242"),
        _card("4000056655665556", funding="debit"),
        _card("5555555555554444", "mastercard"),
        _card("2223003122003222", "mastercard"),
        _card("5200828282828210", "mastercard", "debit"),
        _card("378282246310005", "amex"),
        _card("6011111111111117", "discover"),
        _card("3056930009020004", "diners"),
        _card("3566002020360505", "jcb"),
        _card("4000000000000002", outcome=DECLINES, decline=_GENERIC),
        # Attaching works; every charge declines (Stripe's pm_card_chargeCustomerFail).
        _card("4000000000000341", outcome=DECLINES, decline=_GENERIC),
        _card(
            "4000000000009995",
            outcome=DECLINES,
            decline=Decline(
                "card_declined",
                "insufficient_funds",
                "Your card has insufficient funds.",
                "insufficient_funds",
            ),
        ),
        _card(
            "4000000000009987",
            outcome=DECLINES,
            decline=Decline("card_declined", "lost_card", "Your card was declined.", "lost_card"),
        ),
        _card(
            "4000000000009979",
            outcome=DECLINES,
            decline=Decline(
                "card_declined", "stolen_card", "Your card was declined.", "stolen_card"
            ),
        ),
        _card(
            "4000000000000069",
            outcome=DECLINES,
            decline=Decline(
                "expired_card", None, "Your card has expired.", "expired_card", param="exp_month"
            ),
        ),
        _card(
            "4000000000000127",
            outcome=DECLINES,
            decline=Decline(
                "incorrect_cvc",
                None,
                "Your card's security code is incorrect.",
                "incorrect_cvc",
                param="cvc",
            ),
        ),
        _card(
            "4000000000000119",
            outcome=DECLINES,
            decline=Decline(
                "processing_error",
                None,
                "An error occurred while processing your card. Try again in a little bit.",
                "processing_error",
                network_status="not_sent_to_network",
                type="blocked",
            ),
        ),
        _card("4000002500003155", outcome=AUTHENTICATES),
        _card("4000002760003184", outcome=AUTHENTICATES),
        _card("4000000000003220", outcome=AUTHENTICATES),
        # The charge succeeds, then the cardholder disputes it as fraudulent.
        TestCard("4000000000000259", "visa", "credit", after_success=DISPUTE_FRAUDULENT),
    )
}

# A Luhn-valid number that is not a test card: Stripe's test mode refuses real cards.
LIVE_CARD_IN_TEST_MODE = Decline(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
    "test_mode_live_card",
)

# Stripe's test PaymentMethod ids and card tokens, each standing for a test card.
TEST_TOKENS: dict[str, str] = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "mastercard_debit": "5200828282828210",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "diners": "3056930009020004",
    "jcb": "3566002020360505",
    "chargeDeclined": "4000000000000002",
    "chargeCustomerFail": "4000000000000341",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeDeclinedLostCard": "4000000000009987",
    "chargeDeclinedStolenCard": "4000000000009979",
    "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127",
    "chargeDeclinedProcessingError": "4000000000000119",
    "authenticationRequired": "4000002760003184",
    "authenticationRequiredOnSetup": "4000002500003155",
    "threeDSecure2Required": "4000000000003220",
    "createDispute": "4000000000000259",
}


def luhn_ok(number: str) -> bool:
    """Whether ``number`` is 12 to 19 digits with a valid Luhn check digit."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char)
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def lookup(number: str) -> TestCard | None:
    """The test card for a number (spaces and dashes ignored), a declining stand-in for a
    Luhn-valid non-test number, or None for an invalid number."""
    digits = number.replace(" ", "").replace("-", "")
    card = CARDS.get(digits)
    if card is not None:
        return card
    if luhn_ok(digits):
        brand = {"4": "visa", "5": "mastercard", "3": "amex", "6": "discover"}.get(
            digits[0], "unknown"
        )
        return TestCard(digits, brand, "credit", DECLINES, LIVE_CARD_IN_TEST_MODE)
    return None


_BY_FINGERPRINT = {card.fingerprint: card for card in CARDS.values()}


def by_fingerprint(fingerprint: str) -> TestCard | None:
    """The test card with this fingerprint, or None (a non-test card)."""
    return _BY_FINGERPRINT.get(fingerprint)


def from_token(token: str) -> TestCard | None:
    """The card behind ``pm_card_visa`` / ``tok_visa`` style test ids, or None."""
    for prefix in ("pm_card_", "tok_"):
        if token.startswith(prefix):
            number = TEST_TOKENS.get(token[len(prefix) :])
            return CARDS.get(number) if number else None
    return None


def card_details(card: TestCard, exp_year: int) -> JsonDict:
    """The ``card`` hash of a card PaymentMethod."""
    return {
        "brand": card.brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": card.country,
        "display_brand": card.brand,
        "exp_month": 12,
        "exp_year": exp_year,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "generated_from": None,
        "last4": card.last4,
        "networks": {"available": [card.brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
