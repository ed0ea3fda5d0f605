"""The supervisor of a local Airflow (include/devtools/components.py): a component that dies is started again,
and a stop leaves nothing behind, not even a process its component put in a group of its own.

Issue 17: under `airflow standalone` the triggerer died of "database is locked", was left defunct and never
started again; from then on every deferred task waited for ever.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from include.devtools.components import Components

pytestmark = pytest.mark.integration

# A component that runs until stopped, and starts a child in a process group of its own, as Airflow's task
# runners are; it writes the child's pid where the test reads it.
RUNS = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], process_group=0)
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""
DIES = "import time; time.sleep(0.5); raise SystemExit(3)"  # a component that exits by itself
# One that ignores SIGTERM, and says so once it does (a SIGTERM before that would end it after all).
STUBBORN = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open(sys.argv[1], 'w').write('ignoring'); time.sleep(600)"
)


@dataclass
class Fake(Components):
    """Components whose commands are small Python programs instead of Airflow's."""

    programs: dict[str, list[str]] | None = None

    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-c", *self.programs[name]], self.env


def wait_until(check, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_a_component_that_dies_is_started_again_and_logged(tmp_path: Path):
    components = Fake(tmp_path / "logs", dict(os.environ), programs={"triggerer": [DIES]})
    components.start("triggerer")
    with components.watched():
        assert wait_until(lambda: components.restarts.count("triggerer") >= 2)
    assert components.stop_all(grace=5)
    log = (tmp_path / "logs" / "triggerer.log").read_text(encoding="utf-8")
    assert "[看护进程] triggerer 已退出（返回码 3），重新启动" in log


def test_a_stop_leaves_no_process_even_in_a_group_of_its_own(tmp_path: Path):
    pid_file, ignoring = tmp_path / "child.pid", tmp_path / "ignoring"
    components = Fake(
        tmp_path / "logs",
        dict(os.environ),
        programs={"scheduler": [RUNS, str(pid_file)], "api-server": [STUBBORN, str(ignoring)]},
    )
    components.start("scheduler")
    components.start("api-server")
    assert wait_until(lambda: pid_file.exists() and pid_file.read_text() and ignoring.exists())
    child = int(pid_file.read_text())
    leaders = [process.pid for process in components.processes.values()]
    assert os.getpgid(child) == child != os.getpgid(leaders[0])  # the child is not in its parent's group
    clean = components.stop_all(grace=2)
    assert clean is False  # the stubborn one ignored SIGTERM and was killed
    for pid in [child, *leaders]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    assert components.processes == {}
