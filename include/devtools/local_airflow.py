"""A real Airflow on this machine (LocalExecutor, SQLite), for ``make start``, simulations and end-to-end tests.

Its four components run as processes of their own under a watchdog (include/devtools/components.py), not under
``airflow standalone``, which never starts a dead component again. The limits of a local run (``LOCAL_LIMITS``)
are measured on this 2-core machine by ``bench/local_load.py``; see the README ("A local Airflow under load").

``python -m include.devtools.local_airflow serve`` runs it in the foreground until SIGINT, SIGTERM or SIGHUP,
then stops every component and every task process (exit 0; 1 if one had to be killed): scripts/start.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from include.devtools.airflow_sqlite import ENV as SQLITE_ENV
from include.devtools.airflow_sqlite import use_wal
from include.devtools.components import COMPONENTS, Components
from include.paths import PROJECT_ROOT

T = TypeVar("T")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# What a local run may start at once. At the entry phase of 2017-shanxi about 40 task processes are due together;
# with Airflow's default parallelism (32) they saturate SQLite and two cores: the api-server answers 500, tasks
# fail with API_SERVER_ERROR, the triggerer dies of "database is locked" (issue 17). Measured by bench/local_load.py
# (README "A local Airflow under load"): with these, four Shanxi runs clean; with the defaults 5xx, timeouts, retries.
LOCAL_LIMITS = {
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
    "AIRFLOW__API__WORKERS": "1",
}


def run_secrets() -> dict[str, str]:
    """The keys the components share within one run (the task tokens' JWT secret, the UI's session key)."""
    return {
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }


def airflow_env(home: Path, port: int = 8080, limits: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an Airflow and a campaign store that live under ``home`` only; ``limits`` instead of
    ``LOCAL_LIMITS`` (a benchmark's alternative)."""
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
        # log servers on ports of the run's own: two local runs at once do not clash
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        **SQLITE_ENV,
        **(LOCAL_LIMITS if limits is None else limits),
        **run_secrets(),
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
def local_airflow(env: dict[str, str], logs: Path, startup_timeout: float = 240) -> Iterator[Components]:
    """Migrate Airflow's database and start its four components under the watchdog, with ``env`` and their logs
    in ``logs``; yield them once the api-server answers (``.base`` is its URL). Everything is stopped at the end."""
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    use_wal(env["AIRFLOW_HOME"])
    components = Components(logs, env, base=base_url(env))
    try:
        for name in COMPONENTS:
            components.start(name)
        wait_for(
            lambda: httpx.get(f"{base_url(env)}/api/v2/monitor/health", timeout=5).status_code == 200,
            startup_timeout,
            "Airflow api-server",
            components.log("api-server"),
        )
        with components.watched():
            yield components
    finally:
        components.stop_all()


def base_url(env: dict[str, str]) -> str:
    return f"http://localhost:{env['AIRFLOW__API__PORT']}"


def serve() -> int:
    """``make start``: the components in the foreground until a signal; 0 if all stopped on SIGTERM, else 1; the
    demo campaign's units at play beside them."""
    env = dict(os.environ)
    for key, value in (LOCAL_LIMITS | run_secrets()).items():
        env.setdefault(key, value)
    logs = Path(env["CAMPAIGN_HOME"]) / "logs"
    components = Components(logs, env)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    for name in COMPONENTS:
        components.start(name)
    print(f"Airflow 的组件已启动（日志：{logs}）；看护进程会重启意外退出的组件。按 Ctrl-C 停止。", flush=True)
    demo = Path(env["CAMPAIGN_HOME"]) / "campaigns" / "demo-2020-shandong.yaml"
    if demo.exists() and env.get("CAMPAIGN_DEMO_PLAY", "1") != "0":
        threading.Thread(target=_play_demo, args=(env, demo, stop), name="demo-play", daemon=True).start()
    with components.watched():
        stop.wait()
    print("停止 Airflow 的全部组件……", file=sys.stderr, flush=True)
    clean = components.stop_all()
    if not clean:
        print("30 秒后仍有进程未退出，已强制结束。", file=sys.stderr, flush=True)
    if components.restarts:
        print(f"看护进程重启过：{'、'.join(components.restarts)}", file=sys.stderr, flush=True)
    return 0 if clean else 1


def _play_demo(env: dict[str, str], demo: Path, stop: threading.Event) -> None:
    """The demo's units, once the api-server answers (include/devtools/demo_play.py); its log beside the others'."""
    from include.devtools.demo_play import play_demo
    from include.store.db import database_url

    logs = Path(env["CAMPAIGN_HOME"]) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "demo-play.log").open("a", encoding="utf-8") as sink:

        def log(line: str) -> None:
            sink.write(line + "\n")
            sink.flush()

        def healthy() -> bool:
            try:
                return httpx.get(f"{base_url(env)}/api/v2/monitor/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        while not healthy():
            if stop.wait(3):
                return
        try:
            play_demo(demo, f"{base_url(env)}/campaign", database_url(), stop, log, Path(env["CAMPAIGN_HOME"]) / "demo")
        except Exception as error:  # the demo is a show: Airflow runs on without it
            log(f"演示报送中断：{error!r}")


@dataclass
class AirflowApi:
    """Airflow's REST API as one user: anonymous on a run where everyone is an admin, else signed in."""

    base: str
    token: str | None = None

    @classmethod
    def login(cls, base: str, username: str, password: str) -> AirflowApi:
        response = httpx.post(f"{base}/auth/token", json={"username": username, "password": password}, timeout=30)
        response.raise_for_status()
        return cls(base, response.json()["access_token"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base}{path}", params=params or None, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def get_all(self, path: str, key: str, **params: Any) -> list[Any]:
        """Every item of a listing, page by page: the API gives at most ``maximum_page_limit`` (100) at once."""
        items: list[Any] = []
        while True:
            page = self.get(path, **params, limit=100, offset=len(items))
            items += page[key]
            if not page[key] or len(items) >= page["total_entries"]:
                return items

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.patch(f"{self.base}{path}", json=body, headers=self.headers, timeout=30)


def signed_in_users(env: dict[str, str], users: dict[str, str]) -> dict[str, str]:
    """``env`` with the UI and REST API behind a login (the simple auth manager) for ``users`` (name → role), each
    with a password of the run's own, written where the auth manager reads them; the passwords come back too."""
    passwords = {name: secrets.token_urlsafe(12) for name in users}
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(passwords, ensure_ascii=False), encoding="utf-8")
    env |= {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{role}" for name, role in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path),
    }
    return passwords


def get_json(url: str, **params: Any) -> Any:
    response = httpx.get(url, params=params or None, timeout=10)
    response.raise_for_status()
    return response.json()


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        sys.exit("用法：python -m include.devtools.local_airflow serve")
    sys.exit(serve())
