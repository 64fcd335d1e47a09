"""`python -m stripe_sandbox.listen_cli listen …`: the Stripe CLI's `stripe listen`, sandboxed.

Same flags as the real CLI uses here (``--forward-to``, ``--api-key``, ``--events``,
``--print-secret``) plus ``--api-base`` (default ``http://127.0.0.1:12111``). It prints the same
``Ready! … Your webhook signing secret is whsec_… (^C to quit)`` line on stderr — the secret is
derived from the API key, so it is stable per key as on Stripe — then polls the sandbox's
``/v1/events`` and forwards each new event, signed as Stripe signs, printing one line per event
and per answer. Only loopback targets are allowed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from stripe_sandbox.wire import API_VERSION

POLL_S = 0.25
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def secret_for(api_key: str) -> str:
    """The signing secret for `api_key`: stable, like the one Stripe gives an account."""
    digest = hashlib.sha256(f"stripe-sandbox-listen:{api_key}".encode()).hexdigest()
    return f"whsec_{digest[:40]}"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


class _Api:
    def __init__(self, base: str, key: str) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path,
            headers={"Authorization": f"Bearer {self.key}", "Stripe-Version": API_VERSION},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def _forward(url: str, event: dict[str, Any], secret: str) -> tuple[int, str]:
    payload = json.dumps(event).encode()
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def listen(args: argparse.Namespace) -> int:
    secret = secret_for(args.api_key)
    if args.print_secret:
        print(secret)
        return 0
    target = urlsplit(args.forward_to or "")
    if args.forward_to and target.hostname not in _LOOPBACK:
        print("Error: the sandbox only forwards to this machine (127.0.0.1).", file=sys.stderr)
        return 1
    api = _Api(args.api_base, args.api_key)
    wanted = {e.strip() for e in (args.events or "*").split(",") if e.strip()}
    try:
        latest = api.get("/v1/events?limit=1")["data"]
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        message = json.loads(body).get("error", {}).get("message", body) if body else ""
        print(f"Authorization failed, status={exc.code}, body={message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"Error: cannot reach the sandbox at {args.api_base}: {exc}", file=sys.stderr)
        return 1
    seen = {e["id"] for e in latest}
    since = latest[0]["created"] if latest else int(time.time())
    print(
        f"Ready! You are using Stripe API Version [{API_VERSION}]. "
        f"Your webhook signing secret is {secret} (^C to quit)",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    while not stop.wait(POLL_S):
        if os.getppid() != parent:
            return 0  # whoever started us is gone (e.g. killed): do not linger as an orphan
        try:
            page = api.get(f"/v1/events?limit=100&created%5Bgte%5D={since}")["data"]
        except (urllib.error.URLError, OSError) as exc:
            print(f"{_now()}   Error polling events: {exc}", file=sys.stderr, flush=True)
            continue
        for event in reversed(page):  # oldest first
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            since = max(since, event["created"])
            if "*" not in wanted and event["type"] not in wanted:
                continue
            print(f"{_now()}   --> {event['type']} [{event['id']}]", flush=True)
            if args.forward_to:
                status, error = _forward(args.forward_to, event, secret)
                answer = f"[{status}]" if status else f"[ERROR] {error}"
                print(f"{_now()}  <--  {answer} POST {args.forward_to} [{event['id']}]", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stripe-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("listen", help="forward the sandbox's events, as `stripe listen`")
    p.add_argument("--forward-to", "-f", metavar="URL")
    p.add_argument("--api-key", required=True)
    p.add_argument("--events", "-e", metavar="TYPES", help="comma-separated event types")
    p.add_argument("--print-secret", action="store_true")
    p.add_argument("--api-base", default="http://127.0.0.1:12111")
    p.add_argument("--all-snapshot", action="store_true", help="every event (the default here)")
    p.add_argument("--skip-verify", action="store_true", help="accepted for compatibility")
    p.add_argument("--latest", action="store_true", help="accepted for compatibility")
    args = parser.parse_args(argv)
    return listen(args)


if __name__ == "__main__":
    sys.exit(main())
