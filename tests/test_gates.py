"""The gate and approval operators against a real store, called as Airflow's task runner calls them.

Seed 002: "以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
"""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import select

from include.calendar import read_calendar
from include.calendar.instants import parse_instant
from include.door.submissions import Actor, submit_report
from include.door.windows import is_open
from include.orchestration.gates import ProvinceApproval, ReportGate, ReportTrigger
from include.paths import CONFIG_CAMPAIGNS
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import Approval, AuditEntry

pytestmark = pytest.mark.airflow

SHANXI = read_calendar(CONFIG_CAMPAIGNS / "2017-shanxi.yaml")
NAMES = {unit.code: unit.name for unit in SHANXI.unit_list}
TAIYUAN, DATONG, JINCHENG = "140100", "140200", "140500"


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
    with pytest.raises(AirflowFailException, match="太原市未在 2017-12-20 24:00 前报送“sampling_report”"):
        gate("sampling_report", TAIYUAN, SHANXI.system_close.at).report_in(context, {"received_at": None})
    assert context["gate_label"] == "太原市 · 未报送"


def approval(unit: str, closes: dt.datetime | None = None) -> ProvinceApproval:
    """The approval task of ``unit``; its window closes (it gives up) a day from now unless ``closes`` says."""
    return ProvinceApproval(
        task_id="approve_entry",
        campaign_id=SHANXI.id,
        window="entry",
        application="entry_application",
        unit=unit,
        unit_names=NAMES,
        gives_up_at=closes or pendulum.now("UTC").add(days=1),
        poll=2.0,
        subject="批准开通数据录入功能？",
    )


def applied(engine, unit: str) -> None:
    for milestone in ("completion_report", "entry_application"):
        submit_report(
            engine,
            SHANXI,
            unit=unit,
            milestone_id=milestone,
            at=parse_instant("2017-11-20T10:00+08:00"),
            actor=Actor("test"),
        )


def answer(chosen: str, reason: str | None = None) -> dict:
    """The event Airflow resumes the task with once an officer has answered (include the form's reason field)."""
    return {
        "chosen_options": [chosen],
        "params_input": {"reason": reason},
        "responded_at": parse_instant("2017-11-22T09:00+08:00"),
        "responded_by_user": {"id": "7", "name": "张处长"},
    }


def recorded(engine, unit: str) -> tuple:
    with session_scope(engine) as session:
        row = session.scalar(select(Approval).where(Approval.unit == unit))
        details = [e.detail for e in session.scalars(select(AuditEntry).where(AuditEntry.unit == unit))]
        return (row.outcome, row.decided_by, row.decided_by_name, row.reason), [d for d in details if "审批" in d]


def test_approval_waits_for_the_application_then_records_the_decision_by_name(engine):
    with pytest.raises(TaskDeferred) as deferred:
        approval(TAIYUAN).execute({})
    assert deferred.value.method_name == "application_in"
    applied(engine, TAIYUAN)
    context: dict = {}
    approval(TAIYUAN).execute_complete(context, answer("Approve"))
    assert context["gate_label"] == "太原市 · 已批准"
    assert is_open(engine, SHANXI, "entry", TAIYUAN, parse_instant("2017-11-22T09:00+08:00"))
    (outcome, by, name, _), audit = recorded(engine, TAIYUAN)
    assert (outcome, by, name) == ("approved", "airflow:7", "张处长")  # not a dict's repr
    assert audit == [f"省级审批：批准开通{SHANXI.window('entry').name}（张处长，airflow:7）"]

    applied(engine, DATONG)
    approval(DATONG).execute_complete(context, answer("Reject", "申请书未加盖公章"))
    assert context["gate_label"] == "大同市 · 已驳回"
    assert not is_open(engine, SHANXI, "entry", DATONG, parse_instant("2017-11-23T09:00+08:00"))
    assert recorded(engine, DATONG)[0] == ("rejected", "airflow:7", "张处长", "申请书未加盖公章")

    # A retry after the decision (a task that failed after recording it) asks nobody and succeeds.
    again: dict = {}
    assert approval(DATONG).execute(again) is None
    assert again["gate_label"] == "大同市 · 已驳回"


def test_a_timeout_is_recorded_as_such_not_as_a_rejection_and_never_asked_again(engine):
    applied(engine, JINCHENG)
    context: dict = {}
    timeout = {
        "error": "The Human-in-the-loop response timeout has passed without a response.",
        "error_type": "timeout",
    }
    with pytest.raises(AirflowFailException, match="超时未审批"):  # failed, and not retried
        approval(JINCHENG).execute_complete(context, timeout)
    assert context["gate_label"] == "晋城市 · 超时未审批"
    (outcome, by, name, reason), audit = recorded(engine, JINCHENG)
    assert (outcome, by, name, reason) == ("timed_out", None, None, None)
    assert len(audit) == 1 and audit[0].startswith("省级审批：超时未审批") and "驳回" not in audit[0]
    # A retry (should one run) asks nobody: the timeout stands, with the same label.
    retry: dict = {}
    with pytest.raises(AirflowFailException, match="不再重新审批"):
        approval(JINCHENG).execute(retry)
    assert retry["gate_label"] == "晋城市 · 超时未审批"


def test_an_application_whose_window_has_closed_is_not_asked_about(engine):
    applied(engine, JINCHENG)
    context: dict = {}
    closed = pendulum.now("UTC").subtract(seconds=1)
    with pytest.raises(AirflowFailException, match="超时未审批"):  # not a request with a 1 s timeout
        approval(JINCHENG, closes=closed).execute(context)
    assert context["gate_label"] == "晋城市 · 超时未审批"
    assert recorded(engine, JINCHENG)[0][0] == "timed_out"


def test_no_application_by_the_closing_fails_without_a_retry(engine):
    context: dict = {}
    with pytest.raises(AirflowFailException, match="未提交数据录入申请书"):
        approval(JINCHENG).application_in(context, {"received_at": None})
    assert context["gate_label"] == "晋城市 · 未申请"


SHANDONG = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")


def county_gate(gives_up_at) -> ReportGate:
    """济南市's gate on the counties' data entry (seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入")."""
    from include.orchestration.dag_factory import gate_units

    milestone = next(item for item in SHANDONG.milestones if item.id == "entry_done")
    _, below = gate_units(SHANDONG, milestone)
    return ReportGate(
        task_id="gate_entry_done",
        campaign_id=SHANDONG.id,
        milestone="entry_done",
        unit="370100",
        unit_names={code: SHANDONG.name_of(code) for code in [*SHANDONG.unit_codes, *below["370100"]]},
        due=milestone.due,
        gives_up_at=gives_up_at,
        poll=2.0,
        below=below,
        word="县区",
    )


def test_a_citys_gate_on_a_county_milestone_counts_its_counties(engine):
    counties = [node.code for node in SHANDONG.tree.children("370100")]
    assert len(counties) == 12 and county_gate(SHANDONG.system_close.at).below["370100"] == counties
    for n, county in enumerate(counties[:11]):
        at = "2020-12-01T10:00+08:00" if n == 0 else "2020-11-28T10:00+08:00"  # 历下区 late
        submit_report(
            engine, SHANDONG, unit=county, milestone_id="entry_done", at=parse_instant(at), actor=Actor("test")
        )
    with pytest.raises(TaskDeferred) as deferred:  # 商河县 has not declared: it waits, for all twelve
        county_gate(pendulum.now("UTC").add(days=1)).execute({})
    trigger = deferred.value.trigger
    assert trigger.units == counties and trigger.serialize()[1]["units"] == counties
    context: dict = {}
    with pytest.raises(
        AirflowFailException, match=r"济南市有 1 个县区未在 2020-12-31 24:00 前完成“entry_done”.*：商河县"
    ):
        county_gate(SHANDONG.system_close.at).execute(context)
    assert context["gate_label"] == "济南市 · 11/12 县区已完成 · 逾期 1 · 未完成 1"
    submit_report(
        engine, SHANDONG, unit=counties[11], milestone_id="entry_done",
        at=parse_instant("2020-11-30T23:00+08:00"), actor=Actor("test"),
    )  # fmt: skip
    context = {}
    assert county_gate(pendulum.now("UTC").add(days=1)).execute(context) == "late"
    assert context["gate_label"] == "济南市 · 12/12 县区已完成 · 逾期 1"
    event = {"received": {code: "2020-11-28T02:00:00+00:00" for code in counties}}
    context = {}
    assert county_gate(SHANDONG.system_close.at).report_in(context, event) == "on_time"
    assert context["gate_label"] == "济南市 · 12/12 县区已完成"


def test_a_city_without_counties_has_a_gate_on_its_own_declaration(tmp_path):
    from include.orchestration.dag_factory import gate_units
    from tests.test_tree import guangdong

    calendar = guangdong(tmp_path)
    units, below = gate_units(calendar, next(item for item in calendar.milestones if item.id == "entry_done"))
    assert below["441900"] == ["441900"] and below["442000"] == ["442000"]  # 东莞市, 中山市
    assert len(units) == len(calendar.unit_codes) and all(len(below[code]) > 1 for code in ("440100", "440300"))


def test_a_trigger_never_fires_within_its_settling_time(engine, monkeypatch):
    """Airflow 3.3.2 runs a resumed task twice when its trigger fires before the scheduler has seen the deferral's
    own exit; the trigger waits at least SETTLE_SECONDS, and then gives what the store held."""
    import asyncio
    import time

    from include.orchestration import gates
    from include.store.db import database_url

    monkeypatch.setattr(gates, "SETTLE_SECONDS", 1.5)
    submit_report(
        engine, SHANXI, unit=TAIYUAN, milestone_id="completion_report",
        at=parse_instant("2017-11-30T10:00+08:00"), actor=Actor("test"),
    )  # fmt: skip

    async def first_event(trigger: ReportTrigger) -> tuple[float, dict]:
        started = time.monotonic()
        async for event in trigger.run():
            return time.monotonic() - started, event.payload
        raise AssertionError("no event")

    later = pendulum.now("UTC").add(days=1).isoformat()
    waited, payload = asyncio.run(
        first_event(ReportTrigger(database_url(), SHANXI.id, TAIYUAN, "completion_report", later, 0.2))
    )
    assert waited >= 1.5 and payload == {"received_at": "2017-11-30T02:00:00+00:00"}
    waited, payload = asyncio.run(  # 大同市 never reported, and its door closed long ago
        first_event(ReportTrigger(database_url(), SHANXI.id, DATONG, "completion_report", "2017-12-01T00:00Z", 0.2))
    )
    assert waited >= 1.5 and payload == {"received_at": None}
