"""Signed webhook deliveries to the app's receiver, as `stripe listen` forwards them."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from services.webhook_receiver import WEBHOOK_PATH
from stripe_sandbox.webhooks import sign


class Sender:
    """One keep-alive connection that posts signed events; reconnects after an error."""

    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.secret = secret
        self._conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def post(self, event: dict[str, Any]) -> bool:
        """True when the receiver answered 200; any other answer or a broken connection is False."""
        body = json.dumps(event)
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign(body, self.secret, int(time.time())),
        }
        try:
            self._conn.request("POST", WEBHOOK_PATH, body.encode(), headers)
            answer = self._conn.getresponse()
            answer.read()
            return answer.status == 200
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = self._connect()
            return False

    def close(self) -> None:
        self._conn.close()
