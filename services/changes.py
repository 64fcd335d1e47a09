"""What a finished operation changed (Anki's `OpChanges`): which rows, of which lists.

A service that writes notes what it wrote with `note(...)`; whoever runs the operation wraps it
in `collecting()` and gets one frozen `Changes` back. The event pipeline does this for every
event it applies, the sync for a pull, the window's task runner for every action. The window
then updates only the rows named, and reloads a whole list only when the set is too large or
unknown (`Changes.ALL`).

Noting is free when nothing collects (the command line): a context variable that is unset.
Collectors nest: an inner one's notes also reach the outer one when it closes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Changes:
    """The ids that changed, by kind, plus flags for things without row ids.

    `everything`: unknown or too much to name (a first sync): every list reloads.
    """

    customers: frozenset[str] = _EMPTY  # customer rows (Stripe ids)
    invoices: frozenset[str] = _EMPTY  # invoice rows
    topups: frozenset[str] = _EMPTY  # top-up rows (tu_… ids)
    products: frozenset[str] = _EMPTY  # products, and the products of changed prices
    credits: frozenset[str] = _EMPTY  # customers whose credit ledger changed
    events: frozenset[str] = _EMPTY  # stored Stripe events (evt_… ids)
    subscriptions: frozenset[str] = _EMPTY  # subscription rows (sub_… ids)
    catalog: bool = False  # products or prices changed
    settings: bool = False  # team settings (pricing) changed
    audit: bool = False  # an audit record was written
    everything: bool = False

    def __or__(self, other: Changes) -> Changes:
        if self.everything or other.everything:
            return ALL
        merged = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            merged[f.name] = (mine | theirs) if isinstance(mine, frozenset) else (mine or theirs)
        return Changes(**merged)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def size(self) -> int:
        """How many row ids are named, in all."""
        values = (getattr(self, f.name) for f in fields(self))
        return sum(len(v) for v in values if isinstance(v, frozenset))

    def describe(self) -> str:
        """A short log line: `customers 3, events 3, audit`."""
        if self.everything:
            return "everything"
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset) and value:
                parts.append(f"{f.name} {len(value)}")
            elif value is True:
                parts.append(f.name)
        return ", ".join(parts) or "nothing"


NONE = Changes()
ALL = Changes(everything=True)


@dataclass
class Collector:
    """The changes noted so far inside one `collecting()` block (mutable, one thread)."""

    sets: dict[str, set[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def add(self, kind: str, ids: Iterable[str]) -> None:
        self.sets.setdefault(kind, set()).update(i for i in ids if i)

    def merge(self, changes: Changes) -> None:
        if changes.everything:
            self.flags.add("everything")
            return
        for f in fields(changes):
            value = getattr(changes, f.name)
            if isinstance(value, frozenset):
                if value:
                    self.add(f.name, value)
            elif value:
                self.flags.add(f.name)

    def changes(self) -> Changes:
        if "everything" in self.flags:
            return ALL
        kinds = {name: frozenset(ids) for name, ids in self.sets.items() if ids}
        return Changes(**kinds, **dict.fromkeys(self.flags, True))  # type: ignore[arg-type]


_current: contextvars.ContextVar[Collector | None] = contextvars.ContextVar(
    "billing_admin_changes", default=None
)


@contextmanager
def collecting() -> Iterator[Collector]:
    """Collect what the code inside notes; on leaving, hand it on to an enclosing collector."""
    outer = _current.get()
    mine = Collector()
    token = _current.set(mine)
    try:
        yield mine
    finally:
        _current.reset(token)
        if outer is not None:
            outer.merge(mine.changes())


def note(
    *,
    customers: Iterable[str] = (),
    invoices: Iterable[str] = (),
    topups: Iterable[str] = (),
    products: Iterable[str] = (),
    credits: Iterable[str] = (),
    events: Iterable[str] = (),
    subscriptions: Iterable[str] = (),
    catalog: bool = False,
    settings: bool = False,
    audit: bool = False,
    everything: bool = False,
) -> None:
    """Record what was just written, for whoever collects (nothing happens when nobody does)."""
    collector = _current.get()
    if collector is None:
        return
    for kind, ids in (
        ("customers", customers), ("invoices", invoices), ("topups", topups),
        ("products", products), ("credits", credits), ("events", events),
        ("subscriptions", subscriptions),
    ):  # fmt: skip
        if ids:
            collector.add(kind, ids)
    for flag, on in (
        ("catalog", catalog), ("settings", settings), ("audit", audit), ("everything", everything)
    ):  # fmt: skip
        if on:
            collector.flags.add(flag)
