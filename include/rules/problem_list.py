"""The problem list a unit gets back (到户到人的问题清单): one Excel workbook per unit.

A summary sheet (counts per rule and per county, with a native Excel bar chart), then one sheet per
county (or the unit's own name where households carry no county), one row per problem. The unit's
own list is the one place ID numbers appear unmasked. Every cell written from data is text: a
value such as "=1+1" is stored as a string, never as a formula.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill

from include.forms.xlsx import REPLACEMENT, print_setup, save_atomically, text_cell, writable
from include.rules.catalog import RULES
from include.rules.engine import RUN_WORDS, RuleRun

STATUS_TEXT = {"new": "新发现", "open": "仍存在", "fixed": "已整改"}
SEVERITY_TEXT = {"error": "错误", "warning": "提示"}
STAGE_TEXT = {"analysis": "数据分析和问题梳理", "verification": "问题数据核查", "completion": "完善系统数据"}
HEADERS = ("户主身份证号码", "户主姓名", "问题人员身份证号码", "指标", "规则", "级别", "问题说明", "状态")
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLES = {rule.id: rule.title for rule in RULES}


def _sheet_title(name: str, taken: set[str]) -> str:
    title = "".join(ch for ch in writable(name) if ch not in "[]:*?/\\" + REPLACEMENT)[:28] or "未注明区县"
    base, n = title, 2
    while title in taken:
        title = f"{base[:25]}_{n}"
        n += 1
    taken.add(title)
    return title


def write_problem_list(
    problems: pl.DataFrame,
    out: Path,
    *,
    unit_name: str,
    campaign_name: str,
    stage: str,
    rules: list[RuleRun] | None = None,
) -> Path:
    """Write one unit's problem list (atomically) and return its path. The summary names the rules that did not
    run (``rules``: the run's ``RuleRun``s) and why: no problem of a rule that never ran reads as none found."""
    wb = Workbook()
    summary = wb.active
    summary.title = "汇总"
    active = problems.filter(pl.col("status") != "fixed")
    summary["A1"] = writable(f"{unit_name} 问题清单（{STAGE_TEXT.get(stage, stage)}）")
    summary["A1"].font = Font(bold=True, size=14)
    summary["A2"] = writable(
        f"工作：{campaign_name}；问题 {active.height} 个，已整改 {problems.height - active.height} 个"
    )
    summary.append([])
    summary.append(["规则", "级别", "问题数", "规则编号"])
    by_rule = active.group_by("rule").agg(pl.len(), pl.col("severity").first()).sort(["len", "rule"], descending=True)
    first_rule_row = summary.max_row + 1
    for rule, count, severity in by_rule.iter_rows():
        summary.append([writable(str(TITLES.get(rule, rule))), SEVERITY_TEXT.get(severity, severity), count, rule])
        summary.cell(row=summary.max_row, column=4).alignment = Alignment(indent=1)
    last_rule_row = summary.max_row
    summary.append([])
    summary.append(["区县", "", "问题数"])
    counties = active.with_columns(pl.col("county").fill_null(unit_name)).group_by("county").len().sort("county")
    for county, count in counties.iter_rows():
        row = summary.max_row + 1
        text_cell(summary, row, 1, county)
        summary.cell(row=row, column=3, value=count)
    for row in (first_rule_row - 1, last_rule_row + 2):
        for cell in summary[row]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
    skipped = [run for run in rules or [] if run.state in ("not_run", "no_data")]
    if skipped:
        summary.append([])
        summary.append(["未运行的规则（其问题未查，不等于没有问题）", "", "", "原因"])
        for cell in summary[summary.max_row]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
        for run in skipped:
            row = summary.max_row + 1
            text_cell(summary, row, 1, run.title)
            text_cell(summary, row, 2, RUN_WORDS[run.state])
            text_cell(summary, row, 4, run.reason)
            summary.cell(row=row, column=4).alignment = Alignment(wrap_text=True, vertical="top")
    for column, width in zip("ABCD", (60, 8, 10, 40), strict=True):
        summary.column_dimensions[column].width = width
    if by_rule.height:
        chart = BarChart()
        chart.type = "bar"
        chart.title = "各规则问题数"
        chart.y_axis.title = "问题数"
        chart.legend = None
        data = Reference(summary, min_col=3, min_row=first_rule_row - 1, max_row=last_rule_row)
        labels = Reference(summary, min_col=1, min_row=first_rule_row, max_row=last_rule_row)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(labels)
        chart.x_axis.scaling.orientation = "maxMin"  # the largest count on top, as in the table
        chart.height, chart.width = 3 + 0.8 * by_rule.height, 26
        summary.add_chart(chart, f"A{summary.max_row + 2}")
    print_setup(summary, pages_high=1)
    taken = {"汇总"}
    grouped = problems.with_columns(pl.col("county").fill_null(unit_name)).sort(["county", "household", "rule"])
    for (county,), rows in grouped.group_by(["county"], maintain_order=True):
        ws = wb.create_sheet(_sheet_title(str(county), taken))
        ws.append(list(HEADERS))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
        for i, problem in enumerate(rows.iter_rows(named=True), start=2):
            values = (
                problem["household"],
                problem.get("head_name"),
                problem["person"],
                "、".join(problem["fields"] or []),
                TITLES.get(problem["rule"], problem["rule"]),
                SEVERITY_TEXT.get(problem["severity"], problem["severity"]),
                problem["message"],
                STATUS_TEXT.get(problem["status"], problem["status"]),
            )
            for column, value in enumerate(values, start=1):
                text_cell(ws, i, column, value)
            for column in (4, 5, 7):
                ws.cell(row=i, column=column).alignment = Alignment(wrap_text=True, vertical="top")
        for column, width in zip("ABCDEFGH", (22, 10, 22, 18, 22, 6, 60, 8), strict=True):
            ws.column_dimensions[column].width = width
        ws.freeze_panes = "A2"
        print_setup(ws)
        ws.print_title_rows = "1:1"
    return save_atomically(wb, out)
