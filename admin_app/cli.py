"""`admin-app`: the GUI by default, plus commands for scripts. One clear line per error.

Exit codes (stable; scripts rely on them): 0 ok, 2 bad input, 3 permission denied,
4 refused by Stripe, 5 Stripe unreachable, 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from admin_app import __version__
from admin_app.logging_setup import setup_logging
from admin_app.paths import AppPaths, resources_dir
from admin_app.wiring import Options, Runtime, build_runtime
from services.errors import AppError, DatabaseDenied
from services.listener import ListenerService
from services.redaction import redact

log = logging.getLogger(__name__)

SANDBOX_LISTEN = "sandbox-listen"  # hidden: see main()
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _NotJustTheWindow(Exception):
    """The arguments name a command, ask for help, or are wrong: the full parser decides."""


class _WindowParser(_Parser):
    def error(self, message: str) -> NoReturn:
        raise _NotJustTheWindow(message)


def window_args(raw: Sequence[str]) -> argparse.Namespace | None:
    """The arguments when they only open the window (no command), else None.

    Parsed without the command modules: importing them all (and the services behind them)
    cost a tenth of a second or more before the window could show. Anything else, `--help`
    included, goes to `build_parser()`, which knows every command.
    """
    parser = _WindowParser(prog="admin-app", add_help=False)
    _add_global_options(parser)
    try:
        args, rest = parser.parse_known_args(list(raw))
    except _NotJustTheWindow:
        return None
    if rest:
        return None
    args.command = None
    return args


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the window's options and every command."""
    from admin_app import (
        argtypes,
        catalog_commands,
        db_commands,
        event_commands,
        invoice_commands,
        journal_commands,
        overview_commands,
        pricing_commands,
        reconcile_commands,
        settings_commands,
        subscription_commands,
        team_commands,
    )
    from admin_app import commands as cmd

    parser = _Parser(
        prog="admin-app",
        description="Billing Admin: the staff desktop app over Stripe Billing. "
        "Without a command it opens the window.",
    )
    _add_global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sandbox = commands.add_parser(
        "sandbox", help="run the local Stripe sandbox in the foreground (any sk_test_ key works)"
    )
    sandbox.add_argument(
        "--port", type=argtypes.port, default=12111, help="port on 127.0.0.1 (0: any)"
    )
    sandbox.add_argument(
        "--seed-demo", action="store_true", help="load demo customers and products"
    )
    sandbox.add_argument(
        "--state", metavar="FILE", help="keep the sandbox's data in this JSON file"
    )
    cmd.add_parsers(commands, _Parser)
    catalog_commands.add_parsers(commands, _Parser)
    catalog_commands.add_credit_parsers(commands, _Parser)
    event_commands.add_parsers(commands, _Parser)
    invoice_commands.add_parsers(commands, _Parser)
    journal_commands.add_parsers(commands, _Parser)
    db_commands.add_parsers(commands, _Parser)
    pricing_commands.add_parsers(commands, _Parser)
    reconcile_commands.add_parsers(commands, _Parser)
    overview_commands.add_parsers(commands, _Parser)
    subscription_commands.add_parsers(commands, _Parser)
    settings_commands.add_parsers(commands, _Parser)
    team_commands.add_parsers(commands, _Parser)
    return parser


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--db", metavar="URL", help="database URL: sqlite:///PATH or postgresql://HOST/DB"
    )
    parser.add_argument(
        "--api-base",
        metavar="URL",
        help="Stripe API address, e.g. a sandbox's http://127.0.0.1:PORT",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="use the built-in Stripe sandbox even when a secret key is configured",
    )
    parser.add_argument(
        "--screenshot",
        metavar="DIR",
        type=Path,
        help="render each panel offscreen into DIR/<panel>.png, then exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation (database, keyring, resources, window, API pin), then exit",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `admin-app` console script."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == [SANDBOX_LISTEN]:
        # The sandbox's `stripe listen` look-alike, reachable through the app's own executable
        # (a frozen build has no `python -m`): the listen supervisor runs it like this.
        from stripe_sandbox import listen

        return listen.main(raw[1:])
    args = window_args(raw) or build_parser().parse_args(raw)
    paths = AppPaths.detect()
    setup_logging(paths.log_file, verbose=args.verbose)
    try:
        return _dispatch(args, paths)
    except AppError as exc:
        if exc.request_id:
            # For support to quote to Stripe; the log file only, so stderr stays one line.
            log.info("Stripe request id: %s", exc.request_id)
        print(f"admin-app: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.exception("Unexpected error")
        print(
            f"admin-app: unexpected error ({type(exc).__name__}: {redact(str(exc))}); "
            f"details in {paths.log_file}",
            file=sys.stderr,
        )
        return EXIT_UNEXPECTED


def _window_listener(runtime: Runtime) -> ListenerService | None:
    """The window's own listener, unless this login leaves events to the team's listener."""
    if runtime.context is None:
        return None
    try:
        return runtime.make_listener()
    except DatabaseDenied as exc:
        log.info("No listener in this window: %s", exc)
        return None


def _dispatch(args: argparse.Namespace, paths: AppPaths) -> int:
    if args.self_test:
        from admin_app.selftest import run_self_test

        return run_self_test()
    if getattr(args, "db_handler", None) is not None:
        done: int = args.db_handler(args, paths)
        return done
    if args.command == "sandbox":
        from stripe_sandbox.cli import run as run_sandbox

        return run_sandbox(port=args.port, seed_demo=args.seed_demo, state_file=args.state)
    handler = getattr(args, "handler", None)
    if handler is not None:
        from admin_app import commands as cmd

        with cmd.signed_in(args, paths) as runtime:
            target = runtime if getattr(args, "wants_runtime", False) else runtime.context
            result: int = handler(args, target)
            return result
    return _run_gui(args, paths)


def _run_gui(args: argparse.Namespace, paths: AppPaths) -> int:
    if args.screenshot is not None:
        # Screenshots are taken offscreen whatever display this machine has.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # Qt is imported only when a window is wanted: commands stay fast and work without it.
    from ui.app import run_gui

    try:
        runtime = build_runtime(
            Options(db=args.db, api_base=args.api_base, sandbox=args.sandbox), paths
        )
    except AppError as exc:
        # One line for whoever started it from a terminal, and a window for whoever clicked.
        print(f"admin-app: {redact(str(exc))}", file=sys.stderr)
        from ui.app import run_cannot_start

        run_cannot_start(
            redact(str(exc)), resources=resources_dir(), screenshot_dir=args.screenshot
        )
        return exc.exit_code
    if runtime.access_problem is not None:
        print(f"admin-app: {runtime.access_problem}", file=sys.stderr)
    try:
        return run_gui(
            runtime.context,
            mode=runtime.mode,
            access_problem=str(runtime.access_problem) if runtime.access_problem else None,
            make_listener=None if args.screenshot else lambda: _window_listener(runtime),
            resources=resources_dir(),
            log_file=paths.log_file,
            screenshot_dir=args.screenshot,
            version=__version__,
            placement_file=paths.config_dir / "window-geometry.bin",
        )
    finally:
        runtime.close()
