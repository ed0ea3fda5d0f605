"""How far each unit has got: households entered against its roster (the registry figures it uploaded).

Entered households are the distinct households of the campaign's household forms in the records store
(new poor, edge, unstable …); the roster is the sum of ``registered_households`` over the counties of
the unit's ``registry`` upload (include/forms/specs/registry.yaml).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from include.calendar import Calendar
from include.calendar.model import EntryWindow
from include.door.status import STATE_WORDS
from include.forms import records
from include.forms.spec import get_form

ROSTER_FORM = "registry"


@dataclass(frozen=True)
class UnitProgress:
    unit: str
    entered: int  # households in the records in force
    roster: int | None  # registered households; None when the unit has uploaded no registry figures

    @property
    def share(self) -> float | None:
        return self.entered / self.roster if self.roster else None


def unit_progress(calendar: Calendar, units: list[str] | None = None) -> dict[str, UnitProgress]:
    codes = units or calendar.unit_codes
    entered = dict.fromkeys(codes, 0)
    for form_id in calendar.forms:
        form = get_form(form_id)
        if not form.household_key or not any(sheet.id == "households" for sheet in form.sheets):
            continue
        frame = records.scan(calendar.id, form.id, "households", codes, pinned=records.pin(calendar.id, form.id, codes))
        if frame is None:
            continue
        counts = frame.group_by("unit").agg(pl.col(form.household_key).n_unique().alias("n")).collect()
        for unit, n in counts.iter_rows():
            entered[unit] = entered.get(unit, 0) + int(n)
    roster: dict[str, int] = {}
    if ROSTER_FORM in calendar.forms:
        frame = records.scan(
            calendar.id, ROSTER_FORM, "counties", codes, pinned=records.pin(calendar.id, ROSTER_FORM, codes)
        )
        if frame is not None:
            sums = frame.group_by("unit").agg(pl.col("registered_households").sum()).collect()
            roster = {unit: int(total or 0) for unit, total in sums.iter_rows()}
    return {code: UnitProgress(code, entered.get(code, 0), roster.get(code)) for code in codes}


def expected_share(window: EntryWindow, at: dt.datetime) -> float:
    """The share of the roster entered by ``at`` if entry went evenly over the window (0 before it opens)."""
    if at <= window.opens:
        return 0.0
    if at >= window.closes:
        return 1.0
    return (at - window.opens) / (window.closes - window.opens)


def progress_report(engine: Engine, calendar: Calendar, at: dt.datetime) -> dict[str, Any]:
    """Per unit: milestone states, households entered against the roster, open problems; worst first.

    Worst means: more reports missing, then more late, then the smaller share of the roster entered, then
    more open problems.
    """
    from include.door.status import campaign_status
    from include.rules.problems import open_problems

    status = campaign_status(engine, calendar, at)
    entered = unit_progress(calendar)
    units = []
    for unit in status["units"]:
        states = [item["state"] for item in unit["milestones"]]
        progress = entered[unit["unit"]]
        problems = open_problems(calendar.id, unit["unit"])
        units.append(
            {
                "unit": unit["unit"],
                "name": unit["name"],
                "milestones": unit["milestones"],
                "missing": states.count("missing"),
                "late": states.count("late"),
                "entered": progress.entered,
                "roster": progress.roster,
                "share": round(progress.share, 4) if progress.share is not None else None,
                "open_problems": problems[1] if problems else None,
                "problems_stage": problems[0] if problems else None,
                "entry_window": unit["entry_window"],
            }
        )
    units.sort(
        key=lambda u: (
            -u["missing"],
            -u["late"],
            u["share"] if u["share"] is not None else -1,
            -(u["open_problems"] or 0),
        )
    )
    names = {item.id: item.name for item in calendar.milestones}
    reported = [item["id"] for item in status["units"][0]["milestones"]] if status["units"] else []
    milestones = [{"id": item, "name": names[item]} for item in reported]
    return {
        "campaign": calendar.id,
        "name": calendar.name,
        "at": status["at"],
        "milestones": milestones,
        "units": units,
    }


def write_progress_xlsx(report: dict[str, Any], out: Path) -> Path:
    """The progress report as a workbook: a table per unit (worst first) and a native bar chart of completion."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from include.forms.xlsx import print_setup, save_atomically, text_cell

    wb = Workbook()
    ws = wb.active
    ws.title = "进度"
    ws["A1"] = f"{report['name']} 进度（截至 {report['at']}）"
    ws["A1"].font = Font(bold=True, size=14)
    milestones = [item["name"] for item in report["milestones"]]
    headers = ["单位", "代码", *milestones, "已录入（户）", "底数（户）", "完成比例", "未整改问题"]
    ws.append([])
    ws.append(headers)
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    ws.row_dimensions[3].height = 48
    for unit in report["units"]:
        row = ws.max_row + 1
        text_cell(ws, row, 1, unit["name"])
        text_cell(ws, row, 2, unit["unit"])
        for n, item in enumerate(unit["milestones"], start=3):
            text_cell(ws, row, n, STATE_WORDS.get(item["state"], item["state"]))
        column = 3 + len(milestones)
        ws.cell(row=row, column=column, value=unit["entered"])
        ws.cell(row=row, column=column + 1, value=unit["roster"])
        share = ws.cell(row=row, column=column + 2, value=unit["share"] or 0)
        share.number_format = "0%"
        ws.cell(row=row, column=column + 3, value=unit["open_problems"])
    for n in range(1, len(headers) + 1):
        ws.column_dimensions[get_column_letter(n)].width = 14 if n > 2 else 10
    if report["units"]:
        chart = BarChart()
        chart.type = "bar"
        chart.title = "各单位录入完成比例"
        chart.legend = None
        share_column = 5 + len(milestones)
        chart.add_data(Reference(ws, min_col=share_column, min_row=3, max_row=ws.max_row), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=4, max_row=ws.max_row))
        chart.x_axis.scaling.orientation = "maxMin"
        chart.height, chart.width = 3 + 0.6 * len(report["units"]), 20
        ws.add_chart(chart, f"A{ws.max_row + 3}")
    print_setup(ws, pages_high=1)
    return save_atomically(wb, out)
