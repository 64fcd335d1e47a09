"""Test-wide set-up: offscreen Qt, an in-memory keyring, a Stripe sandbox, databases.

Environment comes first: Qt reads QT_QPA_PLATFORM when the QApplication starts, and no test may
reach a real keyring or a real Stripe account.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# No secret from the developer's shell may leak into a test.
for _var in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "BILLING_ADMIN_DB"):
    os.environ.pop(_var, None)

import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import peewee
import pytest
import stripe

from services.audit import Authority
from services.operators import sign_in
from stripe_sandbox import SandboxServer
from tests.helpers.memory_keyring import MemoryKeyring

TEST_KEY = "sk_test_sandbox_tests"
PG_DSN_VAR = "BILLING_ADMIN_TEST_PG_DSN"


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Every test gets a fresh, empty in-memory keyring."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox for the whole session on a free loopback port; see `sandbox`."""
    server = SandboxServer(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session sandbox, emptied before the test."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def stripe_client(sandbox: SandboxServer) -> stripe.StripeClient:
    """A real stripe-python client talking HTTP to the sandbox."""
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})


def _postgres_url(schema: str) -> str:
    dsn = os.environ[PG_DSN_VAR]
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, and a private PostgreSQL schema when the
    DSN in BILLING_ADMIN_TEST_PG_DSN is set (skipped with that reason otherwise)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    if not os.environ.get(PG_DSN_VAR):
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_VAR} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    import psycopg2

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(os.environ[PG_DSN_VAR])
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
        yield _postgres_url(schema)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


@pytest.fixture
def database(db_url: str) -> Iterator[peewee.Database]:
    """An opened, migrated database bound to the models."""
    from services.database import open_database

    db = open_database(db_url)
    yield db
    db.close()


@pytest.fixture
def authority(database: peewee.Database) -> Authority:
    """The first operator on a fresh database: bootstrapped as admin."""
    return Authority(database, sign_in(database, "test-admin"))
