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
import ctypes
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from include.devtools.local_airflow import free_port, wait_for

POSTGRES_HOST = os.environ.get("CAMPAIGN_CLUSTER_POSTGRES", "127.0.0.1:5432")
REDIS_URL = os.environ.get("CAMPAIGN_CLUSTER_REDIS", "redis://127.0.0.1:6379/3")
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` on the cluster's workers: the worker's own name."""
    import socket

    return os.environ.get("CAMPAIGN_WORKER_NAME") or socket.getfqdn()


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here: the child after fork must not load libraries


def _die_with_parent() -> None:
    """A component left behind by a killed run would go on taking tasks from the broker: it dies with us."""
    _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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
class Cluster:
    home: Path
    env: dict[str, str]
    workers: int
    databases: tuple[str, ...] = ()  # made for this cluster, dropped at its end
    base: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)  # components the watchdog started again
    later: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, component) to start then

    @property
    def store_url(self) -> str:
        return self.env["CAMPAIGN_DB_URL"]

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        if name.startswith("worker-"):
            env = self.env | {
                "CAMPAIGN_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.devtools.cluster.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            command = ["airflow", "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "4"]
            return [*command, "--without-gossip", "--without-mingle"], env
        if name == "api-server":
            return ["airflow", "api-server", "--port", self.env["AIRFLOW__API__PORT"]], self.env
        return ["airflow", name], self.env

    def start(self, name: str) -> None:
        command, env = self._command(name)
        with (self.home / f"{name}.log").open("ab") as sink:
            self.processes[name] = subprocess.Popen(
                command,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # sets a signal only: safe with threads
            )

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop a component (SIGKILL: as if its machine died, with every process it started, tasks included)."""
        import psutil

        process = self.processes.pop(name)
        if sig == signal.SIGKILL:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def start_later(self, name: str, seconds: float) -> None:
        """Start a stopped component again after ``seconds`` (from the watchdog's thread, which outlives it)."""
        self.later.append((time.monotonic() + seconds, name))

    def watch(self, stop: threading.Event, every: float = 1.0) -> None:
        """compose's ``restart: always``: a component that exits by itself (one that lost its database, say)
        is started again; one stopped through ``stop`` is not, unless ``start_later`` asks for it."""
        while not stop.wait(every):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and self.processes.get(name) is process:
                    self.restarts.append(name)
                    self.start(name)
            for item in [item for item in self.later if item[0] <= time.monotonic()]:
                self.later.remove(item)
                self.start(item[1])

    def drop_databases(self) -> None:
        for database in self.databases:
            with contextlib.suppress(Exception):
                _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {file.name}\n{file.read_text(errors='replace')[-chars:]}" for file in sorted(self.home.glob("*.log"))
        )


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
        stop = threading.Event()
        watchdog = threading.Thread(target=cluster.watch, args=(stop,), daemon=True)
        watchdog.start()
        try:
            yield cluster
        finally:
            stop.set()
            watchdog.join(timeout=10)
    finally:
        for name in list(cluster.processes):
            cluster.stop(name)
        if not keep_databases:
            cluster.drop_databases()
