"""Reconciliation: prove the local books match Stripe, name every difference, repair safely.

The web app this product grew from credited balances with no payment collected and nothing
noticed. `Reconciler.run` compares, for a period:

* every top-up's Checkout session ↔ its ledger: a paid session with no purchase (*paid, not
  credited*); a purchase without a paid session or paid invoice (*credited, not paid* — the old
  bug, critical); refunds and lost disputes ↔ clawbacks; the top-up's status ↔ the session's;
* every invoice in the mirror ↔ Stripe (status, amount paid, amount remaining);
* stored events that failed or were never applied, and the catch-up cursor ↔ Stripe's newest
  event.

Stripe is read page by page (sessions, refunds, disputes, invoices created in the period: a
handful of list calls, not one per top-up), with progress for the person waiting.

`repair` (admins, audited, a reason required) fixes what can be fixed without judgement, through
the same code as the webhook path: a missing purchase or clawback goes through
`credits.settle_topup` (the one exactly-once purchase writer), failed events are replayed,
stale invoices re-read. Removing credits is never automatic: *credited, not paid* offers
`claw_back_unpaid`, an explicit admin action with its own reason.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import peewee

from services import export, lots, validation
from services.audit import Authority
from services.auto_topup import auto_topup_paid
from services.catchup import CURSOR_KEY, CatchUp
from services.credits import SYSTEM, settle_topup
from services.errors import NotFound, ValidationError
from services.events import EventPipeline, HandlerContext, Status
from services.mirror import upsert
from services.models import AppState, CreditEntry, Invoice, TopUp, WebhookEvent, tuples
from services.money import format_amount
from services.permissions import Permission
from services.pg_security import can_write
from services.stripe_gateway import StripeGateway
from services.topup_status import TopUpStatus

log = logging.getLogger(__name__)

LAST_RESULT_KEY = "reconcile.last"
#: Events younger than this may still be on their way through the pipeline: not findings.
SETTLING_S = 300


class Severity(enum.Enum):
    CRITICAL = "critical"  # money given without payment
    HIGH = "high"  # money taken or owed that the books do not show
    MEDIUM = "medium"  # the mirror or the event history is behind
    LOW = "low"  # a status that will not move money


class Kind(enum.Enum):
    PAID_NOT_CREDITED = "paid, not credited"
    CREDITED_NOT_PAID = "credited, not paid"
    NOT_CLAWED_BACK = "refunded or disputed, not clawed back"
    TOPUP_STATUS = "top-up status differs"
    INVOICE_DIFFERS = "invoice differs from Stripe"
    EVENT_NOT_APPLIED = "event not applied"
    EVENTS_BEHIND = "events missing"


SEVERITY = {
    Kind.PAID_NOT_CREDITED: Severity.HIGH,
    Kind.CREDITED_NOT_PAID: Severity.CRITICAL,
    Kind.NOT_CLAWED_BACK: Severity.HIGH,
    Kind.TOPUP_STATUS: Severity.LOW,
    Kind.INVOICE_DIFFERS: Severity.MEDIUM,
    Kind.EVENT_NOT_APPLIED: Severity.MEDIUM,
    Kind.EVENTS_BEHIND: Severity.MEDIUM,
}

#: What `repair` does for each kind ("" = nothing automatic).
FIX = {
    Kind.PAID_NOT_CREDITED: "settle the top-up from Stripe (credits once)",
    Kind.CREDITED_NOT_PAID: "",  # explicit: claw_back_unpaid, with a reason
    Kind.NOT_CLAWED_BACK: "settle the top-up from Stripe (claws back once)",
    Kind.TOPUP_STATUS: "settle the top-up from Stripe",
    Kind.INVOICE_DIFFERS: "re-read the invoice into the mirror",
    Kind.EVENT_NOT_APPLIED: "replay the event",
    Kind.EVENTS_BEHIND: "catch up on events",
}


@dataclass(frozen=True)
class Finding:
    kind: Kind
    target: str  # the object repair acts on: tu_…, in_…, evt_…, a ledger source
    summary: str
    customer_id: str = ""
    objects: dict[str, str] = field(default_factory=dict)
    amount: int | None = None
    currency: str | None = None
    credits: int | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.kind]

    @property
    def fix(self) -> str:
        if self.kind is Kind.CREDITED_NOT_PAID:
            return f"admin-app reconcile --claw-back {self.target} --reason … (never automatic)"
        return FIX[self.kind]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(kind=self.kind.value, severity=self.severity.value, fix=self.fix)
        return data


@dataclass(frozen=True)
class ReconcileReport:
    since: int
    at: int
    findings: list[Finding]
    checked: dict[str, int]
    seconds: float

    @property
    def matches(self) -> bool:
        return not self.findings

    def line(self) -> str:
        if self.matches:
            return "Books match"
        n = len(self.findings)
        return f"{n} difference{'s' if n != 1 else ''}"

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "at": self.at,
            "matches": self.matches,
            "checked": self.checked,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class RepairReport:
    repaired: list[str]
    skipped: list[str]  # findings that need a person (credited, not paid)
    failed: list[str]


#: The findings as a CSV table (`admin-app reconcile --csv`, the Reconcile view's export).
FINDINGS_TABLE = export.Table(
    "reconcile",
    (
        export.Field("severity", lambda f: f.severity.value),
        export.Field("kind", lambda f: f.kind.value),
        export.Field("target", lambda f: f.target),
        export.Field("customer_id", lambda f: f.customer_id),
        export.Field("credits", lambda f: f.credits, export.Kind.NUMBER),
        export.Field("amount", lambda f: f.amount, export.Kind.MONEY,
                     currency=lambda f: f.currency or ""),
        export.Field("currency", lambda f: f.currency or ""),
        export.Field("summary", lambda f: f.summary),
        export.Field("fix", lambda f: f.fix),
    ),
)  # fmt: skip

Progress = Callable[[str], None]


class Reconciler:
    """Compares the books with Stripe (finance and admins) and repairs them (admins)."""

    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        pipeline: EventPipeline,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        self._pipeline = pipeline

    # ---- comparing
    def run(self, since: int | None = None, progress: Progress | None = None) -> ReconcileReport:
        self._authority.require(Permission.RECONCILE, "reconcile.run")
        say = progress or (lambda _text: None)
        started = time.monotonic()
        since = int(since if since is not None else time.time() - 30 * 86400)
        findings: list[Finding] = []
        checked: dict[str, int] = {}

        sessions = self._listed("checkout.sessions", since, say)
        refunds = self._listed("refunds", since, say)
        disputes = self._listed("disputes", since, say)
        checked["sessions"], checked["refunds"], checked["disputes"] = (
            len(sessions), len(refunds), len(disputes),
        )  # fmt: skip
        findings += self._topups(since, sessions, refunds, disputes, checked)
        findings += self._purchases(since, sessions, checked)
        findings += self._invoices(since, say, checked)
        findings += self._events(checked)
        findings.sort(key=lambda f: (list(Severity).index(f.severity), f.kind.value, f.target))
        report = ReconcileReport(since, int(time.time()), findings, checked,
                                 time.monotonic() - started)  # fmt: skip
        self._remember(report)
        say(f"reconcile: {report.line()} ({sum(checked.values()):,} objects checked)")
        return report

    def _listed(self, what: str, since: int, say: Progress) -> dict[str, dict[str, Any]]:
        """Everything of one kind Stripe has created since `since`, by id, page by page.

        Read as plain JSON (`raw_request`): building 10,000 typed stripe-python objects to
        compare a few fields costs more than Stripe's answers themselves."""
        path = {"checkout.sessions": "/v1/checkout/sessions"}.get(what, f"/v1/{what}")
        found: dict[str, dict[str, Any]] = {}
        starting_after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "created[gte]": since}
            if starting_after:
                params["starting_after"] = starting_after

            def fetch(c: Any, p: dict[str, Any] = params) -> Any:
                return c.raw_request("get", path, **p)

            page = json.loads(self._gateway.call(fetch).body)
            data = page.get("data") or []
            for obj in data:
                found[str(obj["id"])] = obj
            say(f"reconcile: read {len(found):,} {what.split('.')[-1]} from Stripe")
            if not page.get("has_more") or not data:
                return found
            starting_after = str(data[-1]["id"])

    def _topups(
        self,
        since: int,
        sessions: dict[str, dict[str, Any]],
        refunds: dict[str, dict[str, Any]],
        disputes: dict[str, dict[str, Any]],
        checked: dict[str, int],
    ) -> Iterator[Finding]:
        by_intent_refunds: dict[str, list[dict[str, Any]]] = {}
        for r in refunds.values():
            if r.get("status") in ("succeeded", "pending") and r.get("payment_intent"):
                by_intent_refunds.setdefault(str(r["payment_intent"]), []).append(r)
        by_intent_lost: dict[str, list[dict[str, Any]]] = {}
        for d in disputes.values():
            if d.get("status") == "lost" and d.get("payment_intent"):
                by_intent_lost.setdefault(str(d["payment_intent"]), []).append(d)
        ledger: dict[str, dict[str, int]] = {}
        for topup_id, kind, amount in tuples(
            CreditEntry.select(CreditEntry.topup_id, CreditEntry.kind, CreditEntry.amount).where(
                CreditEntry.topup_id.is_null(False)
            )
        ):
            sums = ledger.setdefault(topup_id, {})
            sums[kind] = sums.get(kind, 0) + int(amount)
        count = 0
        for topup in TopUp.select().where(TopUp.issued_at >= since).order_by(TopUp.issued_at):
            count += 1
            session = sessions.get(topup.checkout_session_id)
            if session is None:
                session = self._retrieve_session(topup.checkout_session_id)
                if session is None:
                    continue  # not this account's, or gone: nothing to compare
            sums = ledger.get(topup.topup_id, {})
            purchased = sums.get("purchase", 0)
            clawed = -sums.get("clawback", 0)
            objects = {"top-up": topup.topup_id, "session": topup.checkout_session_id}
            money = format_amount(topup.amount, topup.currency)
            base: dict[str, Any] = {
                "customer_id": topup.customer_id, "objects": objects, "amount": topup.amount,
                "currency": topup.currency, "credits": topup.credits,
            }  # fmt: skip
            paid = session.get("payment_status") == "paid"
            if paid and not purchased:
                yield Finding(
                    Kind.PAID_NOT_CREDITED, topup.topup_id,
                    f"{topup.topup_id}: {money} paid in Stripe, {topup.credits:,} credits never "
                    "added", **base,
                )  # fmt: skip
            if not paid and purchased > clawed:
                yield Finding(
                    Kind.CREDITED_NOT_PAID, topup.topup_id,
                    f"{topup.topup_id}: {purchased:,} credits added, but Stripe says the "
                    f"session is {session.get('payment_status')}", **base,
                )  # fmt: skip
            if paid:
                intent = str(session.get("payment_intent") or "")
                reversed_amount = sum(int(r.get("amount") or 0) for r in by_intent_refunds.get(
                    intent, [])) + sum(int(d.get("amount") or 0) for d in by_intent_lost.get(
                    intent, []))  # fmt: skip
                owed_back = min(
                    topup.credits, round(topup.credits * reversed_amount / topup.amount)
                )
                if owed_back > clawed:
                    yield Finding(
                        Kind.NOT_CLAWED_BACK, topup.topup_id,
                        f"{topup.topup_id}: {format_amount(reversed_amount, topup.currency)} "
                        f"refunded or lost in disputes; {owed_back:,} credits should have been "
                        f"taken back, {clawed:,} were", **base,
                    )  # fmt: skip
            if topup.status == TopUpStatus.OPEN.value and session.get("status") == "expired":
                yield Finding(
                    Kind.TOPUP_STATUS, topup.topup_id,
                    f"{topup.topup_id}: open here, expired in Stripe", **base,
                )  # fmt: skip
        checked["top-ups"] = count

    def _retrieve_session(self, session_id: str) -> dict[str, Any] | None:
        try:
            fresh = self._gateway.call(lambda c: c.v1.checkout.sessions.retrieve(session_id))
        except NotFound:
            return None
        data: dict[str, Any] = fresh.to_dict(for_json=True)
        return data

    def _purchases(
        self, since: int, sessions: dict[str, dict[str, Any]], checked: dict[str, int]
    ) -> Iterator[Finding]:
        """Purchase entries with nothing behind them: no top-up, a top-up for other credits, or
        an invoice that is not paid."""
        topups = {t.topup_id: t for t in TopUp.select()}
        taken_back = {
            str(source).removeprefix("unpaid:")
            for (source,) in tuples(
                CreditEntry.select(CreditEntry.source).where(
                    (CreditEntry.kind == "clawback") & CreditEntry.source.startswith("unpaid:")
                )
            )
        }
        count = 0
        for entry in CreditEntry.select().where(
            (CreditEntry.kind == "purchase") & (CreditEntry.created_at >= since)
        ):
            count += 1
            objects = {"ledger source": str(entry.source)}
            base: dict[str, Any] = {
                "customer_id": entry.customer_id, "objects": objects, "credits": entry.amount,
            }  # fmt: skip
            if str(entry.source) in taken_back:
                continue  # an admin took these back already (claw_back_unpaid)
            topup = topups.get(entry.topup_id or entry.source or "")
            if topup is not None:
                if entry.amount != topup.credits:
                    yield Finding(
                        Kind.CREDITED_NOT_PAID, str(entry.source),
                        f"{entry.source}: {entry.amount:,} credits added for a top-up of "
                        f"{topup.credits:,}", **base,
                    )  # fmt: skip
                continue  # paid or not: compared with its session above
            source = str(entry.source or "")
            if source.startswith("in_") and self._invoice_paid(source, entry.customer_id):
                continue
            if source.startswith("pi_") and auto_topup_paid(
                self._gateway, source, entry.customer_id
            ):
                continue  # an automatic top-up, paid
            yield Finding(
                Kind.CREDITED_NOT_PAID, source or f"entry {entry.id}",
                f"{entry.amount:,} credits added as a purchase ({source or 'no source'}) with no "
                "paid top-up or invoice behind them", **base,
            )  # fmt: skip
        checked["purchases"] = count

    def _invoice_paid(self, invoice_id: str, customer_id: str) -> bool:
        try:
            invoice = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
        except NotFound:
            return False
        return invoice.status == "paid" and invoice.customer == customer_id

    def _invoices(self, since: int, say: Progress, checked: dict[str, int]) -> Iterator[Finding]:
        stripe_invoices = self._listed("invoices", since, say)
        checked["invoices"] = len(stripe_invoices)
        mirror = {
            row[0]: row[1:]
            for row in tuples(
                Invoice.select(
                    Invoice.stripe_id, Invoice.status, Invoice.amount_paid,
                    Invoice.amount_remaining, Invoice.customer_id,
                ).where(Invoice.created >= since)
            )
        }  # fmt: skip
        for invoice_id, inv in stripe_invoices.items():
            theirs = (inv.get("status"), int(inv.get("amount_paid") or 0),
                      int(inv.get("amount_remaining") or 0))  # fmt: skip
            ours = mirror.get(invoice_id)
            if ours is not None and tuple(ours[:3]) == theirs:
                continue
            what = "missing here" if ours is None else (
                f"here {ours[0]}, paid {ours[1]}, remaining {ours[2]}; Stripe {theirs[0]}, "
                f"paid {theirs[1]}, remaining {theirs[2]}"
            )  # fmt: skip
            customer = inv.get("customer")
            yield Finding(
                Kind.INVOICE_DIFFERS, invoice_id, f"{invoice_id}: {what}",
                customer_id=str(customer if isinstance(customer, str) else ""),
                objects={"invoice": invoice_id}, amount=int(inv.get("amount_remaining") or 0),
                currency=str(inv.get("currency") or ""),
            )  # fmt: skip

    def _events(self, checked: dict[str, int]) -> Iterator[Finding]:
        settled_before = int(time.time() * 1000) - SETTLING_S * 1000
        stuck = list(
            tuples(
                WebhookEvent.select(
                    WebhookEvent.evt_id, WebhookEvent.type, WebhookEvent.status
                ).where(
                    (WebhookEvent.status == Status.FAILED.value)
                    | (
                        (WebhookEvent.status == Status.RECEIVED.value)
                        & (WebhookEvent.received_at < settled_before)
                    )
                )
            )
        )
        checked["events"] = WebhookEvent.select().count()
        for evt_id, event_type, status in stuck:
            yield Finding(
                Kind.EVENT_NOT_APPLIED, evt_id, f"{evt_id} ({event_type}) is {status}",
                objects={"event": evt_id},
            )  # fmt: skip
        cursor_row = AppState.get_or_none(AppState.key == CURSOR_KEY)
        if cursor_row is None:
            return  # this database has never followed events (no listener yet): nothing behind
        newest = self._gateway.call(lambda c: c.v1.events.list({"limit": 1})).data
        if newest:
            latest = newest[0]
            old_enough = latest.created < time.time() - SETTLING_S
            stored = WebhookEvent.select().where(WebhookEvent.evt_id == latest.id).exists()
            if old_enough and not stored and latest.created > int(cursor_row.value):
                yield Finding(
                    Kind.EVENTS_BEHIND, latest.id,
                    f"Stripe's newest event {latest.id} ({latest.type}) is not stored here: the "
                    "catch-up is behind", objects={"event": latest.id},
                )  # fmt: skip

    def _remember(self, report: ReconcileReport) -> None:
        """The last result, for the status bar ("Books match · 07:00")."""
        if not can_write(self._db, "app_state"):
            return  # a reading login on a shared database: the listener's run is the team's
        value = json.dumps({"at": report.at, "findings": len(report.findings),
                            "line": report.line()})  # fmt: skip
        AppState.insert(key=LAST_RESULT_KEY, value=value).on_conflict(
            conflict_target=[AppState.key], update={AppState.value: value}
        ).execute()

    # ---- repairing
    def last(self) -> Mapping[str, Any] | None:
        """The last stored result ({at, findings, line}) for the status bar, if any."""
        return last_result(self._db)

    def repair(
        self, report: ReconcileReport, reason: str, only: Collection[str] | None = None
    ) -> RepairReport:
        """Fix every finding (or those whose target is in `only`) that can be fixed without
        judgement (admins; audited)."""
        reason = validation.text(reason, "A reason", max_len=500, required=True)
        repaired: list[str] = []
        skipped: list[str] = []
        failed: list[str] = []
        ctx = HandlerContext(self._gateway, self._db)
        # Checked (and a denial recorded) first; each repair then runs in its own transaction,
        # never holding the database while Stripe is asked, and one row records them all.
        self._authority.require(Permission.REPAIR_BOOKS, "reconcile.repair")
        caught_up = False
        for finding in report.findings:
            if only is not None and finding.target not in only:
                continue
            try:
                if finding.kind in (Kind.PAID_NOT_CREDITED, Kind.NOT_CLAWED_BACK,
                                    Kind.TOPUP_STATUS):  # fmt: skip
                    settle_topup(ctx, finding.target)
                elif finding.kind is Kind.INVOICE_DIFFERS:
                    self._refresh_invoice(finding.target)
                elif finding.kind is Kind.EVENT_NOT_APPLIED:
                    self._pipeline.replay(finding.target, self._authority)
                elif finding.kind is Kind.EVENTS_BEHIND:
                    if not caught_up:
                        CatchUp(self._db, self._gateway, self._pipeline).run()
                        caught_up = True
                else:
                    skipped.append(finding.target)
                    continue
                repaired.append(finding.target)
            except Exception as exc:  # one finding's trouble must not stop the others
                log.warning("Repairing %s failed: %s", finding.target, exc)
                failed.append(f"{finding.target}: {exc}")
        self._authority.record(
            "reconcile.repair", params={"repaired": repaired[:200], "failed": failed[:50],
                                        "skipped": skipped[:200]}, reason=reason,
        )  # fmt: skip
        return RepairReport(repaired, skipped, failed)

    def _refresh_invoice(self, invoice_id: str) -> None:
        fresh = self._gateway.call(lambda c: c.v1.invoices.retrieve(invoice_id))
        upsert(Invoice, [fresh.to_dict(for_json=True)])

    def claw_back_unpaid(self, source: str, reason: str) -> int:
        """Take back credits added as a purchase with no payment behind them (admins; audited;
        never automatic). Returns the credits taken back.

        Stripe is asked first: a purchase whose session (or invoice) is paid is not *credited,
        not paid* and is refused; one that added more credits than its top-up's takes back only
        the excess."""
        reason = validation.text(reason, "A reason", max_len=500, required=True)
        self._authority.require(Permission.REPAIR_BOOKS, "reconcile.claw_back", source)
        entry = CreditEntry.get_or_none(
            (CreditEntry.kind == "purchase") & (CreditEntry.source == source)
        )
        if entry is None:
            raise ValidationError(f"No purchase entry with source {source}.")
        credits = self._unpaid_credits(entry)
        if credits <= 0:
            raise ValidationError(
                f"{source} was paid for in Stripe: its credits are not 'credited, not paid', "
                "so nothing is taken back."
            )
        with self._authority.action(
            Permission.REPAIR_BOOKS, "reconcile.claw_back", target=source, reason=reason
        ) as record:
            try:
                with self._db.atomic():
                    lots.lock(self._db, entry.customer_id)
                    lots.true_up(self._db, entry.customer_id)  # the hand edit, in the lots too
                    CreditEntry.insert(
                        customer_id=entry.customer_id, amount=-credits, kind="clawback",
                        source=f"unpaid:{source}", topup_id=entry.topup_id,
                        operator=self._authority.actor.login or SYSTEM,
                        reason=f"Credited, not paid: {reason}", created_at=int(time.time()),
                    ).execute()  # fmt: skip
                    lots.absorb(self._db, entry.customer_id)
            except peewee.IntegrityError:
                raise ValidationError(f"{source} was already clawed back.") from None
            record.params = {"credits": credits, "customer": entry.customer_id}
        return credits

    def _unpaid_credits(self, entry: CreditEntry) -> int:
        """How many of a purchase's credits nothing paid for, as Stripe says now."""
        amount = int(entry.amount)
        topup = TopUp.get_or_none(TopUp.topup_id == (entry.topup_id or entry.source))
        if topup is not None:
            session = self._retrieve_session(topup.checkout_session_id)
            if session is not None and session.get("payment_status") == "paid":
                return max(0, amount - int(topup.credits))  # only what exceeds the top-up
            return amount
        source = str(entry.source or "")
        if source.startswith("in_") and self._invoice_paid(source, entry.customer_id):
            return 0
        if source.startswith("pi_") and auto_topup_paid(self._gateway, source, entry.customer_id):
            return 0
        return amount


def last_result(db: peewee.Database) -> Mapping[str, Any] | None:
    """The last stored reconcile result ({at, findings, line}), if any."""
    row = AppState.get_or_none(AppState.key == LAST_RESULT_KEY)
    if row is None:
        return None
    try:
        value = json.loads(row.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
