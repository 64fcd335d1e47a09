"""The statuses a top-up link goes through, as stored in `TopUp.status`.

open → pending (a bank debit settling) → credited → refunded / disputed; open → expired or
failed. There is no "paid": a paid session is credited in the same transaction that records the
payment (`services.credits._credit_purchase`), so nothing is ever stored as paid-not-credited.
"""

from __future__ import annotations

import enum


class TopUpStatus(enum.Enum):
    OPEN = "open"  # the link can be paid
    PENDING = "pending"  # paid by bank debit, waiting for it to settle
    CREDITED = "credited"  # paid and credited (once)
    EXPIRED = "expired"  # expired unpaid (in Stripe, or by an operator)
    FAILED = "failed"  # the asynchronous payment failed
    REFUNDED = "refunded"  # refunded in full: the credits were clawed back
    DISPUTED = "disputed"  # a dispute was lost: the credits were clawed back


STATUS_VALUES: tuple[str, ...] = tuple(s.value for s in TopUpStatus)
