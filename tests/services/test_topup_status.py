"""Every status the code writes to a top-up is one of `TopUpStatus`, and "paid" is none."""

from __future__ import annotations

import ast
from pathlib import Path

import services.credits
from services.topup_status import STATUS_VALUES, TopUpStatus

WRITERS = [Path(services.credits.__file__)]


def _written_statuses(path: Path) -> tuple[set[str], set[str]]:
    """What is given as `status=` to a call, or assigned to a `*status` name: the string
    literals, and the `TopUpStatus` members named."""
    literals: set[str] = set()
    members: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        keyword = isinstance(node, ast.keyword) and node.arg == "status"
        assigned = isinstance(node, ast.Assign | ast.AnnAssign) and any(
            isinstance(t, ast.Name) and t.id.endswith("status")
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        if not (keyword or assigned):
            continue
        assert isinstance(node, ast.keyword | ast.Assign | ast.AnnAssign)
        for sub in ast.walk(node.value) if node.value is not None else ():
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value:
                literals.add(sub.value)
            elif (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "TopUpStatus"
            ):
                members.add(sub.attr)
    return literals, members


def test_only_known_statuses_are_written() -> None:
    literals: set[str] = set()
    members: set[str] = set()
    for path in WRITERS:
        found_literals, found_members = _written_statuses(path)
        literals |= found_literals
        members |= found_members
    assert members, "found no status writes: the scan is broken"
    assert not literals, f"top-up statuses written as strings, not TopUpStatus: {literals}"
    assert "paid" not in STATUS_VALUES
    assert members == set(TopUpStatus.__members__)  # and each of them is written somewhere
