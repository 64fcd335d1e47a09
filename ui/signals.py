"""Emitting Qt signals from Python safely on PySide6 6.12.

PySide6 6.12.0's `SignalInstance.emit()` returns `True` without taking a reference to it, so every
emit from Python drops one reference to `True`. After a few hundred emits the interpreter aborts
with "Fatal Python error: bool_dealloc" (measured here: -1 reference per emit, crash at exit after
~600). Every emit in `ui/` goes through `emit()` below, which gives the reference back when the
bug is present; `tests/ui/test_signals.py` checks both the balance and that no code emits directly.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance


class _Probe(QObject):
    ping = Signal()


def _emit_drops_a_reference() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    probe.ping.emit()  # the one direct emit: it measures the bug
    dropped = sys.getrefcount(True) < before
    if dropped:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return dropped


_COMPENSATE = _emit_drops_a_reference()


def emit(signal: SignalInstance, *args: Any) -> None:
    """`signal.emit(*args)`, without PySide6 6.12's reference leak on `True`."""
    # The stubs say None; 6.12.0 really returns a borrowed bool.
    result: object = signal.emit(*args)  # type: ignore[func-returns-value]
    if _COMPENSATE and isinstance(result, bool):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(result))
