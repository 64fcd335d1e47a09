"""The catalog: products and their one-time prices, including the credit packs top-ups sell.

A credit pack is a product with `metadata[credits]` = N (a positive integer). Prices in Stripe
cannot change their amount, so a new amount is a new price made the default, the old one archived.
Every change goes to Stripe first with the user action's idempotency key, then to the mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee

from services import validation
from services.audit import ActionRecord, Authority
from services.browse import BrowseService, ProductRow
from services.errors import NotFound, ValidationError
from services.journal import Journal
from services.mirror import upsert
from services.models import Price, Product
from services.permissions import Permission
from services.stripe_gateway import StripeGateway

if TYPE_CHECKING:  # Stripe's code is imported when first called, after the window paints
    import stripe


@dataclass(frozen=True)
class ProductDraft:
    name: str
    amount: int  # minor units of `currency`
    currency: str
    description: str = ""
    credits: int | None = None  # a credit pack when set


def _request_id(obj: Any) -> str | None:
    return getattr(getattr(obj, "last_response", None), "request_id", None)


class CatalogService:
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

    @staticmethod
    def validate(draft: ProductDraft) -> ProductDraft:
        currency = validation.currency(draft.currency)
        if draft.amount <= 0 or draft.amount > 99_999_999:
            raise ValidationError("The price must be more than zero and at most 999,999.99.")
        credits = None
        if draft.credits is not None:
            credits = validation.positive_int(draft.credits, "Credits", maximum=10_000_000)
        return ProductDraft(
            name=validation.text(draft.name, "Product name", max_len=250, required=True),
            amount=draft.amount,
            currency=currency,
            description=validation.text(draft.description, "Description", max_len=1000),
            credits=credits,
        )

    def product(self, stripe_id: str) -> ProductRow:
        self._authority.require(Permission.BROWSE, "product.show", stripe_id)
        for row in self._rows(stripe_id):
            return row
        raise NotFound(f"No product {stripe_id} in the local mirror. Sync from Stripe first.")

    def create(self, draft: ProductDraft, idempotency_key: str | None = None) -> ProductRow:
        """Create the product with its default price in one Stripe call."""
        draft = self.validate(draft)
        params: stripe.params.ProductCreateParams = {
            "name": draft.name,
            "default_price_data": {"currency": draft.currency, "unit_amount": draft.amount},
            "expand": ["default_price"],
        }
        if draft.description:
            params["description"] = draft.description
        if draft.credits:
            params["metadata"] = {"credits": str(draft.credits)}
        audit = {"name": draft.name, "amount": draft.amount, "currency": draft.currency,
                 "credits": draft.credits}  # fmt: skip
        self._authority.require(Permission.MANAGE_CATALOG, "product.create")
        with (
            self._journal.attempt(
                "product.create", dict(params), key=idempotency_key,
                summary=f"New product {draft.name} ({draft.amount} {draft.currency})",
            ) as attempt,
            self._authority.action(
                Permission.MANAGE_CATALOG, "product.create", params=audit, stripe_first=True
            ) as record,
        ):  # fmt: skip
            record.idempotency_key = attempt.key
            product = self._gateway.call(
                lambda c: c.v1.products.create(params, {"idempotency_key": attempt.key})
            )
            attempt.answered(product.id)
            with record.writes():
                self._store_product(product, record)
        return self.product(product.id)

    def update(
        self, stripe_id: str, draft: ProductDraft, idempotency_key: str | None = None
    ) -> ProductRow:
        """Change name, description, credits; a new amount or currency makes a new price."""
        draft = self.validate(draft)
        current = self.product(stripe_id)
        price = current.default_price
        params: dict[str, Any] = {}
        if draft.name != current.name:
            params["name"] = draft.name
        stored = Product.get(Product.stripe_id == stripe_id)
        if draft.description != (stored.description or ""):
            params["description"] = draft.description
        if draft.credits != current.credits:
            params["metadata"] = {"credits": str(draft.credits) if draft.credits else ""}
        new_price = price is None or (price.unit_amount, price.currency) != (
            draft.amount,
            draft.currency,
        )
        if not params and not new_price:
            return current
        audit = {k: v for k, v in params.items()}
        if new_price:
            audit["new_price"] = {"amount": draft.amount, "currency": draft.currency}
        self._authority.require(Permission.MANAGE_CATALOG, "product.update", stripe_id)
        with (
            self._journal.attempt(
                "product.update", {"product": stripe_id, **audit}, key=idempotency_key,
                target=stripe_id, summary=f"Change product {stripe_id}: {', '.join(sorted(audit))}",
            ) as attempt,
            self._authority.action(
                Permission.MANAGE_CATALOG, "product.update", target=stripe_id, params=audit,
                stripe_first=True,
            ) as record,
        ):  # fmt: skip
            key = record.idempotency_key = attempt.key
            prices: list[dict[str, Any]] = []  # written with the product, after the calls
            if new_price:
                created = self._gateway.call(
                    lambda c: c.v1.prices.create(
                        {"product": stripe_id, "currency": draft.currency,
                         "unit_amount": draft.amount},
                        {"idempotency_key": f"{key}-price"},
                    )
                )  # fmt: skip
                prices.append(created.to_dict(for_json=True))
                params["default_price"] = created.id
            params["expand"] = ["default_price"]
            typed: stripe.params.ProductUpdateParams = params  # type: ignore[assignment]
            product = self._gateway.call(
                lambda c: c.v1.products.update(
                    stripe_id, typed, {"idempotency_key": f"{key}-product"}
                )
            )
            attempt.answered(product.id)
            if new_price and price is not None and price.active:
                old = self._gateway.call(
                    lambda c: c.v1.prices.update(
                        price.stripe_id,
                        {"active": False},
                        {"idempotency_key": f"{key}-archive"},
                    )
                )
                prices.append(old.to_dict(for_json=True))
            with record.writes():  # the new price first: the product refers to it
                upsert(Price, prices[:1])
                self._store_product(product, record)
                upsert(Price, prices[1:])
        return self.product(stripe_id)

    def set_active(
        self, stripe_id: str, active: bool, idempotency_key: str | None = None
    ) -> ProductRow:
        """Archive (or restore) a product: it stays in Stripe, it can no longer be sold."""
        action = "product.restore" if active else "product.archive"
        self._authority.require(Permission.MANAGE_CATALOG, action, stripe_id)
        with (
            self._journal.attempt(
                action, {"product": stripe_id, "active": active}, key=idempotency_key,
                target=stripe_id, summary=f"{'Restore' if active else 'Archive'} {stripe_id}",
            ) as attempt,
            self._authority.action(
                Permission.MANAGE_CATALOG, action, target=stripe_id, stripe_first=True
            ) as rec,
        ):  # fmt: skip
            rec.idempotency_key = attempt.key
            product = self._gateway.call(
                lambda c: c.v1.products.update(
                    stripe_id,
                    {"active": active, "expand": ["default_price"]},
                    {"idempotency_key": attempt.key},
                )
            )
            attempt.answered(product.id)
            with rec.writes():
                self._store_product(product, rec)
        return self.product(stripe_id)

    def _store_product(self, product: Any, record: ActionRecord) -> None:
        record.target = product.id
        record.stripe_request_id = _request_id(product)
        upsert(Product, [product.to_dict(for_json=True)])
        default = getattr(product, "default_price", None)
        if default is not None and not isinstance(default, str):  # expanded
            upsert(Price, [default.to_dict(for_json=True)])

    def _rows(self, stripe_id: str) -> list[ProductRow]:
        rows = BrowseService(self._db, self._authority).products()
        return [r for r in rows if r.stripe_id == stripe_id]
