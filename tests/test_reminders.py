"""`campaign remind`: the reminders the policy implies for 2020-shandong at fixed instants (issue 6).

Seed 000's deadlines: "各市将动态管理工作开展情况报省扶贫开发办" by 11-30 (the entry phase "11月11日至11月30日"),
"11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作", the cities' verification "12月11日至20日",
"12月31日24时关闭信息系统". Working days are China's, with the 2020 National Day holiday (10-01 to 10-08).
The policy (the calendar's defaults): 3 and 1 working days before, the due day, daily overdue notices,
the office told after 1 working day late, the province after 3.
"""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from include.forms import records

JINAN, QINGDAO, BINZHOU, HEZE = "370100", "370200", "371600", "371700"
CITIES = [
    "370100", "370200", "370300", "370400", "370500", "370600", "370700", "370800", "370900", "371000", "371100",
    "371300", "371400", "371500", "371600", "371700",
]  # fmt: skip
URL = "http://localhost:8080/campaign/progress/2020-shandong"


def submit(run_cli, unit: str, milestone: str, at: str) -> None:
    code, _, err = run_cli(
        "report", "submit", "--campaign", "2020-shandong", "--unit", unit, "--milestone", milestone, "--at", at
    )
    assert code == 0, err


def remind(run_cli, at: str, campaign: str = "2020-shandong") -> list[dict]:
    code, out, err = run_cli("remind", "--campaign", campaign, "--at", at, "--dry-run", "--json")
    assert code == 0, err
    return json.loads(out)


def kinds(reminders: list[dict]) -> set[tuple[str, str, str, str]]:
    return {(r["milestone"], r["unit"], r["kind"], r["channel"]) for r in reminders}


@pytest.fixture
def played(run_cli):
    """14 cities report on time; 滨州市 reports its completion late (12-03); 菏泽市 never reports."""
    for city in CITIES:
        if city not in (BINZHOU, HEZE):
            submit(run_cli, city, "completion_report", "2020-11-20T10:00+08:00")
            submit(run_cli, city, "verification_report", "2020-12-18T10:00+08:00")
    submit(run_cli, BINZHOU, "completion_report", "2020-12-03T10:00+08:00")


def test_0928_nothing_is_due(run_cli, played):
    # training: "9月30日前，市、县、乡逐级进行部署培训" is 2 working days away on Monday 09-28
    assert remind(run_cli, "2020-09-28T09:00+08:00") == []


def test_0929_one_working_day_before_the_cascade_training(run_cli, played):
    reminders = remind(run_cli, "2020-09-29T09:00+08:00")
    assert kinds(reminders) == {("cascade_training", city, "before_1", f"dm-{city}") for city in CITIES}


def test_1109_one_working_day_before_the_end_of_collection(run_cli, played):
    reminders = remind(run_cli, "2020-11-09T09:00+08:00")
    assert kinds(reminders) == {("collection_done", city, "before_1", f"dm-{city}") for city in CITIES}
    jinan = next(r for r in reminders if r["unit"] == JINAN)
    assert jinan["text"] == (
        f"【截止提醒】济南市：“完成动态调整和各类信息采集更新”将于2020-11-10 24:00截止，还有1个工作日，请按时完成。进度见 {URL}"
    )


def test_1202_overdue_completion_reports_go_to_the_unit_and_its_office(run_cli, played):
    # due 11-30 24:00; 12-01 and 12-02 are the 1st and 2nd working days late
    reminders = remind(run_cli, "2020-12-02T09:00+08:00")
    assert kinds(reminders) == {
        ("completion_report", BINZHOU, "overdue", f"dm-{BINZHOU}"),
        ("completion_report", BINZHOU, "escalation_parent", "dm-370000"),
        ("completion_report", HEZE, "overdue", f"dm-{HEZE}"),
        ("completion_report", HEZE, "escalation_parent", "dm-370000"),
    }
    heze = next(r for r in reminders if r["unit"] == HEZE and r["kind"] == "overdue")
    assert "菏泽市：“各市报送动态管理工作开展情况”已于2020-11-30 24:00截止，已逾期2个工作日，尚未报送" in heze["text"]
    assert "2020-12-31 24:00前仍可补报" in heze["text"] and URL in heze["text"]
    assert heze["key"] == f"2020-shandong/completion_report/{HEZE}/overdue/2020-12-02"


def test_1224_three_working_days_late_reaches_the_province(run_cli, played):
    # verification due 12-20 (a Sunday) 24:00: 12-21 … 12-24 are 4 working days late
    reminders = remind(run_cli, "2020-12-24T09:00+08:00")
    assert kinds(reminders) == {
        ("completion_report", HEZE, "overdue", f"dm-{HEZE}"),
        ("completion_report", HEZE, "escalation_province", "dm-370000"),
        ("verification_report", BINZHOU, "overdue", f"dm-{BINZHOU}"),
        ("verification_report", BINZHOU, "escalation_province", "dm-370000"),
        ("verification_report", HEZE, "overdue", f"dm-{HEZE}"),
        ("verification_report", HEZE, "escalation_province", "dm-370000"),
    }
    assert any("已逾期4个工作日" in r["text"] for r in reminders if r["unit"] == BINZHOU)


def test_due_day_reminders_go_out_on_a_sunday_other_reminders_wait_for_a_working_day(run_cli, played):
    sunday = remind(run_cli, "2020-12-20T09:00+08:00")
    assert kinds(sunday) == {
        ("verification_report", BINZHOU, "due_today", f"dm-{BINZHOU}"),
        ("verification_report", HEZE, "due_today", f"dm-{HEZE}"),
    }  # 菏泽市's overdue completion report waits for Monday
    assert remind(run_cli, "2020-12-19T09:00+08:00") == []  # Saturday
    assert remind(run_cli, "2020-10-05T09:00+08:00") == []  # National Day holiday


def test_the_closing_day_goes_to_every_unit(run_cli, played):
    reminders = remind(run_cli, "2020-12-31T09:00+08:00")
    closing = [r for r in reminders if r["kind"] == "closing"]
    assert {(r["milestone"], r["unit"]) for r in closing} == {("system_close", city) for city in CITIES}
    assert "信息系统将于2020-12-31 24:00关闭" in next(r["text"] for r in closing if r["unit"] == JINAN)
    # the same day: "问题数据在信息系统中修改完善" is due, for every city
    assert {r["unit"] for r in reminders if r["kind"] == "due_today"} == set(CITIES)


def test_a_unit_behind_its_roster_gets_a_progress_reminder(run_cli, played):
    """Entry window 11-11 00:00 to 11-30 24:00: at 11-25 09:00 about 72 % is expected; the margin is 10 points."""

    def store(unit: str, roster: int, entered: int) -> None:
        counties = pl.DataFrame({"county": ["某县"], "registered_households": [roster], "unit": [unit]})
        records.replace("2020-shandong", "registry", unit, "r1", {"counties": counties}, {})
        households = pl.DataFrame({"household_id": [f"{unit}{i:06d}" for i in range(entered)], "unit": unit})
        records.replace("2020-shandong", "2020-1", unit, "h1", {"households": households}, {})

    store(JINAN, 1000, 100)
    store(QINGDAO, 1000, 700)
    reminders = [r for r in remind(run_cli, "2020-11-25T09:00+08:00") if r["kind"] == "progress"]
    assert [(r["unit"], r["milestone"]) for r in reminders] == [(JINAN, "entry")]
    assert "济南市：已录入100户，占底数1000户的10%，按计划此时应达到72%左右" in reminders[0]["text"]


def test_texts_carry_no_personal_data(run_cli, played):
    texts = [
        r["text"] for at in ("2020-11-09", "2020-12-02", "2020-12-24") for r in remind(run_cli, f"{at}T09:00+08:00")
    ]
    assert texts
    assert not [text for text in texts if re.search(r"\d{15,}|1[3-9]\d{9}", text)]


def test_a_town_tells_its_office_first_then_the_province(run_cli):
    """Longju's units are villages; the town office is their parent, the province is configured."""
    reminders = remind(run_cli, "2020-11-06T09:00+08:00", campaign="2020-chongqing-longju")
    # collection_done (seed 001: 完成进村入户和信息采集) due 11-01 24:00 (a Sunday): 4 working days late on 11-06
    escalations = {(r["kind"], r["channel"]) for r in reminders if r["milestone"] == "collection_done"}
    assert ("escalation_province", "dm-500000") in escalations
    assert ("escalation_parent", "dm-500101") in escalations
