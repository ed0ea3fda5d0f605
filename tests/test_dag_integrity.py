"""The DAG folder: no import errors, one DAG per calendar, no DB or network at parse time."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest
from airflow.dag_processing.dagbag import DagBag

from include.calendar import read_calendar
from include.orchestration.instant_sensor import CalendarInstantSensor
from include.orchestration.timetable import CampaignTimetable
from include.orchestration.validation_trigger import TriggerDagRun
from include.paths import CONFIG_CAMPAIGNS
from include.rules.stages import STAGES
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

PLANS = ["2017-shanxi", "2020-chongqing-longju", "2020-shandong", "2023-zibo-jixia"]
ALL_DAGS = sorted([*PLANS, *(f"{plan}-reminders" for plan in PLANS), "validation"])


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(str(ROOT / "dags"))


def test_no_import_errors_and_one_dag_per_calendar(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ALL_DAGS


@pytest.mark.parametrize("plan", PLANS)
def test_every_calendar_instant_is_a_task_at_that_instant(dagbag, plan):
    calendar = read_calendar(CONFIG_CAMPAIGNS / f"{plan}.yaml")
    dag = dagbag.dags[plan]
    sensors = {task.instant_key: task for task in dag.tasks if isinstance(task, CalendarInstantSensor)}
    assert sorted(sensors) == sorted(key for key, _ in calendar.instants())
    for key, instant in calendar.instants():
        assert sensors[key].due_at == instant, key
    assert isinstance(dag.timetable, CampaignTimetable)
    assert (dag.timetable.starts, dag.timetable.ends) == (calendar.starts, calendar.ends)
    assert "campaign" in dag.tags
    assert calendar.name in dag.doc_md


def test_phases_are_task_groups_with_chinese_names(dagbag):
    dag = dagbag.dags["2020-shandong"]
    groups = dag.task_group.children
    # The grid lists the phases in the plan's order (Airflow's topological grid sorting).
    assert [node.node_id for node in dag.task_group.topological_sort()] == [
        "training",
        "collection",
        "entry",
        "analysis",
        "verification",
        "completion",
        "summary",
        "system_close",
    ]
    assert groups["entry"].group_display_name == "数据录入和系统操作"
    entry_tasks = sorted(task.task_id for task in dag.tasks if task.task_id.startswith("entry."))
    assert entry_tasks == [
        "entry.due_completion_report",
        "entry.due_entry_done",
        "entry.ends",
        "entry.gate_completion_report",
        "entry.gate_entry_done",
        "entry.starts",
        "entry.window_entry_closes",
        "entry.window_entry_opens",
    ]
    close = dag.get_task("system_close")
    assert close.task_display_name == "关闭信息系统（2020-12-31 24:00）"


@pytest.mark.parametrize("plan", PLANS)
def test_one_gate_per_reporting_milestone_mapped_over_its_units(dagbag, plan):
    calendar = read_calendar(CONFIG_CAMPAIGNS / f"{plan}.yaml")
    dag = dagbag.dags[plan]
    gates = {task.task_id.split(".")[-1]: task for task in dag.tasks if task.task_id.split(".")[-1].startswith("gate_")}
    expected = {f"gate_{item.id}": item for item in calendar.milestones if calendar.reporters_of(item) or item.verified}
    below = {f"gate_{item.id}": item for item in calendar.milestones if item.level == "county"}
    assert sorted(gates) == sorted(expected | below)
    for task_id, gate in gates.items():
        assert gate.partial_kwargs["map_index_template"] == "{{ gate_label | default(task.unit_names[task.unit]) }}"
        if task_id in expected:
            gated = expected[task_id]  # a gate on data waits on every unit that gets the list
            assert gate.expand_input.value["unit"] == (
                calendar.owers(gated) if gated.verified else calendar.reporters_of(gated)
            )
            assert gate.partial_kwargs["below"] is None
            continue
        # a county-level milestone: one gate per city, waiting for the city's own counties
        assert gate.expand_input.value["unit"] == calendar.unit_codes
        counties = gate.partial_kwargs["below"]
        assert sum(len(codes) for codes in counties.values()) == len(calendar.tree.at_level("county"))
        assert all(code[:4] == city[:4] for city, codes in counties.items() for code in codes)


def test_shanxi_asks_the_province_to_approve_each_city(dagbag):
    """Seed 002: cities apply (数据录入申请书); the province opens the entry function per city."""
    approve = dagbag.dags["2017-shanxi"].get_task("entry.approve_entry")
    assert approve.expand_input.value["unit"] == [f"14{n:02d}00" for n in range(1, 12)]
    assert approve.partial_kwargs["application"] == "entry_application"
    assert not any(task.task_id.endswith("approve_entry") for task in dagbag.dags["2020-shandong"].tasks)


def test_doc_md_shows_the_calendar_in_local_time(dagbag):
    doc = dagbag.dags["2020-shandong"].doc_md
    assert "| `entry` | 数据录入和系统操作 | 2020-11-11 00:00 | 2020-11-30 24:00 |" in doc
    assert "系统关闭：**2020-12-31 24:00**" in doc


PARSE_PROBE = textwrap.dedent(
    """
    import json, socket, sqlite3, sys
    counts = {"queries": 0, "sockets": 0, "sqlite_connects": 0, "connections": 0}
    real_connect, real_sqlite = socket.socket.connect, sqlite3.connect
    def count_socket(self, *a, **k):
        counts["sockets"] += 1
        return real_connect(self, *a, **k)
    def count_sqlite(*a, **k):
        counts["sqlite_connects"] += 1
        return real_sqlite(*a, **k)
    socket.socket.connect = count_socket
    sqlite3.connect = count_sqlite
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    @event.listens_for(Engine, "before_cursor_execute")
    def count_query(*a, **k):
        counts["queries"] += 1
    from airflow.sdk import BaseHook
    def no_connection(*a, **k):
        counts["connections"] += 1
        raise RuntimeError("parse-time connection")
    BaseHook.get_connection = classmethod(no_connection)
    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(sys.argv[1])
    print(json.dumps({"counts": counts, "dags": sorted(bag.dag_ids), "errors": list(bag.import_errors)}))
    """
)


def test_parsing_makes_no_query_and_opens_no_connection():
    result = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(ROOT / "dags")], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["dags"] == ALL_DAGS
    assert report["counts"] == {"queries": 0, "sockets": 0, "sqlite_connects": 0, "connections": 0}


def test_the_plugin_loads_without_the_web_app():
    # Every Airflow process loads the plugin; only the api-server serves the app, at its first request.
    probe = (
        "import json, runpy, sys\n"
        "runpy.run_path(sys.argv[1])\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.startswith(('include.web', 'fastapi')))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "plugins" / "campaign_plugin.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "include.web",
        "include.web.mount",
        "include.web.ui_timezone",
    ]


def test_an_invalid_calendar_shows_its_problems_and_hides_no_other_campaign(tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    (home / "campaigns").mkdir(parents=True)
    (home / "campaigns" / "broken.yaml").write_text("id: broken\n", encoding="utf-8")
    monkeypatch.setenv("CAMPAIGN_HOME", str(home))
    bag = DagBag(str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted([*ALL_DAGS, "calendar-error-broken"])
    error_dag = bag.dags["calendar-error-broken"]
    assert error_dag.dag_display_name == "日历文件有误：broken.yaml"
    assert "- `phases`：缺少必填字段" in error_dag.doc_md
    assert set(error_dag.tags) == {"calendar-error"}


def test_a_calendar_whose_system_closes_before_it_starts_is_refused(tmp_path, monkeypatch, run_cli):
    import yaml

    raw = yaml.load((CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    raw["system_close"]["at"] = "2020-09-01T00:00+08:00"
    file = tmp_path / "early.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    code, out, _ = run_cli("calendar", "check", file)
    assert code == 1
    assert f"{file}: system_close.at: 系统关闭时间不晚于第一个阶段的开始时间" in out.splitlines()


def test_validation_dag_is_triggered_with_campaign_unit_and_stage(dagbag):
    dag = dagbag.dags["validation"]
    assert dag.dag_display_name == "数据校验与问题清单"
    assert type(dag.timetable).__name__ == "NullTimetable", "triggered by ops, never scheduled"
    params = dag.params
    assert params["unit"] == "all"
    assert params["stage"] == "analysis"
    assert params.get_param("campaign").schema["enum"] == PLANS
    assert params.get_param("stage").schema["enum"] == ["analysis", "verification", "completion"]
    assert "重跑某个市的核查阶段" in dag.doc_md and "verification" in dag.doc_md
    assert [task.task_id for task in dag.tasks] == ["find_problems", "unit_problem_list"]


@pytest.mark.parametrize("plan", PLANS)
def test_validation_stages_trigger_the_validation_dag_at_their_start(dagbag, plan):
    """Issue: the campaign DAG triggers validation at the start of analysis, verification and completion."""
    from include.calendar.instants import local_iso

    calendar = read_calendar(CONFIG_CAMPAIGNS / f"{plan}.yaml")
    dag = dagbag.dags[plan]
    triggers = {task.task_id: task for task in dag.tasks if isinstance(task, TriggerDagRun)}
    stages = [phase for phase in calendar.phases_in_order() if phase.id.value in STAGES]
    assert sorted(triggers) == sorted(f"{phase.id.value}.trigger_validation" for phase in stages)
    for phase in stages:
        stage = phase.id.value
        trigger = triggers[f"{stage}.trigger_validation"]
        assert trigger.task_group.group_id == stage
        assert trigger.upstream_task_ids == {f"{stage}.starts"}
        assert trigger.downstream_task_ids == set(), "a leaf: a failed trigger holds up no deadline"
        assert trigger.trigger_dag_id == "validation"
        assert trigger.conf == {"campaign": plan, "unit": "all", "stage": stage, "at": local_iso(phase.starts)}
        assert trigger.trigger_run_id == f"{plan}__{stage}__{{{{ run_id }}}}"
        assert trigger.skip_when_already_exists and not trigger.wait_for_completion
        assert trigger.logical_date is None
        assert trigger.task_display_name == f"触发数据校验：{phase.name}"
    # The conf is one the validation DAG accepts.
    for trigger in triggers.values():
        params = copy.deepcopy(dagbag.dags["validation"].params)
        params.update(trigger.conf)
        assert params.validate() == trigger.conf


def test_shandong_triggers_validation_at_each_of_its_three_stages(dagbag):
    from airflow.serialization.serialized_objects import DagSerialization

    dag = dagbag.dags["2020-shandong"]
    triggers = sorted(task.task_id for task in dag.tasks if task.task_id.endswith(".trigger_validation"))
    assert triggers == [f"{stage}.trigger_validation" for stage in sorted(STAGES)]
    # The scheduler and the UI see the serialized DAG: the trigger must survive serialization.
    restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    trigger = restored.get_task("verification.trigger_validation")
    assert trigger.task_display_name == "触发数据校验：问题数据核查"
    assert trigger.upstream_task_ids == {"verification.starts"}
