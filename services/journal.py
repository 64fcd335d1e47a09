"""The request journal: which Stripe requests were made for whom, and how each one ended.

A request whose answer is lost (a dropped connection, a timeout, the gateway's retries used up)
may or may not have happened in Stripe. Re-running it with a fresh idempotency key would create
a second customer, draft or Checkout session; re-running it with the *same* key makes Stripe
replay its first answer. So every object-creating or money-moving request goes through
`Journal.attempt`:

* Before the call, an intent row is committed: operator, action, a fingerprint of the arguments
  (sorted canonical JSON, hashed: stable across processes, no secret kept), the idempotency key,
  the time, outcome ``pending``.
* After the call, its outcome: ``succeeded`` (with the Stripe object id), ``failed`` (Stripe
  refused: definite, nothing happened) or ``unknown`` (no answer).
* The same operator starting the same action with the same fingerprint, while a ``pending`` or
  ``unknown`` entry younger than 24 hours (Stripe's idempotency window) exists, gets that
  entry's key back; after a definite outcome a new run gets a new key. A key given explicitly
  (``--idempotency-key``, or a dialog's "Try again") is used verbatim.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import peewee

from services import validation
from services.audit import Authority
from services.errors import (
    AppError,
    IdempotencyConflict,
    NotFound,
    StripeUnreachable,
    ValidationError,
)
from services.models import RequestJournal, WebhookEvent, tuples
from services.permissions import Permission
from services.redaction import redact

log = logging.getLogger(__name__)

#: Stripe keeps an idempotency key (and replays its answer) for at least 24 hours.
REUSE_WINDOW_S = 24 * 3600
#: Stripe's limit on an idempotency key's length.
MAX_KEY_LENGTH = 255


class JournalOutcome(enum.Enum):
    PENDING = "pending"  # intent written, no outcome yet (running, or the process died)
    SUCCEEDED = "succeeded"  # Stripe answered: the object id is kept
    FAILED = "failed"  # Stripe refused (definite: nothing happened)
    UNKNOWN = "unknown"  # no answer: it may or may not have happened
    FORGOTTEN = "forgotten"  # an admin resolved it by hand (reason kept, audited)


UNCONFIRMED = (JournalOutcome.PENDING.value, JournalOutcome.UNKNOWN.value)


class KeyConflict(ValidationError):
    """An explicit idempotency key that was already used for a different request."""


@dataclass(frozen=True)
class JournalEntry:
    id: int
    created_at: int  # seconds since the epoch: the key's first use
    updated_at: int
    operator: str
    action: str
    target: str
    summary: str
    idempotency_key: str
    outcome: str
    object_id: str
    error: str
    attempts: int
    resolved_by: str
    reason: str
    found_object_id: str = ""  # an object a stored Stripe event says this key created

    @property
    def unconfirmed(self) -> bool:
        return self.outcome in UNCONFIRMED

    def age_s(self, now: float | None = None) -> int:
        return max(0, int((now if now is not None else time.time()) - self.created_at))

    def replayable(self, now: float | None = None) -> bool:
        """True while Stripe still replays this key's first answer."""
        return self.age_s(now) < REUSE_WINDOW_S


@dataclass
class Attempt:
    """One run of a journalled request; the body reports Stripe's answer with `answered`."""

    entry_id: int
    key: str
    started_at: int  # the key's first use: time-derived params must come from here
    reused: JournalEntry | None  # the unconfirmed entry whose key this run re-uses
    object_id: str | None = field(default=None)

    def answered(self, object_id: str) -> None:
        """Stripe answered with this object: the request happened, whatever follows locally."""
        self.object_id = object_id


def validate_key(key: str) -> str:
    """An idempotency key as Stripe accepts it: 1 to 255 printable ASCII characters."""
    cleaned = key.strip()
    if not cleaned:
        raise ValidationError("The idempotency key is empty.")
    if len(cleaned) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"The idempotency key is {len(cleaned)} characters; Stripe allows at most "
            f"{MAX_KEY_LENGTH}."
        )
    if not all(33 <= ord(ch) < 127 for ch in cleaned):
        raise ValidationError(
            "The idempotency key may contain only printable ASCII characters without spaces."
        )
    if redact(cleaned) != cleaned:
        raise ValidationError("The idempotency key looks like a Stripe secret; use another one.")
    return cleaned


def canonical_json(args: Mapping[str, Any]) -> str:
    """Sorted, compact JSON: the same arguments give the same text in every process."""
    return json.dumps(dict(args), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)  # fmt: skip


def fingerprint(scope: str, operator: str, action: str, args: Mapping[str, Any]) -> str:
    """The hash the journal matches runs by. The arguments themselves are never stored."""
    text = canonical_json({"scope": scope, "operator": operator, "action": action, "args": args})
    return hashlib.sha256(text.encode()).hexdigest()


def _outcome_of(exc: BaseException, attempt: Attempt) -> JournalOutcome:
    if attempt.object_id:
        return JournalOutcome.SUCCEEDED  # Stripe answered; a later local problem changes nothing
    if isinstance(exc, IdempotencyConflict | StripeUnreachable):
        return JournalOutcome.UNKNOWN
    if isinstance(exc, AppError):
        return JournalOutcome.FAILED  # refused by Stripe, denied, or bad input: nothing happened
    return JournalOutcome.UNKNOWN  # a bug: we cannot tell whether the request went out


class Journal:
    """The request journal of one signed-in operator.

    Args:
        db: the app's database.
        authority: the operator (their login goes into every entry) and the audit log.
        scope: what else must match for a key to be re-used, e.g. the Stripe mode, so a test
            key's entry is never re-used in live mode.
        clock: seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        db: peewee.Database,
        authority: Authority,
        *,
        scope: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._authority = authority
        self._scope = scope
        self._clock = clock
        #: Called with the re-used entry whenever a run takes an unconfirmed run's key.
        self.on_reuse: Callable[[JournalEntry], None] | None = None

    # ---- journalling a request
    @contextmanager
    def attempt(
        self,
        action: str,
        args: Mapping[str, Any],
        *,
        key: str | None = None,
        target: str | None = None,
        summary: str = "",
    ) -> Iterator[Attempt]:
        """Journal one request: the intent is committed before the body runs, the outcome after.

        Args:
            action: the audit action name, e.g. ``customer.create``.
            args: what the operator asked for (not derived values such as timestamps); hashed.
            key: an explicit idempotency key, used verbatim; None lets the journal decide.
            target: the object acted on, if it exists already.
            summary: one line for people (redacted before it is stored).

        Raises:
            KeyConflict: `key` was already used for a different request; nothing was sent.
            IdempotencyConflict: Stripe refused the key (different parameters); the entry stays
                unknown and the message says how to resolve it.
        """
        attempt = self._begin(action, args, key, target, summary)
        try:
            yield attempt
        except BaseException as exc:
            outcome = _outcome_of(exc, attempt)
            self._finish(attempt, outcome, exc)
            if isinstance(exc, AppError):
                exc.idempotency_key = attempt.key
                exc.journal_outcome = outcome.value
            if isinstance(exc, IdempotencyConflict) and outcome is JournalOutcome.UNKNOWN:
                raise IdempotencyConflict(
                    f"Stripe already received a request with the key {attempt.key} but with "
                    "different details, and refused this one. The first request may have "
                    f"done its work: check in Stripe (or sync), then an admin can run "
                    f"`admin-app journal forget {attempt.entry_id} --reason …` to allow a new "
                    "attempt.",
                    request_id=exc.request_id,
                ) from exc
            raise
        self._finish(attempt, JournalOutcome.SUCCEEDED, None)

    def _begin(
        self,
        action: str,
        args: Mapping[str, Any],
        key: str | None,
        target: str | None,
        summary: str,
    ) -> Attempt:
        login = self._authority.actor.login
        fp = fingerprint(self._scope, login, action, args)
        now = int(self._clock())
        if key is not None:
            key = validate_key(key)
        reused: JournalEntry | None = None
        with self._db.atomic():
            if key is not None:
                row = RequestJournal.get_or_none(RequestJournal.idempotency_key == key)
                if row is not None and (row.fingerprint != fp or row.action != action):
                    raise KeyConflict(
                        f"The idempotency key {key} was already used for a different request "
                        f"({row.action} by {row.operator}: {row.summary}). Stripe would refuse "
                        "it; use a new key, or repeat exactly that request."
                    )
            else:
                row = (
                    RequestJournal.select()
                    .where(
                        (RequestJournal.operator == login)
                        & (RequestJournal.action == action)
                        & (RequestJournal.fingerprint == fp)
                        & RequestJournal.outcome.in_(UNCONFIRMED)
                        & (RequestJournal.created_at > now - REUSE_WINDOW_S)
                    )
                    .order_by(RequestJournal.created_at.desc(), RequestJournal.id.desc())
                    .first()
                )
                if row is not None:
                    reused = _entry(row)
            if row is not None:
                RequestJournal.update(
                    outcome=JournalOutcome.PENDING.value,
                    updated_at=now,
                    attempts=RequestJournal.attempts + 1,
                    error=None,
                ).where(RequestJournal.id == row.id).execute()
                attempt = Attempt(row.id, row.idempotency_key, int(row.created_at), reused)
            else:
                new_key = key or f"ba-{uuid.uuid4()}"
                entry_id = RequestJournal.insert(
                    created_at=now,
                    updated_at=now,
                    operator=login,
                    action=action,
                    target=target,
                    summary=redact(summary or action)[:500],
                    fingerprint=fp,
                    idempotency_key=new_key,
                    outcome=JournalOutcome.PENDING.value,
                ).execute()
                attempt = Attempt(int(entry_id), new_key, now, None)
        if reused is not None:
            log.info("Re-using the key of unconfirmed request #%d (%s)", reused.id, reused.action)
            if self.on_reuse is not None:
                self.on_reuse(reused)
        return attempt

    def _finish(self, attempt: Attempt, outcome: JournalOutcome, exc: BaseException | None) -> None:
        error = None
        if exc is not None:
            error = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
            error = redact(error)[:2000]
        try:
            with self._db.atomic():
                RequestJournal.update(
                    outcome=outcome.value,
                    updated_at=int(self._clock()),
                    object_id=attempt.object_id,
                    error=error,
                ).where(RequestJournal.id == attempt.entry_id).execute()
        except peewee.PeeweeException:
            # The entry stays `pending`, which is shown as unconfirmed: safe, just noisier.
            log.exception("Could not record the outcome of journal entry #%d", attempt.entry_id)

    # ---- reading and resolving
    def entries(self, *, include_resolved: bool = False, limit: int = 500) -> list[JournalEntry]:
        """Unconfirmed entries (all operators), newest first; everything with `include_resolved`.

        Each unconfirmed entry carries the object a stored Stripe event names as created by its
        key, if one arrived since (`found_object_id`).
        """
        self._authority.require(Permission.BROWSE, "journal.list")
        query = RequestJournal.select().order_by(
            RequestJournal.created_at.desc(), RequestJournal.id.desc()
        )
        if not include_resolved:
            query = query.where(RequestJournal.outcome.in_(UNCONFIRMED))
        rows = [_entry(r) for r in query.limit(limit)]
        found = self._objects_by_key([e.idempotency_key for e in rows if e.unconfirmed])
        return [
            _replace_found(e, found.get(e.idempotency_key, "")) if e.unconfirmed else e
            for e in rows
        ]

    def unconfirmed_count(self) -> int:
        """How many requests have no known outcome (the window's status-bar indicator)."""
        self._authority.require(Permission.BROWSE, "journal.list")
        return int(RequestJournal.select().where(RequestJournal.outcome.in_(UNCONFIRMED)).count())

    def forget(self, entry_id: int, reason: str) -> JournalEntry:
        """Resolve an unconfirmed entry by hand (admins, audited): its key is not re-used again.

        For when someone checked in Stripe what happened and does not want a re-run to replay
        the request (e.g. it was made by mistake, or done another way meanwhile).
        """
        reason = validation.text(reason, "A reason", max_len=500, required=True)
        with self._authority.action(
            Permission.RESOLVE_REQUESTS, "journal.forget", target=f"journal#{entry_id}",
            reason=reason,
        ) as record:  # fmt: skip
            row = RequestJournal.get_or_none(RequestJournal.id == entry_id)
            if row is None:
                raise NotFound(f"No journal entry {entry_id}.")
            if row.outcome not in UNCONFIRMED:
                raise ValidationError(
                    f"Journal entry {entry_id} is {row.outcome}, not unconfirmed: nothing to "
                    "forget."
                )
            record.idempotency_key = row.idempotency_key
            record.params = {"action": row.action, "outcome_was": row.outcome,
                             "summary": row.summary}  # fmt: skip
            RequestJournal.update(
                outcome=JournalOutcome.FORGOTTEN.value,
                updated_at=int(self._clock()),
                resolved_by=self._authority.actor.login,
                reason=redact(reason),
            ).where(RequestJournal.id == entry_id).execute()
        return _entry(RequestJournal.get(RequestJournal.id == entry_id))

    def _objects_by_key(self, keys: list[str]) -> dict[str, str]:
        """Object ids of stored Stripe events made by requests with these keys."""
        found: dict[str, str] = {}
        for key in keys:
            # JSONText stores compact sorted JSON, so this text is in the event's `request`.
            needle = json.dumps({"idempotency_key": key}, separators=(",", ":"))[1:-1]
            query = (
                WebhookEvent.select(WebhookEvent.object_id, WebhookEvent.raw)
                .where(WebhookEvent.raw.contains(needle) & WebhookEvent.object_id.is_null(False))
                .order_by(WebhookEvent.created)
                .limit(5)
            )
            for object_id, raw in tuples(query):
                data = json.loads(raw) if isinstance(raw, str) else raw
                request = (data or {}).get("request") or {}
                if isinstance(request, Mapping) and request.get("idempotency_key") == key:
                    found[key] = str(object_id)
                    break
        return found


def _entry(row: RequestJournal) -> JournalEntry:
    return JournalEntry(
        id=int(row.id),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        operator=row.operator,
        action=row.action,
        target=row.target or "",
        summary=row.summary,
        idempotency_key=row.idempotency_key,
        outcome=row.outcome,
        object_id=row.object_id or "",
        error=row.error or "",
        attempts=int(row.attempts),
        resolved_by=row.resolved_by or "",
        reason=row.reason or "",
    )


def _replace_found(entry: JournalEntry, object_id: str) -> JournalEntry:
    return replace(entry, found_object_id=object_id)
