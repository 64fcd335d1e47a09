"""Running `stripe listen --forward-to …` next to the app, and keeping it running.

The supervisor starts the Stripe CLI (or the sandbox's look-alike), reads the `whsec_…` secret
from its "Ready!" line so the receiver can verify what it forwards, reports its state (not
installed / starting / forwarding / failed with the CLI's own words), restarts it with
exponential backoff, and stops it with the app.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from services.redaction import redact

log = logging.getLogger(__name__)

_SECRET_RE = re.compile(r"(whsec_[A-Za-z0-9]+)")
_MSG_RE = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class ListenState(enum.Enum):
    STOPPED = "stopped"
    NOT_INSTALLED = "not installed"
    STARTING = "starting"
    FORWARDING = "forwarding"
    FAILED = "failed"


@dataclass(frozen=True)
class ListenStatus:
    state: ListenState
    message: str = ""

    def line(self) -> str:
        text = f"stripe listen: {self.state.value}"
        return f"{text} — {self.message}" if self.message else text


StatusFn = Callable[[ListenStatus], None]


def find_stripe_cli(setting: str | None) -> str | None:
    """The configured `stripe` binary, or the one on PATH."""
    if setting:
        return setting if os.path.isfile(setting) and os.access(setting, os.X_OK) else None
    return shutil.which("stripe")


#: What the child may inherit: finding programs, its config and cache folders, locale, proxies
#: and CA certificates to reach Stripe, and Python's own paths for the sandbox's look-alike.
#: Nothing else: not STRIPE_WEBHOOK_SECRET, not STRIPE_SECRET_KEY, not the database URL.
_INHERITED = frozenset(
    {
        "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR", "TEMP",
        "TMP", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
        "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "STRIPE_CLI_TELEMETRY_OPTOUT", "STRIPE_DEVICE_NAME", "PYTHONPATH", "PYTHONHOME",
        "VIRTUAL_ENV", "SYSTEMROOT", "WINDIR", "APPDATA", "LOCALAPPDATA", "USERPROFILE",
        "COMSPEC", "PATHEXT",
    }
)  # fmt: skip


def child_environment(api_key: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `stripe listen`: the few variables it needs, plus its key.

    The Stripe CLI (and the sandbox's look-alike) read ``STRIPE_API_KEY``; unlike ``--api-key``
    it does not show up in `ps` or ``/proc/PID/cmdline`` (``/proc/PID/environ`` is readable by
    the same user only).
    """
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if name in _INHERITED}
    env["STRIPE_API_KEY"] = api_key
    return env


class ListenSupervisor:
    """Supervises one `… listen` process.

    Args:
        command: the program and its leading arguments up to and including ``listen``, e.g.
            ``["/usr/bin/stripe", "listen"]``; None when the CLI is not installed.
        forward_to: the receiver's URL.
        api_key: the key the CLI uses: passed in its environment as ``STRIPE_API_KEY`` (any
            local user can read a process's arguments with `ps`), never logged.
        on_status: called from the supervisor's thread on every state change.
    """

    def __init__(
        self,
        command: Sequence[str] | None,
        forward_to: str,
        api_key: str,
        on_status: StatusFn | None = None,
        backoff: Sequence[float] = BACKOFF_S,
    ) -> None:
        self._command = list(command) if command else None
        self._forward_to = forward_to
        self._api_key = api_key
        self._on_status = on_status
        self._backoff = list(backoff)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.secret: str | None = None
        self.status = ListenStatus(ListenState.STOPPED)
        self.restarts = 0

    def start(self) -> None:
        if self._command is None:
            self._set(ListenStatus(ListenState.NOT_INSTALLED, "the Stripe CLI was not found"))
            return
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stripe-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.status.state is not ListenState.NOT_INSTALLED:
            self._set(ListenStatus(ListenState.STOPPED))

    def _set(self, status: ListenStatus) -> None:
        self.status = status
        log.info("%s", redact(status.line()))
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:
                log.exception("A listen status callback failed")

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started_forwarding = self._run_once()
            if self._stop.is_set():
                return
            attempt = 0 if started_forwarding else attempt + 1
            delay = self._backoff[min(attempt, len(self._backoff) - 1)]
            self.restarts += 1
            if self._stop.wait(delay):
                return

    def _run_once(self) -> bool:
        """Run the CLI until it exits; True if it got as far as forwarding."""
        assert self._command is not None
        # Stripe CLI 1.x wants the events named; --all-snapshot is every (v1) event.
        argv = [*self._command, "--all-snapshot", "--forward-to", self._forward_to]
        self._set(ListenStatus(ListenState.STARTING))
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=child_environment(self._api_key),
            )
        except OSError as exc:
            self._set(ListenStatus(ListenState.FAILED, f"cannot start: {exc.strerror or exc}"))
            return False
        with self._lock:
            self._proc = proc
        forwarding = False
        last_line = ""
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.strip()
            if not line:
                continue
            last_line = line
            log.debug("stripe listen: %s", redact(line))
            if not forwarding and "Ready!" in line:
                match = _SECRET_RE.search(line)
                if match:
                    self.secret = match.group(1)
                forwarding = True
                self._set(ListenStatus(ListenState.FORWARDING, f"to {self._forward_to}"))
        proc.stdout.close()
        code = proc.wait()
        with self._lock:
            self._proc = None
        if not self._stop.is_set() and code == 0:
            self._set(ListenStatus(ListenState.STOPPED, "exited"))
        elif not self._stop.is_set():
            # The CLI's own last words explain a failure; after "Ready!" it just stopped.
            useful = last_line and "Ready!" not in last_line and "-->" not in last_line
            message = _MSG_RE.search(last_line)  # the CLI's logfmt: level=fatal msg="…"
            if message:
                last_line = message.group(1)
            reason = redact(last_line) if useful else f"exited with code {code}"
            self._set(ListenStatus(ListenState.FAILED, reason))
        return forwarding
