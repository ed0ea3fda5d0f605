"""Compressed campaigns run by a real Airflow: through `dag.test()`, and by its components under the watchdog.

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
from include.calendar.instants import local_iso
from include.devtools.local_airflow import airflow_env, free_port, local_airflow, wait_for
from include.orchestration.instant_sensor import CalendarInstantSensor
from include.rules.stages import STAGES
from include.store.db import make_engine
from include.store.events import passed_instants
from include.web.ui_timezone import SCRIPT
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

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
    """Every unit reports (or declares) every milestone it owes just before its due instant, the counties theirs
    too; units in ``late`` (unit → milestone) report that one just after it. The received instants lie ahead: gates
    see each when its time comes."""
    from include.door.submissions import VERIFIED_BY, Actor, submit_report

    late = late or {}
    calendar = read_calendar(calendar_file)
    engine = make_engine(f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}")
    for milestone in calendar.milestones:
        for unit in calendar.owers(milestone):
            shift = 0.5 if late.get(unit) == milestone.id else -0.5
            submit_report(
                engine,
                calendar,
                unit=unit,
                milestone_id=milestone.id,
                at=milestone.due.add(seconds=shift),
                # a gate on data is recorded by the system once the unit's list is answered: here as if it were
                actor=Actor(VERIFIED_BY if milestone.verified else "test"),
            )
    engine.dispose()


def assert_every_instant_passed_once(env: dict[str, str], calendar_file: Path, finished: dict[str, str]) -> None:
    """``finished`` maps task_id to the task's end_date (ISO) as Airflow recorded it, for every unmapped task:
    the calendar's instants and the validation triggers."""
    from include.orchestration.dag_factory import build_dag

    calendar = read_calendar(calendar_file)
    dag = build_dag(calendar)
    instants = [task for task in dag.tasks if isinstance(task, CalendarInstantSensor)]
    triggers = [f"{stage}.trigger_validation" for stage in STAGES]
    assert sorted(finished) == sorted([*(task.task_id for task in instants), *triggers])
    for task in instants:
        assert pendulum.parse(finished[task.task_id]) >= task.due_at, task.task_id

    engine = make_engine(f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}")
    rows = passed_instants(engine, calendar.id)
    engine.dispose()
    assert sorted(row.key for row in rows) == sorted(key for key, _ in calendar.instants())
    assert all(row.recorded_at >= row.due_at for row in rows)


def expected_validation_runs(calendar_file: Path, campaign_run_id: str) -> dict[str, dict[str, str]]:
    """The validation runs a campaign run triggers, by run id: one per stage, for all units, at the stage's start."""
    calendar = read_calendar(calendar_file)
    return {
        f"{calendar.id}__{phase.id.value}__{campaign_run_id}": {
            "campaign": calendar.id,
            "unit": "all",
            "stage": phase.id.value,
            "at": local_iso(phase.starts),
        }
        for phase in calendar.phases_in_order()
        if phase.id.value in STAGES
    }


def run_script(script: str, env: dict[str, str], *args: str) -> object:
    """Run an Airflow script against the project's dags/ in ``env``; its last stdout line is JSON."""
    result = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "dags"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


DAG_TEST = textwrap.dedent(
    """
    import json, sys
    from sqlalchemy import select
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from include.calendar import read_calendar
    calendar = read_calendar(sys.argv[2])
    dag = DagBag(sys.argv[1]).dags[calendar.id]
    run = dag.test(logical_date=calendar.starts)
    tis = run.get_task_instances()
    with create_session() as session:
        triggered = {dr.run_id: [dr.conf, str(dr.run_type)]
            for dr in session.scalars(select(DagRun).where(DagRun.dag_id == "validation"))}
    print(json.dumps({"state": str(run.state), "run_id": run.run_id, "validation": triggered,
        "tasks": {ti.task_id: [str(ti.state), ti.end_date.isoformat()] for ti in tis if ti.map_index < 0},
        "gates": sorted([ti.task_id, ti.rendered_map_index, str(ti.state)] for ti in tis if ti.map_index >= 0)}))
    """
)


def test_compressed_campaign_through_dag_test(tmp_path):
    env = airflow_env(tmp_path, free_port())
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    calendar_file = compressed_campaign(env, "dagtest-shandong", delay=8, span="30s")
    play_reports(env, calendar_file, late={"370300": "completion_report"})

    report = run_script(DAG_TEST, env, str(calendar_file))
    assert report["state"] == "success"
    assert {state for state, _ in report["tasks"].values()} == {"success"}
    assert_every_instant_passed_once(env, calendar_file, {task: end for task, (_, end) in report["tasks"].items()})
    gates = report["gates"]
    assert len(gates) == 3 * 16 + 2 * 16  # three reports per city; the counties' entry and completion per city
    assert {state for _, _, state in gates} == {"success"}
    assert ["entry.gate_entry_done", "济南市 · 12/12 县区已完成", "success"] in gates
    assert ["entry.gate_completion_report", "淄博市 · 逾期", "success"] in gates
    assert ["entry.gate_completion_report", "济南市 · 按时", "success"] in gates
    assert sum(label.endswith("按时") for _, label, _ in gates) == 47
    # dag.test() syncs the whole DAG folder, so the validation DAG is there to be triggered (runs stay queued).
    expected = expected_validation_runs(calendar_file, report["run_id"])
    assert report["validation"] == {run_id: [conf, "operator_triggered"] for run_id, conf in expected.items()}


def test_two_minute_campaign_under_a_local_airflow(tmp_path):
    env = airflow_env(tmp_path, free_port())
    # Start 100 s from now: Airflow's DB is migrated and four components start first.
    calendar_file = compressed_campaign(env, "e2e-shandong", delay=100, span="2m")
    play_reports(env, calendar_file)
    calendar = read_calendar(calendar_file)
    with local_airflow(env, tmp_path / "logs") as airflow:
        base = f"{airflow.base}/api/v2"
        log = airflow.log("scheduler")
        # The campaign triggers the validation DAG at three stages; paused, its runs wait queued (the DAG itself
        # is run by test_validation_dag_reruns_one_citys_verification) and take no CPU from the campaign's timing.
        wait_for(
            lambda: httpx.patch(f"{base}/dags/validation", json={"is_paused": True}, timeout=10).status_code == 200,
            120,
            "the validation DAG to be parsed",
            log,
        )

        def finished_run():
            response = httpx.get(f"{base}/dags/e2e-shandong/dagRuns", timeout=10)
            runs = response.json().get("dag_runs", []) if response.status_code == 200 else []
            assert all(run["state"] != "failed" for run in runs), runs
            return next((run for run in runs if run["state"] == "success"), None)

        budget = (calendar.ends - pendulum.now("UTC")).total_seconds() + 240
        run = wait_for(finished_run, budget, "the compressed campaign to finish", log)
        assert run["logical_date"] == calendar.starts.isoformat().replace("+00:00", "Z")
        assert run["run_type"] == "scheduled"

        instances: list[dict] = []
        while True:  # at most 100 a page
            page = httpx.get(
                f"{base}/dags/e2e-shandong/dagRuns/{run['dag_run_id']}/taskInstances",
                params={"limit": 100, "offset": len(instances)},
                timeout=10,
            ).json()
            instances += page["task_instances"]
            if not page["task_instances"] or len(instances) >= page["total_entries"]:
                break
        assert {ti["state"] for ti in instances} == {"success"}
        finished = {ti["task_id"]: ti["end_date"] for ti in instances if ti["map_index"] < 0}
        assert_every_instant_passed_once(env, calendar_file, finished)
        gates = [ti for ti in instances if ti["map_index"] >= 0]
        assert len(gates) == 3 * 16 + 2 * 16
        labels = {ti["rendered_map_index"].split(" · ", 1)[1] for ti in gates}
        # every county on time; the verification counts its answers (no list here: 0/0)
        assert labels - {f"{n}/{n} 县区已完成" for n in range(1, 20)} == {"按时", "已核查 0/0 · 按时"}

        # The seed campaigns are over: shown in the UI, never run unless someone triggers them.
        # The UI's pages choose Beijing time where the user chose no zone (include/web/ui_timezone.py).
        ui_page = httpx.get(f"{airflow.base}/dags/e2e-shandong", timeout=10)
        assert ui_page.status_code == 200 and SCRIPT.decode() in ui_page.text, ui_page.text[:500]
        listed = httpx.get(f"{base}/dags", params={"limit": 100}, timeout=10).json()["dags"]
        assert {"2020-shandong", "2017-shanxi", "2020-chongqing-longju", "2023-zibo-jixia"} <= {
            dag["dag_id"] for dag in listed
        }
        seed_runs = httpx.get(f"{base}/dags/2020-shandong/dagRuns", timeout=10).json()
        assert seed_runs["total_entries"] == 0

        # Analysis, verification and completion each triggered the validation DAG once, for all units.
        validation = httpx.get(f"{base}/dags/validation/dagRuns", params={"limit": 100}, timeout=10).json()
        triggered = {item["dag_run_id"]: item for item in validation["dag_runs"]}
        expected = expected_validation_runs(calendar_file, run["dag_run_id"])
        assert {run_id: triggered[run_id]["conf"] for run_id in triggered} == expected
        assert {(item["run_type"], item["state"]) for item in triggered.values()} == {("operator_triggered", "queued")}


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
    campaign = [sys.executable, "-m", "include.cli.main"]
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
    report = run_script(VALIDATION_TEST, env, json.dumps(conf))
    assert report["state"] == "success"
    assert len(report["units"]) == 1
    label, state = report["units"][0]
    assert state == "success" and label.startswith("济南市 · ") and label.endswith("个问题")
    lists = Path(env["CAMPAIGN_HOME"]) / "problem-lists" / "2020-shandong" / "verification"
    assert [p.name for p in lists.iterdir()] == ["2020-shandong-verification-370100-问题清单.xlsx"]


REMINDERS_TEST = textwrap.dedent(
    """
    import json, sys
    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    dag = DagBag(sys.argv[1]).dags["2020-shandong-reminders"]
    states = []
    for _ in range(2):  # a rerun of the same day (dag.test replaces the day's run)
        run = dag.test(logical_date=pendulum.parse(sys.argv[2]))
        states.append([str(run.state), [str(ti.state) for ti in run.get_task_instances()]])
    print(json.dumps(states))
    """
)


def test_reminders_dag_sends_the_days_reminders_once_through_the_outbox(tmp_path):
    """12-02 09:00: 菏泽市 has not sent its completion report (seed 000: "11月11日至11月30日"); run twice."""
    env = airflow_env(tmp_path, free_port())
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    campaign = [sys.executable, "-m", "include.cli.main"]
    for city in ("370100", "370200", "370300", "370400", "370500", "370600", "370700", "370800", "370900", "371000",
                 "371100", "371300", "371400", "371500", "371600"):  # fmt: skip
        done = subprocess.run(
            [*campaign, "report", "submit", "--campaign", "2020-shandong", "--unit", city, "--milestone",
             "completion_report", "--at", "2020-11-20T10:00+08:00"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    runs = run_script(REMINDERS_TEST, env, "2020-12-02T09:00+08:00")
    assert runs == [["success", ["success"]], ["success", ["success"]]]
    sink = Path(env["CAMPAIGN_HOME"]) / "reminders" / "sink.jsonl"
    lines = [json.loads(line) for line in sink.read_text(encoding="utf-8").splitlines()]
    # the cities' cascade training and collection and the counties' data entry are undeclared here too: their
    # reminders go out as well; the completion report's are 菏泽市's and one digest to the province
    reports = [line for line in lines if "/completion_report/" in line["key"]]
    assert sorted((line["channel"], line["kind"]) for line in reports) == [
        ("dm-370000", "escalation_parent"),
        ("dm-371700", "overdue"),
    ]
    assert len({line["key"] for line in lines}) == len(lines), "the second run of the day sent nothing again"
    counties = [line for line in lines if "/entry_done/" in line["key"] and line["kind"] == "overdue"]
    assert len(counties) == 136
