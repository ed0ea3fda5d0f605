"""How far each unit has got: its milestones (on time, late, missing) and those of the units below it, the
households it has entered, its workload and projected finish, its open problems; and every office's reporting
rates (include/door/status.py).

Entered households are the distinct households of the campaign's household forms in the uploads in force, each
counted for the county its address names (a city's for its counties together). Against a workload (工作台账,
include/door/workload.py) a unit's progress is the share of its list entered, with the pace of its last days and
the day it will finish at that pace. Where no workload is loaded no share of households is shown: the registry's
registered households are the whole roster, while this year's forms hold the changes (new identifications are
about 5 % of it, seed 004). A unit's ``share`` is of the milestones due so far that it and its units below have
completed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from include.calendar import Calendar
from include.calendar.instants import local_text
from include.calendar.tree import LEVEL_WORDS, LEVELS
from include.door.status import STATE_WORDS
from include.door.workload import entered_now, projections


def workload_words(workload: dict[str, Any] | None) -> str:
    """A unit's progress against its workload as the pages and the sheet say it: "120/200（60%），预计 12-01 完成，晚
    1 天"; "—" where it has none."""
    if workload is None:
        return "—"
    head = f"{workload['done']}/{workload['workload']}（{workload['rate']:.0%}）"
    state = workload["state"]
    if state == "done":
        return f"{head}，已完成"
    if state == "stalled":
        return f"{head}，近{workload['days']}天无录入，{workload['deadline'][5:]} 截止"
    if state == "no_data":
        return f"{head}，尚无录入"
    if state == "early":
        return f"{head}，录入刚开始，暂不预测"
    finish = workload["finish"][5:]
    return f"{head}，预计 {finish} 完成" + (f"，晚 {workload['days_late']} 天" if state == "behind" else "")


def progress_report(engine: Engine, calendar: Calendar, at: dt.datetime, under: str | None = None) -> dict[str, Any]:
    """Per level (cities, then counties …), per unit: milestone states, what it and its units below have completed
    of the milestones due so far, households entered, open problems; lagging first. ``under`` narrows to a subtree.

    Lagging means: more milestones missing, then more late, then the smaller share completed, then more open
    problems. ``units`` and ``milestones`` are the top level's (the grid's rows and columns).
    """
    from include.door.status import campaign_status
    from include.rules.problems import open_problems

    tree = calendar.tree
    status = campaign_status(engine, calendar, at, under=under)
    entered = entered_now(engine, calendar)
    ahead = projections(engine, calendar, at)
    top = set(calendar.unit_codes)
    rows = []
    for unit in status["units"]:
        code = unit["unit"]
        states = [item["state"] for item in unit["milestones"]]
        due = [
            item["state"]
            for other in status["units"]
            if tree.within(other["unit"], code)
            for item in other["milestones"]
            if item["state"] != "pending"
        ]
        received = sum(state in ("on_time", "late") for state in due)
        problems = open_problems(calendar.id, code) if code in top else None
        rows.append(
            {
                "unit": code,
                "name": unit["name"],
                "level": unit["level"],
                "parent": unit["parent"],
                "milestones": unit["milestones"],
                "missing": states.count("missing"),
                "late": states.count("late"),
                "done": {"expected": len(due), "received": received, "on_time": due.count("on_time")},
                "share": round(received / len(due), 4) if due else None,
                "uploads": code in top,  # the units that upload workbooks and get problem lists (a county's: its city)
                "entered": entered[code].households if code in entered else 0,
                "new": entered[code].households - (entered[code].on_list or 0) if code in ahead else None,
                "workload": ahead[code].as_json() if code in ahead else None,
                "open_problems": problems[1] if problems else None,
                "problems_stage": problems[0] if problems else None,
                "entry_window": unit["entry_window"],
            }
        )
    rows.sort(
        key=lambda u: (
            -u["missing"],
            -u["late"],
            u["share"] if u["share"] is not None else 2,
            -(u["open_problems"] or 0),
        )
    )
    names = {item.id: item.name for item in calendar.milestones}
    levels = []
    for level in LEVELS:
        units = [row for row in rows if row["level"] == level]
        if not units:
            continue
        # the level's columns: every milestone one of its units owes (a city without counties owes the counties'
        # work too, 东莞市), each row's cells in that order, "not_owed" where the unit owes it not
        owed = {item["id"] for unit in units for item in unit["milestones"]}
        ids = [item.id for item in sorted(calendar.milestones, key=lambda item: item.due) if item.id in owed]
        for unit in units:
            have = {item["id"]: item for item in unit["milestones"]}
            unit["milestones"] = [
                have.get(item, {"id": item, "state": "not_owed", "received_at": None}) for item in ids
            ]
        levels.append(
            {
                "level": level,
                "word": LEVEL_WORDS[level],
                "milestones": [{"id": item, "name": names[item]} for item in ids],
                "units": units,
            }
        )
    first = levels[0] if levels else {"milestones": [], "units": []}
    behind = sorted(
        (
            {"unit": row["unit"], "name": row["name"], "level": row["level"], **row["workload"]}
            for row in rows
            if row["workload"] and row["workload"]["state"] in ("behind", "stalled")
        ),
        key=lambda item: (LEVELS.index(item["level"]), -(item["days_late"] or 10**6)),
    )
    return {
        "campaign": calendar.id,
        "name": calendar.name,
        "at": status["at"],
        "milestones": first["milestones"],
        "units": first["units"],
        "levels": levels,
        "rates": status["rates"],
        "behind": behind,  # the units that, at their pace, will miss their deadline (or have stalled)
    }


def write_progress_xlsx(report: dict[str, Any], out: Path) -> Path:
    """The progress report as a workbook: a sheet per level (lagging first) with a native bar chart of the share
    completed, and the offices' reporting rates."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from include.forms.xlsx import print_setup, save_atomically, text_cell

    def header(ws: Any, row: int) -> None:
        for cell in ws[row]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.row_dimensions[row].height = 48

    wb = Workbook()
    wb.remove(wb.active)
    for n, level in enumerate(report["levels"] or [{"word": "单位", "milestones": [], "units": []}]):
        ws = wb.create_sheet("进度" if n == 0 else f"{level['word']}进度")
        at = local_text(dt.datetime.fromisoformat(report["at"]))
        ws["A1"] = f"{report['name']} {level['word']}进度（截至 {at}，落后的在前）"
        ws["A1"].font = Font(bold=True, size=14)
        milestones = [item["name"] for item in level["milestones"]]
        headers = [
            "单位",
            "代码",
            "上级",
            *milestones,
            "已录入（户）",
            "到期事项已完成",
            "完成比例",
            "未整改问题",
            "工作台账进度",
        ]
        ws.append([])
        ws.append(headers)
        header(ws, 3)
        for unit in level["units"]:
            row = ws.max_row + 1
            text_cell(ws, row, 1, unit["name"])
            text_cell(ws, row, 2, unit["unit"])
            text_cell(ws, row, 3, unit["parent"] or "")
            for column, item in enumerate(unit["milestones"], start=4):
                text_cell(ws, row, column, STATE_WORDS.get(item["state"], item["state"]))
            column = 4 + len(milestones)
            ws.cell(row=row, column=column, value=unit["entered"])
            text_cell(ws, row, column + 1, f"{unit['done']['received']}/{unit['done']['expected']}")
            share = ws.cell(row=row, column=column + 2, value=unit["share"])
            share.number_format = "0%"
            ws.cell(row=row, column=column + 3, value=unit["open_problems"])
            text_cell(ws, row, column + 4, workload_words(unit["workload"]))
        for column in range(1, len(headers) + 1):
            ws.column_dimensions[get_column_letter(column)].width = 14 if column > 3 else 10
        if level["units"]:
            chart = BarChart()
            chart.type = "bar"
            chart.title = "到期事项完成比例"
            chart.legend = None
            share_column = 6 + len(milestones)
            chart.add_data(Reference(ws, min_col=share_column, min_row=3, max_row=ws.max_row), titles_from_data=True)
            chart.set_categories(Reference(ws, min_col=1, min_row=4, max_row=ws.max_row))
            chart.x_axis.scaling.orientation = "maxMin"
            chart.height, chart.width = 3 + 0.6 * len(level["units"]), 20
            ws.add_chart(chart, f"A{ws.max_row + 3}")
        print_setup(ws, pages_high=1)
    ws = wb.create_sheet("报送率")
    ws.append(
        [
            "单位",
            "层级",
            "事项",
            "下级应报",
            "下级已报",
            "下级按时",
            "下级报送率",
            "全辖应报",
            "全辖已报",
            "全辖按时率",
            "未完成的下级",
        ]
    )
    header(ws, 1)
    names = {item["id"]: item["name"] for level in report["levels"] for item in level["milestones"]}
    for rate in report["rates"]:
        if not rate["due"]:
            continue
        children, subtree = rate["children"], rate["subtree"]
        row = ws.max_row + 1
        text_cell(ws, row, 1, rate["name"])
        text_cell(ws, row, 2, LEVEL_WORDS[rate["level"]])
        text_cell(ws, row, 3, names.get(rate["milestone"], rate["milestone"]))
        for column, value in enumerate(
            (children["expected"], children["received"], children["on_time"], children["received_rate"],
             subtree["expected"], subtree["received"], subtree["on_time_rate"]),
            start=4,
        ):  # fmt: skip
            cell = ws.cell(row=row, column=column, value=value)
            if isinstance(value, float):
                cell.number_format = "0%"
        text_cell(ws, row, 11, "、".join(rate["lagging_names"]))
    for column in range(1, 12):
        ws.column_dimensions[get_column_letter(column)].width = 12
    print_setup(ws)
    return save_atomically(wb, out)
