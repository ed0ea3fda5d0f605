"""A real Airflow (``airflow standalone``) on a temporary home, for simulations and end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from include.devtools.airflow_sqlite import ENV as SQLITE_ENV
from include.devtools.airflow_sqlite import use_wal
from include.paths import PROJECT_ROOT

T = TypeVar("T")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_env(home: Path, port: int = 8080) -> dict[str, str]:
    """The environment of an Airflow and a campaign store that live under ``home`` only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "CAMPAIGN"))}
    env |= {
        "PATH": f"{BIN}:{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home / "airflow"),
        "CAMPAIGN_HOME": str(home / "home"),
        "CAMPAIGN_LOCAL_RUN": "1",  # a development key for tokens, the API's docs pages (include/door/tokens.py)
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        **SQLITE_ENV,
    }
    return env


def wait_for(check: Callable[[], T | None], timeout: float, what: str, log: Path | None = None) -> T:
    """Poll ``check`` every 2 s until it returns something truthy; HTTP errors count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(2)
    tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
    raise TimeoutError(f"等待超时：{what}\n{tail}")


@contextlib.contextmanager
def standalone(env: dict[str, str], log: Path, startup_timeout: float = 240) -> Iterator[str]:
    """Run ``airflow standalone`` with ``env``; yield the REST API base URL once it answers."""
    base = f"http://localhost:{env['AIRFLOW__API__PORT']}"
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    use_wal(env["AIRFLOW_HOME"])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["airflow", "standalone"], env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(
            lambda: httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200,
            startup_timeout,
            "Airflow api-server",
            log,
        )
        yield base
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """Stop a process started in a session of its own and everything it started: SIGTERM to the group, then
    SIGKILL to whatever is left after ``grace`` seconds (the leader may be gone while its children linger)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def get_json(url: str, **params: Any) -> Any:
    response = httpx.get(url, params=params or None, timeout=10)
    response.raise_for_status()
    return response.json()
