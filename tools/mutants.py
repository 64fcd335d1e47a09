"""`make mutants`: mutation testing of the money and trust paths with mutmut (docs/mutants.md).

Runs `mutmut run` on the functions in SCOPE (the defences: crediting, matching, clawbacks, the
event claim, signature checks, charging, permissions, the audit, repairs, identity) with the
test files in pyproject's [tool.mutmut], then prints the kill rate per module and every mutant
that was not killed, as file:line with its change. `python tools/mutants.py --all` mutates every
function of those modules (hours here, not minutes); extra arguments are mutant-name globs.

Mutants that fail `mypy --strict` (pyproject's `type_check_command`) count as caught without a
test run; `--children N` sets mutmut's workers (default: two per CPU, the tests mostly wait on
sockets). The run time is reported as set-up (copy, mutate, type check, collect which tests
reach which function, clean run) and mutants.

Exit status: 0 when every module reaches GOAL or each surviving mutant is listed in
docs/mutants.md, 1 otherwise.
"""

from __future__ import annotations

import ast
import collections
import fnmatch
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [str(ROOT / ".venv" / "bin" / "mutmut")]
GOAL = 0.90
EXPLAINED = ROOT / "docs" / "mutants.md"

#: Mutant-name globs: module.x_function or module.xǁClassǁmethod (mutmut's names).
SCOPE = [
    # credits: the one purchase writer, what a paid session must match, clawbacks
    "services.credits.x__settle__*",
    "services.credits.x__mismatch__*",
    "services.credits.x__price_problem__*",
    "services.credits.x__credit_purchase__*",
    "services.credits.x__write_purchase__*",
    "services.credits.x__claw_back__*",
    "services.credits.x__reversals__*",
    "services.credits.x__find_topup__*",
    "services.credits.x__fetch_from_session__*",
    "services.credits.x__truth_of_charge__*",
    "services.credits.x__read__*",
    "services.credits.x__read_reversals__*",
    "services.credits.x__apply_invoice__*",
    "services.credits.x__fetch_invoice__*",
    "services.credits.x_settle_topup__*",
    "services.credits.x_topup_id_for__*",
    "services.credits.xǁCreditServiceǁgrant__*",
    "services.credits.xǁCreditServiceǁ_create_session__*",
    "services.credits.xǁCreditServiceǁquote_custom__*",
    # events: store once, claim once, apply once
    "services.events.xǁEventPipelineǁ_apply__*",
    "services.events.xǁEventPipelineǁreceive__*",
    "services.events.xǁEventPipelineǁreplay__*",
    "services.events.xǁEventPipelineǁ_settle_as__*",
    "services.events.x_route__*",
    "services.events.x_is_transient__*",
    # the receiver: signatures, timestamps, every secret, the answer
    "services.webhook_receiver.x_verify__*",
    "services.webhook_receiver.xǁ_Handlerǁdo_POST__*",
    # invoices: charging once, with the key
    "services.invoices.xǁInvoiceServiceǁcharge__*",
    "services.invoices.xǁInvoiceServiceǁ_attempt__*",
    "services.invoices.xǁ_InFlightǁ*",
    "services.invoices.x_totals__*",
    # who may do what, and the record of it
    "services.permissions.*",
    "services.audit.xǁAuthorityǁ*",
    "services.audit.x__outcome_for__*",
    "services.audit.x__clean_params__*",
    # repairs that take credits back
    "services.reconcile.xǁReconcilerǁclaw_back_unpaid__*",
    "services.reconcile.xǁReconcilerǁ_unpaid_credits__*",
    "services.identity.*",
]

_RESULT = re.compile(r"^\s*(\S+): (.+)$")
_NAME = re.compile(r"^(?P<module>[\w.]+?)\.x(?:ǁ(?P<cls>\w+)ǁ|_)(?P<func>\w+?)__mutmut_\d+$")


def _results() -> list[tuple[str, str]]:
    out = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [(m[1], m[2]) for m in map(_RESULT.match, out.splitlines()) if m]


def _def_lines(path: Path) -> dict[tuple[str | None, str], int]:
    """(class or None, function) → the line of its `def`."""
    found: dict[tuple[str | None, str], int] = {}
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[(None, node.name)] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[(node.name, item.name)] = item.lineno
    return found


def _where(name: str) -> tuple[str, str]:
    """`file:line` of a mutant and its change (the first removed and added line)."""
    match = _NAME.match(name)
    if not match:
        return name, ""
    path = Path(*match["module"].split(".")).with_suffix(".py")
    func = match["func"]
    start = _def_lines(ROOT / path).get((match["cls"], func), 0)
    shown = subprocess.run(
        [*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True
    ).stdout.splitlines()
    line, removed, added, offset = start, "", "", 0
    for text in shown:
        if text.startswith("@@"):
            offset = int(re.findall(r"-(\d+)", text)[0]) - 1
            continue
        if text.startswith(("---", "+++")):
            continue
        if text.startswith("-") and not removed:
            removed, line = text[1:].strip(), start + offset
        elif text.startswith("+") and not added:
            added = text[1:].strip()
        elif text.startswith(" ") and not removed:
            offset += 1
    return f"{path}:{line}", f"{removed}  →  {added}"


def _explained() -> set[str]:
    """file:line entries docs/mutants.md accounts for."""
    if not EXPLAINED.exists():
        return set()
    return set(re.findall(r"`(services/\w+\.py:\d+)`", EXPLAINED.read_text()))


def main(argv: list[str]) -> int:
    children = str(max(2, (os.cpu_count() or 2) * 2))  # the tests mostly wait on sockets
    if "--children" in argv:
        at = argv.index("--children")
        children, argv = argv[at + 1], argv[:at] + argv[at + 2 :]
    scope = [] if "--all" in argv else ([a for a in argv if not a.startswith("-")] or SCOPE)
    took = setup = 0.0
    if "--report" not in argv:  # --report: only the report of the last (perhaps partial) run
        env = {k: v for k, v in os.environ.items() if k != "BILLING_ADMIN_TEST_PG_DSN"}
        env["QT_QPA_PLATFORM"] = "offscreen"
        # type_check_command runs `mypy` in mutants/: this venv's.
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        started = time.monotonic()
        with subprocess.Popen(
            [*MUTMUT, "run", "--max-children", children, *scope], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, text=True, errors="replace",
        ) as run:  # fmt: skip
            assert run.stdout is not None
            for line in run.stdout:  # its progress, to stderr; the report below is stdout
                sys.stderr.write(line)
                if not setup and "Running mutation testing" in line:
                    setup = time.monotonic() - started
        took = time.monotonic() - started
        if run.returncode != 0:
            print(f"mutmut run failed (exit {run.returncode})", file=sys.stderr)
            return run.returncode
    picked = [
        (name, status)
        for name, status in _results()
        if not scope or any(fnmatch.fnmatch(name, pattern) for pattern in scope)
    ]
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    checked = [(n, s) for n, s in picked if s != "not checked"]
    timing = (
        f" in {took / 60:.1f} min (set-up {setup / 60:.1f} min, mutants "
        f"{(took - setup) / 60:.1f} min, {children} workers)"
        if took
        else ""
    )
    print(f"mutmut: {len(checked)} of {len(picked)} mutants checked{timing}\n")
    picked = checked
    for name, status in picked:
        by_module[name.split(".x", 1)[0]][status] += 1
    print(
        f"{'module':32} {'mutants':>8} {'killed':>7} {'by mypy':>8} {'survived':>9} "
        f"{'no tests':>9} {'rate':>7}"
    )
    short = False
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
        rate = killed / total if total else 1.0
        short = short or rate < GOAL
        print(
            f"{module:32} {total:8} {killed:7} {counts['caught by type check']:8} "
            f"{counts['survived']:9} {counts['no tests']:9} {rate:7.1%}"
        )
    explained = _explained()
    alive = [(n, s) for n, s in picked if s in ("survived", "no tests", "suspicious")]
    unexplained = 0
    if alive:
        print("\nNot killed (file:line  change):")
    for name, status in sorted(alive):
        where, change = _where(name)
        mark = " (explained)" if where in explained else ""
        unexplained += not mark
        print(f"  {where:34} {status:9} {change}{mark}")
    print(f"\n{unexplained} not killed and not explained in docs/mutants.md")
    return 1 if short and unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
