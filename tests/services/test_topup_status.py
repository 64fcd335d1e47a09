"""Every status the code writes to a top-up is one of `TopUpStatus`, and "paid" is none."""

from __future__ import annotations

import ast
from pathlib import Path

import services.credits
from services.topup_status import STATUS_VALUES, TopUpStatus

WRITERS = [Path(services.credits.__file__)]


def _written_statuses(path: Path) -> set[str]:
    """String literals given as `status=` to a call, or assigned to a `*status` name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        keyword = isinstance(node, ast.keyword) and node.arg == "status"
        assigned = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.endswith("status") for t in node.targets
        )
        if not (keyword or assigned):
            continue
        assert isinstance(node, ast.keyword | ast.Assign)
        for sub in ast.walk(node.value):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value:
                found.add(sub.value)
    return found


def test_only_known_statuses_are_written() -> None:
    written = set().union(*(_written_statuses(p) for p in WRITERS))
    assert written, "found no status writes: the scan is broken"
    assert written <= set(STATUS_VALUES)
    assert "paid" not in STATUS_VALUES
    assert {TopUpStatus.OPEN.value, TopUpStatus.CREDITED.value} <= written
