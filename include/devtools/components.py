"""Airflow's components as processes of their own, kept up by a watchdog: what ``docker/compose.yaml``'s
``restart: always`` does, on this machine.

``airflow standalone`` starts the same four components but never starts one again: under load its triggerer
died of "database is locked" and stayed dead, and every deferred task (the instants, the gates, the window
closings) waited for ever (issue 17). Here each component (api-server, scheduler, dag-processor, triggerer;
Celery workers for the cluster) runs in a process group of its own with its log under ``home``; the watchdog starts
again one that exits by itself; ``stop_all`` stops every process the components started, task runners
included (Airflow puts those in process groups of their own).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here: the child after fork must not load libraries


def _die_with_parent() -> None:
    """A component left behind by a killed run would go on running tasks: it dies with its supervisor."""
    _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Components:
    home: Path  # the components' logs: <name>.log
    env: dict[str, str]
    base: str = ""  # the api-server's URL once it answers
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)  # components the watchdog started again
    later: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, component) to start then

    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of a component."""
        if name == "api-server":
            return ["airflow", "api-server", "--port", self.env["AIRFLOW__API__PORT"]], self.env
        return ["airflow", name], self.env

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start(self, name: str) -> None:
        command, env = self.command(name)
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("ab") as sink:
            self.processes[name] = subprocess.Popen(
                command,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                process_group=0,  # a group of its own (stopped as one), in the supervisor's session
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

    def freeze(self, name: str, sig: int = signal.SIGSTOP) -> None:
        """Stop (SIGSTOP) or go on with (SIGCONT) a component and every process under it: a drill freezes a worker
        to see what it is running before it kills it, so that the task it kills cannot finish in between."""
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            leader = psutil.Process(self.processes[name].pid)
            for member in [leader, *leader.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(sig)

    def start_later(self, name: str, seconds: float) -> None:
        """Start a stopped component again after ``seconds`` (from the watchdog's thread, which outlives it)."""
        self.later.append((time.monotonic() + seconds, name))

    def watch(self, stop: threading.Event, every: float = 1.0) -> None:
        """A component that exits by itself (one that lost its database, say) is started again; one stopped
        through ``stop`` is not, unless ``start_later`` asks for it."""
        while not stop.wait(every):
            for name, process in list(self.processes.items()):
                if process.poll() is not None and self.processes.get(name) is process:
                    self.restarts.append(name)
                    with self.log(name).open("a", encoding="utf-8") as sink:
                        sink.write(f"\n[看护进程] {name} 已退出（返回码 {process.returncode}），重新启动\n")
                    self.start(name)
            for item in [item for item in self.later if item[0] <= time.monotonic()]:
                self.later.remove(item)
                self.start(item[1])

    @contextlib.contextmanager
    def watched(self) -> Iterator[None]:
        """The watchdog's thread, for the time of the block."""
        stop = threading.Event()
        watchdog = threading.Thread(target=self.watch, args=(stop,), daemon=True, name="watchdog")
        watchdog.start()
        try:
            yield
        finally:
            stop.set()
            watchdog.join(timeout=10)

    def stop_all(self, grace: float = 30) -> bool:
        """Stop every component and every process under them: SIGTERM to all, SIGKILL to what is left after
        ``grace`` seconds. True if all stopped on SIGTERM."""
        import psutil

        everyone: list[psutil.Process] = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                leader = psutil.Process(process.pid)
                everyone += [leader, *leader.children(recursive=True)]
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for member in everyone:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        _, alive = psutil.wait_procs(everyone, timeout=grace)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        return not alive

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {file.name}\n{file.read_text(errors='replace')[-chars:]}" for file in sorted(self.home.glob("*.log"))
        )
