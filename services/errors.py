"""The one error hierarchy: expected problems a finance clerk can act on.

Anything that is not an `AppError` is a bug: it is logged with its traceback and shown once in the
crash dialog. Each subclass carries the CLI exit code for its kind of problem.
"""

from __future__ import annotations


class AppError(Exception):
    """An expected problem with a message written for the person at the keyboard."""

    exit_code = 1

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Stripe's request id goes to the log, where support can quote it to Stripe.
        self.request_id = request_id
        # True once an audit row for this error was written (see services.audit).
        self.audited = False
        # Set by services.journal for a journalled Stripe request: the key it went out with and
        # how the journal recorded it (a dialog's "Try again" re-uses the key of an unknown one).
        self.idempotency_key: str | None = None
        self.journal_outcome: str | None = None

    def __str__(self) -> str:
        return self.message


class ValidationError(AppError):
    """Bad input from a form or a command line; nothing was changed."""

    exit_code = 2


class ConfigurationError(AppError):
    """Settings or secrets are missing or unusable (e.g. no OS keyring on this machine)."""

    exit_code = 2


class DatabaseError(AppError):
    """The local database cannot be opened, migrated or read."""

    exit_code = 1


class PermissionDenied(AppError):
    """The operator's role lacks the permission the action needs."""

    exit_code = 3


class DatabaseDenied(PermissionDenied):
    """The shared database refused this login (its GRANTs or guards, `admin-app db setup`)."""


class NotAnOperator(PermissionDenied):
    """The person running the app is not (or no longer) a Billing Admin operator."""


class StripeRefused(AppError):
    """Stripe answered and said no: invalid request, bad key, unknown object."""

    exit_code = 4


class PaymentDeclined(StripeRefused):
    """The customer's card or bank declined the payment."""


class AuthenticationFailed(StripeRefused):
    """Stripe rejected the API key."""


class NotFound(StripeRefused):
    """The object does not exist in Stripe (or was deleted)."""


class RateLimited(StripeRefused):
    """Stripe asked us to slow down; trying again in a moment usually works."""


class IdempotencyConflict(StripeRefused):
    """The same action was retried with different details; nothing was done twice."""


class StripeUnreachable(AppError):
    """No answer from Stripe: offline, DNS, TLS or a timeout."""

    exit_code = 5
