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


# Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作": each county declares entry_done.
LIXIA, SHIZHONG, LICHENG, CHANGQING, MUDAN = "370102", "370103", "370112", "370113", "371702"
NEVER = {LICHENG, CHANGQING, MUDAN}  # 济南市's 历城区 and 长清区, 菏泽市's 牡丹区 never declare it


def counties(run_cli) -> list[dict]:
    code, out, err = run_cli("units", "--campaign", "2020-shandong", "--level", "county", "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def played(run_cli):
    """Every city declares its cascade training (09-30) and its collection (11-10) done; 14 cities report on time;
    滨州市 reports its completion late (12-03); 菏泽市 never reports. Every county declares its data entry done on
    11-28, except 历下区 (early, 11-20), 市中区 (late, 12-01 15:00) and the three of NEVER."""
    for city in CITIES:
        submit(run_cli, city, "cascade_training", "2020-09-30T10:00+08:00")
        submit(run_cli, city, "collection_done", "2020-11-10T10:00+08:00")
        if city not in (BINZHOU, HEZE):
            submit(run_cli, city, "completion_report", "2020-11-20T10:00+08:00")
    submit(run_cli, BINZHOU, "completion_report", "2020-12-03T10:00+08:00")
    for county in counties(run_cli):
        if county["code"] == SHIZHONG:
            submit(run_cli, SHIZHONG, "entry_done", "2020-12-01T15:00+08:00")
        elif county["code"] == LIXIA:
            submit(run_cli, LIXIA, "entry_done", "2020-11-20T10:00+08:00")
        elif county["code"] not in NEVER:
            submit(run_cli, county["code"], "entry_done", "2020-11-28T10:00+08:00")


@pytest.fixture
def verifying(run_cli, played, tmp_path):
    """Seed 000: "国务院扶贫办和省扶贫开发办同时开展数据分析…形成到户到人的问题清单并反馈各市". The national list gives
    滨州市 two problems and 菏泽市 one (keyed by where the IDs were issued); the analysis run at 12-11 sends every city
    its list. The 14 others have nothing to verify and are done at once; 滨州市 answers one of its two on 12-18."""
    import openpyxl

    from include.devtools.synth import check_digit

    def head(county: str, serial: int) -> str:
        body = f"{county}19700101{serial:03d}"
        return body + check_digit(body)

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["户主身份证号码", "问题人员身份证号码", "问题类型", "问题描述"])
    for key in (head("371602", 11), head("371602", 13), head("371702", 15)):  # 滨城区, 滨城区, 牡丹区
        sheet.append([key, key, "疑似已死亡未标注", "与公安户籍信息比对，户主已注销户口"])
    issued = tmp_path / "国务院扶贫办问题清单.xlsx"
    workbook.save(issued)
    code, _, err = run_cli("verify", "import", issued, "--campaign", "2020-shandong", "--source", "national",
                           "--at", "2020-12-03T10:00+08:00")  # fmt: skip
    assert code == 0, err
    out = tmp_path / "lists"
    code, _, err = run_cli("validate", "--campaign", "2020-shandong", "--stage", "analysis",
                           "--at", "2020-12-11T09:00+08:00", "--out", out)  # fmt: skip
    assert code == 0, err
    workbook = openpyxl.load_workbook(out / f"2020-shandong-analysis-{BINZHOU}-问题清单.xlsx")
    listed = workbook.worksheets[1]  # the problems, after the summary
    header = [cell.value for cell in listed[1]]
    listed.cell(row=2, column=header.index("核查结果") + 1, value="属实，已整改")
    filled = tmp_path / "滨州市已核查.xlsx"
    workbook.save(filled)
    code, _, err = run_cli("verify", "submit", filled, "--campaign", "2020-shandong", "--unit", BINZHOU,
                           "--at", "2020-12-18T10:00+08:00")  # fmt: skip
    assert code == 0, err


def test_0928_nothing_is_due(run_cli, played):
    # training: "9月30日前，市、县、乡逐级进行部署培训" is 2 working days away on Monday 09-28
    assert remind(run_cli, "2020-09-28T09:00+08:00") == []


def test_0929_one_working_day_before_the_cascade_training(run_cli, played):
    reminders = remind(run_cli, "2020-09-29T09:00+08:00")
    assert kinds(reminders) == {("cascade_training", city, "before_1", f"dm-{city}") for city in CITIES}
    jinan = next(r for r in reminders if r["unit"] == JINAN)
    assert (jinan["level"], jinan["to"], jinan["about"]) == ("city", JINAN, [JINAN])
    assert "请按时完成，完成后在系统中报告已完成" in jinan["text"]


def test_1109_one_working_day_before_the_end_of_collection(run_cli, played):
    reminders = remind(run_cli, "2020-11-09T09:00+08:00")
    assert kinds(reminders) == {("collection_done", city, "before_1", f"dm-{city}") for city in CITIES}
    jinan = next(r for r in reminders if r["unit"] == JINAN)
    assert jinan["text"] == (
        "【截止提醒】济南市：“完成动态调整和各类信息采集更新”将于2020-11-10 24:00截止，还有1个工作日，"
        f"请按时完成，完成后在系统中报告已完成。进度见 {URL}"
    )


def test_1125_counties_yet_to_declare_their_entry_are_reminded_and_no_other(run_cli, played):
    # 11-25 (Wednesday) is 3 working days before Monday 11-30; only 历下区 has declared by then
    reminders = [r for r in remind(run_cli, "2020-11-25T09:00+08:00") if r["milestone"] == "entry_done"]
    expected = {c["code"] for c in counties(run_cli)} - {LIXIA}
    assert len(expected) == 135
    assert {(r["unit"], r["kind"], r["level"], r["channel"]) for r in reminders} == {
        (code, "before_3", "county", f"dm-{code}") for code in expected
    }


def test_1202_overdue_completion_reports_go_to_the_unit_and_one_digest_to_its_office(run_cli, played):
    # due 11-30 24:00; 12-01 and 12-02 are the 1st and 2nd working days late
    reminders = [r for r in remind(run_cli, "2020-12-02T09:00+08:00") if r["milestone"] == "completion_report"]
    assert kinds(reminders) == {
        ("completion_report", BINZHOU, "overdue", f"dm-{BINZHOU}"),
        ("completion_report", HEZE, "overdue", f"dm-{HEZE}"),
        ("completion_report", "370000", "escalation_parent", "dm-370000"),
    }
    heze = next(r for r in reminders if r["unit"] == HEZE and r["kind"] == "overdue")
    assert "菏泽市：“各市报送动态管理工作开展情况”已于2020-11-30 24:00截止，已逾期2个工作日，尚未报送" in heze["text"]
    assert "2020-12-31 24:00前仍可补报" in heze["text"] and URL in heze["text"]
    assert heze["key"] == f"2020-shandong/completion_report/{HEZE}/overdue/2020-12-02"
    digest = next(r for r in reminders if r["kind"] == "escalation_parent")
    assert (digest["about"], digest["to"], digest["level"]) == ([BINZHOU, HEZE], "370000", "province")
    assert "以下2个市尚未报送“各市报送动态管理工作开展情况”" in digest["text"] and "滨州市、菏泽市" in digest["text"]


def test_1202_lagging_counties_are_reminded_and_each_city_gets_one_digest(run_cli, played):
    """The acceptance scenario: 2020-shandong at 2020-12-02T09:00+08:00, two working days after the counties'
    entry was due; the policy tells the parent after 1 working day late and the province after 3."""
    reminders = [r for r in remind(run_cli, "2020-12-02T09:00+08:00") if r["milestone"] == "entry_done"]
    overdue = [r for r in reminders if r["kind"] == "overdue"]
    assert sorted(r["unit"] for r in overdue) == sorted(NEVER)  # not 市中区: late, but declared
    assert all(r["to"] == r["unit"] and r["channel"] == f"dm-{r['unit']}" and r["level"] == "county" for r in overdue)
    digests = [r for r in reminders if r["kind"] == "escalation_parent"]
    assert {(r["unit"], r["to"], tuple(r["about"])) for r in digests} == {
        (JINAN, JINAN, (LICHENG, CHANGQING)),
        (HEZE, HEZE, (MUDAN,)),
    }  # one digest per city with missing counties, to the city's own channel
    jinan = next(r for r in digests if r["unit"] == JINAN)
    assert jinan["text"].startswith("【逾期通报】济南市：以下2个县区尚未报告完成“县、乡完成全部数据录入和系统操作”")
    assert "历城区、长清区" in jinan["text"] and "已逾期2个工作日" in jinan["text"]
    assert not [r for r in reminders if r["kind"] == "escalation_province"]  # 2 working days < 3
    declared = {c["code"] for c in counties(run_cli)} - NEVER
    assert not [r for r in reminders if set(r["about"]) & declared]


def test_1204_the_province_gets_one_digest_per_city_with_lagging_counties(run_cli, played):
    reminders = [r for r in remind(run_cli, "2020-12-04T09:00+08:00") if r["milestone"] == "entry_done"]
    province = [r for r in reminders if r["kind"] == "escalation_province"]
    assert {(r["unit"], r["to"], r["channel"], tuple(r["about"])) for r in province} == {
        (JINAN, "370000", "dm-370000", (LICHENG, CHANGQING)),
        (HEZE, "370000", "dm-370000", (MUDAN,)),
    }
    assert "已逾期4个工作日" in province[0]["text"]
    assert len({r["key"] for r in reminders}) == len(reminders)


def test_1224_three_working_days_late_reaches_the_province(run_cli, verifying):
    # verification due 12-20 (a Sunday) 24:00: 12-21 … 12-24 are 4 working days late; the cities with problems
    # unanswered are reminded, the 14 with nothing to verify are not
    reminders = [r for r in remind(run_cli, "2020-12-24T09:00+08:00") if r["milestone"] != "entry_done"]
    assert kinds(reminders) == {
        ("completion_report", HEZE, "overdue", f"dm-{HEZE}"),
        ("completion_report", "370000", "escalation_province", "dm-370000"),
        ("verification_done", BINZHOU, "overdue", f"dm-{BINZHOU}"),
        ("verification_done", HEZE, "overdue", f"dm-{HEZE}"),
        ("verification_done", "370000", "escalation_province", "dm-370000"),
    }  # the province is the cities' parent: one digest, not one to the office and one to the province
    binzhou = next(r for r in reminders if r["unit"] == BINZHOU and r["milestone"] == "verification_done")
    assert "已逾期4个工作日，问题清单已核查 1/2，尚未核查完" in binzhou["text"]
    digest = next(r for r in reminders if r["milestone"] == "verification_done" and r["unit"] == "370000")
    assert digest["about"] == [BINZHOU, HEZE]


def test_due_day_reminders_go_out_on_a_sunday_other_reminders_wait_for_a_working_day(run_cli, verifying):
    sunday = remind(run_cli, "2020-12-20T09:00+08:00")
    assert kinds(sunday) == {
        ("verification_done", BINZHOU, "due_today", f"dm-{BINZHOU}"),
        ("verification_done", HEZE, "due_today", f"dm-{HEZE}"),
    }  # 菏泽市's overdue completion report and the counties' overdue entry wait for Monday
    assert remind(run_cli, "2020-12-19T09:00+08:00") == []  # Saturday
    assert remind(run_cli, "2020-10-05T09:00+08:00") == []  # National Day holiday


def test_the_closing_day_goes_to_every_unit(run_cli, played):
    reminders = remind(run_cli, "2020-12-31T09:00+08:00")
    closing = [r for r in reminders if r["kind"] == "closing"]
    every = set(CITIES) | {c["code"] for c in counties(run_cli)}
    assert {(r["milestone"], r["unit"]) for r in closing} == {("system_close", code) for code in every}
    assert "信息系统将于2020-12-31 24:00关闭" in next(r["text"] for r in closing if r["unit"] == JINAN)
    # the same day: "问题数据在信息系统中修改完善" is due, for every county (seed 000: "各市组织县、乡扶贫部门…")
    assert {r["unit"] for r in reminders if r["kind"] == "due_today"} == {c["code"] for c in counties(run_cli)}


def test_the_registry_is_no_workload_so_no_pace_reminder(run_cli, played):
    """Before issue 15 a city with 100 households entered against a registry of 1,000 was told it was at 10 %
    where 72 % was expected; the registry is the whole roster and this year's forms only its changes."""
    counties = pl.DataFrame({"county": ["某县"], "registered_households": [1000], "unit": [JINAN]})
    records.replace("2020-shandong", "registry", JINAN, "r1", {"counties": counties}, {})
    households = pl.DataFrame({"household_id": [f"{JINAN}{i:06d}" for i in range(100)], "unit": JINAN})
    records.replace("2020-shandong", "2020-1", JINAN, "h1", {"households": households}, {})
    reminders = remind(run_cli, "2020-11-25T09:00+08:00")
    assert reminders and not [r for r in reminders if r["kind"] == "progress" or "底数" in r["text"]]


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


def test_longjus_lagging_villages_are_reminded_and_the_town_gets_one_digest(run_cli):
    """Seed 001: "10月24日前将拟新识别贫困户…名单经村（社区）负责人、第一书记签字盖章报镇扶贫办". Due Saturday 10-24
    24:00: 10-26, 10-27 and 10-28 are the 1st to 3rd working days late. LJ01–LJ05 report on time, LJ06 late (10-26),
    LJ07 and LJ08 never."""
    town, villages = "500101", [f"LJ0{n}" for n in range(1, 9)]
    for village in villages[:5]:
        submit_to(run_cli, "2020-chongqing-longju", village, "signed_lists", "2020-10-20T10:00+08:00")
    submit_to(run_cli, "2020-chongqing-longju", "LJ06", "signed_lists", "2020-10-26T10:00+08:00")

    def signed(at: str) -> list[dict]:
        return [r for r in remind(run_cli, at, campaign="2020-chongqing-longju") if r["milestone"] == "signed_lists"]

    second = signed("2020-10-27T11:00+08:00")
    assert {(r["unit"], r["kind"], r["to"], tuple(r["about"])) for r in second} == {
        ("LJ07", "overdue", "LJ07", ("LJ07",)),
        ("LJ08", "overdue", "LJ08", ("LJ08",)),
        (town, "escalation_parent", town, ("LJ07", "LJ08")),
    }
    digest = next(r for r in second if r["kind"] == "escalation_parent")
    assert digest["channel"] == f"dm-{town}" and digest["level"] == "township"
    assert "以下2个村尚未报送" in digest["text"] and "龙驹镇村（社区）07、龙驹镇村（社区）08" in digest["text"]
    third = signed("2020-10-28T11:00+08:00")
    province = [r for r in third if r["kind"] == "escalation_province"]
    assert [(r["unit"], r["to"], r["channel"], r["about"]) for r in province] == [
        (town, "500000", "dm-500000", ["LJ07", "LJ08"])
    ]  # one digest about the town, to the province's channel
    assert {r["unit"] for r in third if r["kind"] == "overdue"} == {"LJ07", "LJ08"}


def submit_to(run_cli, campaign: str, unit: str, milestone: str, at: str) -> None:
    code, _, err = run_cli(
        "report", "submit", "--campaign", campaign, "--unit", unit, "--milestone", milestone, "--at", at
    )
    assert code == 0, err


def test_counties_channels_follow_their_levels_pattern(run_cli, tmp_path):
    """136 counties need no hand-written entries: a pattern per level, and an entry only where one differs."""
    from include.paths import CONFIG_CAMPAIGNS

    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    assert "\nid: 2020-shandong\n" in text and "\nreminders:" not in text
    text = text.replace("\nid: 2020-shandong\n", "\nid: 2020-shandong-channels\n", 1)
    text += (
        '\nreminders:\n  level_channels:\n    county: "county-{parent}-{code}"\n  channels:\n    "370103": "shizhong"\n'
    )
    folder = tmp_path / "home" / "campaigns"
    folder.mkdir(parents=True)
    (folder / "2020-shandong-channels.yaml").write_text(text, encoding="utf-8")
    reminders = remind(run_cli, "2020-11-25T09:00+08:00", campaign="2020-shandong-channels")
    entry = {r["unit"]: r["channel"] for r in reminders if r["milestone"] == "entry_done"}
    assert len(entry) == 136 and entry["370102"] == "county-370100-370102" and entry["370103"] == "shizhong"
    assert {r["channel"] for r in reminders if r["level"] == "city"} == {f"dm-{city}" for city in CITIES}
