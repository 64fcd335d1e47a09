"""Listener heartbeats: written by every listener, read by everyone; on a PostgreSQL set up by
`db setup` the database stamps the login and time and keeps each listener to its own row."""

from __future__ import annotations

import time

import peewee
import psycopg2
import pytest

from services.heartbeat import (
    FRESH_S,
    PRUNE_S,
    STALE_S,
    BeatState,
    HeartbeatWriter,
    database_now,
    team_status,
)
from services.models import ListenerHeartbeat
from services.stripe_listen import ListenState
from tests.services.test_pg_security import Team, _open_as, team  # noqa: F401 (a fixture)


def _writer(db: peewee.Database, login: str, state: ListenState) -> HeartbeatWriter:
    return HeartbeatWriter(
        db, lambda: BeatState(True, state, f"receiver :4242 · {state.value}"), login=login,
        kind="headless",
    )  # fmt: skip


def test_status_follows_the_rows(database: peewee.Database) -> None:
    assert team_status(database).warning.startswith("No listener has ever run")
    one = _writer(database, "svc", ListenState.FORWARDING)
    one.beat()
    status = team_status(database)
    assert status.warning == ""
    assert [r.login for r in status.running] == ["svc"]
    two = _writer(database, "alee", ListenState.FORWARDING)
    two.beat()
    assert team_status(database).short == "2 listeners forwarding at once"
    two.beat(stopped=True)
    assert team_status(database).warning == ""
    # Beyond FRESH_S without a beat, a listener no longer counts as running …
    ListenerHeartbeat.update(seen_at=ListenerHeartbeat.seen_at - FRESH_S - 1).execute()
    assert team_status(database).running == ()
    assert team_status(database).warning == ""  # … but the warning waits for STALE_S
    ListenerHeartbeat.update(seen_at=database_now(database) - STALE_S).execute()
    assert team_status(database).short == "No listener seen for 5 min"
    # A week later the next beat clears out the old rows.
    ListenerHeartbeat.update(seen_at=database_now(database) - PRUNE_S - 1).execute()
    one.beat()
    assert ListenerHeartbeat.select().count() == 1


def test_a_failed_write_is_kept_for_healthz_not_raised(database: peewee.Database) -> None:
    writer = _writer(database, "svc", ListenState.FORWARDING)
    database.execute_sql("DROP TABLE listener_heartbeat")
    writer.beat()
    assert writer.problem.startswith("heartbeat not written:")


def test_the_writer_thread_beats_until_stopped(database: peewee.Database) -> None:
    writer = _writer(database, "svc", ListenState.STARTING)
    writer.start()
    writer.nudge()
    writer.stop()
    (row,) = ListenerHeartbeat.select()
    assert row.stopped_at is not None
    assert row.receiving is False


@pytest.mark.postgres
def test_postgresql_stamps_the_login_and_time_and_keeps_rows_apart(team: Team) -> None:  # noqa: F811
    db, _lst = _open_as(team, "lst")
    try:
        writer = HeartbeatWriter(
            db, lambda: BeatState(True, ListenState.FORWARDING, "ok"), login="someone-else",
            kind="headless",
        )  # fmt: skip
        writer.beat()
        assert writer.problem == ""
        (row,) = ListenerHeartbeat.select()
        assert row.login == team.logins["lst"]  # the database's, not the client's
        assert abs(row.seen_at - time.time()) < 300
    finally:
        db.close()
    # The admin (also a listener) may not rewrite the listener's row, nor delete a fresh one.
    conn = team.sql("adm")
    with conn.cursor() as cur:
        with pytest.raises(psycopg2.Error, match="only its own heartbeat"):
            cur.execute("UPDATE listener_heartbeat SET listen_state = 'stopped'")
        with pytest.raises(psycopg2.Error, match="a day after it was last seen"):
            cur.execute("DELETE FROM listener_heartbeat")
        cur.execute("SELECT count(*) FROM listener_heartbeat")
        assert cur.fetchone() == (1,)
    conn.close()
    # Finance reads heartbeats (the window's status bar) but writes none.
    conn = team.sql("fin")
    with conn.cursor() as cur:
        cur.execute("SELECT login FROM listener_heartbeat")
        assert cur.fetchone() == (team.logins["lst"],)
        with pytest.raises(psycopg2.Error, match="permission denied"):
            cur.execute(
                "INSERT INTO listener_heartbeat (instance, login, host, pid, kind, started_at, "
                "seen_at, receiving, listen_state) VALUES ('x', 'x', 'h', 1, 'window', 0, 0, "
                "true, 'forwarding')"
            )
    conn.close()
