"""`make bench`: every benchmark, each printing absolute numbers and a ratio to a baseline measured
in the same run (these machines are shared and noisy: compare ratios, not seconds). Next to the
text, `build/bench.json` holds one record per measured line (see `bench.results`).

`python -m bench --soak [MINUTES]` (`make bench ARGS=--soak`) runs only the long soak of the
window (30 minutes by default)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import (
    consume,
    intake,
    overview,
    reconcile,
    sandbox_throughput,
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
    measured: list[tuple[str, Line]] = []
    for bench in (
        sandbox_throughput, table_filter, overview, intake, reconcile, sync, consume, soak,
    ):  # fmt: skip
        name = bench.__name__.rsplit(".", 1)[-1]
        print(f"== {name}", flush=True)
        for line in bench.run():
            print(line, flush=True)
            measured.append((name, line))
    count = write_json(JSON_PATH, measured)
    print(f"{count} measured lines written to {JSON_PATH}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
