"""The Stripe gateway against the sandbox: the pinned version, and errors a clerk can read."""

from __future__ import annotations

import socket

import pytest
import stripe

from services.errors import (
    AuthenticationFailed,
    NotFound,
    PermissionDenied,
    StripeRefused,
    StripeUnreachable,
)
from services.stripe_gateway import (
    PINNED_API_VERSION,
    StripeGateway,
    StripeMode,
    mode_for_key,
    translate_stripe_error,
)
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


def test_the_pinned_version_is_stripe_pythons() -> None:
    assert PINNED_API_VERSION == "2026-10-28.endive"


@pytest.mark.parametrize(
    ("key", "sandbox", "mode"),
    [
        ("sk_test_x", False, StripeMode.TEST),
        ("rk_test_x", False, StripeMode.TEST),
        ("sk_live_x", False, StripeMode.LIVE),
        ("rk_live_x", False, StripeMode.LIVE),
        ("sk_test_x", True, StripeMode.SANDBOX),
    ],
)
def test_mode_follows_the_key_prefix(key: str, sandbox: bool, mode: StripeMode) -> None:
    assert mode_for_key(key, sandbox=sandbox) is mode


def test_calls_reach_the_sandbox(sandbox: SandboxServer) -> None:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    gateway.check_connection()
    created = gateway.call(lambda c: c.v1.customers.create({"email": "ada@example.com"}))
    assert created.id.startswith("cus_")
    assert "sk_test" not in repr(gateway)


def test_a_rejected_key_is_authentication_failed(sandbox: SandboxServer) -> None:
    gateway = StripeGateway("sk_live_not_for_the_sandbox", api_base=sandbox.url)
    with pytest.raises(AuthenticationFailed, match="rejected the API key") as info:
        gateway.check_connection()
    assert info.value.exit_code == 4


def test_a_missing_object_is_not_found(sandbox: SandboxServer) -> None:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    with pytest.raises(NotFound) as info:
        gateway.call(lambda c: c.v1.customers.retrieve("cus_doesnotexist"))
    assert info.value.exit_code == 4
    assert info.value.request_id


def test_an_invalid_request_is_refused_with_stripes_reason(sandbox: SandboxServer) -> None:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    params: dict[str, object] = {"email": "a@example.com", "favourite_colour": "green"}
    with pytest.raises(StripeRefused, match="favourite_colour"):
        gateway.call(lambda c: c.v1.customers.create(params))  # type: ignore[arg-type]


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now; no retries so the test does not wait.
    gateway = StripeGateway(TEST_KEY, api_base=f"http://127.0.0.1:{port}", max_network_retries=0)
    with pytest.raises(StripeUnreachable) as info:
        gateway.check_connection()
    assert info.value.exit_code == 5
    assert isinstance(info.value.__cause__, stripe.APIConnectionError)


def test_a_restricted_key_without_a_permission_names_it() -> None:
    # The message Stripe sends when an rk_ key lacks a permission (403, permission_error).
    exc = stripe.PermissionError(
        "The provided key 'rk_test_********************1234' does not have the required "
        "permissions for this endpoint on account 'acct_1AbC'. Having the 'rak_invoice_write' "
        "permission would allow this request to continue.",
        http_status=403,
        headers={"request-id": "req_123"},
    )
    translated = translate_stripe_error(exc)
    assert isinstance(translated, PermissionDenied)
    assert translated.exit_code == 3
    assert "rak_invoice_write" in str(translated)
    assert translated.request_id == "req_123"
