"""`make start` (scripts/start) stopped as a service manager stops it, by SIGTERM, leaves no component running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from include.devtools.local_airflow import free_port, wait_for
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow


def processes_of(session: int) -> list[str]:
    """Every process of the session ``session`` (the start script's and all it started), as "pid command".
    Airflow's components retitle themselves ("airflow api_server -- …"), which also hides their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getsid(int(proc.name)) == session:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {command[:120]}")
        except OSError:
            continue
    return found


def test_sigterm_stops_the_scheduler_api_server_triggerer_and_dag_processor(tmp_path):
    port = free_port()
    airflow_home = tmp_path / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "CAMPAIGN"))}
    env |= {"CAMPAIGN_HOME": str(tmp_path / "home"), "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__API__PORT": str(port)}
    log = tmp_path / "start.log"
    with log.open("wb") as sink:
        start = subprocess.Popen(
            [str(ROOT / "scripts" / "start")], env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(
            lambda: (
                httpx.get(f"http://localhost:{port}/api/v2/monitor/health", timeout=5).json()["triggerer"]["status"]
                == "healthy"
            ),
            300,
            "Airflow's api-server and triggerer",
            log,
        )
        running = " ".join(processes_of(start.pid))
        for component in (
            "local_airflow serve",
            "scheduler",
            "triggerer",
            "dag-processor",
            "api_server",
            "LocalExecutor",
        ):
            assert component in running, running
        start.send_signal(signal.SIGTERM)
        stopped = start.wait(timeout=60)
        deadline = time.monotonic() + 10
        while processes_of(start.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = processes_of(start.pid)
        assert left == [], "\n".join([*left, log.read_text(errors="replace")[-2000:]])
        assert stopped in (0, 1)  # 0: all exited on SIGTERM; 1: one needed SIGKILL after 30 s (a loaded machine)
    finally:
        for line in processes_of(start.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
