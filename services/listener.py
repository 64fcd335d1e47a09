"""The event listener as one unit: receiver, `stripe listen` supervisor and periodic catch-up.

The window runs one; so does the headless `admin-app listen` (what one always-on machine runs
when several staff share a PostgreSQL database).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from services.catchup import INTERVAL_S, CatchUp, CatchUpSummary
from services.errors import AppError
from services.events import EventPipeline, Result
from services.heartbeat import BeatState, HeartbeatWriter
from services.stripe_listen import ListenState, ListenStatus, ListenSupervisor
from services.webhook_receiver import WebhookReceiver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerState:
    port: int
    receiving: bool
    receiver_problem: str
    listen: ListenStatus
    last_event_at: float | None  # seconds since the epoch
    last_event: str
    catch_up: CatchUpSummary | None
    catch_up_problem: str
    catch_up_at: float | None = None  # when the last catch-up finished (seconds)

    def line(self) -> str:
        parts = [
            f"receiver :{self.port}"
            if self.receiving
            else f"receiver off ({self.receiver_problem})"
        ]
        parts.append(self.listen.line())
        if self.last_event_at:
            parts.append(
                "last event " + time.strftime("%H:%M:%S", time.localtime(self.last_event_at))
            )
        if self.catch_up_problem:
            parts.append(f"catch-up failed: {self.catch_up_problem}")
        elif self.catch_up is not None and self.catch_up.gap_note:
            parts.append(self.catch_up.gap_note)
        return " · ".join(parts)


class ListenerService:
    def __init__(
        self,
        pipeline: EventPipeline,
        catch_up: CatchUp,
        receiver: WebhookReceiver | None,
        supervisor_factory: Callable[[str, Callable[[ListenStatus], None]], ListenSupervisor]
        | None,
        configured_secrets: list[str],
        interval_s: float = INTERVAL_S,
        *,
        scanners: list[Callable[[], object]] | None = None,
        scan_interval_s: float = 60.0,
        housekeeping: Callable[[], object] | None = None,
    ) -> None:
        self._pipeline = pipeline
        # Run after every catch-up, so also at start: what came due while nothing ran (credit
        # lots past their expiry) is done then, once.
        self._housekeeping = housekeeping
        self._catch_up = catch_up
        self.receiver = receiver
        self._configured = [s for s in configured_secrets if s]
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Periodic checks that need no event (auto top-up: a balance below its threshold).
        self._scanners = list(scanners or [])
        self._scan_interval = scan_interval_s
        self._scan_thread: threading.Thread | None = None
        self._listeners: list[Callable[[ListenerState], None]] = []
        self._supervisor_factory = supervisor_factory
        self.supervisor: ListenSupervisor | None = None
        #: Set by the composition root: tells the team this listener runs (services.heartbeat).
        self.heartbeat: HeartbeatWriter | None = None
        self._state = ListenerState(
            port=receiver.port if receiver else 0,
            receiving=False,
            receiver_problem="not started",
            listen=ListenStatus(ListenState.STOPPED),
            last_event_at=None,
            last_event="",
            catch_up=None,
            catch_up_problem="",
        )
        pipeline.add_listener(self._on_event)

    # ---- public
    def secrets(self) -> list[str]:
        """Every secret a delivery may be signed with right now."""
        found = list(self._configured)
        if self.supervisor is not None and self.supervisor.secret:
            found.append(self.supervisor.secret)
        return found

    def add_listener(self, listener: Callable[[ListenerState], None]) -> None:
        """Called from background threads whenever the state changes."""
        self._listeners.append(listener)

    @property
    def state(self) -> ListenerState:
        return self._state

    def start(self, *, catch_up: bool = True) -> None:
        if self.receiver is not None:
            try:
                self.receiver.start()
                self._update(port=self.receiver.port, receiving=True, receiver_problem="")
            except AppError as exc:
                self._update(receiving=False, receiver_problem=str(exc))
        if self.receiver is not None and self._state.receiving and self._supervisor_factory:
            # Made now: the receiver's real port (it may have been 0) goes into --forward-to.
            self.supervisor = self._supervisor_factory(self.receiver.url, self._on_listen_status)
            self.supervisor.start()
        if catch_up:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._catch_up_loop, name="catch-up", daemon=True
            )
            self._thread.start()
        if self._scanners:
            self._stop.clear()
            self._scan_thread = threading.Thread(target=self._scan_loop, name="scan", daemon=True)
            self._scan_thread.start()
        if self.heartbeat is not None:
            self.heartbeat.start()

    def stop(self) -> None:
        self._stop.set()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._scan_thread is not None:
            self._scan_thread.join(timeout=30)
            self._scan_thread = None
        self._update(receiving=False, receiver_problem="stopped")
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def beat_state(self) -> BeatState:
        """What this listener's heartbeat row says."""
        state = self._state
        return BeatState(state.receiving, state.listen.state, state.line())

    def catch_up_now(self) -> CatchUpSummary:
        try:
            summary = self._catch_up.run(cancelled=self._stop.is_set)
        except AppError as exc:
            self._update(catch_up_problem=str(exc))
            raise
        finally:
            self._run_housekeeping()  # local work: also when Stripe is out of reach
        self._update(catch_up=summary, catch_up_problem="", catch_up_at=time.time())
        return summary

    def _run_housekeeping(self) -> None:
        if self._housekeeping is None:
            return
        try:
            self._housekeeping()
        except AppError as exc:
            log.warning("Housekeeping after catch-up failed: %s", exc)

    # ---- background
    def _catch_up_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up_now()
            except AppError as exc:
                log.warning("Catch-up failed: %s", exc)
            except Exception:
                log.exception("Catch-up failed unexpectedly")
            if self._stop.wait(self._interval):
                return

    def _scan_loop(self) -> None:
        while not self._stop.is_set():
            for scan in self._scanners:
                try:
                    scan()
                except AppError as exc:
                    log.warning("Scan failed: %s", exc)
                except Exception:
                    log.exception("Scan failed unexpectedly")
            if self._stop.wait(self._scan_interval):
                return

    def _on_listen_status(self, status: ListenStatus) -> None:
        changed = status.state is not self._state.listen.state
        self._update(listen=status)
        if changed and self.heartbeat is not None:
            self.heartbeat.nudge()  # the team sees forwarding (or not) now, not in 30 s

    def _on_event(self, evt_id: str, result: Result) -> None:
        log.info("event %s: %s", evt_id, result.value)
        self._update(last_event_at=time.time(), last_event=f"{evt_id} {result.value}")

    def _update(self, **changes: object) -> None:
        self._state = replace(self._state, **changes)  # type: ignore[arg-type]
        for listener in self._listeners:
            try:
                listener(self._state)
            except Exception:
                log.exception("A listener-state callback failed")
