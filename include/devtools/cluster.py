"""A real multi-worker Airflow on this machine, as ``docker/compose.yaml`` runs it in containers: CeleryExecutor,
PostgreSQL as Airflow's metadata database and as the campaign store, Redis as Celery's broker, and the
api-server, scheduler, dag-processor, triggerer and N Celery workers, each a process of its own.

PostgreSQL and Redis are the machine's (127.0.0.1:5432 and :6379); they are started if they are not up. Each
cluster gets two new databases (dropped at the end) and a Redis database of its own (emptied at the start).
Each worker names itself (``worker-1``, ``worker-2`` …) in the task instances it runs, so a test can see where
each task ran. Components can be stopped and started again mid-run (the fault drills).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from include.devtools.components import COMPONENTS, Components
from include.devtools.local_airflow import free_port, wait_for

POSTGRES_HOST = os.environ.get("CAMPAIGN_CLUSTER_POSTGRES", "127.0.0.1:5432")
REDIS_URL = os.environ.get("CAMPAIGN_CLUSTER_REDIS", "redis://127.0.0.1:6379/3")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` on the cluster's workers: the worker's own name."""
    import socket

    return os.environ.get("CAMPAIGN_WORKER_NAME") or socket.getfqdn()


def _postgres_up() -> bool:
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@{POSTGRES_HOST}/postgres", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def ensure_services() -> None:
    """PostgreSQL and Redis answer, started with the machine's own commands if they had stopped."""
    for name, up, command in (("PostgreSQL", _postgres_up, START_POSTGRES), ("Redis", _redis_up, START_REDIS)):
        if up():
            continue
        subprocess.run(command, shell=True, check=False, capture_output=True)  # noqa: S602 - fixed commands
        wait_for(lambda up=up: up() or None, 60, f"{name} 启动")


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@{POSTGRES_HOST}/postgres", autocommit=True) as connection:
        connection.execute(statement)


@dataclass
class Cluster(Components):
    workers: int = 2
    databases: tuple[str, ...] = ()  # made for this cluster, dropped at its end

    @property
    def store_url(self) -> str:
        return self.env["CAMPAIGN_DB_URL"]

    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        if name.startswith("worker-"):
            env = self.env | {
                "CAMPAIGN_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.devtools.cluster.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            command = ["airflow", "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "4"]
            return [*command, "--without-gossip", "--without-mingle"], env
        return super().command(name)

    def drop_databases(self) -> None:
        for database in self.databases:
            with contextlib.suppress(Exception):
                _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def prepare(home: Path, env: dict[str, str], workers: int = 2) -> Cluster:
    """The cluster's environment on top of ``env`` (from ``airflow_env``), with its databases made."""
    ensure_services()
    tag = secrets.token_hex(4)
    metadata, store = f"airflow_{tag}", f"campaign_{tag}"
    _admin(f"CREATE DATABASE {metadata}")
    _admin(f"CREATE DATABASE {store}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    home.mkdir(parents=True, exist_ok=True)
    cluster_env = {key: value for key, value in env.items() if not key.startswith("AIRFLOW__DATABASE__")}
    cluster_env |= {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@{POSTGRES_HOST}/{metadata}",
        "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@{POSTGRES_HOST}/{metadata}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        # a queue of the cluster's own: no other run's worker can take its tasks
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"campaign-{tag}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__WORKERS": "2",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # a dead worker's tasks are failed (then retried elsewhere) after 30 s without a heartbeat
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "CAMPAIGN_DB_URL": f"postgresql+psycopg://postgres@{POSTGRES_HOST}/{store}",
    }
    return Cluster(home=home, env=cluster_env, workers=workers, databases=(metadata, store))


@contextlib.contextmanager
def running(cluster: Cluster, startup_timeout: float = 300, keep_databases: bool = False) -> Iterator[Cluster]:
    """Migrate Airflow's database, start every component and the workers; yield once the api-server answers.
    At the end every process is stopped and the cluster's databases are dropped (unless ``keep_databases``:
    then ``cluster.drop_databases()`` is the caller's)."""
    cluster.base = f"http://localhost:{cluster.env['AIRFLOW__API__PORT']}"
    try:
        subprocess.run(
            ["airflow", "db", "migrate"], env=cluster.env, check=True, capture_output=True, timeout=startup_timeout
        )
        for name in (*COMPONENTS, *(f"worker-{n}" for n in range(1, cluster.workers + 1))):
            cluster.start(name)
        wait_for(
            lambda: httpx.get(f"{cluster.base}/api/v2/monitor/health", timeout=5).status_code == 200,
            startup_timeout,
            "Airflow api-server",
            cluster.home / "api-server.log",
        )
        with cluster.watched():
            yield cluster
    finally:
        cluster.stop_all()
        if not keep_databases:
            cluster.drop_databases()
