"""`make bench`: every benchmark, each printing absolute numbers and a ratio to a baseline measured
in the same run (these machines are shared and noisy: compare ratios, not seconds). Next to the
text, `build/bench.json` holds one record per measured line (see `bench.results`).

`python -m bench --quick` runs the benches that support it smaller (fewer rows, fewer repetitions).
`python -m bench --soak [MINUTES]` (`make bench ARGS=--soak`) runs only the long soak of the
window (30 minutes by default)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from bench import (
    cold_start,
    intake,
    overview,
    reconcile,
    sandbox_throughput,
    search_panel,
    soak,
    sync,
    table_filter,
)
from bench.results import Line, write_json

JSON_PATH = Path("build") / "bench.json"


def main(argv: list[str]) -> int:
    if "--soak" in argv:
        print("== soak (long)", flush=True)
        for line in soak.run(argv):
            print(line, flush=True)
        return 0
    quick = "--quick" in argv
    measured: list[tuple[str, Line]] = []
    benches = (sandbox_throughput, table_filter, search_panel, cold_start, overview, intake,
               reconcile, sync, soak)  # fmt: skip
    for bench in benches:
        name = bench.__name__.rsplit(".", 1)[-1]
        print(f"== {name}", flush=True)
        # Benches that take `quick` run smaller and fewer (`make bench ARGS=--quick`).
        takes_quick = "quick" in inspect.signature(bench.run).parameters
        for line in bench.run(quick=quick) if takes_quick else bench.run():
            print(line, flush=True)
            measured.append((name, line))
    count = write_json(JSON_PATH, measured)
    print(f"{count} measured lines written to {JSON_PATH}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
