"""`build/bench.json`: one record per measured line, in the fields CI and the README read."""

from __future__ import annotations

import json
from pathlib import Path

from bench.results import Result, write_json


def test_bench_json_has_one_record_per_measured_line(tmp_path: Path) -> None:
    measured = Result("sync first pull, 10,000 customers, SQLite", 2.5, "s", 2.25, 1.111,
                      "ratio <= 1.2x", True, "sync first pull: median 2.50 s ...")  # fmt: skip
    unmeasured = Result("soak RSS at the end", 180.0, "MB", 170.0, 1.059, "", None, "  RSS ...")
    path = tmp_path / "build" / "bench.json"

    count = write_json(path, [("sync", "a heading"), ("sync", measured), ("soak", unmeasured)])

    assert count == 2
    records = json.loads(path.read_text(encoding="utf-8"))
    assert records == [
        {"bench": "sync", "name": "sync first pull, 10,000 customers, SQLite", "value": 2.5,
         "unit": "s", "baseline": 2.25, "ratio": 1.111, "goal": "ratio <= 1.2x", "met": True},
        {"bench": "soak", "name": "soak RSS at the end", "value": 180.0, "unit": "MB",
         "baseline": 170.0, "ratio": 1.059, "goal": "", "met": None},
    ]  # fmt: skip
    assert str(measured) == "sync first pull: median 2.50 s ..."


def test_a_bench_without_a_baseline_writes_nulls(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    write_json(path, [("x", Result("x", 1.0, "s", None, None, "", None, "x: 1 s"))])
    (record,) = json.loads(path.read_text(encoding="utf-8"))
    assert record["baseline"] is None
    assert record["ratio"] is None
