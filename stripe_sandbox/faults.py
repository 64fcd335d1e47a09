"""Fault injection: make the next matching API requests fail or slow down.

A fault matches an API request (never a ``/_sandbox/`` route) by path prefix and, optionally,
method. A failing fault answers before anything else happens: nothing changes, no event is
recorded and nothing is stored under the request's idempotency key, so a retry with the same
key runs for real. A delay is served first, outside the store lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from stripe_sandbox.wire import ApiError, JsonDict, invalid, new_id

MAX_DELAY_MS = 60_000
_METHODS = ("GET", "POST", "DELETE")


@dataclass
class Fault:
    """One injected fault and how many more requests it applies to."""

    id: str
    path_prefix: str
    method: str | None
    status: int | None
    delay_ms: int
    remaining: int
    code: str | None
    message: str | None
    should_retry: bool | None

    def to_json(self) -> JsonDict:
        """The fault as ``GET /_sandbox/faults`` lists it."""
        return {
            "id": self.id,
            "object": "sandbox.fault",
            "path_prefix": self.path_prefix,
            "method": self.method,
            "status": self.status,
            "delay_ms": self.delay_ms,
            "code": self.code,
            "message": self.message,
            "should_retry": self.should_retry,
            "remaining": self.remaining,
        }

    def error(self) -> ApiError:
        """The Stripe-shaped error this fault answers with (``status`` must be set)."""
        status = self.status or 500
        if status == 429:
            return ApiError(
                429,
                self.message
                or "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code=self.code or "rate_limit",
            )
        if status >= 500:
            return ApiError(
                status,
                self.message
                or "An unknown error occurred (injected by the Stripe sandbox's fault injection).",
                type_="api_error",
                code=self.code,
            )
        return ApiError(
            status,
            self.message or f"Injected fault: HTTP {status} (Stripe sandbox fault injection).",
            type_="card_error" if status == 402 else "invalid_request_error",
            code=self.code,
        )


def _int(params: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not raw.lstrip("-").isdigit():
        raise invalid(f"Invalid integer: {raw}", param=key, code="parameter_invalid_integer")
    value = int(raw)
    if not low <= value <= high:
        raise invalid(f"{key} must be between {low} and {high}.", param=key)
    return value


class FaultInjector:
    """The active faults, shared by all request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, params: dict[str, Any]) -> Fault:
        """Validate ``POST /_sandbox/faults`` form fields and register the fault.

        Raises:
            ApiError: 400 for a missing or malformed field.
        """
        prefix = params.get("path_prefix")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise invalid(
                "path_prefix is required and must start with '/', e.g. /v1/customers.",
                param="path_prefix",
            )
        method = params.get("method") or None
        if method is not None:
            method = str(method).upper()
            if method not in _METHODS:
                raise invalid("method must be GET, POST or DELETE.", param="method")
        status = _int(params, "status", None, 400, 599)
        delay = _int(params, "delay_ms", 0, 0, MAX_DELAY_MS) or 0
        if status is None and delay == 0:
            raise invalid("Give a status (400-599), a delay_ms, or both.", param="status")
        count = _int(params, "count", 1, 1, 1_000_000) or 1
        retry = params.get("should_retry")
        if retry not in (None, "", "true", "false"):
            raise invalid("should_retry must be true or false.", param="should_retry")
        fault = Fault(
            id=new_id("fault", 14),
            path_prefix=prefix,
            method=method,
            status=status,
            delay_ms=delay,
            remaining=count,
            code=params.get("code") or None,
            message=params.get("message") or None,
            should_retry=None if retry in (None, "") else retry == "true",
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Use up one application of the first fault matching this request, if any."""
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[JsonDict]:
        """The active faults, oldest first."""
        with self._lock:
            return [f.to_json() for f in self._faults]

    def remove(self, fault_id: str | None = None) -> int:
        """Drop one fault (by id) or all of them; return how many were dropped."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)
