"""The province's answer to a city's application, as the store keeps it and the city is told: approved, rejected
with a reason, or timed out (nobody answered) — three outcomes, three records.

Seed 002 (Shanxi 2017): "以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
The entry window runs from 11-22 to 12-20 24时 (2017-12-21 00:00 Beijing time).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.door.ingest import WindowClosed, ingest
from include.door.status import campaign_status
from include.door.submissions import Actor, submit_report
from include.door.windows import is_open, record_approval, record_timeout
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import Approval, AuditEntry

SHANXI = load_campaign("2017-shanxi")
TAIYUAN, DATONG, JINCHENG = "140100", "140200", "140500"
APPLIED = parse_instant("2017-11-21T10:00+08:00")
CLOSES = parse_instant("2017-12-21T00:00+08:00")
WINDOW = SHANXI.window("entry").name  # 全国扶贫开发信息系统“2018年初动态管理”功能模块


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(upgrade(f"sqlite:///{tmp_path / 'store.db'}"))
    for unit in (TAIYUAN, DATONG, JINCHENG):
        for milestone in ("completion_report", "entry_application"):
            submit_report(engine, SHANXI, unit=unit, milestone_id=milestone, at=APPLIED, actor=Actor("test", unit))
    yield engine
    engine.dispose()


def approval_of(engine, unit: str) -> dict:
    at = parse_instant("2017-12-22T10:00+08:00")
    return next(u for u in campaign_status(engine, SHANXI, at)["units"] if u["unit"] == unit)["entry_window"][
        "approval"
    ]


def audit_of(engine, unit: str) -> list[str]:
    with session_scope(engine) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.unit == unit).order_by(AuditEntry.id))
        return [row.detail for row in rows if row.detail.startswith("省级审批")]


def refusal(engine, unit: str, at: str) -> str:
    with pytest.raises(WindowClosed) as refused:
        ingest(engine, SHANXI, Path("unused.xlsx"), unit, parse_instant(at), f"unit:{unit}")
    return str(refused.value)


def test_three_outcomes_three_records_each_with_a_name(engine):
    decided = parse_instant("2017-11-22T09:00+08:00")
    opened = record_approval(engine, SHANXI, "entry", TAIYUAN, approved=True, by="airflow:7", name="张处长", at=decided)
    assert opened and is_open(engine, SHANXI, "entry", TAIYUAN, decided)
    assert not record_approval(
        engine, SHANXI, "entry", DATONG, approved=False, by="airflow:8", name="李科员",
        reason="申请书未加盖公章", at=decided,
    )  # fmt: skip
    assert record_timeout(engine, SHANXI, "entry", JINCHENG, CLOSES)

    assert approval_of(engine, TAIYUAN) == {"state": "approved", "by": "张处长", "at": "2017-11-22T09:00:00+08:00",
                                            "reason": None}  # fmt: skip
    assert approval_of(engine, DATONG) == {"state": "rejected", "by": "李科员", "at": "2017-11-22T09:00:00+08:00",
                                           "reason": "申请书未加盖公章"}  # fmt: skip
    assert approval_of(engine, JINCHENG) == {"state": "timed_out", "by": None, "at": "2017-12-21T00:00:00+08:00",
                                             "reason": None}  # fmt: skip
    assert audit_of(engine, TAIYUAN) == [f"省级审批：批准开通{WINDOW}（张处长，airflow:7）"]
    assert audit_of(engine, DATONG) == [f"省级审批：驳回开通{WINDOW}（原因：申请书未加盖公章；李科员，airflow:8）"]
    assert audit_of(engine, JINCHENG) == [f"省级审批：超时未审批，至 2017-12-20 24:00 无人审批，{WINDOW}未开通"]
    with session_scope(engine) as session:
        timed_out = session.scalar(select(Approval).where(Approval.unit == JINCHENG))
        assert (timed_out.outcome, timed_out.decided_by, timed_out.approved) == ("timed_out", None, False)


def test_a_timeout_never_replaces_a_decision_and_a_rejection_always_has_a_reason(engine):
    decided = parse_instant("2017-11-22T09:00+08:00")
    record_approval(engine, SHANXI, "entry", DATONG, approved=False, by="cli:李科员", at=decided)
    assert not record_timeout(engine, SHANXI, "entry", DATONG, CLOSES)
    assert approval_of(engine, DATONG)["state"] == "rejected"
    assert approval_of(engine, DATONG)["reason"] == "审批人未填写原因"
    assert audit_of(engine, DATONG) == [f"省级审批：驳回开通{WINDOW}（原因：审批人未填写原因；李科员）"]


def test_each_outcome_tells_the_city_why_it_cannot_enter_data_and_what_to_do(engine):
    assert "尚未报送《数据录入申请书》" not in refusal(engine, TAIYUAN, "2017-11-23T10:00+08:00")
    waiting = refusal(engine, TAIYUAN, "2017-11-23T10:00+08:00")
    assert waiting.startswith("太原市的《数据录入申请书》已收到，正等待省级审批") and "2017-12-20 24:00" in waiting

    at = parse_instant("2017-11-23T11:00+08:00")
    record_approval(engine, SHANXI, "entry", DATONG, approved=False, by="airflow:8", name="李科员",
                    reason="申请书未加盖公章", at=at)  # fmt: skip
    rejected = refusal(engine, DATONG, "2017-11-24T10:00+08:00")
    assert rejected.startswith(f"省级已驳回大同市开通{WINDOW}的申请（原因：申请书未加盖公章；李科员")
    assert "请按原因整改后联系省扶贫办重新审批" in rejected

    record_timeout(engine, SHANXI, "entry", JINCHENG, CLOSES)
    late = refusal(engine, JINCHENG, "2017-12-21T09:00+08:00")
    assert "未获省级审批（超时未审批）" in late and "驳回" not in late

    # A city that has not applied is told to apply first.
    changzhi = "140400"
    never = refusal(engine, changzhi, "2017-11-23T10:00+08:00")
    assert never.startswith("长治市尚未报送《数据录入申请书》") and "请先报送申请书" in never


def test_a_wrong_rejection_is_put_right_and_the_audit_names_both_officers(engine):
    at = parse_instant("2017-11-22T09:00+08:00")
    record_approval(engine, SHANXI, "entry", DATONG, approved=False, by="airflow:8", name="李科员",
                    reason="申请书未加盖公章", at=at)  # fmt: skip
    later = parse_instant("2017-11-22T15:00+08:00")
    assert record_approval(engine, SHANXI, "entry", DATONG, approved=True, by="airflow:7", name="张处长", at=later)
    assert audit_of(engine, DATONG)[-1] == (
        f"省级审批：改为批准开通{WINDOW}（张处长，airflow:7），取代此前的已驳回（李科员，airflow:8）"
    )
    assert approval_of(engine, DATONG) == {"state": "approved", "by": "张处长", "at": "2017-11-22T15:00:00+08:00",
                                           "reason": None}  # fmt: skip
