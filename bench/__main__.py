"""`make bench`: every benchmark, each printing absolute numbers and a ratio to a baseline measured
in the same run (these machines are shared and noisy: compare ratios, not seconds). Next to the
text, `build/bench.json` holds one record per measured line (see `bench.results`).

`python -m bench --soak [MINUTES]` (`make bench ARGS=--soak`) runs only the long soak of the
window (30 minutes by default). `--quick` (`make bench ARGS=--quick`) runs every bench smaller
and shorter (under 2 minutes here): each bench's `run(quick=True)`; the measured lines name their
sizes, so a quick figure is never read as a full one. Each bench's wall time is printed."""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

from bench import (
    cold_start,
    consume,
    intake,
    overview,
    reconcile,
    sandbox_throughput,
    search_panel,
    soak,
    stall,
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
    began = time.perf_counter()
    # The stall bench last: it runs the window, which tunes the interpreter as the app does.
    for bench in (
        sandbox_throughput, table_filter, search_panel, cold_start, overview, intake, reconcile,
        sync, consume, soak, stall,
    ):  # fmt: skip
        name = bench.__name__.rsplit(".", 1)[-1]
        print(f"== {name}{' (quick)' if quick else ''}", flush=True)
        started = time.perf_counter()
        # A bench that takes `quick` runs smaller; one that does not, as it is.
        takes_quick = "quick" in inspect.signature(bench.run).parameters
        for line in bench.run(quick=quick) if takes_quick else bench.run():  # type: ignore[call-arg]
            print(line, flush=True)
            measured.append((name, line))
        print(f"   ({name}: {time.perf_counter() - started:.0f} s)", flush=True)
    count = write_json(JSON_PATH, measured)
    print(f"{count} measured lines written to {JSON_PATH}", flush=True)
    print(
        f"make bench{' --quick' if quick else ''}: {time.perf_counter() - began:.0f} s", flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
