"""`make bench`: every benchmark, each printing absolute numbers and a ratio to a baseline measured
in the same run (these machines are shared and noisy: compare ratios, not seconds)."""

from __future__ import annotations

import sys

from bench import sandbox_throughput, table_filter


def main() -> int:
    for bench in (sandbox_throughput, table_filter):
        name = bench.__name__.rsplit(".", 1)[-1]
        print(f"== {name}", flush=True)
        for line in bench.run():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
