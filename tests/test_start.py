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


def processes_of(home: Path) -> list[str]:
    """Every process whose environment names ``home`` as its AIRFLOW_HOME, as "pid command"."""
    marker = f"AIRFLOW_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
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
        running = " ".join(processes_of(airflow_home))
        for component in ("standalone", "scheduler", "triggerer", "dag-processor"):  # the api-server answered above
            assert component in running, running
        start.send_signal(signal.SIGTERM)
        stopped = start.wait(timeout=60)
        deadline = time.monotonic() + 10
        while processes_of(airflow_home) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = processes_of(airflow_home)
        assert left == [], "\n".join([*left, log.read_text(errors="replace")[-2000:]])
        assert stopped == 0  # a clean stop, as a service manager expects
    finally:
        with_pids = [int(line.split()[0]) for line in processes_of(airflow_home)]
        for pid in with_pids:
            os.kill(pid, signal.SIGKILL)
