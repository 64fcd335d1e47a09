"""Guards against PySide6 6.12's reference leak in `SignalInstance.emit()` (see ui/signals.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ui.signals import emit

UI = Path(__file__).resolve().parents[2] / "ui"


class _Source(QObject):
    happened = Signal(int)


def test_many_emits_keep_true_alive(qapp: object) -> None:
    source = _Source()
    received: list[int] = []
    source.happened.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(5000):
        emit(source.happened, i)
    assert len(received) == 5000
    assert sys.getrefcount(True) >= before - 5  # unbalanced, it would be 5000 lower


def test_ui_never_emits_directly() -> None:
    direct = re.compile(r"\.emit\(")
    offenders = [
        f"{path.relative_to(UI.parent)}:{n}"
        for path in UI.rglob("*.py")
        if path.name != "signals.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if direct.search(line)
    ]
    assert offenders == [], "emit through ui.signals.emit(): " + ", ".join(offenders)
