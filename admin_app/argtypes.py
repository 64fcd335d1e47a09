"""argparse value types shared by the commands: a bad value is exit 2 with one clear line."""

from __future__ import annotations

import argparse


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
