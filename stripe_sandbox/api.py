"""Request handling independent of HTTP plumbing: auth, routing, idempotency, validation.

``Api.handle`` takes a parsed request and returns status, headers and body bytes; the HTTP
server in ``server.py`` only moves bytes. Test-only routes live under ``/_sandbox/`` and
need no API key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote

from stripe_sandbox import demo
from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.hosted import HostedRoutes
from stripe_sandbox.resources import API_ROUTES, billing, checkout
from stripe_sandbox.resources.common import Ctx, Route
from stripe_sandbox.store import IdempotentResult, RequestInfo, Store
from stripe_sandbox.validation import validate
from stripe_sandbox.webhooks import WebhookDispatcher
from stripe_sandbox.wire import (
    API_VERSION,
    ApiError,
    Response,
    SandboxHandler,
    decode_form,
    encode_json,
    new_id,
)

log = logging.getLogger("stripe_sandbox")

_TEST_KEY_RE = re.compile(r"(sk|rk)_test_[A-Za-z0-9_]+\Z")
_LIVE_KEY_RE = re.compile(r"(sk|rk)_live_")


def _as_v2_error(response: Response) -> Response:
    """Rewrite a v1 error envelope into v2's ``{"error": {"type", "code", "message"}}``."""
    try:
        err = json.loads(response.body)["error"]
    except (ValueError, KeyError, TypeError):
        return response
    if not isinstance(err, dict):
        return response
    code = err.get("code")
    if code is None and response.status == 404:
        code = "not_found"
    body = ApiError(
        response.status,
        str(err.get("message", "")),
        type_=str(err.get("type", "invalid_request_error")),
        code=code,
        param=err.get("param"),
    ).v2_body()
    return Response(response.status, encode_json(body), response.headers, response.content_type)


@functools.cache
def _compile(path: str) -> re.Pattern[str]:
    pattern = path.replace("{id}", "(?P<id>[^/]+)").replace("{sub}", "(?P<sub>[^/]+)")
    return re.compile("^" + pattern + "$")


def _mask(key: str) -> str:
    # Stripe shows the prefix and the last four characters of a rejected key.
    if len(key) <= 12:
        return key[:3] + "*" * max(len(key) - 3, 0)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


class Api:
    """Dispatches Stripe API requests and the sandbox's own ``/_sandbox/`` routes.

    Args:
        store: The sandbox state.
        dispatcher: Webhook delivery (its log is exposed at ``/_sandbox/deliveries``).
    """

    def __init__(self, store: Store, dispatcher: WebhookDispatcher) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.faults = FaultInjector()
        self._routes = [(_compile(r.path), r) for r in API_ROUTES]
        # Room for later helpers (fault injection, test payments): add a (method, path) entry.
        self.sandbox_routes: dict[tuple[str, str], SandboxHandler] = {
            ("GET", "/_sandbox"): self._sandbox_index,
            ("POST", "/_sandbox/reset"): self._sandbox_reset,
            ("POST", "/_sandbox/seed-demo"): self._sandbox_seed,
            ("GET", "/_sandbox/deliveries"): self._sandbox_deliveries,
            ("POST", "/_sandbox/faults"): self._sandbox_add_fault,
            ("GET", "/_sandbox/faults"): self._sandbox_faults,
            ("DELETE", "/_sandbox/faults"): self._sandbox_clear_faults,
            ("DELETE", "/_sandbox/faults/{id}"): self._sandbox_clear_faults,
            ("GET", "/_sandbox/billing_settings"): self._sandbox_billing_settings,
            ("POST", "/_sandbox/billing_settings"): self._sandbox_billing_settings,
        }
        self.sandbox_routes.update(HostedRoutes(store).routes())

    # ------------------------------------------------------------ public operations

    def reset(self) -> None:
        """Drop all data, pending deliveries, the delivery log and injected faults."""
        with self.store.lock:
            self.store.reset()
            self.dispatcher.clear()
            self.faults.remove()

    def seed_demo(self) -> dict[str, int]:
        """Seed the demo data set unless already seeded; return counts created."""
        with self.store.lock:
            return demo.seed(self.store)

    # ------------------------------------------------------------ dispatch

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Response:
        """Answer one request.

        Args:
            method: ``GET``, ``POST`` or ``DELETE``.
            path: URL path without the query string.
            query: Raw query string.
            headers: Request headers with lower-cased names.
            body: Raw request body.
        """
        request_id = new_id("req")
        try:
            if path == "/_sandbox" or path.startswith("/_sandbox/"):
                response = self._sandbox(method, path, query, body)
            else:
                fault = self.faults.take(method, path)
                if fault is not None:
                    log.debug("fault %s applies to %s %s", fault.id, method, path)
                    if fault.delay_ms:
                        time.sleep(fault.delay_ms / 1000)
                if fault is not None and fault.status is not None:
                    # Fails before anything runs: nothing changes and the idempotency key
                    # stays unused, so a retry runs for real.
                    response = Response(fault.status, encode_json(fault.error().body(request_id)))
                    if fault.should_retry is not None:
                        response.headers["Stripe-Should-Retry"] = str(fault.should_retry).lower()
                else:
                    response = self._api(method, path, query, headers, body, request_id)
        except ApiError as exc:
            response = Response(exc.status, encode_json(exc.body(request_id)))
        if path.startswith("/v2/") and response.status >= 400:
            response = _as_v2_error(response)
        response.headers.setdefault("Request-Id", request_id)
        response.headers["Stripe-Version"] = API_VERSION
        return response

    def _api(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
    ) -> Response:
        api_key = self._authenticate(headers.get("authorization"))
        route, object_id = self._match(method, path)
        raw = decode_form(query)
        if method == "POST" and body:
            content_type = headers.get("content-type", "application/x-www-form-urlencoded")
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise ApiError(400, f"Invalid request: unsupported Content-Type {content_type}.")
            raw.update(decode_form(body.decode("utf-8", errors="replace")))
        idem_key = headers.get("idempotency-key") if method in ("POST", "DELETE") else None
        with self.store.lock:
            # Checkout Sessions past their expires_at expire before anyone can see them, and
            # subscriptions without a test clock renew (retry, end...) when their time came.
            checkout.sweep_expired(self.store)
            self.store.event_clock = self.store.now()
            try:
                billing.sweep(self.store)
                return self._api_locked(
                    method, path, raw, route, object_id, api_key, idem_key, request_id
                )
            finally:
                self.store.event_clock = None

    def _api_locked(
        self,
        method: str,
        path: str,
        raw: dict[str, Any],
        route: Route,
        object_id: str,
        api_key: str,
        idem_key: str | None,
        request_id: str,
    ) -> Response:
        scope = (api_key, idem_key) if idem_key else None
        fingerprint = json.dumps([method, path, raw], sort_keys=True)
        if scope is not None:
            cached = self.store.idempotency.get(scope)
            if cached is not None:
                return self._replay(cached, fingerprint, idem_key or "")
        params = validate(raw, route.params)
        ctx = Ctx(self.store, self.store.now(), RequestInfo(request_id, idem_key))
        try:
            result = route.handler(ctx, params, object_id)
            response = Response(200, encode_json(result))
        except ApiError as exc:
            # Errors after validation ran the endpoint, so Stripe saves them for replay
            # too; validation errors (raised above) are not saved.
            response = Response(exc.status, encode_json(exc.body(request_id)))
        if scope is not None:
            response.headers["Idempotency-Key"] = idem_key or ""
            self.store.remember(
                scope, IdempotentResult(fingerprint, response.status, response.body, request_id)
            )
        return response

    def _replay(self, cached: IdempotentResult, fingerprint: str, key: str) -> Response:
        if cached.fingerprint != fingerprint:
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type_="idempotency_error",
            )
        return Response(
            cached.status,
            cached.body,
            {
                "Idempotent-Replayed": "true",
                "Idempotency-Key": key,
                "Original-Request": cached.request_id,
                "Request-Id": cached.request_id,
            },
        )

    def _authenticate(self, header: str | None) -> str:
        if not header:
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        scheme, _, credential = header.partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            # curl -u sk_test_...: sends base64("key:").
            try:
                key = base64.b64decode(key, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = header
        if _LIVE_KEY_RE.match(key):
            raise ApiError(
                401,
                f"Invalid API Key provided: {_mask(key)}. The Stripe sandbox only accepts "
                "test-mode keys (sk_test_... or rk_test_...); never give it a live key.",
            )
        if not _TEST_KEY_RE.match(key):
            raise ApiError(401, f"Invalid API Key provided: {_mask(key)}")
        return key

    def _match(self, method: str, path: str) -> tuple[Route, str]:
        for pattern, route in self._routes:
            if route.method != method:
                continue
            found = pattern.match(path)
            if found is not None:
                groups = found.groupdict()
                object_id = unquote(groups.get("id") or "")
                if groups.get("sub"):
                    # A sub-resource (`/v1/customers/{id}/tax_ids/{sub}`): "parent/child".
                    object_id += "/" + unquote(groups["sub"])
                return route, object_id
        raise ApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    # ------------------------------------------------------------ /_sandbox/ routes

    def _sandbox(self, method: str, path: str, query: str, body: bytes) -> Response:
        path = path.rstrip("/") or path
        params: dict[str, Any] = decode_form(query)
        if body:
            params.update(decode_form(body.decode("utf-8", errors="replace")))
        handler = self.sandbox_routes.get((method, path))
        if handler is None:
            for (route_method, route_path), candidate in self.sandbox_routes.items():
                if route_method != method or "{id}" not in route_path:
                    continue
                found = _compile(route_path).match(path)
                if found is not None:
                    handler = candidate
                    params["id"] = unquote(found.group("id"))
                    break
        if handler is None:
            raise ApiError(404, f"Unrecognized sandbox URL ({method}: {path}).")
        result = handler(params)
        if isinstance(result, Response):
            return result
        status, payload = result
        return Response(status, encode_json(payload))

    def _sandbox_index(self, params: dict[str, Any]) -> tuple[int, Any]:
        routes = [f"{m} {p}" for m, p in self.sandbox_routes]
        return 200, {"object": "sandbox", "api_version": API_VERSION, "routes": routes}

    def _sandbox_reset(self, params: dict[str, Any]) -> tuple[int, Any]:
        self.reset()
        return 200, {"object": "sandbox.reset", "ok": True}

    def _sandbox_seed(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"object": "sandbox.seed", "created": self.seed_demo()}

    def _sandbox_deliveries(self, params: dict[str, Any]) -> tuple[int, Any]:
        entries = self.dispatcher.deliveries()
        if isinstance(params.get("event"), str):
            entries = [e for e in entries if e["event"] == params["event"]]
        if isinstance(params.get("endpoint"), str):
            entries = [e for e in entries if e["endpoint"] == params["endpoint"]]
        return 200, {"object": "list", "data": entries, "url": "/_sandbox/deliveries"}

    def _sandbox_add_fault(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.faults.add(params).to_json()

    def _sandbox_faults(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"object": "list", "data": self.faults.list(), "url": "/_sandbox/faults"}

    def _sandbox_billing_settings(self, params: dict[str, Any]) -> tuple[int, Any]:
        with self.store.lock:
            return 200, billing.update_settings(self.store, params)

    def _sandbox_clear_faults(self, params: dict[str, Any]) -> tuple[int, Any]:
        removed = self.faults.remove(params.get("id"))
        if params.get("id") and not removed:
            raise ApiError(404, f"No such fault: '{params['id']}'", code="resource_missing")
        return 200, {"object": "sandbox.faults", "deleted": removed}
