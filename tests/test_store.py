"""The campaign store: migrations and idempotent writes, on SQLite and (when set) PostgreSQL."""

from __future__ import annotations

import pendulum
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from include.calendar import read_calendar
from include.paths import CONFIG_CAMPAIGNS
from include.store.db import alembic_config, database_url, make_engine, upgrade
from include.store.events import passed_instants, record_event
from include.store.models import Base
from tests.conftest import database_urls


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request, tmp_path):
    urls = {url.split(":")[0].split("+")[0]: url for url in database_urls(tmp_path)}
    if request.param not in urls:
        pytest.skip("CAMPAIGN_TEST_POSTGRES_URL not set")
    url = urls[request.param]
    if request.param == "postgresql":
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    return url


def test_migrations_create_what_the_models_declare(store_url):
    upgrade(store_url)
    engine = make_engine(store_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"campaigns", "calendar_events", "alembic_version"} <= tables


def test_downgrade_and_upgrade_again(store_url):
    upgrade(store_url)
    command.downgrade(alembic_config(store_url), "base")
    upgrade(store_url)
    engine = make_engine(store_url)
    assert "calendar_events" in inspect(engine).get_table_names()
    engine.dispose()


def test_recording_an_instant_twice_records_it_once(store_url):
    upgrade(store_url)
    engine = make_engine(store_url)
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    close = calendar.system_close.at  # "12月31日24时关闭信息系统。"
    first = pendulum.parse("2021-01-01T00:00:03+08:00")
    assert record_event(engine, calendar, key="system_close.at", kind="system_close", due_at=close, recorded_at=first)
    assert not record_event(
        engine,
        calendar,
        key="system_close.at",
        kind="system_close",
        due_at=close,
        recorded_at=first.add(minutes=5),
    )
    rows = passed_instants(engine, "2020-shandong")
    engine.dispose()
    assert len(rows) == 1
    assert rows[0].due_at.isoformat() == "2020-12-31T16:00:00+00:00"
    assert rows[0].recorded_at == first  # the first recording stands


def test_a_demo_made_anew_records_its_new_instants(store_url):
    """Each `make start` compresses 2020-shandong to new dates under the same id: both runs are kept."""
    from include.calendar.compress import compress
    from include.calendar.instants import parse_duration, parse_instant

    upgrade(store_url)
    engine = make_engine(store_url)
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    first = compress(calendar, parse_instant("2030-01-01T10:00+08:00"), parse_duration("6m"), "demo")
    again = compress(calendar, parse_instant("2030-01-01T11:00+08:00"), parse_duration("6m"), "demo")
    for demo in (first, again, again):
        record_event(
            engine,
            demo,
            key="system_close.at",
            kind="system_close",
            due_at=demo.system_close.at,
            recorded_at=demo.system_close.at,
        )
    rows = passed_instants(engine, "demo")
    engine.dispose()
    assert [row.due_at for row in rows] == [first.system_close.at, again.system_close.at]


def test_naive_instant_is_refused(store_url):
    upgrade(store_url)
    engine = make_engine(store_url)
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    import datetime as dt

    from sqlalchemy.exc import StatementError

    with pytest.raises(StatementError, match="不接受不带时区的时间"):
        record_event(
            engine,
            calendar,
            key="k",
            kind="phase_start",
            due_at=dt.datetime(2020, 11, 11),
            recorded_at=pendulum.now("UTC"),
        )
    assert passed_instants(engine, "2020-shandong") == []
    engine.dispose()


def test_default_store_is_sqlite_under_campaign_home(tmp_path, run_cli):
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'campaign.db'}"
    code, out, _ = run_cli("db", "upgrade")
    assert code == 0 and "战役状态库已升级到最新版本" in out
    assert (tmp_path / "home" / "campaign.db").is_file()


def test_approvals_recorded_before_outcomes_existed_keep_their_meaning(store_url):
    """Issue 17: the old approval task recorded a timeout as a rejection by "airflow:unknown" (nobody had
    answered). Migration 0006 makes those timeouts and keeps every other refusal a rejection."""
    command.upgrade(alembic_config(store_url), "0005_outbox_lease")
    engine = make_engine(store_url)
    rows = [("140100", True, "airflow:7"), ("140200", False, "cli:李科员"), ("140500", False, "airflow:unknown")]
    with engine.begin() as connection:
        for unit, approved, by in rows:
            connection.execute(
                text(
                    'INSERT INTO approvals (campaign_id, "window", unit, approved, decided_by, decided_at) '
                    "VALUES ('2017-shanxi', 'entry', :unit, :approved, :by, '2017-11-22 01:00:00')"
                ),
                {"unit": unit, "approved": approved, "by": by},
            )
    upgrade(store_url)
    with engine.connect() as connection:
        outcomes = connection.execute(text("SELECT unit, outcome, decided_by FROM approvals ORDER BY unit")).all()
    engine.dispose()
    assert [tuple(row) for row in outcomes] == [
        ("140100", "approved", "airflow:7"),
        ("140200", "rejected", "cli:李科员"),
        ("140500", "timed_out", None),
    ]
