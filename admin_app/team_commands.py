"""`admin-app listeners`: the team's listeners as their heartbeats have them (anyone may look).

Exit 0 when a listener is running and alone in forwarding from `stripe listen`; 6 when the
window would warn (none seen for 5 minutes, or two forwarding at once), for monitoring scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from services.context import AppContext
from services.heartbeat import ago

EXIT_WARNING = 6


def listeners_show(args: argparse.Namespace, ctx: AppContext) -> int:
    assert ctx.listeners is not None
    status = ctx.listeners.status()
    if args.json:
        data = {
            "now": status.now,
            "warning": status.warning or None,
            "last_seen": asdict(status.last_seen) if status.last_seen else None,
            "running": [asdict(r) for r in status.running],
            "forwarding": [asdict(r) for r in status.forwarding],
        }
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for seen in status.running:
            what = "forwarding from stripe listen" if seen.forwarding else "not forwarding"
            print(f"{seen.who()}  seen {ago(status.now - seen.seen_at)}  {what}")
        if not status.running:
            print("No listener running now.")
        if status.warning:
            print(f"admin-app: {status.warning}", file=sys.stderr)
    return EXIT_WARNING if status.warning else 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "listeners", help="the team's listeners and when each was last seen (exit 6: a warning)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=listeners_show)
