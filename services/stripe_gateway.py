"""The one door to Stripe: a lazily built `StripeClient` and Stripe errors as `AppError`s.

Every call goes through `StripeGateway.call`, which turns stripe-python's exceptions into the typed,
plain-language errors of `services.errors` and logs Stripe's request id for support.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from services.errors import (
    AppError,
    AuthenticationFailed,
    IdempotencyConflict,
    NotFound,
    PaymentDeclined,
    PermissionDenied,
    RateLimited,
    StripeRefused,
    StripeUnreachable,
)
from services.redaction import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

if TYPE_CHECKING:  # imported on first use: the window paints before Stripe's code is loaded
    import stripe

#: The API version every request is pinned to: the one the pinned stripe-python (16.1.0) was
#: built for. Written out so that reading it loads no Stripe code; the self-test and
#: tests/e2e/test_cold_start.py check that the installed stripe-python agrees.
PINNED_API_VERSION = "2026-10-28.endive"


class StripeMode(enum.Enum):
    """Whose money is at stake; shown in the window's banner and status bar."""

    SANDBOX = "sandbox"  # the bundled local emulator: no Stripe account at all
    TEST = "test"  # a real Stripe account in test mode
    LIVE = "live"  # real money

    @property
    def label(self) -> str:
        return {
            StripeMode.SANDBOX: "Sandbox — no real money",
            StripeMode.TEST: "Stripe test mode",
            StripeMode.LIVE: "LIVE MODE — real money",
        }[self]


def mode_for_key(api_key: str, *, sandbox: bool) -> StripeMode:
    """Test vs live is decided by the key's prefix, as Stripe itself does."""
    if sandbox:
        return StripeMode.SANDBOX
    if api_key.startswith(("sk_live_", "rk_live_")):
        return StripeMode.LIVE
    return StripeMode.TEST


def translate_stripe_error(exc: stripe.StripeError) -> AppError:
    """Map a stripe-python exception to the `AppError` a clerk can understand."""
    import stripe

    detail = exc.user_message or ""
    request_id = exc.request_id
    result: AppError
    if isinstance(exc, stripe.CardError):
        result = PaymentDeclined(f"The payment was declined: {detail}", request_id=request_id)
    elif isinstance(exc, stripe.AuthenticationError):
        result = AuthenticationFailed(
            "Stripe rejected the API key. Check the secret key in Settings "
            "(or the STRIPE_SECRET_KEY environment variable).",
            request_id=request_id,
        )
    elif isinstance(exc, stripe.PermissionError):
        result = PermissionDenied(
            f"This Stripe key is not allowed to do that (a restricted key?): {detail}",
            request_id=request_id,
        )
    elif isinstance(exc, stripe.RateLimitError):
        result = RateLimited(
            "Stripe is receiving too many requests right now. Wait a moment and try again.",
            request_id=request_id,
        )
    elif isinstance(exc, stripe.IdempotencyError):
        result = IdempotencyConflict(
            "This action was already sent to Stripe with different details, so Stripe refused "
            "to repeat it. Start the action again from the beginning.",
            request_id=request_id,
        )
    elif isinstance(exc, stripe.APIConnectionError):
        result = StripeUnreachable(
            "Cannot reach Stripe. Check the network connection (or that the sandbox is running) "
            "and try again.",
            request_id=request_id,
        )
    elif isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing":
        result = NotFound(f"Stripe has no such object: {detail}", request_id=request_id)
    elif isinstance(exc, stripe.APIError):
        result = StripeUnreachable(
            f"Stripe had a temporary problem ({detail or 'server error'}). Try again shortly.",
            request_id=request_id,
        )
    else:
        result = StripeRefused(f"Stripe refused the request: {detail}", request_id=request_id)
    # INFO, not WARNING: the AppError carries the words for the person (the CLI prints them as
    # its one line on stderr, the window in a dialog); this line is for the log file, with the
    # request id support quotes to Stripe.
    log.info(
        "Stripe error %s (request %s, status %s): %s",
        type(exc).__name__,
        request_id,
        exc.http_status,
        redact(detail),
    )
    return result


class StripeGateway:
    """Builds the `StripeClient` on first use (the seed's lazy singleton, minus the global).

    Args:
        api_key: a secret (``sk_``) or restricted (``rk_``) key.
        api_base: override of Stripe's API address, e.g. a local sandbox.
        sandbox: True when `api_base` is the bundled sandbox (changes only the shown mode).
        max_network_retries: stripe-python retries connection errors and 409/429/5xx answers,
            adding an idempotency key to POSTs so a retry cannot act twice.
        timeout: seconds to wait for one answer (None: stripe-python's default of 80 s). A
            timed-out request is retried like a connection error, with the same idempotency key.
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        sandbox: bool = False,
        max_network_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        self._api_key = api_key
        self.api_base = api_base
        self.mode = mode_for_key(api_key, sandbox=sandbox)
        self._max_network_retries = max_network_retries
        self._timeout = timeout
        self._client: stripe.StripeClient | None = None
        self._lock = threading.Lock()

    def api_key_for_cli(self) -> str:
        """The key, for the one place that must pass it on: `stripe listen` (in its environment)."""
        return self._api_key

    def __repr__(self) -> str:  # never show the key
        return f"StripeGateway(mode={self.mode.value}, api_base={self.api_base!r})"

    @property
    def client(self) -> stripe.StripeClient:
        import stripe  # the first call loads it (~0.1 s), not the start of the app

        with self._lock:
            if self._client is None:
                self._client = stripe.StripeClient(
                    self._api_key,
                    stripe_version=PINNED_API_VERSION,
                    base_addresses={"api": self.api_base} if self.api_base else None,
                    max_network_retries=self._max_network_retries,
                    http_client=(
                        stripe.RequestsClient(timeout=self._timeout)
                        if self._timeout is not None
                        else None
                    ),
                )
            return self._client

    def call(self, fn: Callable[[stripe.StripeClient], T]) -> T:
        """Run `fn` with the client; Stripe errors come out as `AppError` subclasses."""
        import stripe

        try:
            return fn(self.client)
        except stripe.StripeError as exc:
            raise translate_stripe_error(exc) from exc

    def check_connection(self) -> None:
        """One cheap authenticated request; raises the same typed errors as any call."""
        self.call(lambda c: c.v1.customers.list({"limit": 1}))
