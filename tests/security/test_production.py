"""Production (finding 7): nothing migrates a production store as a side effect of another command."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from include.store.db import upgrade


def test_a_command_never_migrates_a_store_it_was_not_asked_to(run_cli, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'production.db'}"
    monkeypatch.setenv("CAMPAIGN_DB_URL", url)
    monkeypatch.delenv("CAMPAIGN_LOCAL_RUN")
    monkeypatch.setenv("CAMPAIGN_TOKEN_PEPPER", "a-production-pepper-of-enough-length-0123456789")
    code, _, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 2 and "campaign db upgrade" in err and "未初始化" in err
    assert inspect(create_engine(url)).get_table_names() == []  # not a table made behind the operator's back
    code, _, err = run_cli("db", "upgrade")
    assert code == 0, err
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 0 and "济南市" in out, err


def test_a_local_run_creates_its_sqlite_store_on_first_use(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_DB_URL", f"sqlite:///{tmp_path / 'local.db'}")
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 0 and "济南市" in out, err
    assert "tokens" in inspect(create_engine(f"sqlite:///{tmp_path / 'local.db'}")).get_table_names()
    assert upgrade(f"sqlite:///{tmp_path / 'local.db'}")  # already at head: a no-op


def test_a_local_store_made_by_older_code_is_refused_not_migrated(run_cli, tmp_path, monkeypatch):
    """Only a store that does not exist yet is made as a side effect; one behind the code waits for the operator."""
    from alembic import command

    from include.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'older.db'}"
    command.upgrade(alembic_config(url), "0004")
    monkeypatch.setenv("CAMPAIGN_DB_URL", url)
    code, _, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 2 and "campaign db upgrade" in err and "0004" in err, err
    with create_engine(url).connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0004"
    assert run_cli("db", "upgrade")[0] == 0
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 0 and "济南市" in out, err


def test_a_local_file_with_tables_but_no_migration_record_is_refused_not_migrated(run_cli, tmp_path, monkeypatch):
    """Not empty, so not new: someone else's database, or one made by hand. The command says what to run."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    with create_engine(url).begin() as connection:
        connection.exec_driver_sql("CREATE TABLE campaigns (id TEXT PRIMARY KEY)")
    monkeypatch.setenv("CAMPAIGN_DB_URL", url)
    code, _, err = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-20T10:00+08:00")
    assert code == 2 and "campaign db upgrade" in err and "未初始化" in err, err
    assert inspect(create_engine(url)).get_table_names() == ["campaigns"]


@pytest.mark.airflow
def test_only_the_listed_province_officers_may_answer_an_application(monkeypatch):
    """Seed 002: the province opens each city's entry function; the deployment names who decides
    (``CAMPAIGN_APPROVERS``), so that a shared login cannot approve and every decision has a name."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    monkeypatch.setenv("CAMPAIGN_APPROVERS", "2:张处长,3:李科长")
    approve = DagBag(str(ROOT / "dags")).dags["2017-shanxi"].get_task("entry.approve_entry")
    assert approve.partial_kwargs["assigned_users"] == [{"id": "2", "name": "张处长"}, {"id": "3", "name": "李科长"}]
