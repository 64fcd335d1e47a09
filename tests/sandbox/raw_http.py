"""Plain HTTP calls to the sandbox, for what stripe-python hides (headers, bad keys)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlencode, urlsplit

TEST_KEY = "sk_test_sandbox_tests"


def call(
    base_url: str,
    method: str,
    path: str,
    body: str = "",
    headers: dict[str, str] | None = None,
    key: str | None = TEST_KEY,
) -> tuple[int, dict[str, str], Any]:
    """Send one request and return (status, headers, decoded JSON body)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        sent = {"Content-Type": "application/x-www-form-urlencoded"}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        sent.update(headers or {})
        conn.request(method, path, body=body.encode() if body else None, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), json.loads(payload)
    finally:
        conn.close()


def fetch(
    url: str, method: str = "GET", form: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """Load a hosted page like a browser would (no redirects followed): status, headers, text."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        body = urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()
