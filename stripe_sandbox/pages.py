"""Hosted pages the sandbox serves in place of Stripe's: customer portal, Checkout, invoices.

Plain server-rendered HTML (no JavaScript) under ``/_sandbox/``; forms post back to the
sandbox. Every value shown is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from minor_units import decimals
from stripe_sandbox.wire import Response

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1f36; line-height: 1.5; }
.banner { background: #fff4e5; border: 1px solid #f5c77e; padding: .4rem .8rem; border-radius: 6px;
          font-size: .85rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
td, th { text-align: left; padding: .35rem .4rem; border-bottom: 1px solid #e3e8ee; }
td.num, th.num { text-align: right; }
.muted { color: #697386; }
.error { background: #fdecea; border: 1px solid #f5a59d; padding: .5rem .8rem; border-radius: 6px; }
.ok { background: #e8f5e9; border: 1px solid #9ccc9f; padding: .5rem .8rem; border-radius: 6px; }
form { margin: 1rem 0; }
input[type=text] { font-size: 1rem; padding: .4rem; width: 18rem; }
button { font-size: 1rem; padding: .45rem 1rem; margin: .3rem .3rem .3rem 0; cursor: pointer; }
a.button { display: inline-block; padding: .45rem 1rem; border: 1px solid #697386;
           border-radius: 4px; text-decoration: none; color: inherit; }
"""


def html_page(title: str, body: str, status: int = 200) -> Response:
    """Wrap an (already escaped) HTML fragment in a complete page."""
    document = (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        "<p class='banner'>Stripe sandbox &mdash; test mode, no real money moves.</p>"
        f"{body}</body></html>\n"
    )
    return Response(status, document.encode("utf-8"), content_type="text/html; charset=utf-8")


def not_found(what: str) -> Response:
    """A 404 page for an unknown hosted object."""
    return html_page("Not found", f"<h1>Not found</h1><p>No such {escape(what)}.</p>", 404)


def redirect(url: str) -> Response:
    """A 303 See Other to ``url`` (the answer to a form POST)."""
    return Response(
        303,
        f"<a href='{escape(url)}'>Continue</a>\n".encode(),
        {"Location": url},
        content_type="text/html; charset=utf-8",
    )


def money(amount: int, currency: str) -> str:
    """Format minor units for display, e.g. ``1000, "usd"`` → ``"10.00 USD"``."""
    places = decimals(currency)
    return f"{amount / 10**places:,.{places}f} {currency.upper()}"


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: int = -1) -> str:
    """An HTML table of escaped cells; column ``numeric`` (index) is right-aligned."""
    head = "".join(
        f"<th class='num'>{escape(h)}</th>" if i == numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='num'>{escape(c)}</td>" if i == numeric else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _pdf_text(text: str) -> str:
    # PDF string literals: Latin-1, with backslash and parentheses escaped.
    safe = text.encode("latin-1", errors="replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def tiny_pdf(lines: Iterable[str]) -> bytes:
    """A valid one-page PDF (A4, Helvetica) showing ``lines`` top to bottom."""
    rows = [
        f"BT /F1 11 Tf 56 {790 - 18 * i} Td ({_pdf_text(line)}) Tj ET"
        for i, line in enumerate(lines)
    ]
    stream = "\n".join(rows).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
