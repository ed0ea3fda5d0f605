"""Compressed campaigns run by a real Airflow: through `dag.test()`, and by `airflow standalone`.

Each test makes a compressed copy of 2020-shandong that starts a few seconds from now (the test is
the outermost layer: it alone reads the clock) and checks that every task finished at or after
its calendar instant and that the campaign store recorded every instant once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pendulum
import pytest

from include.calendar import read_calendar
from include.instant_sensor import CalendarInstantSensor
from include.local_airflow import airflow_env, free_port, standalone, wait_for
from include.store.db import make_engine
from include.store.events import passed_instants
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def compressed_campaign(env: dict[str, str], campaign_id: str, delay: float, span: str) -> Path:
    start = pendulum.now("UTC").add(seconds=delay).replace(microsecond=0)
    out = Path(env["CAMPAIGN_HOME"]) / "campaigns" / f"{campaign_id}.yaml"
    subprocess.run(["campaign", "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            "campaign",
            "calendar",
            "compress",
            "2020-shandong",
            "--start",
            start.isoformat(),
            "--span",
            span,
            "--id",
            campaign_id,
            "--out",
            str(out),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def play_reports(env: dict[str, str], calendar_file: Path, late: dict[str, str] | None = None) -> None:
    """Every unit reports every milestone just before its due instant; units in ``late`` (unit → milestone)
    report that one just after it. The received instants lie ahead: gates see each when its time comes."""
    from include.submissions import Actor, submit_report

    late = late or {}
    calendar = read_calendar(calendar_file)
    engine = make_engine(f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}")
    for milestone in calendar.milestones:
        for unit in calendar.reporters_of(milestone):
            shift = 0.5 if late.get(unit) == milestone.id else -0.5
            submit_report(
                engine,
                calendar,
                unit=unit,
                milestone_id=milestone.id,
                at=milestone.due.add(seconds=shift),
                actor=Actor("test"),
            )
    engine.dispose()


def assert_every_instant_passed_once(env: dict[str, str], calendar_file: Path, finished: dict[str, str]) -> None:
    """``finished`` maps task_id to the task's end_date (ISO) as Airflow recorded it."""
    from include.dag_factory import build_dag

    calendar = read_calendar(calendar_file)
    dag = build_dag(calendar)
    instants = [task for task in dag.tasks if isinstance(task, CalendarInstantSensor)]
    assert sorted(finished) == sorted(task.task_id for task in instants)
    for task in instants:
        assert pendulum.parse(finished[task.task_id]) >= task._moment, task.task_id

    engine = make_engine(f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}")
    rows = passed_instants(engine, calendar.id)
    engine.dispose()
    assert sorted(row.key for row in rows) == sorted(key for key, _ in calendar.instants())
    assert all(row.recorded_at >= row.due_at for row in rows)


DAG_TEST = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from include.calendar import read_calendar
    calendar = read_calendar(sys.argv[2])
    dag = DagBag(sys.argv[1]).dags[calendar.id]
    run = dag.test(logical_date=calendar.starts)
    tis = run.get_task_instances()
    print(json.dumps({"state": str(run.state),
        "tasks": {ti.task_id: [str(ti.state), ti.end_date.isoformat()] for ti in tis if ti.map_index < 0},
        "gates": sorted([ti.task_id, ti.rendered_map_index, str(ti.state)] for ti in tis if ti.map_index >= 0)}))
    """
)


def test_compressed_campaign_through_dag_test(tmp_path):
    env = airflow_env(tmp_path, free_port())
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    calendar_file = compressed_campaign(env, "dagtest-shandong", delay=8, span="30s")
    play_reports(env, calendar_file, late={"370300": "completion_report"})

    result = subprocess.run(
        [sys.executable, "-c", DAG_TEST, str(ROOT / "dags"), str(calendar_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "success"
    assert {state for state, _ in report["tasks"].values()} == {"success"}
    assert_every_instant_passed_once(env, calendar_file, {task: end for task, (_, end) in report["tasks"].items()})
    gates = report["gates"]
    assert len(gates) == 3 * 16
    assert {state for _, _, state in gates} == {"success"}
    assert ["entry.gate_completion_report", "淄博市 · 逾期", "success"] in gates
    assert ["entry.gate_completion_report", "济南市 · 按时", "success"] in gates
    assert sum(label.endswith("按时") for _, label, _ in gates) == 47


@pytest.mark.airflow_e2e
def test_two_minute_campaign_under_airflow_standalone(tmp_path):
    env = airflow_env(tmp_path, free_port())
    # Start 100 s from now: standalone migrates its DB and starts four components first.
    calendar_file = compressed_campaign(env, "e2e-shandong", delay=100, span="2m")
    play_reports(env, calendar_file)
    calendar = read_calendar(calendar_file)
    log = tmp_path / "standalone.log"
    with standalone(env, log) as root:
        base = f"{root}/api/v2"

        def finished_run():
            response = httpx.get(f"{base}/dags/e2e-shandong/dagRuns", timeout=10)
            runs = response.json().get("dag_runs", []) if response.status_code == 200 else []
            assert all(run["state"] != "failed" for run in runs), runs
            return next((run for run in runs if run["state"] == "success"), None)

        budget = (calendar.ends - pendulum.now("UTC")).total_seconds() + 240
        run = wait_for(finished_run, budget, "the compressed campaign to finish", log)
        assert run["logical_date"] == calendar.starts.isoformat().replace("+00:00", "Z")
        assert run["run_type"] == "scheduled"

        response = httpx.get(
            f"{base}/dags/e2e-shandong/dagRuns/{run['dag_run_id']}/taskInstances", params={"limit": 100}, timeout=10
        )
        instances = response.json()["task_instances"]
        assert {ti["state"] for ti in instances} == {"success"}
        finished = {ti["task_id"]: ti["end_date"] for ti in instances if ti["map_index"] < 0}
        assert_every_instant_passed_once(env, calendar_file, finished)
        gates = [ti for ti in instances if ti["map_index"] >= 0]
        assert len(gates) == 3 * 16
        assert {ti["rendered_map_index"].split(" · ")[1] for ti in gates} == {"按时"}

        # The seed campaigns are over: shown in the UI, never run unless someone triggers them.
        listed = httpx.get(f"{base}/dags", params={"limit": 100}, timeout=10).json()["dags"]
        assert {"2020-shandong", "2017-shanxi", "2020-chongqing-longju", "2023-zibo-jixia"} <= {
            dag["dag_id"] for dag in listed
        }
        seed_runs = httpx.get(f"{base}/dags/2020-shandong/dagRuns", timeout=10).json()
        assert seed_runs["total_entries"] == 0


VALIDATION_TEST = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    dag = DagBag(sys.argv[1]).dags["validation"]
    run = dag.test(run_conf=json.loads(sys.argv[2]))
    tis = run.get_task_instances()
    print(json.dumps({"state": str(run.state),
        "units": sorted([ti.rendered_map_index, str(ti.state)] for ti in tis if ti.map_index >= 0)}))
    """
)


def test_validation_dag_reruns_one_citys_verification(tmp_path):
    """The doc_md's own recipe: unit 370100, stage verification; only 济南市's list is written."""
    env = airflow_env(tmp_path, free_port())
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    campaign = [sys.executable, "-m", "include.cli"]
    synth = tmp_path / "synth"
    for args in (
        ["synth", "--campaign", "2020-shandong", "--households", "60", "--defect-rate", "0.4", "--seed", "8",
         "--out", str(synth), "--units", "370100,370200"],
        ["report", "submit", "--campaign", "2020-shandong", "--unit", "370100", "--milestone", "completion_report",
         "--at", "2020-11-12T10:00+08:00"],
        ["ingest", str(synth / "2020-shandong-2020-1-370100.xlsx"), "--campaign", "2020-shandong", "--unit", "370100",
         "--at", "2020-11-20T10:00+08:00"],
    ):  # fmt: skip
        done = subprocess.run([*campaign, *args], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    conf = {"campaign": "2020-shandong", "unit": "370100", "stage": "verification", "at": "2020-12-12T09:00+08:00"}
    result = subprocess.run(
        [sys.executable, "-c", VALIDATION_TEST, str(ROOT / "dags"), json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "success"
    assert len(report["units"]) == 1
    label, state = report["units"][0]
    assert state == "success" and label.startswith("济南市 · ") and label.endswith("个问题")
    lists = Path(env["CAMPAIGN_HOME"]) / "problem-lists" / "2020-shandong" / "verification"
    assert [p.name for p in lists.iterdir()] == ["2020-shandong-verification-370100-问题清单.xlsx"]
