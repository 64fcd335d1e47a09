"""The Qt binding the project pins keeps Python's singletons alive (ui/qt_binding.py)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

from ui.qt_binding import check_binding, reference_leaks


class _Source(QObject):
    happened = Signal(int)


def test_the_pinned_binding_loses_no_reference(qapp: object) -> None:
    assert reference_leaks() == []
    assert "keeps None/True/False alive" in check_binding()


def test_many_emits_with_a_slot_keep_true_alive(qapp: object) -> None:
    source = _Source()
    received: list[int] = []
    source.happened.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(5000):
        source.happened.emit(i)
    assert len(received) == 5000
    assert sys.getrefcount(True) >= before - 5  # 6.12.0 would be 5000 lower
