"""Customers: details from the mirror, and changes pushed to Stripe first, then stored.

Each user action carries one idempotency key (made when the dialog opens, or per CLI run), so a
retry after a timeout or a double click cannot create a second customer. Stripe refusing leaves
the local row untouched. Notes and tags are local only and never go to Stripe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import peewee

from services import changes, lots, validation
from services.audit import ActionRecord, Authority
from services.browse import InvoiceRow
from services.errors import NotFound, ValidationError
from services.journal import Journal
from services.mirror import upsert
from services.models import Customer, Invoice, TopUp
from services.permissions import Permission
from services.stripe_gateway import StripeGateway
from services.subscriptions import SubscriptionRow, subscription_rows
from services.topup_status import TopUpStatus

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def is_empty(self) -> bool:
        return not any((self.line1, self.line2, self.city, self.state, self.postal_code,
                        self.country))  # fmt: skip

    def one_line(self) -> str:
        parts = (self.line1, self.line2, self.postal_code, self.city, self.state, self.country)
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class CustomerDraft:
    """What a person typed for a customer; validated by `CustomerService.validate`."""

    email: str
    name: str = ""
    phone: str = ""
    address: Address = field(default_factory=Address)
    metadata: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""  # local only
    tags: tuple[str, ...] = ()  # local only


@dataclass(frozen=True)
class CustomerTopUp:
    """One of a customer's top-up links, as the customer detail lists them."""

    topup_id: str
    status: str
    credits: int
    amount: int  # minor units
    currency: str
    issued_at: int


@dataclass(frozen=True)
class CustomerDetail:
    stripe_id: str
    name: str
    email: str
    phone: str
    address: Address
    currency: str
    balance: int  # Stripe customer balance, minor units (negative: credit)
    created: int
    deleted: bool
    metadata: dict[str, str]
    notes: str
    tags: tuple[str, ...]
    credit_balance: int
    invoices: tuple[InvoiceRow, ...]
    synced_at: int
    topups: int = 0
    open_topups: int = 0
    recent_topups: tuple[CustomerTopUp, ...] = ()  # newest first, at most 50
    credits: lots.Balances | None = None  # the split of credit_balance (available)
    subscriptions: tuple[SubscriptionRow, ...] = ()  # newest first, at most 50

    def as_draft(self) -> CustomerDraft:
        return CustomerDraft(
            self.email, self.name, self.phone, self.address, dict(self.metadata), self.notes,
            self.tags,
        )  # fmt: skip


@dataclass(frozen=True)
class PortalLink:
    customer_id: str
    url: str
    session_id: str


def _address_of(raw: Mapping[str, Any] | None) -> Address:
    if not raw:
        return Address()
    return Address(*(str(raw.get(k) or "") for k in
                     ("line1", "line2", "city", "state", "postal_code", "country")))  # fmt: skip


def _address_params(address: Address) -> Any:
    if address.is_empty():
        return ""  # Stripe: an empty string clears the address
    return {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "state": address.state,
        "postal_code": address.postal_code,
        "country": address.country,
    }


def _request_id(obj: Any) -> str | None:
    response = getattr(obj, "last_response", None)
    return getattr(response, "request_id", None)


class CustomerService:
    def __init__(
        self,
        db: peewee.Database,
        gateway: StripeGateway,
        authority: Authority,
        journal: Journal | None = None,
    ) -> None:
        self._db = db
        self._gateway = gateway
        self._authority = authority
        self._journal = journal or Journal(db, authority)

    # ---- reading
    def detail(self, stripe_id: str) -> CustomerDetail:
        """Everything the detail pane shows, from the local mirror (no Stripe call)."""
        self._authority.require(Permission.BROWSE, "customer.show", stripe_id)
        row = Customer.get_or_none(Customer.stripe_id == stripe_id)
        if row is None:
            raise NotFound(f"No customer {stripe_id} in the local mirror. Sync from Stripe first.")
        credits = lots.balances(self._db, stripe_id)
        invoices = tuple(
            InvoiceRow(
                inv.stripe_id,
                inv.number or "",
                inv.customer_id,
                row.name or "",
                inv.status or "",
                inv.currency,
                inv.total,
                inv.amount_due,
                inv.amount_paid,
                inv.created,
                inv.due_date,
            )
            for inv in Invoice.select()
            .where(Invoice.customer_id == stripe_id)
            .order_by(Invoice.created.desc())
            .limit(50)
        )
        raw = row.raw or {}
        statuses = [
            t.status for t in TopUp.select(TopUp.status).where(TopUp.customer_id == stripe_id)
        ]
        recent_topups = tuple(
            CustomerTopUp(t.topup_id, t.status, t.credits, t.amount, t.currency, t.issued_at)
            for t in TopUp.select()
            .where(TopUp.customer_id == stripe_id)
            .order_by(TopUp.issued_at.desc(), TopUp.id.desc())
            .limit(50)
        )
        return CustomerDetail(
            stripe_id=row.stripe_id,
            name=row.name or "",
            email=row.email or "",
            phone=row.phone or "",
            address=_address_of(raw.get("address")),
            currency=row.currency or "",
            balance=row.balance,
            created=row.created,
            deleted=bool(row.deleted),
            metadata=dict(row.metadata or {}),
            notes=row.notes or "",
            tags=tuple(row.tags or ()),
            credit_balance=credits.available,
            invoices=invoices,
            synced_at=row.synced_at,
            topups=len(statuses),
            open_topups=statuses.count(TopUpStatus.OPEN.value),
            recent_topups=recent_topups,
            credits=credits,
            subscriptions=tuple(subscription_rows(customer_id=stripe_id, limit=50)),
        )

    def resolve(self, reference: str) -> str:
        """The Stripe id of the customer `reference` names: a `cus_…` id, or an email that
        exactly one customer in the local mirror has (case-insensitive).

        Raises:
            ValidationError: No customer, or several, have that email.
        """
        self._authority.require(Permission.BROWSE, "customers.list")
        reference = reference.strip()
        if "@" not in reference:
            return reference
        matches = [
            c.stripe_id
            for c in Customer.select(Customer.stripe_id, Customer.email).where(
                Customer.deleted == False  # noqa: E712
            )
            if (c.email or "").casefold() == reference.casefold()
        ]
        if not matches:
            raise ValidationError(
                f"No customer with the email {reference} in the local mirror (sync first?)."
            )
        if len(matches) > 1:
            raise ValidationError(
                f"{len(matches)} customers have the email {reference} "
                f"({', '.join(sorted(matches))}): give the customer's id."
            )
        return matches[0]

    # ---- changing
    @staticmethod
    def validate(draft: CustomerDraft) -> CustomerDraft:
        """The draft, cleaned; raises `ValidationError` saying what to fix."""
        address = draft.address
        address = replace(
            address,
            line1=validation.text(address.line1, "Address line 1", max_len=200),
            line2=validation.text(address.line2, "Address line 2", max_len=200),
            city=validation.text(address.city, "City", max_len=100),
            state=validation.text(address.state, "State", max_len=100),
            postal_code=validation.text(address.postal_code, "Postal code", max_len=20),
            country=validation.country(address.country),
        )
        if not address.is_empty() and not address.country:
            raise ValidationError("An address needs a country (two letters, e.g. US).")
        tags = tuple(dict.fromkeys(t.strip() for t in draft.tags if t.strip()))
        return CustomerDraft(
            email=validation.email(draft.email),
            name=validation.text(draft.name, "Name", max_len=256),
            phone=validation.phone(draft.phone),
            address=address,
            metadata=validation.metadata(draft.metadata),
            notes=validation.text(draft.notes, "Notes", max_len=5000),
            tags=tags,
        )

    def create(self, draft: CustomerDraft, idempotency_key: str | None = None) -> CustomerDetail:
        """Create the customer in Stripe, then mirror it with its local notes and tags.

        `idempotency_key` is used verbatim when given; otherwise the request journal picks it
        (an unconfirmed identical request's key, or a new one).
        """
        draft = self.validate(draft)
        params: stripe.params.CustomerCreateParams = {"email": draft.email}
        if draft.name:
            params["name"] = draft.name
        if draft.phone:
            params["phone"] = draft.phone
        if not draft.address.is_empty():
            params["address"] = _address_params(draft.address)
        if draft.metadata:
            params["metadata"] = dict(draft.metadata)
        audit_params = {"email": draft.email, "name": draft.name}
        self._authority.require(Permission.EDIT_CUSTOMER, "customer.create")
        with (
            self._journal.attempt(
                "customer.create", dict(params), key=idempotency_key,
                summary=f"New customer {draft.email}",
            ) as attempt,
            self._authority.action(
                Permission.EDIT_CUSTOMER, "customer.create", params=audit_params, stripe_first=True
            ) as record,
        ):  # fmt: skip
            record.idempotency_key = attempt.key
            created = self._gateway.call(
                lambda c: c.v1.customers.create(params, {"idempotency_key": attempt.key})
            )
            attempt.answered(created.id)
            with record.writes():
                self._store(created, record, draft)
        return self.detail(created.id)

    def update(
        self, stripe_id: str, draft: CustomerDraft, idempotency_key: str | None = None
    ) -> CustomerDetail:
        """Send only what changed to Stripe; notes and tags are stored locally only."""
        draft = self.validate(draft)
        current = self.detail(stripe_id)
        if current.deleted:
            raise ValidationError(f"{stripe_id} was deleted in Stripe and cannot be edited.")
        params: dict[str, Any] = {}
        for name in ("email", "name", "phone"):
            if getattr(draft, name) != getattr(current, name):
                params[name] = getattr(draft, name)
        if draft.address != current.address:
            params["address"] = _address_params(draft.address)
        if dict(draft.metadata) != current.metadata:
            removed = {k: "" for k in current.metadata if k not in draft.metadata}
            params["metadata"] = {**removed, **draft.metadata}
        local_changed = (draft.notes, draft.tags) != (current.notes, current.tags)
        audit_params = {k: v for k, v in params.items() if k != "metadata"}
        if "metadata" in params:
            audit_params["metadata_keys"] = sorted(params["metadata"])
        if local_changed:
            audit_params["local_fields"] = "notes/tags"
        if not params and not local_changed:
            return current
        if not params:  # local fields only: nothing goes to Stripe, nothing to journal
            with self._authority.action(
                Permission.EDIT_CUSTOMER, "customer.update", target=stripe_id, params=audit_params
            ):
                Customer.update(notes=draft.notes or None, tags=list(draft.tags) or None).where(
                    Customer.stripe_id == stripe_id
                ).execute()
                changes.note(customers=[stripe_id])
            return self.detail(stripe_id)
        self._authority.require(Permission.EDIT_CUSTOMER, "customer.update", stripe_id)
        with (
            self._journal.attempt(
                "customer.update", {"customer": stripe_id, **params}, key=idempotency_key,
                target=stripe_id, summary=f"Change {stripe_id}: {', '.join(sorted(params))}",
            ) as attempt,
            self._authority.action(
                Permission.EDIT_CUSTOMER, "customer.update", target=stripe_id, params=audit_params,
                stripe_first=True,
            ) as record,
        ):  # fmt: skip
            record.idempotency_key = attempt.key
            typed: stripe.params.CustomerUpdateParams = params  # type: ignore[assignment]
            updated = self._gateway.call(
                lambda c: c.v1.customers.update(stripe_id, typed, {"idempotency_key": attempt.key})
            )
            attempt.answered(updated.id)
            with record.writes():
                self._store(updated, record, draft)
        return self.detail(stripe_id)

    def portal_link(
        self, stripe_id: str, idempotency_key: str | None = None, return_url: str | None = None
    ) -> PortalLink:
        """A Customer Portal session for the customer: the link support sends them."""
        params: stripe.params.billing_portal.SessionCreateParams = {"customer": stripe_id}
        if return_url:
            params["return_url"] = return_url
        self._authority.require(Permission.ISSUE_PORTAL_LINK, "portal.create", stripe_id)
        with (
            self._journal.attempt(
                "portal.create", dict(params), key=idempotency_key, target=stripe_id,
                summary=f"Customer Portal link for {stripe_id}",
            ) as attempt,
            self._authority.action(
                Permission.ISSUE_PORTAL_LINK, "portal.create", target=stripe_id, stripe_first=True
            ) as record,
        ):  # fmt: skip
            record.idempotency_key = attempt.key
            session = self._gateway.call(
                lambda c: c.v1.billing_portal.sessions.create(
                    params, {"idempotency_key": attempt.key}
                )
            )
            attempt.answered(session.id)
            record.stripe_request_id = _request_id(session)
            record.params = {"session": session.id}
        return PortalLink(stripe_id, session.url, session.id)

    def _store(self, obj: Any, record: ActionRecord, draft: CustomerDraft) -> None:
        record.target = obj.id
        record.stripe_request_id = _request_id(obj)
        upsert(Customer, [obj.to_dict(for_json=True)])
        Customer.update(notes=draft.notes or None, tags=list(draft.tags) or None).where(
            Customer.stripe_id == obj.id
        ).execute()
