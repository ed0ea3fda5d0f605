"""Small helpers for the workbooks the project writes (problem lists, progress reports)."""

from __future__ import annotations

import re
from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from include.paths import atomic_path

FORMULA_START = ("=", "+", "-", "@")
# What a workbook cannot hold (openpyxl raises IllegalCharacterError on it): C0 controls but tab and line breaks.
UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
REPLACEMENT = "\ufffd"  # shown as �: the clerk sees that a character was there


def writable(value: str) -> str:
    """``value`` with every character a workbook cannot hold shown as �: one stray control character in stored
    data can never stop a problem list from being written."""
    return UNWRITABLE.sub(REPLACEMENT, value)


def text_cell(ws: Worksheet, row: int, column: int, value: object) -> None:
    """A cell that shows ``value`` as text, whatever it starts with: "=1+1" stays a string, never a formula;
    a control character becomes �."""
    cell = ws.cell(row=row, column=column, value=None if value is None else writable(str(value)))
    if cell.value is not None:
        cell.data_type = "s"
        if str(value).startswith(FORMULA_START):
            cell.quotePrefix = True


def print_setup(ws: Worksheet, pages_high: int = 0) -> None:
    """Landscape A4, as wide as one page: a sheet printed for a meeting keeps its columns together."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, pages_high
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def save_atomically(wb: Workbook, out: Path) -> Path:
    with atomic_path(out) as tmp:
        wb.save(tmp)
    return out


def list_template(title: str, columns: tuple[str, ...], widths: list[int], notes: list[str]) -> Workbook:
    """A list an office fills (a roster, a workload): bold headed text columns, frozen header, and a sheet of
    what to fill in."""
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for column, (header, width) in enumerate(zip(columns, widths, strict=True), start=1):
        cell = ws.cell(row=1, column=column, value=header)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        ws.column_dimensions[cell.column_letter].width = width
        ws.column_dimensions[cell.column_letter].number_format = "@"  # codes and keys stay text
    ws.freeze_panes = "A2"
    sheet = wb.create_sheet("填写说明")
    for row, line in enumerate(notes, start=1):
        text_cell(sheet, row, 1, line)
    sheet.column_dimensions["A"].width = 100
    print_setup(ws)
    return wb
