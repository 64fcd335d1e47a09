"""README's *Team set-up*, command by command: one PostgreSQL set up by its owner, one listener
process (as the service runs it) and two staff seats (separate app processes, each with its own
machine settings), all against the same database and the same Stripe (a sandbox).

The seats see the same team settings; a finance seat may not change them; both see the
listener's heartbeat; an event made in Stripe while no window is open reaches the books.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.conftest import PG_DSN_VAR, TEST_KEY
from tests.e2e.test_cli import _env
from tests.services.test_health import _get, _until

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]


def _dsn() -> str:
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_VAR} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    return dsn


class Site:
    """One shared database (its own schema here) and the logins of the people using it."""

    def __init__(self, schema: str, logins: dict[str, str]) -> None:
        self.schema = schema
        self.logins = logins

    def url(self, who: str | None) -> str:
        """The database URL a person puts in `--db` (None: the owner's)."""
        parts = urlsplit(_dsn())
        user = self.logins[who] if who else parts.username
        netloc = f"{user}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
        query = f"options=-csearch_path%3D{self.schema}"
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@pytest.fixture
def site() -> Iterator[Site]:
    dsn = _dsn()
    tag = uuid.uuid4().hex[:8]
    site = Site(f"t_team_{tag}", {who: f"ba_{tag}_{who}" for who in ("adm", "fin", "lst")})
    owner = psycopg2.connect(dsn)
    owner.autocommit = True
    try:
        with owner.cursor() as cur:
            # README: "each person has their own database login" (psql -c "CREATE ROLE …").
            cur.execute(f'CREATE SCHEMA "{site.schema}"')
            for login in site.logins.values():
                cur.execute(f'CREATE ROLE "{login}" LOGIN')
        yield site
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{site.schema}" CASCADE')
            for login in site.logins.values():
                cur.execute(f'DROP OWNED BY "{login}"')
                cur.execute(f'DROP ROLE IF EXISTS "{login}"')
        owner.close()


@pytest.fixture
def stripe_stand_in() -> Iterator[SandboxServer]:
    server = SandboxServer(port=0)
    server.start()
    yield server
    server.stop()


def _app(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "admin_app", *args], env=_env(home), input=stdin,
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(_ok(result))


def _start_listener(home: Path, site: Site, api: str) -> tuple[subprocess.Popen[str], str]:
    """`admin-app listen --stripe-cli --health-port N` as the service runs it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "admin_app", "--db", site.url("lst"), "--api-base", api,
         "listen", "--port", "0", "--stripe-cli", "--health-port", "0"],
        env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # "Listening on …", then "Health on http://127.0.0.1:N/healthz"
        if line.startswith("Health on "):
            return proc, line.split()[-1]
    proc.wait(timeout=30)
    pytest.fail(f"the listener exited ({proc.returncode}) before serving /healthz")


def test_two_seats_and_one_listener_share_one_postgresql(
    site: Site, stripe_stand_in: SandboxServer, tmp_path: Path
) -> None:
    api = stripe_stand_in.url
    server, seat_a, seat_b = tmp_path / "server", tmp_path / "alee", tmp_path / "jsmith"
    adm, fin, lst = (site.logins[w] for w in ("adm", "fin", "lst"))

    # The database owner, once: schema, group roles, grants, guards; the first admin; the
    # listener's login.
    out = _ok(_app(server, "--db", site.url(None), "db", "setup", "--admin", adm,
                   "--listener", lst))  # fmt: skip
    assert f"{lst} may run the listener" in out
    # The first admin adds staff from their own machine.
    _ok(_app(seat_a, "--db", site.url("adm"), "operators", "add", fin, "--role", "finance"))

    # The server runs the listener service.
    listener, health = _start_listener(server, site, api)
    try:
        _status, body = _until(
            health, lambda s, b: s == 200 and b["stripe_listen"]["state"] == "forwarding"
        )
        assert body["database"]["ok"] is True

        # The admin seat sets the team's settings (and a machine setting of its own) …
        _ok(_app(seat_a, "--db", site.url("adm"), "settings", "set", "topup-success-url",
                 "https://team.example/thanks?s={CHECKOUT_SESSION_ID}"))  # fmt: skip
        _ok(_app(seat_a, "--db", site.url("adm"), "settings", "set", "credit-price", "0.20"))
        _ok(_app(seat_a, "--db", site.url("adm"), "settings", "set", "webhook-port", "4343"))

        # … and both seats, at once, see the same team settings; machine settings stay put.
        seats = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "admin_app",
                    "--db",
                    site.url(who),
                    "settings",
                    "show",
                    "--json",
                ],
                env=_env(home),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for home, who in ((seat_a, "adm"), (seat_b, "fin"))
        ]
        shown = []
        for proc in seats:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            shown.append(json.loads(out))
        for view in shown:
            assert view["topup-success-url"]["value"] == (
                "https://team.example/thanks?s={CHECKOUT_SESSION_ID}"
            )
            assert view["topup-success-url"]["stored_in"] == "the shared database"
            assert view["credit-price"]["value"] == "0.20"
        assert shown[0]["webhook-port"]["value"] == "4343"
        assert shown[1]["webhook-port"]["value"] is None  # jsmith's machine is its own

        # Finance may look, not change: exit 3, one line, nothing changed.
        refused = _app(seat_b, "--db", site.url("fin"), "settings", "set", "credit-price", "0.01")
        assert refused.returncode == 3, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        view = _json(_app(seat_b, "--db", site.url("fin"), "settings", "show", "--json"))
        assert view["credit-price"]["value"] == "0.20"

        # Every seat sees the listener's heartbeat.
        for home, who in ((seat_a, "adm"), (seat_b, "fin")):
            seen = _json(_app(home, "--db", site.url(who), "listeners", "--json"))
            assert seen["warning"] is None
            (running,) = seen["running"]
            assert running["login"] == lst
            assert running["kind"] == "headless"
            assert running["forwarding"] is True

        # jsmith's window (offscreen, rendered to files) reads the same database meanwhile.
        shots = Path(os.environ.get("BILLING_ADMIN_SHOTS") or tmp_path / "shots")
        window = _app(seat_b, "--db", site.url("fin"), "--api-base", api, "--screenshot",
                      str(shots))  # fmt: skip
        assert window.returncode == 0, window.stderr
        assert (shots / "customers.png").stat().st_size > 10_000

        # No window open anywhere: a customer made in Stripe still reaches the books.
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": api})
        made = client.v1.customers.create({"email": "closed.windows@example.com"})
        _until(health, lambda _s, b: (b["last_event"]["what"] or "").endswith("applied"))
        found = _json(_app(seat_b, "--db", site.url("fin"), "customers", "list", "--search",
                           "closed.windows", "--json"))  # fmt: skip
        assert [c["id"] for c in found] == [made.id]
    finally:
        listener.send_signal(signal.SIGTERM)
        assert listener.wait(timeout=60) == 0
        if listener.stdout is not None:
            listener.stdout.close()

    # A clean stop is recorded: last seen just now, nobody running, no warning yet.
    seen = _json(_app(seat_b, "--db", site.url("fin"), "listeners", "--json"))
    assert seen["running"] == []
    assert seen["last_seen"]["stopped"] is True
    assert seen["warning"] is None
    assert time.time() - seen["last_seen"]["seen_at"] < 300
    with pytest.raises(urllib.error.URLError, match="refused"):
        _get(health)  # the health port went with the listener
