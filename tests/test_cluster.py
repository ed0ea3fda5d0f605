"""A real multi-worker Airflow (issue 7): CeleryExecutor with two workers, PostgreSQL as Airflow's metadata database
and as the campaign store, Redis as the broker (include/devtools/cluster.py), and the fault drills.

Seed 000's calendar: "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办" (completion reports),
"12月31日24时关闭信息系统" (the closing); the validation stages are the province's problem lists.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pendulum
import pytest
from sqlalchemy import func, select

from include.calendar import read_calendar
from include.calendar.compress import compress, to_yaml
from include.devtools.cluster import START_POSTGRES, _postgres_up, prepare, running
from include.devtools.local_airflow import airflow_env, free_port, get_json, wait_for
from include.devtools.simulation import RUN_SPECIFIC
from include.door.tokens import issue_token
from include.paths import CONFIG_CAMPAIGNS
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry, Report
from tests.conftest import simulate

pytestmark = pytest.mark.airflow
CITIES = [unit.code for unit in read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml").unit_list]


def same_play(outcome: dict) -> dict:
    """What two runs of the same play must agree on: the outcome without where and how each ran."""
    return {key: value for key, value in outcome.items() if key not in RUN_SPECIFIC}


def test_a_celery_run_on_postgres_gives_the_same_outcome_as_the_sqlite_run(tmp_path, sqlite_simulation):
    """The same play on two workers: every state, gate and trigger as on `airflow standalone` with SQLite, and the
    16 problem lists of each validation stage spread over both workers."""
    result, outcome = simulate(tmp_path, "--executor", "celery", "--workers", "2")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[-1].startswith("模拟结果：通过")
    spread = next(line for line in result.stdout.splitlines() if line.startswith("数据校验 3 次运行"))
    assert "48 个问题清单任务" in spread and "worker-1" in spread and "worker-2" in spread
    assert sqlite_simulation[1] is not None, "the SQLite run wrote no outcome"
    assert same_play(outcome) == same_play(sqlite_simulation[1])


def test_a_scheduler_killed_mid_campaign_misses_no_deadline_action_and_does_none_twice(tmp_path, sqlite_simulation):
    """SIGKILL 3 s before the analysis phase (entry window closing, completion reports due, validation trigger),
    back 15 s later: the outcome is the SQLite run's, each window closed once, each trigger made once."""
    result, outcome = simulate(tmp_path, "--executor", "celery", "--drill", "restart-scheduler")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert any(line.startswith("演练：") and "杀掉 scheduler" in line for line in result.stdout.splitlines())
    assert same_play(outcome) == same_play(sqlite_simulation[1])


def _post(cluster, campaign: str, unit: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{cluster.base}/campaign/api/reports",
        headers={"Authorization": f"Bearer {token}"},
        data={"campaign": campaign, "unit": unit, "milestone": "completion_report"},
        files={"file": ("completion_report.pdf", f"{unit} 动态管理工作开展情况".encode(), "application/pdf")},
        timeout=60,
    )


def test_postgres_stopped_during_submissions_refuses_clearly_and_keeps_nothing_half_written(tmp_path):
    """PostgreSQL stops for 30 s while cities send their completion reports: each attempt meanwhile gets a 503
    with a Chinese message and leaves no file and no row; once it is back every report goes in, once."""
    env = airflow_env(tmp_path, free_port())
    cluster = prepare(tmp_path / "cluster", env, workers=1)
    calendar = compress(
        read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml"),
        pendulum.now("UTC").subtract(minutes=30),
        pendulum.duration(hours=3),
        "drill-2020-shandong",
    )
    home = Path(cluster.env["CAMPAIGN_HOME"])
    (home / "campaigns").mkdir(parents=True)
    (home / "campaigns" / f"{calendar.id}.yaml").write_text(to_yaml(calendar), encoding="utf-8")
    engine = make_engine(upgrade(cluster.store_url))
    tokens = {city: issue_token(engine, city, pendulum.now("UTC"))[1] for city in CITIES}
    before, during, after = CITIES[:5], CITIES[5:10], CITIES[10:]
    with running(cluster):
        assert [_post(cluster, calendar.id, city, tokens[city]).status_code for city in before] == [201] * 5
        subprocess.run(START_POSTGRES.replace(" start", " stop -m fast"), shell=True, check=True)
        try:
            stopped = time.monotonic()
            refused = [_post(cluster, calendar.id, city, tokens[city]) for city in during]
            assert [response.status_code for response in refused] == [503] * 5, [r.text for r in refused]
            assert all("战役数据库暂时无法连接" in r.json()["message"] for r in refused)
            assert all(r.headers["Retry-After"] == "30" for r in refused)
            time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        finally:
            subprocess.run(START_POSTGRES, shell=True, check=True)
        wait_for(lambda: _postgres_up() or None, 60, "PostgreSQL 重新启动")
        answers = [_post(cluster, calendar.id, city, tokens[city]).status_code for city in during + after]
        assert answers == [201] * len(during + after)
        health = wait_for(
            lambda: (
                (body := get_json(f"{cluster.base}/api/v2/monitor/health"))["metadatabase"]["status"] == "healthy"
                and body
            ),
            120,
            "Airflow 重新连上元数据库",
        )
        assert health["scheduler"]["status"] == "healthy" or "scheduler" in cluster.restarts
        with session_scope(engine) as session:  # while the cluster's databases exist
            rows = session.execute(select(Report.unit, Report.version, Report.file_path)).all()
            accepted = session.execute(
                select(AuditEntry.unit, func.count()).where(AuditEntry.action == "accepted").group_by(AuditEntry.unit)
            ).all()
        engine.dispose()
    assert sorted(unit for unit, _, _ in rows) == sorted(CITIES)
    assert {version for _, version, _ in rows} == {1}
    assert dict(accepted) == dict.fromkeys(CITIES, 1)
    files = sorted(str(path) for path in (home / "reports").rglob("*") if path.is_file())
    assert files == sorted(path for _, _, path in rows), "a file without its row, or a row without its file"


def test_a_worker_killed_mid_validation_has_its_tasks_retried_on_the_other_with_the_same_results(tmp_path):
    """Verification for four cities' data on two workers; the worker running a task is killed (SIGKILL, its task
    processes with it). The scheduler fails the orphaned task after the heartbeat timeout and it runs again on
    the other worker; every city's problem count is what a plain `campaign validate` of the same data gives."""
    env = airflow_env(tmp_path, free_port())
    cluster = prepare(tmp_path / "cluster", env, workers=2)
    campaign = [sys.executable, "-m", "include.cli.main"]
    synth = tmp_path / "synth"
    with_data = CITIES[:4]
    steps = [
        ["synth", "--campaign", "2020-shandong", "--households", "80", "--defect-rate", "0.4", "--seed", "7",
         "--out", str(synth), "--units", ",".join(with_data)],
    ]  # fmt: skip
    for city in with_data:
        steps += [
            ["report", "submit", "--campaign", "2020-shandong", "--unit", city, "--milestone", "completion_report",
             "--at", "2020-11-12T10:00+08:00"],
            ["ingest", str(synth / f"2020-shandong-2020-1-{city}.xlsx"), "--campaign", "2020-shandong", "--unit",
             city, "--at", "2020-11-20T10:00+08:00"],
        ]  # fmt: skip
    upgrade(cluster.store_url)
    for args in steps:
        done = subprocess.run([*campaign, *args], env=cluster.env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    at = "2020-12-12T09:00+08:00"
    with running(cluster):
        base = cluster.base
        wait_for(lambda: get_json(f"{base}/api/v2/dags/validation")["dag_id"], 180, "校验 DAG 解析完成")
        conf = {"campaign": "2020-shandong", "unit": "all", "stage": "verification", "at": at}
        run_id = "drill__verification"
        httpx.post(
            f"{base}/api/v2/dags/validation/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
            timeout=30,
        ).raise_for_status()
        tasks_url = f"{base}/api/v2/dags/validation/dagRuns/{run_id}/taskInstances"

        def running_task() -> dict | None:
            tis = get_json(tasks_url, limit=100)["task_instances"]
            return next((ti for ti in tis if ti["state"] == "running" and ti["hostname"].startswith("worker-")), None)

        def frozen_mid_task() -> dict | None:
            """A task running on a worker, with that worker frozen before the task could finish: a task of 80
            households takes a second or two, and one killed just after it finished would not be retried."""
            seen = running_task()
            if seen is None:
                return None
            cluster.freeze(seen["hostname"])
            time.sleep(2)  # a success already on its way to the api-server lands first
            try:
                ti = get_json(f"{tasks_url}/{seen['task_id']}/{seen['map_index']}")
            except httpx.HTTPError:
                ti = {}
            if ti.get("state") == "running" and ti.get("try_number") == seen["try_number"]:
                return seen
            cluster.freeze(seen["hostname"], signal.SIGCONT)
            return None

        victim = wait_for(frozen_mid_task, 300, "一个正在运行的校验任务", cluster.home / "scheduler.log")
        cluster.stop(victim["hostname"], signal.SIGKILL)
        survivor = next(f"worker-{n}" for n in (1, 2) if f"worker-{n}" != victim["hostname"])

        def finished() -> dict | None:
            run = get_json(f"{base}/api/v2/dags/validation/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = wait_for(finished, 600, "校验运行结束", cluster.home / "scheduler.log")
        tis = get_json(tasks_url, limit=100)["task_instances"]
        again = next(ti for ti in tis if (ti["task_id"], ti["map_index"]) == (victim["task_id"], victim["map_index"]))
        counts = {}
        for ti in tis:
            if ti["map_index"] >= 0:
                xcom = get_json(
                    f"{base}/api/v2/dags/validation/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries/"
                    f"return_value",
                    map_index=ti["map_index"],
                )
                value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
                counts[value["unit"]] = value["problems"]
        reference = subprocess.run(  # the same data and stage, validated plainly (while the store exists)
            [*campaign, "validate", "--campaign", "2020-shandong", "--stage", "verification", "--at", at, "--out",
             str(tmp_path / "reference"), "--json"],
            env=cluster.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert run["state"] == "success", cluster.log_tail()
    assert again["try_number"] >= 2 and again["hostname"] == survivor and again["state"] == "success"
    assert reference.returncode == 0, reference.stderr
    by_unit = json.loads(reference.stdout)["summary"]["by_unit"]
    assert counts == {city: by_unit.get(city, 0) for city in CITIES}
    assert all(counts[city] > 0 for city in with_data)
    lists = Path(cluster.env["CAMPAIGN_HOME"]) / "problem-lists" / "2020-shandong" / "verification"
    assert len(list(lists.glob("*.xlsx"))) == len(CITIES)
