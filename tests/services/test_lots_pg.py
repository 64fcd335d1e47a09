"""The SQL contract on a PostgreSQL set up by `db setup`: a product's own login, with nothing but
`billing_product`, spends through `consume_credits` from a raw psycopg2 connection, exactly once
per key, reads `credit_balance`, and can add credits in no way at all."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import pytest

from tests.services.test_pg_security import Team, _dsn, team  # noqa: F401 (the fixture)

pytestmark = pytest.mark.postgres


@pytest.fixture
def product(team: Team) -> Iterator[Team]:  # noqa: F811
    """`team` plus a product backend's login holding only `billing_product`."""
    login = f"{team.logins['adm'].rsplit('_', 1)[0]}_prod"
    owner = psycopg2.connect(_dsn())
    owner.autocommit = True
    try:
        with owner.cursor() as cur:
            cur.execute(f'CREATE ROLE "{login}" LOGIN')
            cur.execute(f'GRANT billing_product TO "{login}"')  # the README's one GRANT
        team.logins["prod"] = login
        yield team
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{login}"')
        owner.close()


def _fails(conn: psycopg2.extensions.connection, sql: str, *params: object) -> str:
    with conn.cursor() as cur, pytest.raises(psycopg2.Error) as caught:
        cur.execute(sql, params)
    return str(caught.value.pgcode)


def test_a_product_login_spends_exactly_once_and_never_adds(product: Team) -> None:
    conn = product.sql("prod")
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM consume_credits('cus_team', 25, 'order-1', 'order 1')")
        entry_id, credits, available, replayed = cur.fetchone()
        assert (credits, available, replayed) == (25, 675, False)
        cur.execute("SELECT * FROM consume_credits('cus_team', 25, 'order-1', 'order 1')")
        assert cur.fetchone() == (entry_id, 25, 675, True)
        cur.execute(
            "SELECT available, paid, promotional, pending, next_expiry_at FROM credit_balance "
            "WHERE customer_id = 'cus_team'"
        )
        assert cur.fetchone() == (675, 675, 0, 100, None)  # tu_open's 100 credits are pending
    assert _fails(conn, "SELECT * FROM consume_credits('cus_team', 26, 'order-1')") == "CB002"
    assert _fails(conn, "SELECT * FROM consume_credits('cus_team', 676, 'order-2')") == "CB001"
    assert _fails(conn, "SELECT * FROM consume_credits('cus_team', -50, 'order-3')") == "22023"
    assert _fails(conn, "SELECT * FROM consume_credits('cus_nobody', 1, 'order-4')") == "P0002"
    # nothing but the function and the view
    for sql in (
        "INSERT INTO credit_entry (customer_id, amount, kind, operator, reason, created_at) "
        "VALUES ('cus_team', 1000, 'grant', 'x', 'free', 0)",
        "UPDATE credit_lot SET remaining = remaining + 1000",
        "UPDATE credit_account SET debt = 0, overdraft_limit = 1000000",
        "SELECT billing_absorb('cus_team')",
        "SELECT billing_credit_lock('cus_team')",
        "SELECT billing_open_lot(1)",
        "SELECT billing_draw('cus_team', 1, -1000, 0, NULL, NULL)",
        "SELECT * FROM credit_entry",
        "SELECT * FROM customer",
    ):
        assert _fails(conn, sql) == "42501", sql
    with conn.cursor() as cur:
        cur.execute("SELECT available FROM credit_balance WHERE customer_id = 'cus_team'")
        assert cur.fetchone() == (675,)


def test_staff_cannot_write_spends_around_the_function(product: Team) -> None:
    admin = product.sql("adm")
    assert _fails(
        admin,
        "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at) "
        "VALUES ('cus_team', -5, 'spend', 'sneaky', 'x', 0)",
    ) == "42501"  # fmt: skip
    assert _fails(
        admin,
        "INSERT INTO credit_entry (customer_id, amount, kind, source, operator, created_at) "
        "VALUES ('cus_team', 500, 'expiry', 'expiry:0', 'x', 0)",
    ) == "42501"  # fmt: skip
    finance = product.sql("fin")
    assert _fails(finance, "SELECT * FROM consume_credits('cus_team', 1, 'k')") == "42501"
    with finance.cursor() as cur:  # staff read the split like the app shows it
        cur.execute("SELECT available FROM credit_balance WHERE customer_id = 'cus_team'")
        assert cur.fetchone() == (700,)
    with admin.cursor() as cur:  # admins spend from the app, through the same function
        cur.execute("SELECT credits, replayed FROM consume_credits('cus_team', 1, 'adm-1')")
        assert cur.fetchone() == (1, False)
        cur.execute("SELECT operator FROM credit_entry WHERE source = 'adm-1'")
        assert cur.fetchone() == (product.logins["adm"],)
    listener = product.sql("lst")
    with listener.cursor() as cur:  # the listener's expiry run
        cur.execute("SELECT billing_expire_credits()")
        assert cur.fetchone() == (0,)
