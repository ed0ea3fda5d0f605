"""The door, by the command line: late marking, the hard closing at 24:00, versions, windows, status.

Seed 000: "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办" and "12月31日24时关闭信息系统。"
Seed 002: "以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from include.calendar import read_calendar
from include.calendar.instants import parse_instant
from include.door.windows import is_open, record_approval
from include.paths import CONFIG_CAMPAIGNS
from include.store.audit import AuditLogIsAppendOnly
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry, Report

JINAN, QINGDAO, ZIBO = "370100", "370200", "370300"


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(upgrade(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}"))
    yield engine
    engine.dispose()


def submit(run_cli, unit, milestone, at, *extra, campaign="2020-shandong"):
    code, out, err = run_cli(
        "report",
        "submit",
        "--campaign",
        campaign,
        "--unit",
        unit,
        "--milestone",
        milestone,
        "--at",
        at,
        "--json",
        *extra,
    )
    return code, json.loads(out) if out.strip() else None, err


def counts(engine):
    with session_scope(engine) as session:
        reports = session.scalar(select(func.count()).select_from(Report))
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
        return reports, audits


def test_one_millisecond_before_24_00_is_on_time_and_00_00_is_late(engine, run_cli):
    code, body, _ = submit(run_cli, JINAN, "completion_report", "2020-11-30T23:59:59.999+08:00")
    assert code == 0 and body["outcome"] == "on_time" and body["late"] is False
    code, body, _ = submit(run_cli, QINGDAO, "completion_report", "2020-12-01T00:00:00+08:00")
    assert code == 0 and body["outcome"] == "late" and body["late"] is True


def test_after_the_system_closes_a_report_is_refused_and_nothing_changes(engine, run_cli, tmp_path):
    code, body, _ = submit(run_cli, ZIBO, "completion_report", "2020-12-31T23:59:59.999+08:00")
    assert code == 0 and body["outcome"] == "late"
    before = counts(engine)
    attachment = tmp_path / "工作开展情况.docx"
    attachment.write_bytes(b"late again")
    code, body, _ = submit(run_cli, JINAN, "completion_report", "2021-01-01T00:00:00+08:00", "--file", attachment)
    assert code == 3
    assert body["refused"] == "closed"
    assert "已于 2020-12-31 24:00 截止报送（信息系统已关闭）" in body["message"]
    assert "请联系山东省扶贫开发办公室" in body["message"]
    reports, audits = counts(engine)
    assert reports == before[0]
    assert audits == before[1] + 1  # only the refusal is written, to the audit log
    assert not (tmp_path / "home" / "reports" / "2020-shandong" / JINAN).exists()


def test_refusal_message_on_stderr_without_json(engine, run_cli):
    code, out, err = run_cli(
        "report",
        "submit",
        "--campaign",
        "2020-shandong",
        "--unit",
        JINAN,
        "--milestone",
        "completion_report",
        "--at",
        "2021-01-01T00:00:00+08:00",
    )
    assert code == 3 and out == ""
    assert err.startswith("拒收：“各市报送动态管理工作开展情况”已于 2020-12-31 24:00 截止报送")


def test_the_same_file_twice_is_one_report_and_a_changed_file_a_new_version(engine, run_cli, tmp_path):
    report = tmp_path / "工作报告.pdf"
    report.write_bytes(b"version one")
    first = submit(run_cli, JINAN, "completion_report", "2020-11-20T10:00+08:00", "--file", report)[1]
    again = submit(run_cli, JINAN, "completion_report", "2020-11-21T10:00+08:00", "--file", report)[1]
    assert (first["outcome"], first["version"]) == ("on_time", 1)
    assert (again["outcome"], again["version"]) == ("duplicate", 1)
    assert again["received_at"] == "2020-11-20T10:00:00+08:00"
    report.write_bytes(b"version two")
    changed = submit(run_cli, JINAN, "completion_report", "2020-12-03T10:00+08:00", "--file", report)[1]
    assert (changed["outcome"], changed["version"]) == ("late", 2)
    folder = tmp_path / "home" / "reports" / "2020-shandong" / JINAN / "completion_report"
    stored = sorted(path.read_bytes() for path in folder.iterdir())
    assert stored == [b"version one", b"version two"]  # each version's file, named by its content
    # The first version decides on time or late.
    _, out, _ = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-12-05T00:00+08:00", "--json")
    jinan = next(unit for unit in json.loads(out)["units"] if unit["unit"] == JINAN)
    assert next(item for item in jinan["milestones"] if item["id"] == "completion_report") == {
        "id": "completion_report",
        "state": "on_time",
        "received_at": "2020-11-20T10:00:00+08:00",
    }


def test_unknown_unit_and_milestone_are_refused_with_what_to_do(engine, run_cli):
    code, body, _ = submit(run_cli, "379900", "completion_report", "2020-11-20T10:00+08:00")
    assert code == 2 and body["refused"] == "unknown_unit" and "请核对单位代码" in body["message"]
    code, body, _ = submit(run_cli, JINAN, "province_training", "2020-11-20T10:00+08:00")
    assert code == 2 and body["refused"] == "unknown_milestone"
    owed = "cascade_training、collection_done、completion_report、summary_report"
    # the cities' milestones; entry_done is the counties', verification_done the system's (a gate on data)
    assert f"该单位应报送的节点：{owed}" in body["message"]
    code, body, _ = submit(run_cli, JINAN, "entry_done", "2020-11-20T10:00+08:00")
    assert code == 2 and body["refused"] == "unknown_milestone"
    code, body, _ = submit(run_cli, "370000", "completion_report", "2020-11-20T10:00+08:00")
    assert code == 2 and body["refused"] == "unknown_unit"  # the office is no reporting unit


def test_entry_window_opens_with_the_completion_report(engine, run_cli):
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    assert not is_open(engine, calendar, "entry", JINAN, parse_instant("2020-11-20T10:00+08:00"))
    body = submit(run_cli, JINAN, "completion_report", "2020-11-05T10:00+08:00")[1]
    assert body["windows_opened"] == ["entry"]
    # Reported during collection: the window opens at the entry phase's 11-11 00:00, not before.
    assert not is_open(engine, calendar, "entry", JINAN, parse_instant("2020-11-10T23:00+08:00"))
    assert is_open(engine, calendar, "entry", JINAN, parse_instant("2020-11-11T00:00+08:00"))
    assert is_open(engine, calendar, "entry", JINAN, parse_instant("2020-11-30T23:59:59.999+08:00"))
    assert not is_open(engine, calendar, "entry", JINAN, parse_instant("2020-12-01T00:00+08:00"))


def test_shanxi_window_opens_only_after_the_province_approves(engine, run_cli):
    """Seed 002: the city reports, applies, and the province opens the entry function."""
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2017-shanxi.yaml")
    taiyuan = "140100"
    submit(run_cli, taiyuan, "completion_report", "2017-11-20T10:00+08:00", campaign="2017-shanxi")
    body = submit(run_cli, taiyuan, "entry_application", "2017-11-21T10:00+08:00", campaign="2017-shanxi")[1]
    assert body["windows_opened"] == []
    assert not is_open(engine, calendar, "entry", taiyuan, parse_instant("2017-11-22T10:00+08:00"))
    opened = record_approval(
        engine, calendar, "entry", taiyuan, approved=True, by="省脱贫攻坚办", at=parse_instant("2017-11-22T09:00+08:00")
    )
    assert opened
    assert is_open(engine, calendar, "entry", taiyuan, parse_instant("2017-11-22T10:00+08:00"))
    _, out, _ = run_cli("status", "--campaign", "2017-shanxi", "--at", "2017-11-22T10:00+08:00", "--json")
    window = json.loads(out)["units"][0]["entry_window"]
    assert window == {
        "state": "open",
        "opened_at": "2017-11-22T09:00:00+08:00",
        "closes_at": "2017-12-21T00:00:00+08:00",
        "approval": {"state": "approved", "by": "省脱贫攻坚办", "at": "2017-11-22T09:00:00+08:00", "reason": None},
    }
    datong = "140200"
    submit(run_cli, datong, "completion_report", "2017-11-20T10:00+08:00", campaign="2017-shanxi")
    submit(run_cli, datong, "entry_application", "2017-11-21T10:00+08:00", campaign="2017-shanxi")
    assert not record_approval(
        engine, calendar, "entry", datong, approved=False, by="省脱贫攻坚办", at=parse_instant("2017-11-22T09:00+08:00")
    )
    assert not is_open(engine, calendar, "entry", datong, parse_instant("2017-11-23T10:00+08:00"))


def test_status_states_at_an_instant(engine, run_cli):
    submit(run_cli, JINAN, "completion_report", "2020-11-20T10:00+08:00")
    submit(run_cli, QINGDAO, "completion_report", "2020-12-02T10:00+08:00")
    code, out, _ = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-12-05T00:00+08:00", "--json")
    assert code == 0
    status = json.loads(out)
    assert status["campaign"] == "2020-shandong" and status["at"] == "2020-12-05T00:00:00+08:00"
    levels = [unit["level"] for unit in status["units"]]
    assert (levels.count("city"), levels.count("county"), len(levels)) == (16, 136, 152)
    reports = ("completion_report", "verification_done", "summary_report")
    states = {
        unit["unit"]: [item["state"] for item in unit["milestones"] if item["id"] in reports]
        for unit in status["units"]
    }
    assert states[JINAN] == ["on_time", "pending", "pending"]
    assert states[QINGDAO] == ["late", "pending", "pending"]
    assert states[ZIBO] == ["missing", "pending", "pending"]
    lixia = next(unit for unit in status["units"] if unit["unit"] == "370102")
    assert (lixia["parent"], [item["id"] for item in lixia["milestones"]]) == (JINAN, ["entry_done", "data_completed"])
    assert [item["state"] for item in lixia["milestones"]] == ["missing", "pending"]  # seed 000: 11月30日24时前
    windows = {unit["unit"]: unit["entry_window"]["state"] for unit in status["units"]}
    assert windows[JINAN] == "closed" and windows[ZIBO] == "closed"
    # Earlier, Qingdao's late report had not come in yet.
    code, out, _ = run_cli("status", "--campaign", "2020-shandong", "--at", "2020-11-25T00:00+08:00", "--json")
    earlier = {unit["unit"]: unit for unit in json.loads(out)["units"]}
    assert next(item for item in earlier[QINGDAO]["milestones"] if item["id"] == "completion_report") == {
        "id": "completion_report",
        "state": "pending",
        "received_at": None,
    }
    assert earlier[JINAN]["entry_window"]["state"] == "open"


def test_audit_log_is_append_only(engine, run_cli):
    submit(run_cli, JINAN, "completion_report", "2020-11-20T10:00+08:00")
    with session_scope(engine) as session:
        actions = [row.action for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["accepted", "window_opened"]
    with pytest.raises(AuditLogIsAppendOnly), session_scope(engine) as session:
        entry = session.scalars(select(AuditEntry)).first()
        entry.detail = "改写"
    with pytest.raises(AuditLogIsAppendOnly), session_scope(engine) as session:
        session.delete(session.scalars(select(AuditEntry)).first())
    assert counts(engine)[1] == 2
