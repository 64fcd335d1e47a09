"""The coverage floor `make test` keeps: services/ as a whole, and branch coverage of each money
and trust module (the ones `make mutants` mutates). Reads coverage.py's JSON report.

    python tools/coverage_floor.py build/coverage.json

Floors are what the suite reached when they were set (README: Tests); raise them as tests are
added, never lower them to make a change pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: services/ as a whole, coverage.py's combined line+branch percentage (92.9% measured by the
#: whole suite with PostgreSQL, 2026-12-03 evening; code run only in the tests' child processes
#: is not measured).
SERVICES_FLOOR = 92.0
#: Branch coverage of each money and trust module: what the whole suite reached (in
#: brackets), less about a point for branches that depend on thread timing. The goal is 90 for each.
BRANCH_FLOORS = {
    "services/credits.py": 96.0,  # (97.5 by the whole suite, 2026-12-03 evening)
    "services/events.py": 98.5,  # (100 by the whole suite, 2026-12-03 evening)
    "services/webhook_receiver.py": 93.5,  # (94.3 by the whole suite, 2026-12-03 evening)
    "services/invoices.py": 91.5,  # (93.0 by the whole suite, 2026-12-03 evening)
    "services/permissions.py": 100.0,  # (100 by the whole suite, 2026-12-03 evening)
    "services/audit.py": 97.5,  # (98.0 by the whole suite, 2026-12-03 evening)
    "services/reconcile.py": 92.5,  # (94.4 by the whole suite, 2026-12-03 evening)
    "services/identity.py": 100.0,  # (100 by the whole suite, 2026-12-03 evening)
}


def main(argv: list[str]) -> int:
    report = json.loads(Path(argv[0] if argv else "build/coverage.json").read_text())
    files = report["files"]
    failures = []
    print(f"{'module':32} {'lines':>7} {'branches':>9} {'floor':>7}")
    for path, floor in BRANCH_FLOORS.items():
        summary = files.get(path, {}).get("summary")
        if summary is None:
            failures.append(f"{path}: not measured")
            continue
        lines = summary["percent_statements_covered"]
        branches = summary.get("percent_branches_covered", 100.0)
        print(f"{path:32} {lines:6.1f}% {branches:8.1f}% {floor:6.1f}%")
        if branches < floor:
            failures.append(f"{path}: branch coverage {branches:.1f}% is under its floor {floor}%")
    total = report["totals"]["percent_covered"]
    print(f"{'services/ (lines+branches)':32} {total:6.1f}% {'':9} {SERVICES_FLOOR:6.1f}%")
    if total < SERVICES_FLOOR:
        failures.append(f"services/: {total:.1f}% is under its floor {SERVICES_FLOOR}%")
    for failure in failures:
        print(f"coverage floor: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
