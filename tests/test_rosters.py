"""Townships and villages from the roster an office loads (issue 15, item 1).

Longju's plan (seed 001) is a town's: its units are its villages ("各村"), which the calendar holds as
placeholders (LJ01 …) until the town loads its roster. The roster's 12-digit village codes then replace them,
for reports, status and reminders alike. A province's plan gains townships and villages under its counties.
Every problem of a roster is named with its row, and a roster with any problem is refused whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from include.calendar.roster import roster_file
from include.door.rosters import COLUMNS, SHEET

LONGJU = "2020-chongqing-longju"
TOWN = "500101108"  # 9 digits: 万州区 500101 and the town's own 108 (a test roster, not the real list)
VILLAGES = [(f"{TOWN}{n:03d}", name) for n, name in enumerate(("甲村", "乙村", "丙村", "丁村", "戊社区"), start=1)]


def filled(run_cli, tmp_path: Path, campaign: str, rows: list[tuple]) -> Path:
    """The roster template as an office fills it, row by row (openpyxl, as Excel would save it)."""
    out = tmp_path / f"{campaign}-roster.xlsx"
    code, _, err = run_cli("roster", "template", "--campaign", campaign, "--out", out)
    assert code == 0, err
    wb = openpyxl.load_workbook(out)
    ws = wb[SHEET]
    assert tuple(cell.value for cell in ws[1]) == COLUMNS
    for number, row in enumerate(rows, start=2):
        for column, value in enumerate(row, start=1):
            ws.cell(row=number, column=column, value=value)
    wb.save(out)
    return out


def units(run_cli, campaign: str, *more: str) -> list[dict]:
    code, out, err = run_cli("units", "--campaign", campaign, "--json", *more)
    assert code == 0, err
    return json.loads(out)


def test_a_towns_roster_replaces_its_placeholder_villages(run_cli, tmp_path):
    before = units(run_cli, LONGJU, "--level", "village")
    assert [unit["code"] for unit in before] == [f"LJ0{n}" for n in range(1, 9)]
    rows = [
        (TOWN, "龙驹镇", code, name, "张三" if code.endswith("1") else None, "13800001111", None)
        for code, name in VILLAGES
    ]
    rows[1] = (TOWN, "龙驹镇", int(VILLAGES[1][0]), VILLAGES[1][1])  # a code typed as a number keeps its digits
    file = filled(run_cli, tmp_path, LONGJU, rows)
    code, out, err = run_cli("roster", "load", file, "--campaign", LONGJU, "--source", "龙驹镇测试名册", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "status": "loaded",
        "campaign": LONGJU,
        "source": "龙驹镇测试名册",
        "townships": 1,
        "villages": 5,
        "replaced": False,
    }
    after = units(run_cli, LONGJU, "--level", "village")
    assert after == [{"code": code, "name": name, "level": "village", "parent": "500101"} for code, name in VILLAGES]
    kept = json.loads(roster_file(LONGJU).read_text(encoding="utf-8"))
    assert kept["townships"][0]["villages"][0]["contact"] == {"name": "张三", "phone": "13800001111"}

    # the roster's villages are the units now: one reports, a placeholder code is no unit any more
    at = "2020-10-20T10:00+08:00"
    code, _, err = run_cli(
        "report", "submit", "--campaign", LONGJU, "--unit", VILLAGES[0][0], "--milestone", "signed_lists", "--at", at
    )
    assert code == 0, err
    code, _, err = run_cli(
        "report", "submit", "--campaign", LONGJU, "--unit", "LJ01", "--milestone", "signed_lists", "--at", at
    )
    assert code != 0 and "LJ01" in err
    code, out, err = run_cli("status", "--campaign", LONGJU, "--at", "2020-10-26T09:00+08:00", "--json")
    assert code == 0, err
    shown = {unit["unit"] for unit in json.loads(out)["units"]}
    assert {code for code, _ in VILLAGES} <= shown and "LJ01" not in shown


def test_a_roster_with_problems_is_refused_whole_each_problem_with_its_row(run_cli, tmp_path):
    good = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES[:2]])
    assert run_cli("roster", "load", good, "--campaign", LONGJU)[0] == 0
    rows = [
        (TOWN, "龙驹镇", VILLAGES[0][0], "甲村"),
        (TOWN, "龙驹镇", "50010110800", "短码村"),  # 11 digits
        (TOWN, "龙驹镇", "500101109001", "邻镇村"),  # not under its township
        (TOWN, "龙驹镇", VILLAGES[0][0], "重复村"),  # the code twice
        (TOWN, "龙驹乡", VILLAGES[3][0], "丁村"),  # the township named otherwise
        (TOWN, "龙驹镇", VILLAGES[4][0], None),  # no name
        (TOWN, "龙驹镇", "500101108009", "长" * 41, None, "拨打办公室"),  # a name too long, a phone of words
    ]
    code, out, _ = run_cli("roster", "load", filled(run_cli, tmp_path, LONGJU, rows), "--campaign", LONGJU, "--json")
    assert code == 1
    problems = json.loads(out)["problems"]
    assert any(p.startswith("第 3 行：村代码「500****0800」应为 12 位数字") for p in problems), (
        problems
    )  # masked: a long number
    assert any(p.startswith("第 6 行：乡镇 500101108 的名称「龙驹乡」与第 2 行的「龙驹镇」不同") for p in problems)
    assert any(p.startswith("第 7 行：村名称未填写") for p in problems)
    assert (
        "第 8 行：村名称过长（最多 40 个字）" in problems
        and "第 8 行：联系电话应为 5–20 位数字（可含 - 和括号）" in problems
    )
    # the rows that pass one by one are checked as a whole too, once the row problems are fixed
    rows = [
        (TOWN, "龙驹镇", VILLAGES[0][0], "甲村"),
        (TOWN, "龙驹镇", "500101109001", "邻镇村"),
        (TOWN, "龙驹镇", VILLAGES[0][0], "重复村"),
    ]
    code, out, _ = run_cli("roster", "load", filled(run_cli, tmp_path, LONGJU, rows), "--campaign", LONGJU, "--json")
    problems = json.loads(out)["problems"]
    assert code == 1 and any("前 9 位应为所属乡镇 500101108" in p for p in problems), problems
    assert any(p.startswith(f"代码 {VILLAGES[0][0]} 重复") for p in problems)
    assert [unit["code"] for unit in units(run_cli, LONGJU, "--level", "village")] == [c for c, _ in VILLAGES[:2]], (
        "the roster in use stays"
    )


def test_a_placeholder_that_has_reported_blocks_the_roster(run_cli, tmp_path):
    at = "2020-10-20T10:00+08:00"
    assert (
        run_cli("report", "submit", "--campaign", LONGJU, "--unit", "LJ03", "--milestone", "signed_lists", "--at", at)[
            0
        ]
        == 0
    )
    file = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES])
    code, out, _ = run_cli("roster", "load", file, "--campaign", LONGJU, "--json")
    assert code == 1
    assert any("LJ03" in p and "个单位已有报送、上传的数据或工作台账" in p for p in json.loads(out)["problems"])
    assert not roster_file(LONGJU).exists()


def test_a_new_roster_may_not_drop_a_village_that_has_reported(run_cli, tmp_path):
    first = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES])
    assert run_cli("roster", "load", first, "--campaign", LONGJU)[0] == 0
    at = "2020-10-20T10:00+08:00"
    assert run_cli("report", "submit", "--campaign", LONGJU, "--unit", VILLAGES[0][0], "--milestone", "signed_lists",
                   "--at", at)[0] == 0  # fmt: skip
    second = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES[1:]])
    code, out, _ = run_cli("roster", "load", second, "--campaign", LONGJU, "--json")
    assert code == 1 and any(VILLAGES[0][0] in p for p in json.loads(out)["problems"])
    assert VILLAGES[0][0] in {unit["code"] for unit in units(run_cli, LONGJU)}, "the roster in use stays"


def test_a_roster_file_broken_by_hand_is_left_out_and_can_be_loaded_again(run_cli, tmp_path):
    good = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES])
    assert run_cli("roster", "load", good, "--campaign", LONGJU)[0] == 0
    roster_file(LONGJU).write_text('{"campaign": "2020-chongqing-longju", "townships": [', encoding="utf-8")
    assert next(unit["code"] for unit in units(run_cli, LONGJU, "--level", "village")) == "LJ01"
    assert run_cli("roster", "load", good, "--campaign", LONGJU)[0] == 0
    assert [unit["code"] for unit in units(run_cli, LONGJU, "--level", "village")] == [c for c, _ in VILLAGES]


def test_a_provinces_roster_puts_townships_under_their_counties(run_cli, tmp_path):
    rows = [
        ("370102001", "解放路街道", "370102001001", "甲社区"),
        ("370102001", "解放路街道", "370102001002", "乙社区"),
        ("370102002", "千佛山街道"),  # a township without villages yet
    ]
    file = filled(run_cli, tmp_path, "2020-shandong", rows)
    code, _, err = run_cli("roster", "load", file, "--campaign", "2020-shandong")
    assert code == 0, err
    under = units(run_cli, "2020-shandong", "--under", "370102")
    assert [(u["code"], u["level"], u["parent"]) for u in under] == [
        ("370102", "county", "370100"),
        ("370102001", "township", "370102"),
        ("370102001001", "village", "370102001"),
        ("370102001002", "village", "370102001"),
        ("370102002", "township", "370102"),
    ]
    assert len(units(run_cli, "2020-shandong", "--level", "city")) == 16, "the cities are GB/T 2260's still"
    # 370101 is 济南市's 市辖区, a grouping code and no county: no township sits under it
    bad = filled(run_cli, tmp_path, "2020-shandong", [("370101001", "某街道")])
    code, out, _ = run_cli("roster", "load", bad, "--campaign", "2020-shandong", "--json")
    assert code == 1 and any("370101 不是本战役 2020 年的县区" in p for p in json.loads(out)["problems"])


@pytest.mark.airflow
def test_the_campaign_dags_gates_follow_the_roster(run_cli, tmp_path):
    """The campaign DAG's gates are mapped over the roster's villages on its next parse, and the gate's trigger
    (which loads the campaign by id) sees the same villages."""
    from include.calendar.registry import load_campaign
    from include.orchestration.dag_factory import build_all, gate_units
    from include.paths import CONFIG_CAMPAIGNS

    file = filled(run_cli, tmp_path, LONGJU, [(TOWN, "龙驹镇", code, name) for code, name in VILLAGES])
    assert run_cli("roster", "load", file, "--campaign", LONGJU)[0] == 0
    dag = build_all([CONFIG_CAMPAIGNS / f"{LONGJU}.yaml"])[LONGJU]
    assert dag.get_task("collection.gate_signed_lists").expand_input.value["unit"] == [code for code, _ in VILLAGES]
    calendar = load_campaign(LONGJU)
    assert gate_units(calendar, calendar.milestone("signed_lists"))[0] == [code for code, _ in VILLAGES]
