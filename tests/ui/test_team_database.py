"""A staff window on a shared PostgreSQL set up by `admin-app db setup`: it reads, and leaves
the mirror and the events to the team's listener instead of failing at them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from pytestqt.qtbot import QtBot

from services.audit import Authority
from services.database import open_database
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.pg_security import setup
from tests.conftest import PG_DSN_VAR

pytestmark = pytest.mark.postgres


@pytest.fixture
def finance_url() -> Iterator[str]:
    dsn = os.environ.get(PG_DSN_VAR)
    if not dsn:
        pytest.skip(
            f"PostgreSQL tests need {PG_DSN_VAR} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    tag = uuid.uuid4().hex[:8]
    schema, fin, adm = f"t_ui_{tag}", f"ba_{tag}_fin", f"ba_{tag}_adm"
    owner = psycopg2.connect(dsn)
    owner.autocommit = True
    try:
        with owner.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{schema}"')
            cur.execute(f'CREATE ROLE "{fin}" LOGIN')
            cur.execute(f'CREATE ROLE "{adm}" LOGIN')
        db = open_database(f"{dsn}?options=-csearch_path%3D{schema}")
        setup(db, admin=adm)
        OperatorService(db, Authority(db, sign_in(db, adm))).add(fin, Role.FINANCE)
        db.close()
        yield f"postgresql://{fin}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with owner.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            cur.execute(f'DROP ROLE IF EXISTS "{fin}"')
            cur.execute(f'DROP ROLE IF EXISTS "{adm}"')
        owner.close()


def test_a_finance_window_reads_and_leaves_sync_and_events_to_the_listener(
    qtbot: QtBot, finance_url: str, tmp_path: Path
) -> None:
    from admin_app.wiring import build_context
    from services.secrets import SecretStore
    from services.settings import SettingsStore
    from services.stripe_gateway import StripeGateway
    from ui.main_window import LISTENER_KEEPS_MIRROR, MainWindow
    from ui.panels.events import EventsPanel
    from ui.tasks import TaskRunner

    db = open_database(finance_url)
    try:
        gateway = StripeGateway("sk_test_x", api_base="http://127.0.0.1:9", sandbox=True)
        actor = sign_in(db, finance_url.split("//")[1].split("@")[0])
        ctx = build_context(
            db, gateway, actor, SettingsStore(tmp_path / "settings.json"),
            SecretStore(environ={}), "team database",
        )  # fmt: skip
        assert not ctx.sync.may_write()
        assert not ctx.events.may_apply()
        tasks = TaskRunner()
        window = MainWindow(ctx, tasks)
        qtbot.addWidget(window)
        window.start(sync_first=True)  # would sync in sandbox mode: not for this login
        window.show_team_listener()
        assert not window.sync_action.isEnabled()
        assert window.sync_action.toolTip() == LISTENER_KEEPS_MIRROR
        events = window.panels["events"]
        assert isinstance(events, EventsPanel)
        assert "team's listener" in events.listener_label.text()
        assert "Sync failed" not in window.statusBar().currentMessage()
        # The panels' (and the listener indicator's) reads finish before the schema goes.
        assert tasks.wait_idle()
        assert window.listener_indicator.text() == "⚠ No listener has run"
    finally:
        db.close()
