"""The ``/_sandbox/`` routes behind hosted pages and test actions.

``HostedRoutes.routes()`` maps ``(method, path)`` to handlers for ``Api.sandbox_routes``.
Handlers take the store lock themselves; changes they make record events like API
requests do, with a null request id (as Stripe's events for customer actions have).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from stripe_sandbox import cards
from stripe_sandbox.pages import html_page, money, not_found, redirect, table, tiny_pdf
from stripe_sandbox.resources import checkout, invoices, payment_methods
from stripe_sandbox.resources.common import Ctx, record_update
from stripe_sandbox.resources.payment_methods import BANK_ACCOUNT_LAST4
from stripe_sandbox.store import RequestInfo, Store, deep_copy
from stripe_sandbox.wire import ApiError, JsonDict, Response, SandboxHandler, invalid

# Events caused by a person on a hosted page have no API request.
NO_REQUEST = RequestInfo(None, None)


class HostedRoutes:
    """Hosted pages and test-only actions over one store.

    Args:
        store: The sandbox state.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> dict[tuple[str, str], SandboxHandler]:
        """The route table entries these pages and actions serve."""
        return {
            ("GET", "/_sandbox/portal/{id}"): self.portal_page,
            ("GET", "/_sandbox/checkout/{id}"): self.checkout_page,
            ("POST", "/_sandbox/checkout/{id}"): self.checkout_submit,
            ("POST", "/_sandbox/checkout/sessions/{id}/pay"): self.checkout_pay,
            ("POST", "/_sandbox/checkout/sessions/{id}/settle"): self.checkout_settle,
            ("GET", "/_sandbox/receipts/{id}"): self.receipt_page,
            ("GET", "/_sandbox/clock"): self.clock,
            ("POST", "/_sandbox/clock/advance"): self.clock_advance,
            ("GET", "/_sandbox/invoices/{id}"): self.invoice_page,
            ("POST", "/_sandbox/invoices/{id}"): self.invoice_submit,
            ("GET", "/_sandbox/invoices/{id}/pdf"): self.invoice_pdf,
            ("POST", "/_sandbox/customers/{id}/attach_card"): self.attach_card,
            ("POST", "/_sandbox/customers/{id}/invoice_upcoming"): self.invoice_upcoming,
        }

    def _ctx(self) -> Ctx:
        # The caller holds the lock; due expiries happen before anything else.
        checkout.sweep_expired(self.store)
        return Ctx(self.store, self.store.now(), NO_REQUEST)

    # ------------------------------------------------------------ customer portal

    def portal_page(self, params: dict[str, Any]) -> Response:
        """``GET /_sandbox/portal/{id}``: the customer, and a link back to ``return_url``."""
        with self.store.lock:
            session = self.store.get("billing_portal.session", params["id"])
            if session is None:
                return not_found("billing portal session")
            customer = self.store.get("customer", session["customer"])
            if customer is None:
                return html_page(
                    "Billing portal",
                    "<h1>Billing portal</h1><p class='error'>This customer no longer exists.</p>",
                    410,
                )
            parts = [
                "<h1>Billing portal</h1>",
                f"<p><strong>{escape(customer['name'] or 'Unnamed customer')}</strong><br>",
                f"<span class='muted'>{escape(customer['email'] or 'No email address')}</span></p>",
            ]
            parts.extend(self._portal_extras(customer))
            return_url = session["return_url"]
            if return_url:
                parts.append(f"<p><a class='button' href='{escape(return_url)}'>Return</a></p>")
            return html_page("Billing portal", "".join(parts))

    def _portal_extras(self, customer: dict[str, Any]) -> list[str]:
        store = self.store
        default = customer["invoice_settings"]["default_payment_method"]
        methods = [
            (
                _describe_method(pm) + (" (default)" if pm["id"] == default else ""),
                pm["id"],
            )
            for pm in store.newest_first("payment_method")
            if pm["customer"] == customer["id"]
        ]
        parts = ["<h2>Payment methods</h2>"]
        parts.append(table(("Method", "Id"), methods) if methods else "<p class='muted'>None.</p>")
        parts.append("<h2>Invoice history</h2>")
        rows = []
        for invoice in store.newest_first("invoice"):
            if invoice["customer"] != customer["id"] or invoice["status"] == "draft":
                continue
            link = invoice["hosted_invoice_url"] or ""
            rows.append(
                f"<tr><td><a href='{escape(link)}'>{escape(invoice['number'] or '')}</a></td>"
                f"<td>{escape(invoice['status'])}</td>"
                f"<td class='num'>{escape(money(invoice['total'], invoice['currency']))}</td></tr>"
            )
        if rows:
            parts.append(
                "<table><tr><th>Invoice</th><th>Status</th><th class='num'>Total</th></tr>"
                + "".join(rows)
                + "</table>"
            )
        else:
            parts.append("<p class='muted'>No invoices.</p>")
        return parts

    # ------------------------------------------------------------ Checkout

    def checkout_page(self, params: dict[str, Any]) -> Response:
        """``GET /_sandbox/checkout/{id}``: the payment form, or the session's final state."""
        with self.store.lock:
            self._ctx()
            session = self.store.get("checkout.session", params["id"])
            if session is None:
                return not_found("Checkout Session")
            return self._checkout_view(session, None, 200)

    def checkout_submit(self, params: dict[str, Any]) -> Response:
        """``POST /_sandbox/checkout/{id}`` from the page's form: pay, then redirect to
        ``success_url`` (or show the error on the page)."""
        with self.store.lock:
            ctx = self._ctx()
            session = self.store.get("checkout.session", params["id"])
            if session is None:
                return not_found("Checkout Session")
            try:
                result = self._pay(ctx, session, params)
            except ApiError as exc:
                return self._checkout_view(session, exc.message, exc.status, params)
            if result.error is not None:
                return self._checkout_view(session, result.error.message, 402, params)
            success_url = session["success_url"]
            if success_url:
                return redirect(success_url.replace("{CHECKOUT_SESSION_ID}", session["id"]))
            return self._checkout_view(session, None, 200)

    def checkout_pay(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``POST /_sandbox/checkout/sessions/{id}/pay`` with ``card=<number>`` or
        ``method=bank_debit`` (and optional ``email``, ``name``): what the page does, as
        JSON. 200 with the session; a decline is Stripe's 402 card error."""
        with self.store.lock:
            ctx = self._ctx()
            session = self._session(params["id"])
            result = self._pay(ctx, session, params)
            if result.error is not None:
                raise result.error
            return 200, deep_copy(session)

    def checkout_settle(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``POST /_sandbox/checkout/sessions/{id}/settle`` with
        ``outcome=succeeded|failed``: finish a pending bank debit."""
        outcome = params.get("outcome")
        if outcome not in ("succeeded", "failed"):
            raise invalid("outcome must be `succeeded` or `failed`.", param="outcome")
        with self.store.lock:
            ctx = self._ctx()
            session = self._session(params["id"])
            return 200, deep_copy(checkout.settle(ctx, session, outcome == "succeeded"))

    def _session(self, session_id: str) -> JsonDict:
        session = self.store.get("checkout.session", session_id)
        if session is None:
            raise ApiError(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="id",
            )
        return session

    @staticmethod
    def _pay(ctx: Ctx, session: JsonDict, params: dict[str, Any]) -> checkout.PayResult:
        method = params.get("method", "card")
        if method not in ("card", "bank_debit"):
            raise invalid("method must be `card` or `bank_debit`.", param="method")
        return checkout.pay(
            ctx,
            session,
            card_number=params.get("card"),
            bank_debit=method == "bank_debit",
            email=params.get("email") or None,
            name=params.get("name") or None,
        )

    def _checkout_view(
        self,
        session: JsonDict,
        error: str | None,
        status: int,
        typed: dict[str, Any] | None = None,
    ) -> Response:
        store = self.store
        typed = typed or {}
        currency = session["currency"]
        rows = [
            (
                item["description"] or "",
                str(item["quantity"]),
                money(item["amount_total"], currency),
            )
            for item in checkout.line_items_of(store, session)
        ]
        total = money(session["amount_total"], currency)
        parts = ["<h1>Checkout</h1>", table(("Item", "Qty", "Amount"), rows, numeric=2)]
        parts.append(f"<p><strong>Total due: {escape(total)}</strong></p>")
        if session["status"] == "complete":
            paid = session["payment_status"] == "paid"
            parts.append(
                "<p class='ok'>Payment complete. Thank you!</p>"
                if paid
                else "<p class='ok'>Thank you! Your bank debit is processing; it settles in a "
                "few days (in the sandbox: when the settle route is called).</p>"
            )
            if session["success_url"]:
                target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
                parts.append(f"<p><a class='button' href='{escape(target)}'>Continue</a></p>")
            return html_page("Payment complete", "".join(parts), status)
        if session["status"] == "expired":
            parts.append("<p class='error'>This Checkout Session has expired.</p>")
            if session["cancel_url"]:
                parts.append(
                    f"<p><a class='button' href='{escape(session['cancel_url'])}'>Return</a></p>"
                )
            return html_page("Checkout expired", "".join(parts), status)
        if error:
            parts.append(f"<p class='error'>{escape(error)}</p>")
        customer = store.get("customer", session["customer"]) if session["customer"] else None
        known_email = (customer or {}).get("email") or session["customer_email"]
        form = [f"<form method='post' action='/_sandbox/checkout/{escape(session['id'])}'>"]
        if known_email:
            form.append(f"<p>Email: <strong>{escape(known_email)}</strong></p>")
        else:
            form.append(
                "<p><label>Email<br><input type='text' name='email' "
                f"value='{escape(str(typed.get('email', '')))}'></label></p>"
            )
        form.append(
            "<p><label>Name on card / account<br><input type='text' name='name' "
            f"value='{escape(str(typed.get('name', '')))}'></label></p>"
        )
        form.append(
            "<p><label>Card number<br><input type='text' name='card' "
            "placeholder='4242 4242 4242 4242' autocomplete='off'></label></p>"
        )
        form.append(f"<button name='method' value='card'>Pay {escape(total)}</button>")
        if "us_bank_account" in session["payment_method_types"]:
            form.append(
                "<button name='method' value='bank_debit'>Pay by bank debit "
                f"(test account &bull;&bull;&bull;&bull;{BANK_ACCOUNT_LAST4}, settles later)"
                "</button>"
            )
        form.append("</form>")
        parts.extend(form)
        if session["cancel_url"]:
            parts.append(
                f"<p><a href='{escape(session['cancel_url'])}'>&larr; Cancel and go back</a></p>"
            )
        hints = [
            ("4242 4242 4242 4242", "succeeds"),
            ("4000 0000 0000 0002", "declined (generic_decline)"),
            ("4000 0000 0000 9995", "declined (insufficient_funds)"),
            ("4000 0025 0000 3155", "3D Secure, completed by the sandbox"),
        ]
        parts.append("<p class='muted'>Test cards:</p>" + table(("Number", "Result"), hints))
        return html_page("Checkout", "".join(parts), status)

    # ------------------------------------------------------------ receipts

    def receipt_page(self, params: dict[str, Any]) -> Response:
        """``GET /_sandbox/receipts/{id}``: a charge's receipt (its ``receipt_url``)."""
        with self.store.lock:
            charge = self.store.get("charge", params["id"])
            if charge is None:
                return not_found("charge")
            details = charge["payment_method_details"] or {}
            method = details.get("card") or details.get("us_bank_account") or {}
            rows = [
                ("Amount", money(charge["amount"], charge["currency"])),
                ("Refunded", money(charge["amount_refunded"], charge["currency"])),
                ("Status", charge["status"]),
                (
                    "Paid with",
                    f"{method.get('brand') or 'bank account'} ending {method.get('last4')}",
                ),
                ("Charge", charge["id"]),
            ]
            return html_page("Receipt", "<h1>Receipt</h1>" + table(("", ""), rows))

    # ------------------------------------------------------------ clock

    def clock(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``GET /_sandbox/clock``: the sandbox's time and its offset from the wall clock."""
        with self.store.lock:
            return 200, self._clock_body()

    def clock_advance(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``POST /_sandbox/clock/advance`` with ``seconds=N``: move time forward, then run
        what became due (Checkout Session expiry)."""
        raw = params.get("seconds", "")
        if not isinstance(raw, str) or not raw.isdigit():
            raise invalid("seconds must be a non-negative integer.", param="seconds")
        with self.store.lock:
            self.store.clock_offset += int(raw)
            self.store.touch()
            self._ctx()
            return 200, self._clock_body()

    def _clock_body(self) -> JsonDict:
        return {
            "object": "sandbox.clock",
            "now": self.store.now(),
            "offset_seconds": self.store.clock_offset,
        }

    # ------------------------------------------------------------ invoices

    def invoice_page(self, params: dict[str, Any]) -> Response:
        """``GET /_sandbox/invoices/{id}`` (``hosted_invoice_url``): the invoice, and a card
        form while something is due."""
        with self.store.lock:
            self._ctx()
            invoice = self.store.get("invoice", params["id"])
            if invoice is None or invoice["status"] == "draft":
                return not_found("invoice")
            return self._invoice_view(invoice, None, 200)

    def invoice_submit(self, params: dict[str, Any]) -> Response:
        """``POST /_sandbox/invoices/{id}`` with ``card``: the customer pays on the page
        (on-session, so 3D Secure cards succeed)."""
        with self.store.lock:
            ctx = self._ctx()
            invoice = self.store.get("invoice", params["id"])
            if invoice is None or invoice["status"] == "draft":
                return not_found("invoice")
            if invoice["status"] not in ("open", "uncollectible"):
                return self._invoice_view(invoice, "This invoice can no longer be paid.", 400)
            card = cards.lookup(str(params.get("card", "")))
            if card is None:
                return self._invoice_view(invoice, "Your card number is invalid.", 402)
            details = payment_methods.billing_details(
                invoice["customer_email"], params.get("name") or invoice["customer_name"]
            )
            pm = payment_methods.new_card(ctx, card, details)
            error = invoices.charge_invoice(ctx, invoice, pm, off_session=False)
            if error is not None:
                return self._invoice_view(invoice, error.message, 402)
            return redirect(invoice["hosted_invoice_url"])

    def invoice_pdf(self, params: dict[str, Any]) -> Response:
        """``GET /_sandbox/invoices/{id}/pdf`` (``invoice_pdf``): a one-page PDF."""
        with self.store.lock:
            invoice = self.store.get("invoice", params["id"])
            if invoice is None or invoice["status"] == "draft":
                return not_found("invoice")
            currency = invoice["currency"]
            lines = [
                f"Invoice {invoice['number']}",
                f"{invoices.ACCOUNT_NAME}",
                "",
                f"Bill to: {invoice['customer_name'] or ''} <{invoice['customer_email'] or ''}>",
                f"Date of issue: {_date(invoice['effective_at'])}",
                f"Date due: {_date(invoice['due_date'])}",
                f"Status: {invoice['status']}",
                "",
            ]
            lines += [
                f"{line['description'] or ''}  x{line['quantity'] or 1}  "
                f"{money(line['amount'], currency)}"
                for line in invoices.lines_of(self.store, invoice)
            ]
            lines += [
                "",
                f"Total: {money(invoice['total'], currency)}",
                f"Amount paid: {money(invoice['amount_paid'], currency)}",
                f"Amount remaining: {money(invoice['amount_remaining'], currency)}",
            ]
            return Response(
                200,
                tiny_pdf(lines),
                {"Content-Disposition": f'inline; filename="{invoice["number"]}.pdf"'},
                content_type="application/pdf",
            )

    def _invoice_view(self, invoice: JsonDict, error: str | None, status: int) -> Response:
        currency = invoice["currency"]
        rows = [
            (
                line["description"] or "",
                str(line["quantity"] or 1),
                money(line["amount"], currency),
            )
            for line in invoices.lines_of(self.store, invoice)
        ]
        title = f"Invoice {invoice['number']}"
        parts = [
            f"<h1>{escape(title)}</h1>",
            f"<p>{escape(invoices.ACCOUNT_NAME)}<br>"
            f"Billed to <strong>{escape(invoice['customer_name'] or '')}</strong> "
            f"{escape(invoice['customer_email'] or '')}</p>",
            table(
                ("", ""),
                [
                    ("Status", invoice["status"]),
                    ("Issued", _date(invoice["effective_at"])),
                    ("Due", _date(invoice["due_date"])),
                ],
            ),
            table(("Description", "Qty", "Amount"), rows, numeric=2),
            table(
                ("", ""),
                [
                    ("Total", money(invoice["total"], currency)),
                    ("Amount paid", money(invoice["amount_paid"], currency)),
                    ("Amount remaining", money(invoice["amount_remaining"], currency)),
                ],
                numeric=1,
            ),
        ]
        if error:
            parts.append(f"<p class='error'>{escape(error)}</p>")
        if invoice["status"] == "paid":
            paid_at = invoice["status_transitions"]["paid_at"]
            parts.append(f"<p class='ok'>Paid on {escape(_date(paid_at))}. Thank you!</p>")
        elif invoice["status"] == "void":
            parts.append("<p class='error'>This invoice has been voided.</p>")
        elif invoice["amount_remaining"] > 0:
            parts.append(
                f"<form method='post' action='/_sandbox/invoices/{escape(invoice['id'])}'>"
                "<p><label>Card number<br><input type='text' name='card' "
                "placeholder='4242 4242 4242 4242' autocomplete='off'></label></p>"
                f"<button>Pay {escape(money(invoice['amount_remaining'], currency))}</button>"
                "</form>"
            )
        if invoice["invoice_pdf"]:
            parts.append(f"<p><a href='{escape(invoice['invoice_pdf'])}'>Download PDF</a></p>")
        return html_page(title, "".join(parts), status)

    # ------------------------------------------------------------ customers

    def attach_card(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``POST /_sandbox/customers/{id}/attach_card`` with ``card=<number>``: create a card
        PaymentMethod, attach it and make it the customer's invoice default. Events:
        ``payment_method.attached``, ``customer.updated``."""
        with self.store.lock:
            ctx = self._ctx()
            customer = self.store.get("customer", params["id"])
            if customer is None:
                raise ApiError(
                    404,
                    f"No such customer: '{params['id']}'",
                    code="resource_missing",
                    param="id",
                )
            card = cards.lookup(str(params.get("card", "")))
            if card is None:
                raise invalid("Your card number is invalid.", param="card", code="incorrect_number")
            details = payment_methods.billing_details(customer["email"], customer["name"])
            pm = payment_methods.new_card(ctx, card, details)
            payment_methods.attach(ctx, pm, customer["id"])
            before = deep_copy(customer)
            customer["invoice_settings"]["default_payment_method"] = pm["id"]
            record_update(ctx, "customer", before, customer)
            return 200, deep_copy(pm)

    def invoice_upcoming(self, params: dict[str, Any]) -> tuple[int, Any]:
        """``POST /_sandbox/customers/{id}/invoice_upcoming`` with optional ``days`` (1 to
        365, default 7): record ``invoice.upcoming``, as Stripe does that many days before a
        subscription renews; answers the event."""
        raw = str(params.get("days", invoices.UPCOMING_DAYS))
        if not raw.isdigit() or not 1 <= int(raw) <= 365:
            raise invalid(
                "days must be an integer between 1 and 365.",
                param="days",
                code="parameter_invalid_integer",
            )
        with self.store.lock:
            ctx = self._ctx()
            return 200, deep_copy(invoices.record_upcoming(ctx, params["id"], int(raw)))


def _date(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def _describe_method(pm: JsonDict) -> str:
    if pm["type"] == "card":
        return f"{pm['card']['brand'].title()} ending {pm['card']['last4']}"
    return f"Bank account ending {pm['us_bank_account']['last4']}"
