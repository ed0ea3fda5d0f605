"""Progress against a unit's own workload, its daily trajectory and projected finish (issue 15, items 4 and 6).

Seed 004 asks the offices "每天统计…数量变化情况"; seed 000 gives the counties "11月30日24时前…完成全部数据录入".
Here 济南市's counties get a workload (工作台账) of 200 households, loaded through the Excel template as an office
fills it; 济南市 uploads a growing part of it on 11-12, 11-16 and 11-19 (60, 100, 110 of the list, and on 11-19
twenty households that are on no list: new ones). On 11-20 every county's and the city's projection is checked against an independent
count: the pace of the last seven days from the households of the list in each upload, the finish at that pace,
the days it misses 11-30 by. The counties behind get a pace reminder and 济南市 one digest; a county that has
declared its entry done gets none.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import openpyxl
import pytest

from include.calendar import read_calendar
from include.door.workload import COLUMNS, SHEET, project
from include.forms.spec import get_form
from include.paths import CONFIG_CAMPAIGNS

CAMPAIGN, CITY, FORM = "2020-shandong", "370100", "2020-1"
SHANDONG = read_calendar(CONFIG_CAMPAIGNS / f"{CAMPAIGN}.yaml")
COUNTY_CODE = {node.name: node.code for node in SHANDONG.tree.children(CITY)}
LISTED = 200  # households 0..199 of the synthetic 240 are on the workload
DAYS = {  # upload day → positions of the households in that day's upload
    dt.date(2020, 11, 12): range(60),
    dt.date(2020, 11, 16): range(100),
    dt.date(2020, 11, 19): [*range(110), *range(220, 240)],
}
AT = "2020-11-20T09:00+08:00"  # a Friday, a working day of the entry
QINGDAO_COUNTY = "370202"  # 市南区


def ok(run_cli, *args) -> str:
    code, out, err = run_cli(*args)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    from include.cli.main import main

    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--campaign", CAMPAIGN, "--households", "240", "--defect-rate", "0", "--seed", "5",
                 "--out", str(out), "--units", CITY]) == 0  # fmt: skip
    return out / f"{CAMPAIGN}-{FORM}-{CITY}.xlsx"


def households(path: Path) -> list[tuple[str, str]]:
    """(household key, county code) of each household row, in the workbook's order."""
    form = get_form(FORM)
    ws = openpyxl.load_workbook(path, read_only=True)[form.sheet("households").name]
    rows = list(ws.iter_rows(values_only=True))
    header = [str(value) for value in rows[0]]
    key = header.index(next(h for h in header if form.field(form.household_key).label in h))
    county = header.index(next(h for h in header if h.startswith(form.field("address_county").label)))
    return [(str(row[key]), COUNTY_CODE[row[county]]) for row in rows[1:] if row[key]]


def part(full: Path, keep: set[str], out: Path) -> Path:
    """The workbook with only the households ``keep`` (and their members), as a clerk's partial upload."""
    form = get_form(FORM)
    wb = openpyxl.load_workbook(full)
    label = form.field(form.household_key).label
    for sheet in form.sheets:
        ws = wb[sheet.name]
        header = [str(cell.value) for cell in ws[1]]
        column = next(i for i, h in enumerate(header, start=1) if label in h)
        for row in range(ws.max_row, 1, -1):
            if str(ws.cell(row=row, column=column).value) not in keep:
                ws.delete_rows(row)
    wb.save(out)
    return out


@pytest.fixture
def played(run_cli, window_open, full, tmp_path):
    homes = households(full)
    template = tmp_path / "台账.xlsx"
    ok(run_cli, "workload", "template", "--campaign", CAMPAIGN, "--out", template)
    wb = openpyxl.load_workbook(template)
    ws = wb[SHEET]
    assert tuple(cell.value for cell in ws[1]) == COLUMNS
    for number, (key, county) in enumerate(homes[:LISTED], start=2):
        ws.cell(row=number, column=1, value=county)
        ws.cell(row=number, column=2, value=key)
    ws.append([QINGDAO_COUNTY, "37020219800101123X"])  # 青岛市 has not reported: its window is closed
    wb.save(template)
    out = ok(run_cli, "workload", "load", template, "--campaign", CAMPAIGN, "--at", "2020-11-11T09:00+08:00", "--json")
    loaded = json.loads(out)["units"]
    listed_by_county = {}
    for key, county in homes[:LISTED]:
        listed_by_county.setdefault(county, set()).add(key)
    assert loaded == {county: len(keys) for county, keys in listed_by_county.items()} | {QINGDAO_COUNTY: 1}
    for day, positions in DAYS.items():
        keep = {homes[i][0] for i in positions}
        upload = part(full, keep, tmp_path / f"{day}.xlsx")
        ok(run_cli, "ingest", upload, "--campaign", CAMPAIGN, "--unit", CITY, "--at", f"{day}T11:00+08:00")
    return homes, listed_by_county


def expected(points: list[tuple[dt.date, int]], workload: int, today: dt.date) -> dict:
    """The projection counted here: the pace over the last seven days, from the figure in force seven days ago
    (none on 11-10, the eve of the entry) to today's; the finish at that pace; the days after 11-30."""
    since = max(today - dt.timedelta(days=7), dt.date(2020, 11, 10))
    older = [point for point in points if point[0] <= since]
    base = older[-1][1] if older else 0
    done = points[-1][1]
    pace = (done - base) / (today - since).days
    if done >= workload:
        return {"state": "done", "done": done}
    if pace <= 0:
        return {"state": "stalled", "done": done}
    finish = today + dt.timedelta(days=math.ceil((workload - done) / pace))
    late = (finish - dt.date(2020, 11, 30)).days
    return {"state": "behind" if late > 0 else "on_track", "done": done, "finish": finish.isoformat(),
            "days_late": late if late > 0 else None}  # fmt: skip


def test_projections_follow_the_trajectory_of_the_uploads(run_cli, played):
    homes, listed = played
    report = json.loads(ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--json"))
    units = {unit["unit"]: unit for level in report["levels"] for unit in level["units"]}
    today = dt.date(2020, 11, 20)
    for county, keys in listed.items():
        points = [(day, len(keys & {homes[i][0] for i in positions})) for day, positions in DAYS.items()]
        shown = units[county]["workload"]
        assert shown["workload"] == len(keys) and shown["deadline"] == "2020-11-30"
        want = expected(points, len(keys), today)
        assert {k: shown[k] for k in want} == want, county
    city_points = [(day, sum(1 for i in positions if i < LISTED)) for day, positions in DAYS.items()]
    city = units[CITY]
    assert city["workload"]["workload"] == LISTED
    assert {k: city["workload"][k] for k in ("state", "done", "finish", "days_late")} == expected(
        city_points, LISTED, today
    )
    assert city["workload"]["done"] == 110 and city["new"] == 20 and city["entered"] == 130
    # 50 of the list in the last 7 days (60 in force at the end of 11-13): 7.1 a day; 90 left → 13 days → 12-03
    assert city["workload"]["finish"] == "2020-12-03" and city["workload"]["days_late"] == 3
    assert units["370300"]["workload"] is None, "淄博市 has no workload: no share, no projection"
    named = {item["unit"]: item for item in report["behind"]}
    assert named[CITY]["days_late"] == 3 and named[CITY]["name"] == "济南市"
    assert set(named) == {
        code for code, unit in units.items() if (unit["workload"] or {}).get("state") in ("behind", "stalled")
    }

    text = ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--under", CITY)
    assert "工作台账 110/200（55%），预计 12-03 完成，晚 3 天" in text


def test_the_counties_behind_their_pace_are_reminded_and_their_city_gets_one_digest(run_cli, played):
    _, listed = played
    report = json.loads(ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--json"))
    units = {unit["unit"]: unit for level in report["levels"] for unit in level["units"]}
    behind = sorted(c for c in listed if units[c]["workload"]["state"] in ("behind", "stalled"))
    assert behind, "the seeded trajectory leaves some counties behind"
    declared = behind[0]  # this one declares its entry done: it is reminded no more, whatever its pace
    ok(run_cli, "report", "submit", "--campaign", CAMPAIGN, "--unit", declared, "--milestone", "entry_done",
       "--at", "2020-11-19T16:00+08:00")  # fmt: skip
    reminders = json.loads(ok(run_cli, "remind", "--campaign", CAMPAIGN, "--at", AT, "--dry-run", "--json"))
    pace = [r for r in reminders if r["kind"] == "pace"]
    assert sorted(r["unit"] for r in pace) == behind[1:]
    for item in pace:
        figure = units[item["unit"]]["workload"]
        assert item["level"] == "county" and item["to"] == item["unit"] and item["milestone"] == "entry_done"
        assert f"工作台账 {figure['workload']} 户，已录入 {figure['done']} 户" in item["text"]
        if figure["state"] == "behind":
            assert f"晚于 11-30 截止 {figure['days_late']} 天" in item["text"]
    digests = [r for r in reminders if r["kind"] == "pace_parent"]
    assert len(digests) == 1 and digests[0]["unit"] == CITY and digests[0]["to"] == CITY
    assert sorted(digests[0]["about"]) == behind[1:]
    assert digests[0]["text"].startswith(
        f"【进度预警】济南市：按目前进度，以下{len(behind) - 1}个县区将不能按期完成录入"
    )
    assert units[QINGDAO_COUNTY]["workload"]["state"] == "stalled"
    assert not [r for r in reminders if r["unit"].startswith("3702") and r["kind"].startswith("pace")], (
        "市南区 is behind, but no data can be entered until 青岛市 reports: no pace reminder"
    )


def test_project_at_its_boundaries():
    """Exactly on the deadline is on time; nothing entered in the pace's days is stalled; the list done is done;
    the days before the entry opened (seed 000: "11月11日至11月30日") count for nothing; the first two days of
    entry give no verdict."""
    start, deadline, today = dt.date(2020, 11, 11), dt.date(2020, 11, 30), dt.date(2020, 11, 20)
    on_the_day = project([(today, 70)], 170, deadline, start, today)  # 70 in 7 days: 10 a day, 100 left
    assert (on_the_day.pace, on_the_day.days, on_the_day.finish, on_the_day.state) == (10, 7, deadline, "on_track")
    a_day_late = project([(today, 70)], 171, deadline, start, today)
    assert a_day_late.state == "behind" and a_day_late.days_late == 1
    assert project([(dt.date(2020, 11, 12), 50)], 100, deadline, start, today).state == "stalled"
    assert project([(dt.date(2020, 11, 18), 100)], 100, deadline, start, today).state == "done"
    assert project([], 100, deadline, start, today).state == "no_data"
    # a workload loaded on 11-01 (none entered), 200 entered by the end of 11-13: 3 days of entry, 67 a day, so
    # the 800 left take 12 more days (not a pace of 200 in the 12 days since the load, 31 days late)
    loaded_early = project([(dt.date(2020, 11, 1), 0), (dt.date(2020, 11, 13), 200)], 1000, deadline, start,
                           dt.date(2020, 11, 13))  # fmt: skip
    assert (loaded_early.days, loaded_early.state, loaded_early.finish) == (3, "on_track", dt.date(2020, 11, 25))
    first_day = project([(start, 300)], 1000, deadline, start, start)
    assert first_day.state == "early" and first_day.pace == 300


def test_a_workload_with_problems_is_refused_whole_with_its_rows_and_no_number_shown(run_cli, tmp_path):
    template = tmp_path / "台账.xlsx"
    ok(run_cli, "workload", "template", "--campaign", CAMPAIGN, "--out", template)
    wb = openpyxl.load_workbook(template)
    ws = wb[SHEET]
    key = "370102197812046240"
    for row in (
        ["370102", key],
        ["370103", key],  # the same household under another county
        ["370102", 370102197812046240.0],  # Excel's number: its last digits gone
        ["370102", "ABCD1234"],  # no ID number
        [key, "370102197812046259"],  # the columns swapped
        ["370101", "370102197812046267"],  # 市辖区: no county
    ):
        ws.append(row)
    wb.save(template)
    code, out, _ = run_cli("workload", "load", template, "--campaign", CAMPAIGN, "--json")
    assert code == 1
    problems = json.loads(out)["problems"]
    assert [p.split("：")[0] for p in problems] == ["第 3 行", "第 4 行", "第 5 行", "第 6 行", "第 7 行"]
    assert "与第 2 行（在 历下区）是同一户" in problems[0] and "一户只能在一个单位的台账中" in problems[0]
    assert "存成了数字" in problems[1] and "应为18位证件号码" in problems[2]
    assert all(key not in p and "197812" not in p for p in problems), "no ID number in clear"
    report = json.loads(ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--json"))
    assert all(unit["workload"] is None for level in report["levels"] for unit in level["units"]), "nothing loaded"
