"""Stripe's wire format: nested form decoding, JSON bodies and the error envelope."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from stripe._api_version import _ApiVersion

# The version stripe-python 16.1.0 pins; responses and events claim exactly this one.
API_VERSION: str = _ApiVersion.CURRENT

JsonDict = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass
class Response:
    """What to send back: status, extra headers, the encoded body and its content type."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


# A /_sandbox/ route: takes the decoded query and form fields (plus "id" for a path with
# `{id}`) and returns (status, JSON body) or a ready Response (HTML pages, redirects).
SandboxHandler = Callable[[JsonDict], "tuple[int, Any] | Response"]


def new_id(prefix: str, length: int = 14) -> str:
    """Return a Stripe-style object id such as ``cus_A1b2C3d4E5f6G7``.

    Args:
        prefix: The id prefix without the underscore (``cus``, ``prod``...).
        length: Number of random alphanumeric characters after the prefix.
    """
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


class ApiError(Exception):
    """An error answered in Stripe's ``{"error": {...}}`` shape.

    Args:
        status: HTTP status code (400, 401, 402, 404, 429...).
        message: Human-readable message, worded like Stripe's.
        type_: Stripe error type, e.g. ``invalid_request_error``.
        code: Stripe error code such as ``parameter_unknown``, or None.
        param: The offending parameter in bracket notation, or None.
        extra: Further fields of the error hash (``decline_code``, ``payment_intent``...).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: JsonDict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        # More error fields, e.g. a card error's decline_code, charge and payment_intent.
        self.extra = extra or {}

    def body(self, request_id: str) -> JsonDict:
        """Return the JSON error envelope Stripe sends for this error."""
        err: JsonDict = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            err["param"] = self.param
        err.update(self.extra)
        err["request_log_url"] = None
        err["request_id"] = request_id
        return {"error": err}

    def v2_body(self) -> JsonDict:
        """Return the error envelope of Stripe's v2 API (``/v2/…`` paths)."""
        err: JsonDict = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            err["param"] = self.param
        return {"error": err}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """Build a 400 ``invalid_request_error``."""
    return ApiError(400, message, code=code, param=param)


def missing(kind: str, object_id: str, param: str | None = "id") -> ApiError:
    """Build the 404 Stripe answers for an id that does not exist."""
    return ApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def _split_key(key: str) -> list[str]:
    """Split ``items[0][price]`` into ``["items", "0", "price"]`` (``[]`` gives ``""``)."""
    head, sep, rest = key.partition("[")
    if not sep:
        return [key]
    parts = [head]
    while rest:
        seg, close, rest = rest.partition("]")
        if not close:
            raise invalid(f"Invalid parameter name: {key}", param=key)
        parts.append(seg)
        if rest.startswith("["):
            rest = rest[1:]
        elif rest:
            raise invalid(f"Invalid parameter name: {key}", param=key)
    return parts


def decode_form(raw: str) -> JsonDict:
    """Decode a form body or query string with Stripe's nested keys.

    ``metadata[k]=v`` becomes ``{"metadata": {"k": "v"}}``, ``expand[]=a`` becomes
    ``{"expand": ["a"]}`` and ``expand[0]=a`` becomes ``{"expand": {"0": "a"}}`` (the
    validator turns digit-keyed dicts into lists where the schema asks for a list).
    Values stay strings; the validator coerces them.

    Args:
        raw: The undecoded ``application/x-www-form-urlencoded`` text.

    Raises:
        ApiError: A key is malformed or used both as a scalar and as a container.
    """
    out: JsonDict = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        parts = _split_key(key)
        _insert_parts(out, parts, value, key)
    return out


def _insert_parts(out: JsonDict, parts: list[str], value: str, key: str) -> None:
    # `[]` segments are "" in `parts`; they append to a list (Rack's rule, which Stripe
    # follows: `items[][price]=a&items[][price]=b` starts a new element when a key repeats).
    cleaned = parts
    node: Any = out
    for i, part in enumerate(cleaned):
        last = i == len(cleaned) - 1
        if part == "" and isinstance(node, list):
            if last:
                node.append(value)
                return
            nxt = cleaned[i + 1]
            if not node or not isinstance(node[-1], dict) or nxt in node[-1]:
                node.append({})
            node = node[-1]
            continue
        if not isinstance(node, dict):
            raise invalid(f"Conflicting values for parameter {key}", param=key)
        if last:
            if isinstance(node.get(part), dict | list):
                raise invalid(f"Conflicting values for parameter {key}", param=key)
            node[part] = value
            return
        nxt = cleaned[i + 1]
        existing = node.get(part)
        if existing is None or existing == "":
            existing = [] if nxt == "" else {}
            node[part] = existing
        elif not isinstance(existing, dict | list):
            raise invalid(f"Conflicting values for parameter {key}", param=key)
        node = existing


def encode_json(body: Any) -> bytes:
    """Serialise a response body the way Stripe does (pretty-printed, UTF-8)."""
    return json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")
