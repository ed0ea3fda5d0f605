"""Engine, sessions and migrations of the campaign store.

The store is a SQLite file under the campaign home unless ``CAMPAIGN_DB_URL`` names another
database (PostgreSQL in production).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from include.paths import campaign_home, is_local_run

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url() -> str:
    """``CAMPAIGN_DB_URL``, or the SQLite file ``campaign.db`` in the campaign home."""
    return os.environ.get("CAMPAIGN_DB_URL") or f"sqlite:///{campaign_home() / 'campaign.db'}"


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        yield session


def alembic_config(url: str):  # noqa: ANN201 - alembic's Config, imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None) -> str:
    """Bring the store to the latest migration; return the URL it migrated."""
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)
    url = url or database_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
    return url


class StoreNotReady(RuntimeError):
    """The store has not been migrated to this version of the code; the message says what to run."""


def open_store(url: str | None = None) -> Engine:
    """The campaign store, ready for use, for the command line and the tasks. Nothing is migrated here.

    A store at the code's migration is used as it is. A local run's SQLite store that is still empty (no table:
    the file was just made) is created on first use, so a newcomer needs no extra step. Any other store, a local
    one made by older code included, must be brought to the code's migration on purpose (``campaign db
    upgrade``, run in production by compose's ``init`` service): this refuses with what to run.
    """
    url = url or database_url()
    engine = make_engine(url)
    current = _current_revision(engine)
    if current == _head_revision():
        return engine
    empty = current is None and not inspect(engine).get_table_names()
    engine.dispose()
    if empty and url.startswith("sqlite:") and is_local_run():
        return make_engine(upgrade(url))
    raise StoreNotReady(
        f"战役状态库的版本（{current or '未初始化'}）与程序（{_head_revision()}）不一致。"
        "请由运维人员先运行 `campaign db upgrade`（部署时由 init 服务执行），再重试。"
    )


def _current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def _head_revision() -> str | None:
    """The newest migration of this code (read once per process: the code does not change under it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def insert_or_ignore(engine: Engine, table: Any) -> Any:
    """The store's dialect's INSERT (PostgreSQL or SQLite), which has ``on_conflict_do_nothing``: an idempotent
    write, whichever of several writers at once comes first."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(table)
