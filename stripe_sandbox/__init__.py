"""A local, stateful emulator of the part of Stripe's API that Billing Admin uses.

It serves HTTP on a loopback port and answers stripe-python exactly as Stripe would for
API version ``2026-10-28.endive`` (the one stripe-python 16.1.0 pins). It imports nothing
of the application. See ``stripe_sandbox/README.md``.
"""

from __future__ import annotations

from stripe_sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
