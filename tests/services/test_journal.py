"""The request journal: a re-run after a lost answer re-uses the first run's idempotency key.

The answers are lost by `DroppingProxy` *after* the sandbox applied the request, three times in
a row (the gateway's first try and both of its retries), as the issue describes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import peewee
import pytest
import stripe

from services.audit import Authority
from services.customers import CustomerDraft, CustomerService
from services.errors import (
    PermissionDenied,
    StripeRefused,
    StripeUnreachable,
    ValidationError,
)
from services.journal import (
    REUSE_WINDOW_S,
    Journal,
    JournalEntry,
    KeyConflict,
    fingerprint,
)
from services.models import AuditRecord, RequestJournal
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.helpers.dropping_proxy import DroppingProxy


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[DroppingProxy]:
    with DroppingProxy(sandbox.url) as p:
        yield p


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(database: peewee.Database, authority: Authority, clock: Clock) -> Journal:
    return Journal(database, authority, scope="sandbox", clock=clock)


@pytest.fixture
def customers(
    database: peewee.Database, authority: Authority, journal: Journal, proxy: DroppingProxy
) -> CustomerService:
    gateway = StripeGateway(TEST_KEY, api_base=proxy.url, sandbox=True, timeout=10)
    return CustomerService(database, gateway, authority, journal)


def _stripe_customers(client: stripe.StripeClient, email: str) -> list[str]:
    return [c.id for c in client.v1.customers.list({"email": email, "limit": 100}).data]


def _lost(journal: Journal, action: str, args: dict[str, object], key: str | None = None) -> str:
    """Run a journalled request whose answer is lost; return the key it went out with."""
    with (
        pytest.raises(StripeUnreachable),
        journal.attempt(action, args, key=key) as attempt,
    ):
        raise StripeUnreachable("no answer")
    return attempt.key


def _ok(journal: Journal, action: str, args: dict[str, object], key: str | None = None) -> str:
    with journal.attempt(action, args, key=key) as attempt:
        attempt.answered("obj_1")
    return attempt.key


def test_lost_answers_then_a_rerun_makes_one_customer(
    customers: CustomerService,
    journal: Journal,
    proxy: DroppingProxy,
    stripe_client: stripe.StripeClient,
) -> None:
    reused: list[JournalEntry] = []
    journal.on_reuse = reused.append
    draft = CustomerDraft(email="lost@example.com", name="Lost Answer")
    proxy.drop("/v1/customers", count=3)
    with pytest.raises(StripeUnreachable):
        customers.create(draft)
    assert proxy.dropped == 3
    assert len(_stripe_customers(stripe_client, "lost@example.com")) == 1  # it did happen
    [entry] = journal.entries()
    assert (entry.outcome, entry.action, entry.attempts) == ("unknown", "customer.create", 1)

    detail = customers.create(draft)  # the operator runs the same command again

    assert _stripe_customers(stripe_client, "lost@example.com") == [detail.stripe_id]
    assert [e.id for e in reused] == [entry.id]
    [done] = journal.entries(include_resolved=True)
    assert (done.id, done.outcome, done.object_id, done.attempts) == (
        entry.id, "succeeded", detail.stripe_id, 2,
    )  # fmt: skip
    assert done.idempotency_key == entry.idempotency_key
    assert journal.entries() == []


def test_after_success_a_new_run_makes_a_second_customer_on_purpose(
    customers: CustomerService, stripe_client: stripe.StripeClient
) -> None:
    draft = CustomerDraft(email="twice@example.com")
    first = customers.create(draft)
    second = customers.create(draft)
    assert first.stripe_id != second.stripe_id
    assert len(_stripe_customers(stripe_client, "twice@example.com")) == 2


def test_a_definite_refusal_then_a_rerun_gets_a_new_key(
    customers: CustomerService,
    journal: Journal,
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:
    import urllib.parse
    import urllib.request

    form = urllib.parse.urlencode({"path_prefix": "/v1/customers", "status": "400"}).encode()
    with urllib.request.urlopen(sandbox.url + "/_sandbox/faults", data=form, timeout=10) as r:
        r.read()
    draft = CustomerDraft(email="refused@example.com")
    with pytest.raises(StripeRefused):
        customers.create(draft)
    created = customers.create(draft)
    refused, succeeded = sorted(journal.entries(include_resolved=True), key=lambda e: e.id)
    assert (refused.outcome, succeeded.outcome) == ("failed", "succeeded")
    assert refused.idempotency_key != succeeded.idempotency_key
    assert succeeded.object_id == created.stripe_id
    assert _stripe_customers(stripe_client, "refused@example.com") == [created.stripe_id]


def test_only_unconfirmed_entries_younger_than_24_hours_are_reused(
    journal: Journal, clock: Clock
) -> None:
    args = {"email": "a@example.com"}
    first = _lost(journal, "customer.create", args)
    clock.now += REUSE_WINDOW_S - 1
    assert _lost(journal, "customer.create", args) == first
    clock.now += 2  # now 24 h and a second after the key's first use
    later = _ok(journal, "customer.create", args)
    assert later != first
    outcomes = {e.idempotency_key: e.outcome for e in journal.entries(include_resolved=True)}
    assert outcomes == {first: "unknown", later: "succeeded"}


def test_different_arguments_actions_or_operators_get_different_keys(
    database: peewee.Database, authority: Authority, journal: Journal, clock: Clock
) -> None:
    key = _lost(journal, "customer.create", {"email": "a@example.com"})
    assert _lost(journal, "customer.create", {"email": "b@example.com"}) != key
    assert _lost(journal, "product.create", {"email": "a@example.com"}) != key
    OperatorService(database, authority).add("colleague", Role.ADMIN)
    other = Journal(database, Authority(database, sign_in(database, "colleague")), clock=clock)
    other_key = _lost(other, "customer.create", {"email": "a@example.com"})
    assert other_key != key
    assert _lost(journal, "customer.create", {"email": "a@example.com"}) == key


def test_an_explicit_key_is_used_verbatim_and_never_for_something_else(
    journal: Journal,
) -> None:
    key = "nightly-run-2026-12-01-customer-42"
    assert _ok(journal, "customer.create", {"email": "a@example.com"}, key=key) == key
    # The same request with the same key again: allowed (Stripe replays its answer).
    assert _ok(journal, "customer.create", {"email": "a@example.com"}, key=key) == key
    with pytest.raises(KeyConflict, match="already used for a different request"):
        _ok(journal, "customer.create", {"email": "b@example.com"}, key=key)
    [entry] = journal.entries(include_resolved=True)
    assert (entry.idempotency_key, entry.attempts) == (key, 2)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("", "empty"),
        ("k" * 256, "at most 255"),
        ("two words", "ASCII"),
        ("sk_test_abcdefghijklmnop", "secret"),
    ],
)
def test_bad_keys_are_refused_and_change_nothing(journal: Journal, key: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _ok(journal, "customer.create", {"email": "a@example.com"}, key=key)
    assert RequestJournal.select().count() == 0
    assert _ok(journal, "customer.create", {"email": "a@example.com"}, key="k" * 255) == "k" * 255


def test_the_fingerprint_is_stable_across_processes_and_keeps_no_secret(
    journal: Journal,
) -> None:
    args = {"b": [1, {"y": 2, "x": "é"}], "a": "text"}
    here = fingerprint("sandbox", "ann", "customer.create", args)
    assert here == fingerprint("sandbox", "ann", "customer.create", dict(reversed(args.items())))
    code = (
        "from services.journal import fingerprint;"
        "print(fingerprint('sandbox', 'ann', 'customer.create',"
        " {'a': 'text', 'b': [1, {'x': 'é', 'y': 2}]}))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin"},
        )  # fmt: skip
        assert out.stdout.strip() == here
    secret = "sk_live_" + "x" * 24
    with journal.attempt("customer.create", {"note": secret}, summary=f"uses {secret}"):
        pass
    stored = " ".join(str(v) for v in RequestJournal.select().tuples().get())
    assert secret not in stored
    assert "sk_live_…redacted" in stored


def test_forget_is_for_admins_needs_a_reason_and_is_audited(
    database: peewee.Database, authority: Authority, journal: Journal
) -> None:
    _lost(journal, "customer.create", {"email": "a@example.com"})
    [entry] = journal.entries()
    OperatorService(database, authority).add("sam", Role.SUPPORT)
    support = Journal(database, Authority(database, sign_in(database, "sam")))
    assert support.unconfirmed_count() == 1  # everyone sees what is unconfirmed
    with pytest.raises(PermissionDenied):
        support.forget(entry.id, "checked in Stripe")
    with pytest.raises(ValidationError, match="reason"):
        journal.forget(entry.id, "  ")
    done = journal.forget(entry.id, "checked the dashboard: no such customer")
    assert (done.outcome, done.resolved_by) == ("forgotten", "test-admin")
    assert journal.unconfirmed_count() == 0
    audit = AuditRecord.get(AuditRecord.action == "journal.forget", AuditRecord.outcome == "ok")
    assert audit.idempotency_key == entry.idempotency_key
    assert audit.reason == "checked the dashboard: no such customer"
    with pytest.raises(ValidationError, match="not unconfirmed"):
        journal.forget(entry.id, "again")
    # Forgotten: the next identical run gets a new key.
    assert _lost(journal, "customer.create", {"email": "a@example.com"}) != entry.idempotency_key
