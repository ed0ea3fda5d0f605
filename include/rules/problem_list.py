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
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from include.forms.template import MARKER_PREFIX
from include.forms.xlsx import REPLACEMENT, print_setup, save_atomically, text_cell, writable
from include.rules.catalog import RULES
from include.rules.engine import RuleRun
from include.rules.imported import TITLES as IMPORTED_TITLES
from include.rules.problems import CLOSED, with_ids

STATUS_TEXT = {
    "new": "新发现", "open": "仍存在", "reopened": "报已整改但仍存在", "fixed": "已整改", "dismissed": "经核实不属实",
}  # fmt: skip
SEVERITY_TEXT = {"error": "错误", "warning": "提示"}
STAGE_TEXT = {"analysis": "数据分析和问题梳理", "verification": "问题数据核查", "completion": "完善系统数据"}
# The issued columns (protected), then the two the unit fills in and uploads back (include/rules/results.py).
ISSUED = ("问题编号", "户主身份证号码", "户主姓名", "问题人员身份证号码", "指标", "规则", "级别", "问题说明", "状态")
RESULT_COLUMNS = ("核查结果", "说明")
HEADERS = (*ISSUED, *RESULT_COLUMNS)
RESULT_TEXT = {
    "fixed": "属实，已整改",
    "pending": "属实，待整改",
    "not_a_problem": "不属实",
    "unverifiable": "无法核实",
}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
RESULT_FILL = PatternFill("solid", fgColor="FFF2CC")
TITLES = {rule.id: rule.title for rule in RULES} | IMPORTED_TITLES
KIND = "problem_list"  # the marker's kind: a problem list, not a form's template


def issued_values(problem: dict[str, object]) -> tuple[object, ...]:
    """The protected cells of a problem's row, as written (and as checked when the list comes back)."""
    return (
        problem.get("problem"),
        problem["household"],
        problem.get("head_name"),
        problem["person"],
        "、".join(problem["fields"] or []),
        TITLES.get(str(problem["rule"]), problem["rule"]),
        SEVERITY_TEXT.get(str(problem["severity"]), problem["severity"]),
        problem["message"],
        STATUS_TEXT.get(str(problem["status"]), problem["status"]),
    )


def _mark(wb: Workbook, values: dict[str, str]) -> None:
    """Hidden workbook-level names (as the forms' templates carry), read back when the list is uploaded."""
    for key, value in values.items():
        name = f"{MARKER_PREFIX}{key}"
        wb.defined_names[name] = DefinedName(name, attr_text='"' + value.replace('"', "") + '"', hidden=True)


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
    campaign_id: str = "",
    unit: str = "",
    results: dict[str, tuple[str, str | None]] | None = None,
) -> Path:
    """Write one unit's problem list (atomically) and return its path. The summary names the rules that did not
    run (``rules``: the run's ``RuleRun``s) and why: no problem of a rule that never ran reads as none found.

    Each problem's row ends with 核查结果 (a dropdown of ``RESULT_TEXT``) and 说明, the only cells not protected;
    ``results`` (problem → result, note) fills those the unit already gave. The list is marked with its
    campaign, unit and stage, so that it can come back through the door (include/rules/results.py).
    """
    wb = Workbook()
    if "problem" not in problems.columns:
        problems = with_ids(problems, campaign_id)
    results = results or {}
    summary = wb.active
    summary.title = "汇总"
    active = problems.filter(~pl.col("status").is_in(CLOSED))
    summary["A1"] = writable(f"{unit_name} 问题清单（{STAGE_TEXT.get(stage, stage)}）")
    summary["A1"].font = Font(bold=True, size=14)
    fixed, dismissed = (problems.filter(pl.col("status") == status).height for status in CLOSED)
    closed = f"，已整改 {fixed} 个" + (f"，经核实不属实 {dismissed} 个" if dismissed else "")
    summary["A2"] = writable(f"工作：{campaign_name}；问题 {active.height} 个{closed}")
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
    skipped = [run for run in rules or [] if run.short]
    if skipped:
        summary.append([])
        summary.append(["未运行的规则（其问题未查，不等于没有问题）", "", "", "原因"])
        for cell in summary[summary.max_row]:
            cell.font = Font(bold=True)
            cell.fill = HEADER_FILL
        for run in skipped:
            row = summary.max_row + 1
            text_cell(summary, row, 1, run.title)
            text_cell(summary, row, 2, run.word)
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
    result_column, note_column = len(ISSUED) + 1, len(ISSUED) + 2
    for (county,), rows in grouped.group_by(["county"], maintain_order=True):
        ws = wb.create_sheet(_sheet_title(str(county), taken))
        ws.append(list(HEADERS))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = RESULT_FILL if cell.column > len(ISSUED) else HEADER_FILL
        choices = DataValidation(
            type="list",
            formula1='"' + ",".join(RESULT_TEXT.values()) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="核查结果",
            error="请从下拉框中选择：" + "、".join(RESULT_TEXT.values()),
            promptTitle="核查结果",
            prompt="实地核查后从下拉框中选择；不属实、无法核实的请在“说明”中写明情况。",
            showInputMessage=True,
        )
        ws.add_data_validation(choices)
        for i, problem in enumerate(rows.iter_rows(named=True), start=2):
            for column, value in enumerate(issued_values(problem), start=1):
                text_cell(ws, i, column, value)
            for column in (5, 6, 8):
                ws.cell(row=i, column=column).alignment = Alignment(wrap_text=True, vertical="top")
            if problem["status"] in CLOSED:
                continue  # gone from the data, or accepted as 不属实: nothing to verify, the cells stay protected
            given = results.get(str(problem["problem"]))
            if given is not None:
                text_cell(ws, i, result_column, RESULT_TEXT.get(given[0], given[0]))
                text_cell(ws, i, note_column, given[1])
            for column in (result_column, note_column):
                cell = ws.cell(row=i, column=column)
                cell.protection = Protection(locked=False)
                cell.fill = RESULT_FILL
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            choices.add(ws.cell(row=i, column=result_column).coordinate)
        for column, width in zip("ABCDEFGHIJK", (14, 22, 10, 22, 18, 22, 6, 60, 8, 14, 30), strict=True):
            ws.column_dimensions[column].width = width
        ws.freeze_panes = "B2"
        # Protected but for 核查结果 and 说明; columns may be widened and rows filtered, nothing else changed.
        ws.protection.sheet = True
        ws.protection.formatColumns = False
        ws.protection.formatRows = False
        ws.protection.autoFilter = False
        print_setup(ws)
        ws.print_title_rows = "1:1"
    _mark(wb, {"kind": KIND, "campaign": campaign_id, "unit": unit, "stage": stage})
    return save_atomically(wb, out)
