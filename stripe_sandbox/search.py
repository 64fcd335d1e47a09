"""Stripe's search query language (``GET /v1/<resource>/search``) and search result pages.

A query is up to ten clauses ``[-]field<op>value`` joined by spaces or ``AND``, or by
``OR`` (never both, as on Stripe). ``op`` is ``:`` (exact; case-insensitive for text),
``~`` (substring, at least three characters), or ``>``, ``<``, ``>=``, ``<=`` on numeric
fields. Text values are quoted with ``'`` or ``"`` (a backslash escapes a quote); numbers
may be bare; bare ``null`` matches a missing value. ``metadata['key']`` addresses one
metadata key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.resources.common import Ctx, render
from stripe_sandbox.wire import JsonDict, invalid

MAX_CLAUSES = 10
MIN_SUBSTRING = 3

_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_BARE_RE = re.compile(r"[^\s'\"]+")
_INT_RE = re.compile(r"-?\d+\Z")
_OPERATORS = (">=", "<=", ":", "~", ">", "<")
_COMPARISONS = (">", "<", ">=", "<=")


@dataclass(frozen=True)
class Field:
    """How a resource's search field may be queried.

    Attributes:
        kind: ``text`` (case-insensitive, maybe substring), ``numeric`` or ``metadata``.
        substring: Whether ``~`` is allowed.
    """

    kind: str
    substring: bool = False


CUSTOMER_FIELDS: dict[str, Field] = {
    "created": Field("numeric"),
    "email": Field("text", substring=True),
    "metadata": Field("metadata"),
    "name": Field("text", substring=True),
    "phone": Field("text", substring=True),
}


SUBSCRIPTION_FIELDS: dict[str, Field] = {
    "created": Field("numeric"),
    "metadata": Field("metadata"),
    "status": Field("text"),
}


@dataclass(frozen=True)
class Clause:
    """One ``[-]field<op>value`` term; ``value`` None stands for ``null``."""

    field: str
    key: str | None
    op: str
    value: str | int | None
    negated: bool


@dataclass(frozen=True)
class Query:
    """Parsed clauses and how they combine (``any_of`` for ``OR``)."""

    clauses: tuple[Clause, ...]
    any_of: bool


def _unparsable() -> Exception:
    return invalid(
        "We were unable to parse your search query. Try using the format "
        '`metadata["key"]:"value"` to query for metadata or key:"value" to query for '
        "other fields.",
        param="query",
    )


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> bool:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos > start

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def take(self, literal: str) -> bool:
        if self.peek(literal):
            self.pos += len(literal)
            return True
        return False

    def regex(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group(0)

    def quoted(self) -> str | None:
        if self.done() or self.text[self.pos] not in "'\"":
            return None
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == quote:
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise _unparsable()

    def keyword(self) -> str | None:
        for word in ("AND", "OR"):
            end = self.pos + len(word)
            if self.text[self.pos : end].upper() == word and (
                end == len(self.text) or self.text[end].isspace()
            ):
                self.pos = end
                return word
        return None


def parse(query: str, resource: str, fields: dict[str, Field]) -> Query:
    """Parse a search query for one resource.

    Args:
        query: The ``query`` parameter.
        resource: The resource's plural name for messages (``customers``).
        fields: The resource's searchable fields.

    Raises:
        ApiError: 400 naming ``query``: unparsable text, an unknown field, an operator the
            field does not support, mixed ``AND``/``OR`` or more than ten clauses.
    """
    scanner = _Scanner(query)
    scanner.skip_space()
    clauses: list[Clause] = []
    joins: set[str] = set()
    while True:
        clauses.append(_clause(scanner, resource, fields))
        spaced = scanner.skip_space()
        if scanner.done():
            break
        if not spaced:
            raise _unparsable()
        word = scanner.keyword()
        if word is not None:
            if not scanner.skip_space():
                raise _unparsable()
            joins.add(word)
        else:
            joins.add("AND")
    if len(joins) > 1:
        raise invalid(
            "Search queries cannot combine `AND` and `OR`: use only one of them (a space "
            "between clauses means `AND`).",
            param="query",
        )
    if len(clauses) > MAX_CLAUSES:
        raise invalid(f"Search queries can contain at most {MAX_CLAUSES} clauses.", param="query")
    return Query(tuple(clauses), any_of=joins == {"OR"})


def _clause(scanner: _Scanner, resource: str, fields: dict[str, Field]) -> Clause:
    negated = scanner.take("-")
    name = scanner.regex(_FIELD_RE)
    if name is None:
        raise _unparsable()
    key: str | None = None
    if scanner.take("["):
        key = scanner.quoted()
        if key is None or not scanner.take("]"):
            raise _unparsable()
    op = next((o for o in _OPERATORS if scanner.take(o)), None)
    if op is None:
        raise _unparsable()
    spec = fields.get(name)
    if spec is None:
        raise invalid(
            f"Field `{name}` is an unsupported search field for resource `{resource}`. See "
            f"http://stripe.com/docs/search#query-fields-for-{resource.replace('_', '-')} for a "
            "list of supported fields.",
            param="query",
        )
    if (spec.kind == "metadata") != (key is not None):
        raise _unparsable()
    value = _value(scanner, spec)
    _check_operator(name, spec, op, value)
    return Clause(name, key, op, value, negated)


def _value(scanner: _Scanner, spec: Field) -> str | int | None:
    text = scanner.quoted()
    if text is None:
        bare = scanner.regex(_BARE_RE)
        if bare is None:
            raise _unparsable()
        if bare == "null":
            return None
        if not _INT_RE.match(bare):
            # Stripe wants text values quoted; only numbers and null may stand bare.
            raise _unparsable()
        text = bare
    if spec.kind == "numeric":
        if not _INT_RE.match(text):
            raise invalid(f"Invalid numeric value in search query: '{text}'.", param="query")
        return int(text)
    return text


def _check_operator(name: str, spec: Field, op: str, value: str | int | None) -> None:
    if op == "~":
        if not spec.substring:
            raise invalid(
                f"Field `{name}` does not support substring matching with `~`.", param="query"
            )
        if not isinstance(value, str) or len(value) < MIN_SUBSTRING:
            raise invalid(
                f"Substring matching with `~` needs a value of at least {MIN_SUBSTRING} "
                "characters.",
                param="query",
            )
    if op in _COMPARISONS and spec.kind != "numeric":
        raise invalid(
            f"Field `{name}` does not support the `{op}` operator; only numeric fields do.",
            param="query",
        )
    if value is None and op != ":":
        raise _unparsable()


def matches(obj: JsonDict, query: Query) -> bool:
    """Whether an object satisfies a parsed query."""
    results = (_clause_matches(obj, c) for c in query.clauses)
    return any(results) if query.any_of else all(results)


def _clause_matches(obj: JsonDict, clause: Clause) -> bool:
    if clause.key is not None:
        actual: Any = (obj.get(clause.field) or {}).get(clause.key)
    else:
        actual = obj.get(clause.field)
    return _compare(actual, clause) != clause.negated


def _compare(actual: Any, clause: Clause) -> bool:
    expected = clause.value
    if expected is None:
        return actual is None or actual == ""
    if actual is None:
        return False
    if isinstance(expected, int):
        number = int(actual)
        return {
            ":": number == expected,
            ">": number > expected,
            "<": number < expected,
            ">=": number >= expected,
            "<=": number <= expected,
        }[clause.op]
    if clause.key is not None:
        # Metadata values are matched exactly, as tokens.
        return str(actual) == expected
    if clause.op == "~":
        return expected.lower() in str(actual).lower()
    return str(actual).lower() == expected.lower()


# ---------------------------------------------------------------- result pages


def _encode_page(key: tuple[int, int]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page(token: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, seq = json.loads(raw)
        if isinstance(created, int) and isinstance(seq, int):
            return created, seq
    except (binascii.Error, ValueError, TypeError):
        pass
    raise invalid(
        f"Invalid page: '{token}' is not a page token from a search result.", param="page"
    )


def search_page(
    ctx: Ctx,
    items: Iterable[JsonDict],
    params: JsonDict,
    url: str,
    resource: str,
    fields: dict[str, Field],
) -> JsonDict:
    """Answer a search request: parse, filter, order newest first and cut one page.

    Args:
        ctx: Request context.
        items: Every live object of the resource.
        params: Validated search params (``query``, ``limit``, ``page``, ``expand``).
        url: The search path, e.g. ``/v1/customers/search``.
        resource: Plural resource name for messages.
        fields: The resource's searchable fields.

    Raises:
        ApiError: A bad query, limit, page token or expand path.
    """
    query = parse(params["query"], resource, fields)
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid(
            "Invalid limit: must be an integer between 1 and 100 (inclusive).", param="limit"
        )
    expand: list[str] = []
    total_count = False
    for path in params.get("expand", []):
        if path == "total_count":
            total_count = True
        elif path.startswith("data."):
            expand.append(path[len("data.") :])
        else:
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
    store = ctx.store
    found = sorted((o for o in items if matches(o, query)), key=store.sort_key, reverse=True)
    rest = found
    if params.get("page"):
        after = _decode_page(params["page"])
        rest = [o for o in found if store.sort_key(o) < after]
    page = rest[:limit]
    has_more = len(rest) > limit
    result: JsonDict = {
        "object": "search_result",
        "data": [render(store, o, expand) for o in page],
        "has_more": has_more,
        "next_page": _encode_page(store.sort_key(page[-1])) if has_more else None,
        "url": url,
    }
    if total_count:
        result["total_count"] = len(found)
    return result
