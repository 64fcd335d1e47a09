"""What opening the window does before its first paint (issue 15's cold start).

No Stripe code, no keyring and no command modules: they are imported after the window paints
(the first Stripe call, the listener, a command), not while the user waits for it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import stripe

from admin_app.cli import build_parser, window_args
from services.browse import BrowseService
from services.stripe_gateway import PINNED_API_VERSION
from ui.customer_model import haystacks, load_with_haystacks

REPO = Path(__file__).resolve().parents[2]
NOT_BEFORE_THE_FIRST_PAINT = (
    "stripe", "requests", "keyring", "stripe_sandbox", "admin_app.commands",
    "admin_app.catalog_commands", "admin_app.invoice_commands", "admin_app.db_commands",
)  # fmt: skip

PROBE = f"""
import sys
from admin_app import cli
import admin_app.wiring, ui.app, ui.main_window
assert cli.window_args(["--db", "sqlite:///x.sqlite3", "--api-base", "http://127.0.0.1:9"])
print(",".join(m for m in {NOT_BEFORE_THE_FIRST_PAINT!r} if m in sys.modules))
"""


def test_what_the_window_imports_before_it_paints_leaves_stripe_keyring_and_commands_out() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_window_parser_leaves_commands_help_and_mistakes_to_the_full_parser() -> None:
    args = window_args(["--db", "sqlite:///x.sqlite3", "--sandbox", "-v"])
    assert args is not None
    assert (args.db, args.sandbox, args.verbose, args.command) == ("sqlite:///x.sqlite3", True,
                                                                   True, None)  # fmt: skip
    for raw in (["customers", "list"], ["--db", "x", "sync"], ["-h"], ["--db"], ["--nope"]):
        assert window_args(raw) is None, raw
    assert build_parser().parse_args(["customers", "list"]).command == "customers"


def test_the_pinned_api_version_is_the_one_stripe_python_was_built_for() -> None:
    assert stripe.api_version == PINNED_API_VERSION


def test_the_whole_list_comes_with_its_search_text_and_without_its_metadata(
    tmp_path: Path,
) -> None:
    from admin_app.paths import AppPaths
    from admin_app.wiring import Options, build_runtime
    from bench.customer_data import fill_customers

    db = tmp_path / "c.sqlite3"
    fill_customers(db, 150)
    paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
    runtime = build_runtime(Options(db=f"sqlite:///{db}", api_base="http://127.0.0.1:9"), paths)
    try:
        browse: BrowseService = runtime.require_context().browse
        reference = browse.customer_columns()
        columns, hay = load_with_haystacks(browse.customer_batches())
        assert hay == haystacks(reference)  # the same search text as the build it replaces
        assert any('"account_id"' in h for h in hay)  # metadata is searched …
        assert columns.metadata_text == []  # … and not held twice
        assert [columns.row(i)[:8] for i in range(len(columns))] == [
            reference.row(i)[:8] for i in range(len(reference))
        ]
    finally:
        runtime.close()
