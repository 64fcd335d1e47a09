"""Command line: run the sandbox in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from types import FrameType

from stripe_sandbox import listen
from stripe_sandbox.server import SandboxServer

DEFAULT_PORT = 12111


def run(port: int = DEFAULT_PORT, seed_demo: bool = False, state_file: str | None = None) -> int:
    """Start the sandbox on 127.0.0.1 and serve until SIGINT/SIGTERM.

    The first line on stdout is ``Sandbox ready: http://127.0.0.1:PORT`` (flushed), with the
    real port even when ``port`` is 0, so a parent process can wait for it.

    Args:
        port: TCP port; 0 picks a free one.
        seed_demo: Seed the demo data set (a no-op if the state file already has it).
        state_file: Optional JSON file to load at start and save while running and on exit.

    Returns:
        0 after a clean shutdown, 2 when the port is in use or the state file is unreadable.
    """
    try:
        server = SandboxServer(port=port, state_file=state_file)
    except ValueError as exc:
        print(f"stripe-sandbox: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"stripe-sandbox: port {port} on 127.0.0.1 is already in use "
                "(pass --port 0 for a free one).",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(f"stripe-sandbox: cannot listen on port {port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if seed_demo:
            server.seed_demo()
        print(f"Sandbox ready: {server.url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``[--port 12111] [--seed-demo] [--state FILE]`` and call :func:`run`, or run
    ``listen ...`` (see :mod:`stripe_sandbox.listen`).

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["listen"]:
        return listen.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m stripe_sandbox",
        description="Local Stripe API emulator for tests and offline development.",
        epilog="`python -m stripe_sandbox listen --help`: forward events like `stripe listen`.",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0 = any free port)"
    )
    parser.add_argument("--seed-demo", action="store_true", help="seed demo customers/products")
    parser.add_argument("--state", metavar="FILE", help="JSON file to keep state across runs")
    args = parser.parse_args(argv)
    return run(port=args.port, seed_demo=args.seed_demo, state_file=args.state)
