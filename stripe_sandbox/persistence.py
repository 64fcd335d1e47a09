"""Optional JSON state file: loaded at start, saved when dirty at most about once a second.

Writes go to a temporary file in the same directory and replace the target with
``os.replace``, so a crash never leaves a half-written state file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from stripe_sandbox.store import Store

log = logging.getLogger("stripe_sandbox")

SAVE_INTERVAL_SECONDS = 1.0


def load_state(store: Store, path: Path) -> bool:
    """Load ``path`` into ``store`` if the file exists; return whether it did.

    Raises:
        ValueError: The file exists but is not a sandbox state file.
    """
    if not path.exists():
        return False
    try:
        store.load(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return True


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateSaver:
    """Saves the store to a file from a background thread whenever it is dirty.

    Args:
        store: The store to save.
        path: Target file.
    """

    def __init__(self, store: Store, path: Path) -> None:
        self._store = store
        self._path = path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()

    def start(self) -> None:
        """Start the periodic save thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="stripe-sandbox-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write any unsaved change. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> None:
        """Write the state now if it changed since the last save."""
        # Serialising under the store lock gives a consistent snapshot; the slow disk write
        # happens outside it so API requests are not held up.
        with self._write_lock:
            with self._store.lock:
                if not self._store.dirty:
                    return
                text = self._store.snapshot()
                self._store.dirty = False
            try:
                write_atomically(self._path, text)
            except OSError:
                with self._store.lock:
                    self._store.dirty = True
                log.exception("could not save sandbox state to %s", self._path)

    def _run(self) -> None:
        while not self._stop.wait(SAVE_INTERVAL_SECONDS):
            self.flush()
