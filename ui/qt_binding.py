"""Does this Qt binding keep Python's singletons alive? A probe, for the self-test and start-up.

PySide6 6.12.0 on Python 3.11 hands `None` back one reference short from every void method called
from Python (`setText`, `beginResetModel`, `processEvents`…) and `True` from every `emit()`; a
window in use dies in `none_dealloc` within the hour (docs/platform-bugs.md). The project pins a
binding without the bug; this probe catches a binding swapped under it (a hand-upgraded venv, a
rebuilt installer) before a user's afternoon does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import PySide6
from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

_ROUNDS = 200
_FOREGROUND = Qt.ItemDataRole.ForegroundRole


class _Source(QObject):
    ping = Signal()


class _Model(QAbstractTableModel):
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 1

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 1

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> object:
        return None


def singletons_are_immortal() -> bool:
    """Python 3.12+ (PEP 683): a lost reference to None/True/False can no longer free them."""
    return sys.version_info >= (3, 12)


def reference_leaks() -> list[str]:
    """The Qt calls that lose a reference to None, True or False here, in words; [] if none.

    Needs a QCoreApplication (or QApplication) to exist. On Python 3.12+ the counts cannot
    move, so the probe finds nothing there: such a leak is harmless on those versions.
    """
    source = _Source()
    model = _Model()
    index = model.index(0, 0)
    obj = QObject()

    def reset() -> None:
        model.beginResetModel()
        model.endResetModel()

    calls: list[tuple[str, Callable[[], object], object]] = [
        ("a void method (QObject.setObjectName)", lambda: obj.setObjectName("probe"), None),
        ("QCoreApplication.processEvents()", QCoreApplication.processEvents, None),
        ("a model reset (beginResetModel/endResetModel)", reset, None),
        ("QModelIndex.data() of a None value", lambda: index.data(_FOREGROUND), None),
        ("SignalInstance.emit()", source.ping.emit, True),
    ]
    found = []
    for what, call, singleton in calls:
        call()  # warm caches first: only a steady loss counts
        before = sys.getrefcount(singleton)
        for _ in range(_ROUNDS):
            call()
        lost = before - sys.getrefcount(singleton)
        if lost >= _ROUNDS // 2:
            found.append(f"{what} loses a reference to {singleton} per call")
    return found


def check_binding() -> str:
    """One line for the self-test; raises RuntimeError naming the leaks when there are any."""
    leaks = reference_leaks()
    python = ".".join(map(str, sys.version_info[:3]))
    if leaks:
        raise RuntimeError(
            f"PySide6 {PySide6.__version__} on Python {python} loses references, so the app would "
            f"abort after some hours of use: {'; '.join(leaks)}. Install the pinned PySide6 "
            "(pyproject.toml) or run on Python 3.12+."
        )
    immortal = " (singletons are immortal here)" if singletons_are_immortal() else ""
    return f"PySide6 {PySide6.__version__} on Python {python} keeps None/True/False alive{immortal}"
