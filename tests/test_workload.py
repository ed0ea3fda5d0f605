"""Progress against a unit's own workload, its daily trajectory and projected finish (issue 15, items 4 and 6).

Seed 004 asks the offices "每天统计…数量变化情况"; seed 000 gives the counties "11月30日24时前…完成全部数据录入".
Here 济南市's counties get a workload (工作台账) of 200 households, loaded through the Excel template as an office
fills it; 济南市 uploads a growing part of it on 11-12, 11-16 and 11-19 (and on 11-19 twenty households that are
on no list: new ones). On 11-20 every county's and the city's projection is checked against an independent
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
    dt.date(2020, 11, 19): [*range(120), *range(220, 240)],
}
AT = "2020-11-20T09:00+08:00"  # a Friday, a working day of the entry


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
    wb.save(template)
    out = ok(run_cli, "workload", "load", template, "--campaign", CAMPAIGN, "--at", "2020-11-11T09:00+08:00", "--json")
    loaded = json.loads(out)["units"]
    listed_by_county = {}
    for key, county in homes[:LISTED]:
        listed_by_county.setdefault(county, set()).add(key)
    assert loaded == {county: len(keys) for county, keys in listed_by_county.items()}
    for day, positions in DAYS.items():
        keep = {homes[i][0] for i in positions}
        upload = part(full, keep, tmp_path / f"{day}.xlsx")
        ok(run_cli, "ingest", upload, "--campaign", CAMPAIGN, "--unit", CITY, "--at", f"{day}T11:00+08:00")
    return homes, listed_by_county


def expected(points: list[tuple[dt.date, int]], workload: int, today: dt.date) -> dict:
    """The projection counted here: the pace from the last figure at least seven days old (the entry's start,
    11-11, with none, where there is none) to today; the finish at that pace; the days after 11-30."""
    since = today - dt.timedelta(days=7)
    older = [point for point in points if point[0] <= since]
    base = older[-1] if older else (dt.date(2020, 11, 11), 0)
    done = points[-1][1]
    pace = (done - base[1]) / (today - base[0]).days
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
    assert city["workload"]["done"] == 120 and city["new"] == 20 and city["entered"] == 140
    # 60 of the list in the 8 days since 11-12: 7.5 a day; 80 left → 11 days → 12-01, one day after 11-30
    assert city["workload"]["finish"] == "2020-12-01" and city["workload"]["days_late"] == 1
    assert units["370200"]["workload"] is None, "青岛市 has no workload: no share, no projection"
    named = {item["unit"]: item for item in report["behind"]}
    assert named[CITY]["days_late"] == 1 and named[CITY]["name"] == "济南市"
    assert set(named) == {
        code for code, unit in units.items() if (unit["workload"] or {}).get("state") in ("behind", "stalled")
    }

    text = ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--under", CITY)
    assert "工作台账 120/200（60%），预计 12-01 完成，晚 1 天" in text


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
    assert not [r for r in reminders if r["kind"] == "pace" and r["unit"].startswith("3702")], "青岛市 has no workload"


def test_project_at_its_boundaries():
    """Exactly on the deadline is on time; nothing entered in the pace's days is stalled; the list done is done."""
    start, deadline = dt.date(2020, 11, 11), dt.date(2020, 11, 30)
    on_the_day = project([(dt.date(2020, 11, 20), 90)], 190, deadline, start, dt.date(2020, 11, 20))
    assert on_the_day.pace == 10 and on_the_day.finish == deadline and on_the_day.state == "on_track"
    a_day_late = project([(dt.date(2020, 11, 20), 90)], 191, deadline, start, dt.date(2020, 11, 20))
    assert a_day_late.state == "behind" and a_day_late.days_late == 1
    old = [(dt.date(2020, 11, 12), 50)]
    assert project(old, 100, deadline, start, dt.date(2020, 11, 20)).state == "stalled"
    assert project([(dt.date(2020, 11, 18), 100)], 100, deadline, start, dt.date(2020, 11, 20)).state == "done"
    assert project([], 100, deadline, start, dt.date(2020, 11, 20)).state == "no_data"
