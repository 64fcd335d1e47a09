"""Property tests over the small pure pieces everything else relies on."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.money import ZERO_DECIMAL, format_amount
from services.redaction import redact

secret_body = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8
)


@given(
    prefix=st.sampled_from(["sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_"]),
    body=secret_body,
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_redact_never_leaves_a_secret(prefix: str, body: str, before: str, after: str) -> None:
    text = f"{before} {prefix}{body} {after}"
    assert f"{prefix}{body}" not in redact(text)


@given(amount=st.integers(min_value=-(10**12), max_value=10**12))
def test_two_decimal_amounts_keep_every_cent(amount: int) -> None:
    text = format_amount(amount, "usd")
    digits = text.replace("$", "").replace(",", "").replace("-", "")
    whole, cents = digits.split(".")
    assert int(whole) * 100 + int(cents) == abs(amount)
    assert text.startswith("-") == (amount < 0)


@given(
    amount=st.integers(min_value=0, max_value=10**12), code=st.sampled_from(sorted(ZERO_DECIMAL))
)
def test_zero_decimal_currencies_have_no_cents(amount: int, code: str) -> None:
    text = format_amount(amount, code)
    assert "." not in text
    assert int("".join(c for c in text if c.isdigit())) == amount
