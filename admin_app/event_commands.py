"""`listen`, `events list` and `events replay`: the event pipeline from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from types import FrameType
from typing import Any

from admin_app import argtypes, output
from admin_app.wiring import Runtime
from services.catchup import CatchUp
from services.context import AppContext
from services.errors import AppError, ValidationError
from services.export import EVENTS
from services.health import HealthCheck, HealthServer
from services.listener import ListenerService, ListenerState
from services.permissions import Permission
from services.webhook_receiver import DEFAULT_PORT

log = logging.getLogger(__name__)

#: The headless listener compares the books with Stripe on start and then once a day.
RECONCILE_EVERY_S = 24 * 3600


def listen(args: argparse.Namespace, runtime: Runtime) -> int:
    """Receiver + catch-up (+ supervised `stripe listen`) until SIGINT/SIGTERM."""
    listener = runtime.make_listener(port=args.port, use_cli=args.stripe_cli, kind="headless")
    health = _health_server(args, runtime, listener)
    stop = threading.Event()
    last_line = [""]

    def on_state(state: ListenerState) -> None:
        line = state.line()
        if line != last_line[0]:
            last_line[0] = line
            print(f"{datetime.now():%H:%M:%S} {line}", file=sys.stderr, flush=True)

    def on_event(evt_id: str, result: Any) -> None:
        print(f"{datetime.now():%H:%M:%S} {evt_id} {result.value}", flush=True)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    listener.add_listener(on_state)
    runtime.require_context().events.add_listener(on_event)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listener.start(catch_up=not args.no_catch_up)
    if not listener.state.receiving:
        listener.stop()
        print(f"admin-app: {listener.state.receiver_problem}", file=sys.stderr)
        return 2
    print(f"Listening on {listener.receiver.url if listener.receiver else '?'}", flush=True)
    if health is not None:
        try:
            health.start()
        except AppError:
            listener.stop()
            raise
        print(f"Health on {health.url}", flush=True)
    daily = threading.Thread(
        target=_reconcile_daily, args=(runtime.require_context(), stop), name="reconcile",
        daemon=True,
    )  # fmt: skip
    daily.start()
    while not stop.wait(0.5):
        pass
    if health is not None:
        health.stop()
    listener.stop()
    return 0


def _health_server(
    args: argparse.Namespace, runtime: Runtime, listener: ListenerService
) -> HealthServer | None:
    if args.health_port is None:
        return None
    ctx = runtime.require_context()
    check = HealthCheck(
        runtime.database, ctx.gateway, listener,
        CatchUp(runtime.database, ctx.gateway, ctx.events), runs_stripe_cli=args.stripe_cli,
    )  # fmt: skip
    return HealthServer(check, args.health_port)


def _reconcile_daily(ctx: AppContext, stop: threading.Event) -> None:
    """The books against Stripe on start and once a day; the result goes to the status bar of
    every window (stored) and to stderr here."""
    if not ctx.authority.can(Permission.RECONCILE):
        return
    while not stop.is_set():
        try:
            report = ctx.reconcile.run()
            line = report.line()
        except AppError as exc:
            line = f"could not compare with Stripe: {exc}"
        except Exception:
            log.exception("Reconcile failed")
            line = "reconcile failed (see the log)"
        print(f"{datetime.now():%H:%M:%S} reconcile: {line}", file=sys.stderr, flush=True)
        if stop.wait(RECONCILE_EVERY_S):
            return


def events_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    found = ctx.events.events(
        ctx.authority, status=args.status, event_type=args.type, flagged=args.flagged, limit=None
    )
    rows = output.limited(args, found, "events")
    if csv:
        return output.write_csv(args, ctx, EVENTS, rows)
    if args.json:
        print(json.dumps([r._asdict() | {"id": r.evt_id} for r in rows], indent=2))
        return 0
    for r in rows:
        when = datetime.fromtimestamp(r.received_at / 1000).strftime("%Y-%m-%d %H:%M:%S")
        flag = f"  ⚑ {r.flagged}" if r.flagged else ""
        print(f"{when}  {r.evt_id}  {r.type:<36} {r.status:<8} {r.source}{flag}")
    return 0


def events_replay(args: argparse.Namespace, ctx: AppContext) -> int:
    if args.failed == bool(args.id):
        raise ValidationError("Name one event id to replay, or --failed (not both).")
    if args.failed:
        report = ctx.events.replay_failed(ctx.authority)
        for evt_id, result in report.results.items():
            print(f"{evt_id}: {result.value}")
        for evt_id in report.flagged:
            print(f"{evt_id}: flagged for a person, not replayed")
        print(report.summary(), file=sys.stderr)
        return 1 if any(r.value == "failed" for r in report.results.values()) else 0
    result = ctx.events.replay(args.id, ctx.authority)
    print(f"{args.id}: {result.value}")
    return 0 if result.value not in ("failed", "rejected") else 1


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "listen", help="receive webhooks and catch up on events, without the window"
    )
    p.add_argument(
        "--port", type=argtypes.port, default=None,
        help=f"on 127.0.0.1 (default: the webhook-port setting, else {DEFAULT_PORT})",
    )  # fmt: skip
    p.add_argument(
        "--stripe-cli", action="store_true", help="also run and supervise `stripe listen`"
    )
    p.add_argument("--no-catch-up", action="store_true", help="only receive; do not poll events")
    p.add_argument(
        "--health-port", type=argtypes.port, metavar="N",
        help="answer GET http://127.0.0.1:N/healthz (200 healthy, 503 and why not)",
    )  # fmt: skip
    p.set_defaults(handler=listen, needs_stripe=True, wants_runtime=True)

    ev = commands.add_parser("events", help="stored Stripe events")
    sub = ev.add_subparsers(dest="events_command", metavar="ACTION", required=True,
                            parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="stored events, newest first")
    p.add_argument("--status", choices=["received", "applied", "failed", "rejected", "ignored"])
    p.add_argument("--flagged", action="store_true", help="only events flagged for a person")
    p.add_argument("--type", metavar="T", help="event type, e.g. customer.updated or invoice.*")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=events_list)
    p = sub.add_parser("replay", help="apply a stored event again, or all failed ones (admins)")
    p.add_argument("id", metavar="EVT_ID", nargs="?")
    p.add_argument(
        "--failed", action="store_true",
        help="replay every failed event Stripe would still retry; flag the rest",
    )  # fmt: skip
    p.set_defaults(handler=events_replay, needs_stripe=True)
