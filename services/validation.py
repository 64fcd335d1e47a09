"""Checks for what people type: each returns the cleaned value or raises `ValidationError`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.errors import ValidationError
from services.money import decimals as currency_decimals

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE = re.compile(r"^\+?[0-9 ()\-.]{5,20}$")
_CURRENCY_RE = re.compile(r"^[a-z]{3}$")


def email(value: str, *, required: bool = True) -> str:
    value = value.strip()
    if not value:
        if required:
            raise ValidationError("An email address is required.")
        return ""
    if len(value) > 512 or not _EMAIL_RE.match(value):
        raise ValidationError(f"{value!r} is not a valid email address (like name@example.com).")
    return value


def text(value: str, label: str, *, max_len: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise ValidationError(f"{label} is required.")
    if len(value) > max_len:
        raise ValidationError(f"{label} is too long ({len(value)} characters; at most {max_len}).")
    return value


def phone(value: str) -> str:
    value = value.strip()
    if value and not _PHONE_RE.match(value):
        raise ValidationError(f"{value!r} is not a phone number (digits, spaces, + ( ) - .).")
    return value


def country(value: str) -> str:
    value = value.strip().upper()
    if value and not re.fullmatch(r"[A-Z]{2}", value):
        raise ValidationError(f"Country must be a two-letter code such as US or DE, not {value!r}.")
    return value


_ISO_4217 = (
    "aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd btn "
    "bwp byn bzd cad cdf chf clp cny cop crc cuc cup cve czk djf dkk dop dzd egp ern etb eur "
    "fjd fkp gbp gel ghs gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd jod "
    "jpy kes kgs khr kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt "
    "mop mru mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg "
    "qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl thb "
    "tjs tmt tnd top try ttd twd tzs uah ugx usd uyu uzs ves vnd vuv wst xaf xcd xof xpf yer "
    "zar zmw zwl"
)
#: ISO 4217 currency codes in use: anything else is not a currency.
CURRENCIES = frozenset(_ISO_4217.split())


def currency(value: str) -> str:
    value = value.strip().lower()
    if not _CURRENCY_RE.match(value):
        raise ValidationError(f"Currency must be a three-letter code such as usd, not {value!r}.")
    if value not in CURRENCIES:
        raise ValidationError(f"{value.upper()} is not a currency (ISO 4217), e.g. usd or eur.")
    return value


def metadata(values: Mapping[str, str]) -> dict[str, str]:
    """Stripe's metadata rules: at most 50 keys, keys ≤ 40 characters, values ≤ 500."""
    cleaned: dict[str, str] = {}
    for key, value in values.items():
        key = key.strip()
        if not key:
            raise ValidationError("A metadata key is empty.")
        if len(key) > 40 or "[" in key or "]" in key:
            raise ValidationError(f"Metadata key {key!r} must be at most 40 characters, no [ or ].")
        if len(str(value)) > 500:
            raise ValidationError(f"Metadata value for {key!r} is longer than 500 characters.")
        cleaned[key] = str(value).strip()
    if len(cleaned) > 50:
        raise ValidationError("Stripe allows at most 50 metadata keys.")
    return cleaned


def parse_metadata_lines(text_value: str) -> dict[str, str]:
    """`key=value` per line (the dialogs' metadata box)."""
    result: dict[str, str] = {}
    for n, line in enumerate(text_value.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValidationError(f"Metadata line {n} needs the form key=value: {line.strip()!r}")
        result[key.strip()] = value.strip()
    return metadata(result)


def positive_int(value: str | int, label: str, *, maximum: int = 10**9) -> int:
    text_value = str(value).strip().replace(",", "")
    if not text_value.isdigit() or int(text_value) <= 0:
        raise ValidationError(f"{label} must be a positive whole number, not {str(value)!r}.")
    number = int(text_value)
    if number > maximum:
        raise ValidationError(f"{label} must be at most {maximum:,}.")
    return number


def amount_in_minor_units(value: str, currency_code: str) -> int:
    """`"12.50"` in usd → 1250; zero-decimal currencies take whole units."""
    raw = value.strip().replace(",", "")
    decimals = currency_decimals(currency_code)
    match = re.fullmatch(r"(\d{1,9})(?:\.(\d+))?", raw)
    if not match or (match.group(2) and len(match.group(2)) > decimals):
        example = {0: "1500", 3: "12.500"}.get(decimals, "12.50")
        raise ValidationError(f"Amount must be a number like {example}, not {value!r}.")
    whole, frac = match.group(1), (match.group(2) or "")
    cents: int = int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if decimals else 0)
    if cents <= 0:
        raise ValidationError("Amount must be more than zero.")
    return cents
