"""Airflow's own metadata database on SQLite, made fit for a local run of several components.

The scheduler, dag-processor, triggerer and api-server all write to one SQLite file. With Python's
default 5 s busy timeout and SQLite's rollback journal, a busy moment crashes the scheduler loop
("database is locked"). A 60 s busy timeout (``[database] sql_alchemy_connect_args``) and the WAL
journal (readers no longer block the writer; the mode is stored in the file) make it hold.
Production runs on PostgreSQL and needs none of this.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

CONNECT_ARGS = {"timeout": 60}
CONNECT_ARGS_ASYNC = {"timeout": 60}
ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "include.devtools.airflow_sqlite.CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "include.devtools.airflow_sqlite.CONNECT_ARGS_ASYNC",
}


def use_wal(airflow_home: str | os.PathLike[str]) -> str:
    """Switch the metadata database under ``airflow_home`` to the WAL journal; returns the mode."""
    with sqlite3.connect(Path(airflow_home) / "airflow.db", timeout=60) as connection:
        return connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]


if __name__ == "__main__":
    print(f"Airflow 元数据库日志模式：{use_wal(sys.argv[1] if len(sys.argv) > 1 else os.environ['AIRFLOW_HOME'])}")
