"""What a benchmark measured: one `Result` per measured line, and `build/bench.json` from them.

Each bench's `run()` returns its lines in order: a `Result` for every measured figure (it still
renders to that bench's own text line) and plain strings for headings.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    """One measured line: the figure, the baseline measured in the same run, and the goal.

    `ratio` is value / baseline (None without a baseline); `goal` says what is wanted in words
    ("ratio <= 1.2x", "p95 < 30 ms"); `met` is None when the line has no goal of its own.
    """

    name: str
    value: float
    unit: str
    baseline: float | None
    ratio: float | None
    goal: str
    met: bool | None
    text: str

    def __str__(self) -> str:
        return self.text


Line = Result | str


def spread(samples: Sequence[float]) -> str:
    """'median 1.23 s (min 1.20, max 1.31)': how the figures of a noisy machine are reported."""
    return (
        f"median {statistics.median(samples):.2f} s "
        f"(min {min(samples):.2f}, max {max(samples):.2f})"
    )


def write_json(path: Path, results: Iterable[tuple[str, Line]]) -> int:
    """Write every `Result` of `(bench, line)` pairs to `path` as a JSON list; return how many.

    Each record: bench, name, value, unit, baseline, ratio, goal, met (the text line stays in
    the text table only)."""
    records = []
    for bench, line in results:
        if isinstance(line, Result):
            record = {"bench": bench, **asdict(line)}
            del record["text"]
            records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return len(records)
