"""``python -m stripe_sandbox listen``: the Stripe CLI's ``stripe listen``, for a sandbox.

Polls the sandbox's ``GET /v1/events`` (with the given API key) for events created after it
started and POSTs each one, signed like Stripe signs, to ``--forward-to``. Output follows
the CLI: the "Ready!" line with the signing secret on stderr; one line per event and per
forwarding result on stdout. The secret is derived from the API key, so it is the same on
every run with the same key (as the CLI's is per account).

Thin events (``--thin-events`` with ``--forward-thin-to``) are polled from
``GET /v2/core/events`` and POSTed as the thin payload, signed with the same secret.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from stripe_sandbox.resources.v2_events import notification
from stripe_sandbox.resources.webhook_endpoints import is_loopback_url
from stripe_sandbox.webhooks import post_signed, sign
from stripe_sandbox.wire import API_VERSION

DEFAULT_API_BASE = "http://127.0.0.1:12111"
POLL_INTERVAL_SECONDS = 0.2
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_SECRET_SALT = b"stripe-sandbox listen signing secret"


def signing_secret(api_key: str) -> str:
    """The ``whsec_`` secret for an API key: stable per key, like the CLI's per account."""
    digest = hmac.new(_SECRET_SALT, api_key.encode(), hashlib.sha256).hexdigest()
    return f"whsec_{digest}"


class ListenError(Exception):
    """A problem that ends ``listen`` (bad key, unreachable sandbox, bad arguments)."""


@dataclass
class _Sandbox:
    """A keep-alive connection to the sandbox's API, authenticated with one key."""

    api_base: str
    api_key: str
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def get(self, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        parts = urlsplit(self.api_base)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    parts.hostname or "127.0.0.1", parts.port, timeout=10
                )
            try:
                self._conn.request(
                    "GET",
                    f"{parts.path.rstrip('/')}{path}?{urlencode(params)}",
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
                response = self._conn.getresponse()
                body = response.read()
                return response.status, json.loads(body or b"null")
            except (OSError, http.client.HTTPException, ValueError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Listener:
    """Forwards new sandbox events; ``run`` until ``stop`` is set.

    Args:
        api_base: The sandbox URL.
        api_key: A test key the sandbox accepts.
        forward_to: Where to POST events, or None to only print them.
        events: Event types to forward (``*`` for all).
        out: Where event lines go (stdout).
        err: Where status lines go (stderr).
        poll_interval: Seconds between polls when nothing is new.
        forward_thin_to: Where to POST thin events, or None to only print them.
        thin_events: Thin event types to forward (``*`` for all; none by default, as the
            CLI forwards thin events only when they are named).
    """

    def __init__(
        self,
        api_base: str,
        api_key: str,
        forward_to: str | None,
        events: list[str],
        out: TextIO,
        err: TextIO,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        verify_tls: bool = False,
        forward_thin_to: str | None = None,
        thin_events: list[str] | None = None,
    ) -> None:
        self.secret = signing_secret(api_key)
        self._sandbox = _Sandbox(api_base, api_key)
        self._forward_to = forward_to
        self._events = set(events)
        self._out = out
        self._err = err
        self._poll_interval = poll_interval
        self._verify_tls = verify_tls
        self._cursor: str | None = None
        self._forward_thin_to = forward_thin_to
        self._thin_events = set(thin_events or [])
        self._thin_cursor: str | None = None

    def authenticate(self) -> None:
        """Check the key and remember the newest event (only later ones are forwarded).

        Raises:
            ListenError: The key is refused, or the sandbox is unreachable.
        """
        try:
            status, body = self._sandbox.get("/v1/events", {"limit": 1})
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ListenError(
                f"Error while authenticating with Stripe: cannot reach {self._sandbox.api_base}"
                f" ({exc})"
            ) from exc
        if status != 200:
            raise ListenError(
                "Error while authenticating with Stripe: Authorization failed, "
                f"status={status}, body={json.dumps(body, indent=2)}"
            )
        data = body.get("data") or []
        self._cursor = data[0]["id"] if data else None
        if self._thin_events:
            status, body = self._sandbox.get("/v2/core/events", {"limit": 1})
            if status != 200:
                raise ListenError(f"GET /v2/core/events answered {status}")
            data = body.get("data") or []
            self._thin_cursor = data[0]["id"] if data else None

    def run(self, stop: threading.Event) -> None:
        """Print the Ready line, then poll and forward until ``stop`` is set."""
        print(
            f"Ready! You are using Stripe API Version [{API_VERSION}]. Your webhook signing "
            f"secret is {self.secret} (^C to quit)",
            file=self._err,
            flush=True,
        )
        unreachable = False
        try:
            while not stop.is_set():
                try:
                    fresh = self._new_events()
                    thin = self._new_thin_events() if self._thin_events else []
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if not unreachable:
                        print(
                            f"Lost the connection to {self._sandbox.api_base} ({exc}); retrying.",
                            file=self._err,
                            flush=True,
                        )
                    unreachable = True
                    stop.wait(1.0)
                    continue
                if unreachable:
                    print("Reconnected.", file=self._err, flush=True)
                    unreachable = False
                for event in fresh:
                    if stop.is_set():
                        break
                    self._handle(event)
                for event in thin:
                    if stop.is_set():
                        break
                    self._handle_thin(event)
                if not fresh and not thin:
                    stop.wait(self._poll_interval)
        finally:
            self._sandbox.close()

    def close(self) -> None:
        """Close the connection to the sandbox."""
        self._sandbox.close()

    def _new_events(self) -> list[dict[str, Any]]:
        """Events newer than the cursor, oldest first (one page of up to 100)."""
        if self._cursor is not None:
            status, body = self._sandbox.get(
                "/v1/events", {"ending_before": self._cursor, "limit": 100}
            )
            if status == 400 and (body.get("error") or {}).get("code") == "resource_missing":
                # The sandbox was reset: every event there now is new.
                self._cursor = None
            elif status != 200:
                raise ValueError(f"GET /v1/events answered {status}")
            else:
                fresh = list(reversed(body["data"]))
                if fresh:
                    self._cursor = fresh[-1]["id"]
                return fresh
        collected: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            status, body = self._sandbox.get("/v1/events", params)
            if status != 200:
                raise ValueError(f"GET /v1/events answered {status}")
            collected.extend(body["data"])
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
        fresh = list(reversed(collected))
        if fresh:
            self._cursor = fresh[-1]["id"]
        return fresh

    def _new_thin_events(self) -> list[dict[str, Any]]:
        """Thin events newer than the thin cursor, oldest first (all of them after a reset)."""
        collected: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            status, body = self._sandbox.get("/v2/core/events", params)
            if status != 200:
                raise ValueError(f"GET /v2/core/events answered {status}")
            ids = [e["id"] for e in body["data"]]
            if self._thin_cursor in ids:
                collected.extend(body["data"][: ids.index(self._thin_cursor)])
                break
            collected.extend(body["data"])
            if not body["next_page_url"]:
                break
            params = dict(parse_qsl(urlsplit(body["next_page_url"]).query))
        fresh = list(reversed(collected))
        if fresh:
            self._thin_cursor = fresh[-1]["id"]
        return fresh

    def _handle_thin(self, event: dict[str, Any]) -> None:
        if "*" not in self._thin_events and event["type"] not in self._thin_events:
            return
        self._deliver(event, notification(event), self._forward_thin_to)

    def _handle(self, event: dict[str, Any]) -> None:
        if "*" not in self._events and event["type"] not in self._events:
            return
        self._deliver(event, event, self._forward_to)

    def _deliver(self, event: dict[str, Any], body: dict[str, Any], url: str | None) -> None:
        self._line(f"   --> {event['type']} [{event['id']}]")
        if url is None:
            return
        payload = json.dumps(body, indent=2)
        try:
            status = post_signed(
                url,
                payload,
                sign(payload, self.secret, int(time.time())),
                verify_tls=self._verify_tls,
            )
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._line(f"            [ERROR] Failed to POST: {exc}\n")
            return
        self._line(f"  <--  [{status}] POST {url} [{event['id']}]")

    def _line(self, text: str) -> None:
        print(f"{time.strftime(TIME_FORMAT)}{text}", file=self._out, flush=True)


def _normalise_forward_url(url: str) -> str:
    # Like the CLI: `localhost:4242/webhook` means http://localhost:4242/webhook.
    if "://" not in url:
        url = "http://" + url
    if not is_loopback_url(url):
        raise ListenError(
            f"--forward-to must be a loopback URL (127.0.0.1, localhost or [::1]), not {url}: "
            "the Stripe sandbox never sends traffic off this machine."
        )
    return url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stripe_sandbox listen",
        description="Forward the sandbox's events to a local webhook endpoint, like "
        "`stripe listen`.",
    )
    parser.add_argument("--forward-to", "-f", metavar="URL", help="where to POST events")
    parser.add_argument("--api-key", metavar="KEY", help="a test key (default: $STRIPE_API_KEY)")
    parser.add_argument(
        "--events",
        "-e",
        action="append",
        metavar="TYPES",
        help="comma-separated event types to forward (default: all); may be repeated",
    )
    parser.add_argument(
        "--print-secret", action="store_true", help="only print the signing secret and exit"
    )
    # Stripe CLI 1.x refuses to start without naming the events; these are its "all" flags.
    parser.add_argument("--all-snapshot", action="store_true", help="every event (the default)")
    parser.add_argument("--all-thin", action="store_true", help="every thin event")
    parser.add_argument(
        "--thin-events",
        action="append",
        metavar="TYPES",
        help="comma-separated thin event types to forward (such as v1.charge.dispute.created)",
    )
    parser.add_argument(
        "--forward-thin-to", metavar="URL", help="where to POST thin events (thin payload)"
    )
    parser.add_argument(
        "--api-base", default=DEFAULT_API_BASE, metavar="URL", help="the sandbox's URL"
    )
    parser.add_argument(
        "--skip-verify",
        action="store_true",
        help="accepted for compatibility: https certificates on loopback are never verified",
    )
    parser.add_argument(
        "--latest", action="store_true", help="accepted for compatibility (one API version)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_INTERVAL_SECONDS, help=argparse.SUPPRESS
    )
    return parser


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run ``listen`` with CLI arguments.

    Args:
        argv: Arguments after ``listen``; ``sys.argv[1:]`` when None.
        out: Event lines (default stdout).
        err: Status lines (default stderr).
        stop: Set it to end the run (default: SIGINT/SIGTERM set it).

    Returns:
        0 after a clean stop (or ``--print-secret``); 1 when authentication fails; 2 for bad
        arguments.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    api_key = args.api_key or os.environ.get("STRIPE_API_KEY")
    try:
        if not api_key:
            raise ListenError(
                "You have not configured API keys yet: pass --api-key sk_test_... or set "
                "STRIPE_API_KEY."
            )
        if not is_loopback_url(args.api_base):
            raise ListenError(f"--api-base must be the sandbox's loopback URL, not {args.api_base}")
        forward_to = _normalise_forward_url(args.forward_to) if args.forward_to else None
        forward_thin_to = (
            _normalise_forward_url(args.forward_thin_to) if args.forward_thin_to else None
        )
    except ListenError as exc:
        print(f"Error: {exc}", file=err, flush=True)
        return 2
    events = [e.strip() for group in args.events or ["*"] for e in group.split(",") if e.strip()]
    thin_events = [e.strip() for group in args.thin_events or [] for e in group.split(",")]
    thin_events = [e for e in thin_events if e] or (["*"] if args.all_thin else [])
    listener = Listener(
        args.api_base.rstrip("/"),
        api_key,
        forward_to,
        events or ["*"],
        out,
        err,
        poll_interval=args.poll_interval,
        forward_thin_to=forward_thin_to,
        thin_events=thin_events,
    )
    try:
        try:
            listener.authenticate()
        except ListenError as exc:
            print(f"FATAL {exc}", file=err, flush=True)
            return 1
        if args.print_secret:
            print(listener.secret, file=out, flush=True)
            return 0
        if stop is not None:
            listener.run(stop)
            return 0
        return _run_until_signal(listener.run)
    finally:
        listener.close()


def _run_until_signal(run: Callable[[threading.Event], None]) -> int:
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    parent = os.getppid()

    def _watch_parent() -> None:
        # Whoever started us (an app supervising us) was killed: do not linger as an orphan.
        while not stop.wait(0.5):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=_watch_parent, name="parent-watch", daemon=True).start()
    try:
        run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
