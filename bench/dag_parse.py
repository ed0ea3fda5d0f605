"""How long each DAG file takes to parse, against a bare interpreter and against Airflow's own import.

Every figure is the median of several fresh processes:
- bare:     ``python -c ''`` (the named alternative: the interpreter alone);
- airflow:  ``python -c 'from airflow.sdk import DAG'``, what any DAG file pays and the
            dag-processor pays once;
- file:     ``python dags/FILE`` (Airflow's import plus this file's own work);
- parse:    in a process that has already imported Airflow, the time to execute the file, which
            is what the dag-processor spends on it at every parse.
The goal of the foundation issue: a DAG file's own parse cost under 0.5 s.

Then the modules each file (and the plugin) pulls in beyond Airflow's SDK, here and at an earlier commit
(``--against``, by default the last one before include/ was split into packages): the project's own, whether the
ORM (SQLAlchemy's ``orm``, the store's models, Alembic) is among them, and the web framework (FastAPI, Starlette).
A DAG file builds objects from calendars; it has no business loading the store, and the plugin, which every
Airflow process loads, none loading the web app only the api-server serves.

Run: ``make bench`` (or ``.venv/bin/python bench/dag_parse.py [--runs N] [--against REV]``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARSE = """
import runpy, sys, time
from airflow.sdk import DAG
start = time.perf_counter()
runpy.run_path(sys.argv[1])
print(time.perf_counter() - start)
"""
MODULES = """
import json, runpy, sys
from airflow.sdk import DAG
before = set(sys.modules)
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""
ORM = ("sqlalchemy.orm", "include.store", "alembic")
WEB = ("fastapi", "starlette", "include.web.app")
BEFORE_PACKAGES = "dc3d946"  # the last commit with include/'s flat layout


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", default=BEFORE_PACKAGES, help="an earlier commit whose DAG files' imports to show")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    python = sys.executable

    bare = median([wall([python, "-c", ""], env) for _ in range(args.runs)])
    airflow = median([wall([python, "-c", "from airflow.sdk import DAG"], env) for _ in range(args.runs)])
    print(f"{'file':<28}{'bare':>8}{'airflow':>9}{'file':>8}{'parse':>8}{'beyond airflow':>16}{'file/bare':>11}")
    worst = 0.0
    for file in sorted((ROOT / "dags").glob("*.py")):
        whole = median([wall([python, str(file)], env) for _ in range(args.runs)])
        parse = median(
            [
                float(
                    subprocess.run(
                        [python, "-c", PARSE, str(file)], env=env, check=True, capture_output=True, text=True
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                for _ in range(args.runs)
            ]
        )
        beyond = whole - airflow
        worst = max(worst, parse, beyond)
        print(
            f"{file.name:<28}{bare:>8.3f}{airflow:>9.3f}{whole:>8.3f}{parse:>8.3f}{beyond:>16.3f}{whole / bare:>10.0f}x"
        )
    verdict = "within" if worst < 0.5 else "OVER"
    print(f"seconds, median of {args.runs}; worst own parse cost {worst:.3f} s: {verdict} the 0.5 s goal")
    print()
    from worktree import worktree

    with worktree(args.against) as earlier:
        # and the plugin, which every Airflow process loads: it mounts the web app, built at its first request
        for file in [*sorted((ROOT / "dags").glob("*.py")), ROOT / "plugins" / "campaign_plugin.py"]:
            relative = file.relative_to(ROOT)
            for label, root in ((args.against[:7], earlier), ("now", ROOT)):
                if (root / relative).exists():
                    show_modules(f"{file.name} at {label}", root, root / relative, env)


def show_modules(label: str, root: Path, file: Path, env: dict[str, str]) -> None:
    """The modules ``file`` imports beyond Airflow's SDK, run from the checkout at ``root``."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", MODULES, str(file)],
        # without the local runs' SQLite tuning (scripts/env.sh), whose module an earlier checkout has elsewhere
        env={**{k: v for k, v in env.items() if "SQL_ALCHEMY_CONNECT_ARGS" not in k}, "PYTHONPATH": str(root)},
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    project = [name for name in modules if name.startswith("include")]
    orm = [name for name in modules if name.startswith(ORM)]
    web = [name for name in modules if name.startswith(WEB)]
    print(
        f"{label}: {len(modules)} modules beyond Airflow's SDK, {len(project)} of the project; "
        f"ORM: {len(orm)}; web framework: {len(web)}"
    )
    print("  project: " + " ".join(project))
    if orm:
        print("  ORM:     " + " ".join(orm[:12]) + (" …" if len(orm) > 12 else ""))


if __name__ == "__main__":
    main()
