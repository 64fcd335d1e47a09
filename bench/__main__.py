"""`make bench`: every benchmark, each printing absolute numbers and a ratio to a baseline measured
in the same run (these machines are shared and noisy: compare ratios, not seconds).

`python -m bench --soak [MINUTES]` (`make bench ARGS=--soak`) runs only the long soak of the
window (30 minutes by default)."""

from __future__ import annotations

import sys

from bench import intake, overview, reconcile, sandbox_throughput, soak, table_filter


def main(argv: list[str]) -> int:
    if "--soak" in argv:
        print("== soak (long)", flush=True)
        for line in soak.run(argv):
            print(line, flush=True)
        return 0
    for bench in (sandbox_throughput, table_filter, overview, intake, reconcile, soak):
        name = bench.__name__.rsplit(".", 1)[-1]
        print(f"== {name}", flush=True)
        for line in bench.run():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
