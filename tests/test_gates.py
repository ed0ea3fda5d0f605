"""The gate and approval operators against a real store, called as Airflow's task runner calls them.

Seed 002: "以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
"""

from __future__ import annotations

import pendulum
import pytest
from airflow.exceptions import TaskDeferred

from include.calendar import read_calendar
from include.calendar.instants import parse_instant
from include.door.submissions import Actor, submit_report
from include.door.windows import is_open
from include.orchestration.gates import ProvinceApproval, ReportGate, ReportTrigger
from include.paths import CONFIG_CAMPAIGNS
from include.store.db import make_engine, upgrade

pytestmark = pytest.mark.airflow

SHANXI = read_calendar(CONFIG_CAMPAIGNS / "2017-shanxi.yaml")
NAMES = {unit.code: unit.name for unit in SHANXI.unit_list}
TAIYUAN = "140100"


@pytest.fixture
def engine():
    engine = make_engine(upgrade())
    yield engine
    engine.dispose()


def gate(milestone_id: str, unit: str, gives_up_at) -> ReportGate:
    milestone = next(item for item in SHANXI.milestones if item.id == milestone_id)
    return ReportGate(
        task_id=f"gate_{milestone_id}",
        campaign_id=SHANXI.id,
        milestone=milestone_id,
        unit=unit,
        unit_names=NAMES,
        due=milestone.due,
        gives_up_at=gives_up_at,
        poll=2.0,
    )


def test_gate_finishes_on_time_or_late_by_the_first_report(engine):
    # "11月30日前完成线下工作，以市为单位上报“2017年度扶贫对象动态管理工作报告”。"
    submit_report(
        engine,
        SHANXI,
        unit=TAIYUAN,
        milestone_id="completion_report",
        at=parse_instant("2017-11-30T23:59:59.999+08:00"),
        actor=Actor("test"),
    )
    submit_report(
        engine,
        SHANXI,
        unit="140200",
        milestone_id="completion_report",
        at=parse_instant("2017-12-01T00:00:00+08:00"),
        actor=Actor("test"),
    )
    context: dict = {}
    closes = SHANXI.door_closes(SHANXI.milestones[1])
    assert gate("completion_report", TAIYUAN, closes).execute(context) == "on_time"
    assert context["gate_label"] == "太原市 · 按时"
    assert gate("completion_report", "140200", closes).execute(context) == "late"
    assert context["gate_label"] == "大同市 · 逾期"


def test_gate_defers_while_waiting_and_fails_as_missing_after_the_door(engine):
    with pytest.raises(TaskDeferred) as deferred:
        gate("sampling_report", TAIYUAN, pendulum.now("UTC").add(days=1)).execute({})
    assert isinstance(deferred.value.trigger, ReportTrigger)
    assert deferred.value.method_name == "report_in"
    context: dict = {}
    with pytest.raises(RuntimeError, match="太原市未在 2017-12-20 24:00 前报送“sampling_report”"):
        gate("sampling_report", TAIYUAN, SHANXI.system_close.at).report_in(context, {"received_at": None})
    assert context["gate_label"] == "太原市 · 未报送"


def approval(unit: str) -> ProvinceApproval:
    return ProvinceApproval(
        task_id="approve_entry",
        campaign_id=SHANXI.id,
        window="entry",
        application="entry_application",
        unit=unit,
        unit_names=NAMES,
        gives_up_at=SHANXI.entry_windows[0].closes,
        poll=2.0,
        subject="批准开通数据录入功能？",
    )


def test_approval_waits_for_the_application_then_records_the_decision(engine):
    with pytest.raises(TaskDeferred) as deferred:
        approval(TAIYUAN).execute({})
    assert deferred.value.method_name == "application_in"
    for milestone in ("completion_report", "entry_application"):
        submit_report(
            engine,
            SHANXI,
            unit=TAIYUAN,
            milestone_id=milestone,
            at=parse_instant("2017-11-20T10:00+08:00"),
            actor=Actor("test"),
        )
    decided = parse_instant("2017-11-22T09:00+08:00")
    event = {
        "chosen_options": ["Approve"],
        "params_input": {},
        "responded_at": decided,
        "responded_by_user": {"id": "1", "name": "省脱贫攻坚办"},
    }
    context: dict = {}
    approval(TAIYUAN).execute_complete(context, event)
    assert context["gate_label"] == "太原市 · 已批准"
    assert is_open(engine, SHANXI, "entry", TAIYUAN, parse_instant("2017-11-22T09:00+08:00"))

    for milestone in ("completion_report", "entry_application"):
        submit_report(
            engine,
            SHANXI,
            unit="140200",
            milestone_id=milestone,
            at=parse_instant("2017-11-20T10:00+08:00"),
            actor=Actor("test"),
        )
    approval("140200").execute_complete(context, event | {"chosen_options": ["Reject"]})
    assert context["gate_label"] == "大同市 · 已驳回"
    assert not is_open(engine, SHANXI, "entry", "140200", parse_instant("2017-11-23T09:00+08:00"))
