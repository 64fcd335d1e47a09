"""Listener heartbeats: every running listener (a window's, or the headless `admin-app listen`)
rewrites its row in the shared database every half minute, so every seat can see when the
team's listener was last seen, and notice two listeners forwarding from two `stripe listen`
sessions at once (harmless: events are stored once; but usually not what was meant).

On a PostgreSQL set up by `admin-app db setup`, the database stamps each row with the login
and its own clock (`services.pg_security`), so one machine's wrong clock or a forged row
cannot make a dead listener look alive.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from services.models import ListenerHeartbeat, scalar_sql
from services.stripe_listen import ListenState

log = logging.getLogger(__name__)

#: A running listener rewrites its row this often.
BEAT_S = 30
#: A row seen this recently (and not stopped) is a listener running now.
FRESH_S = 2 * BEAT_S + 15
#: Windows warn when no listener has been seen for this long.
STALE_S = 5 * 60
#: Rows of listeners gone this long are removed by the next one that beats.
PRUNE_S = 7 * 86400


@dataclass(frozen=True)
class ListenerSeen:
    """One listener, as its last heartbeat has it."""

    login: str
    host: str
    pid: int
    kind: str  # window, headless
    seen_at: int  # seconds, the database's clock
    stopped: bool
    forwarding: bool
    detail: str

    def who(self) -> str:
        return f"{self.login}@{self.host} ({self.kind})"


@dataclass(frozen=True)
class TeamListenerStatus:
    """What a window shows about the team's listeners; `warning` is empty when all is well."""

    now: int
    last_seen: ListenerSeen | None
    running: tuple[ListenerSeen, ...]
    forwarding: tuple[ListenerSeen, ...]
    warning: str  # whole sentences, for the tooltip and logs
    short: str  # for the status bar

    def line(self) -> str:
        if self.short:
            return "⚠ " + self.short
        assert self.last_seen is not None
        # Short: the status bar is crowded; who and where are on hover.
        return f"Listener seen {ago(self.now - self.last_seen.seen_at)}"


def ago(seconds: int) -> str:
    seconds = max(0, seconds)
    if seconds < 60:
        return "just now" if seconds < 10 else f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} days ago"


def database_now(db: peewee.Database) -> int:
    """Seconds since the epoch by the database's clock (PostgreSQL), or this machine's."""
    if isinstance(db, peewee.PostgresqlDatabase):
        return int(scalar_sql(db, "SELECT extract(epoch FROM now())::bigint"))
    return int(time.time())


def team_status(db: peewee.Database) -> TeamListenerStatus:
    """The team's listeners as the heartbeat table has them (read by anyone)."""
    now = database_now(db)
    rows = [
        ListenerSeen(
            login=r.login, host=r.host, pid=r.pid, kind=r.kind, seen_at=r.seen_at,
            stopped=r.stopped_at is not None, detail=r.detail or "",
            forwarding=r.listen_state == ListenState.FORWARDING.value and r.stopped_at is None,
        )
        for r in ListenerHeartbeat.select().order_by(ListenerHeartbeat.seen_at.desc()).limit(50)
    ]  # fmt: skip
    running = tuple(r for r in rows if not r.stopped and now - r.seen_at <= FRESH_S)
    forwarding = tuple(r for r in running if r.forwarding)
    last = rows[0] if rows else None
    warning = short = ""
    if last is None:
        short = "No listener has run"
        warning = (
            "No listener has ever run on this database: Stripe's events arrive only while one "
            "runs (README: Team set-up)."
        )
    elif not running and now - last.seen_at >= STALE_S:
        short = f"No listener seen for {ago(now - last.seen_at).removesuffix(' ago')}"
        warning = (
            f"No listener seen for {ago(now - last.seen_at).removesuffix(' ago')} "
            f"(last: {last.who()}): Stripe's events are not arriving."
        )
    elif len(forwarding) > 1:
        names = ", ".join(r.who() for r in forwarding)
        short = f"{len(forwarding)} listeners forwarding at once"
        warning = (
            f"{len(forwarding)} listeners forward from separate `stripe listen` sessions "
            f"({names}): each event arrives more than once (stored once, harmless); one is "
            "usually enough."
        )
    return TeamListenerStatus(now, last, running, forwarding, warning, short)


class TeamListeners:
    """Reads the team's listeners for a window (everyone may look)."""

    def __init__(self, db: peewee.Database) -> None:
        self._db = db

    def status(self) -> TeamListenerStatus:
        return team_status(self._db)


@dataclass(frozen=True)
class BeatState:
    """What a listener reports in its heartbeat."""

    receiving: bool
    listen_state: ListenState
    detail: str


class HeartbeatWriter:
    """Writes one listener's heartbeat every `interval_s` on its own thread until stopped."""

    def __init__(
        self,
        db: peewee.Database,
        state: Callable[[], BeatState],
        *,
        login: str,
        kind: str,
        interval_s: float = BEAT_S,
    ) -> None:
        self._db = db
        self._state = state
        self._login = login
        self._kind = kind
        self._interval = interval_s
        self.instance = secrets.token_hex(16)
        self._host = socket.gethostname()
        self._started_at = int(time.time())
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: The last write's problem (e.g. the database went away), for /healthz.
        self.problem = ""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Beat now rather than at the next interval (e.g. `stripe listen` started forwarding)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop beating and mark the row stopped (a clean stop is not a dead listener)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # its last write marks the row stopped
            self._thread = None

    def beat(self, *, stopped: bool = False) -> None:
        """Write the row now; a failure is logged and kept in `problem`, never raised."""
        with self._lock:
            try:
                self._write(stopped)
                self.problem = ""
            except peewee.PeeweeException as exc:
                self.problem = f"heartbeat not written: {str(exc).strip().splitlines()[0]}"
                log.warning("%s", self.problem)
                if not self._db.in_transaction():
                    self._db.close()  # a broken connection is reopened on the next beat

    def _write(self, stopped: bool) -> None:
        state = self._state()
        now = int(time.time())
        forwarding = state.listen_state is ListenState.FORWARDING
        values = {
            ListenerHeartbeat.login: self._login,
            ListenerHeartbeat.host: self._host,
            ListenerHeartbeat.pid: os.getpid(),
            ListenerHeartbeat.kind: self._kind,
            ListenerHeartbeat.seen_at: now,
            ListenerHeartbeat.stopped_at: now if stopped else None,
            ListenerHeartbeat.receiving: state.receiving and not stopped,
            ListenerHeartbeat.listen_state: state.listen_state.value,
            ListenerHeartbeat.listen_session: (
                f"{self._host}:{os.getpid()}" if forwarding and not stopped else None
            ),
            ListenerHeartbeat.detail: state.detail[:500],
        }
        with self._db.atomic():
            ListenerHeartbeat.insert(
                {ListenerHeartbeat.instance: self.instance,
                 ListenerHeartbeat.started_at: self._started_at, **values}
            ).on_conflict(
                conflict_target=[ListenerHeartbeat.instance], update=values
            ).execute()  # fmt: skip
            ListenerHeartbeat.delete().where(
                ListenerHeartbeat.seen_at < database_now(self._db) - PRUNE_S
            ).execute()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.beat()
                self._wake.wait(self._interval)
                self._wake.clear()
            # On this thread, not the caller's (a window's GUI thread does no database work).
            self.beat(stopped=True)
        finally:
            self._db.close()  # this thread's own connection
