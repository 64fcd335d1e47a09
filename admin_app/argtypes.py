"""argparse value types shared by the commands: a bad value is exit 2 with one clear line."""

from __future__ import annotations

import argparse

from services.errors import ValidationError
from services.journal import validate_key


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, not {value}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def cents(text: str) -> int:
    """An amount in the currency's minor unit (cents), as Stripe takes it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"amount must be whole cents, e.g. 4500, not {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("amount must be more than zero")
    return value


def idempotency_key(text: str) -> str:
    """A Stripe idempotency key: 1 to 255 printable ASCII characters, not a secret."""
    try:
        return validate_key(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_idempotency_key(parser: argparse.ArgumentParser) -> None:
    """`--idempotency-key KEY` for a command that creates objects or moves money."""
    parser.add_argument(
        "--idempotency-key",
        type=idempotency_key,
        metavar="KEY",
        help="send this idempotency key verbatim (scripts); default: the request journal "
        "re-uses the key of an unconfirmed identical run from the last 24 h, else a new one",
    )
