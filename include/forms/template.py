"""Bulk templates: one workbook per form that a village clerk fills in, one row per household or person.

Each data sheet's first row heads every column with the field's code and label ("A4 居民身份证(残疾人证)
号码"); options and yes/no get dropdowns (lists kept on a hidden sheet, so long lists are not cut);
ID, phone and account columns are formatted as text so that Excel keeps every digit; a very hidden
sheet carries the form id and version that the reader checks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from include.forms.spec import TEXT_FORMAT_TYPES, FieldSpec, FormSpec
from include.forms.xlsx import save_atomically

MARKER_SHEET = "_模板信息"
MARKER_PREFIX = "_campaign_"
OPTIONS_SHEET = "_选项"
INSTRUCTIONS_SHEET = "填表说明"
INSTRUCTIONS_WIDTH = 100
MAX_ROW = 1_048_576
TEXT_FORMAT = "@"
DATE_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = "yyyy-mm"
REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")
OPTIONAL_FILL = PatternFill("solid", fgColor="DDEBF7")

TYPE_HINTS = {
    "text": "文字",
    "name": "姓名",
    "id_number": "18位居民身份证号码（残疾人证为20位），按文本填写，末位可为X",
    "phone": "手机11位或带区号的固定电话，按文本填写",
    "account": "银行账号，按文本填写",
    "integer": "整数",
    "money": "金额（元），最多两位小数，没有填0",
    "area": "面积，最多两位小数",
    "number": "数字",
    "date": "日期，如 2020-10-01",
    "month": "年月，如 2020-09",
    "yes_no": "从下拉框选“是”或“否”",
    "single": "从下拉框选一项",
    "multiple": "可选多项，用顿号“、”分隔",
}


def field_hint(field: FieldSpec) -> str:
    """The comment on a column's heading: required or not, the type, the options."""
    parts = ["必填" if field.required else "选填", TYPE_HINTS[field.type]]
    if field.type == "multiple" and field.max_choices:
        parts.append(f"最多选{field.max_choices}项")
    if field.type in ("single", "multiple"):
        parts.append("可选：" + "、".join(field.dropdown))
    if field.generated:
        parts.append("系统生成，可不填；填写后将核对")
    return "；".join(parts)


def write_template(form: FormSpec, out: Path, *, campaign_id: str, campaign_name: str) -> Path:
    """Write the form's bulk template to ``out`` (atomically) and return the path."""
    return save_atomically(build_template(form, campaign_id=campaign_id, campaign_name=campaign_name), out)


def build_template(form: FormSpec, *, campaign_id: str, campaign_name: str) -> Workbook:
    wb = Workbook()
    instructions = wb.active
    instructions.title = INSTRUCTIONS_SHEET
    _write_instructions(instructions, form, campaign_name)
    options = wb.create_sheet(OPTIONS_SHEET)
    options.sheet_state = "hidden"
    option_column = 0
    for sheet in form.sheets:
        ws = wb.create_sheet(sheet.name)
        ws.freeze_panes = "B2"
        for col, field in enumerate(form.fields_of(sheet.id), start=1):
            letter = get_column_letter(col)
            cell = ws.cell(row=1, column=col, value=field.header)
            cell.font = Font(bold=True, color="9C0006" if field.required else "000000")
            cell.fill = REQUIRED_FILL if field.required else OPTIONAL_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="center")
            cell.comment = Comment(field_hint(field), "模板")
            dimension = ws.column_dimensions[letter]
            dimension.width = max(12, min(40, len(field.header) * 2 + 2))
            if field.type in TEXT_FORMAT_TYPES:
                dimension.number_format = TEXT_FORMAT
            elif field.type == "date":
                dimension.number_format = DATE_FORMAT
            elif field.type == "month":
                dimension.number_format = MONTH_FORMAT
            if field.type in ("single", "yes_no"):
                option_column += 1
                source = _option_list(options, option_column, field)
                _add_dropdown(ws, letter, source, field)
        ws.row_dimensions[1].height = 45
    # The marker the reader checks: hidden workbook-level names, kept by Excel, WPS and LibreOffice
    # on save, and read from xl/workbook.xml without loading any sheet.
    for key, value in (("form", form.id), ("version", str(form.version)), ("campaign", campaign_id)):
        name = f"{MARKER_PREFIX}{key}"
        wb.defined_names[name] = DefinedName(name, attr_text=f'"{value}"', hidden=True)
    # The same, readable by a person who unhides it (Excel: right-click a tab is not enough; it is "very hidden").
    marker = wb.create_sheet(MARKER_SHEET)
    marker.sheet_state = "veryHidden"
    for row in (
        ("form", form.id),
        ("version", form.version),
        ("campaign", campaign_id),
        ("title", form.title),
        ("written_at", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    ):
        marker.append(row)
    wb.active = 1
    return wb


def _option_list(options: Worksheet, column: int, field: FieldSpec) -> str:
    letter = get_column_letter(column)
    options.cell(row=1, column=column, value=field.header)
    for row, value in enumerate(field.dropdown, start=2):
        options.cell(row=row, column=column, value=value)
    last = len(field.dropdown) + 1
    return f"{quote_sheetname(OPTIONS_SHEET)}!${letter}$2:${letter}${last}"


def _add_dropdown(ws: Worksheet, letter: str, source: str, field: FieldSpec) -> None:
    validation = DataValidation(
        type="list",
        formula1=source,
        allow_blank=not field.required,
        showErrorMessage=True,
        errorTitle="选项不在表上",
        error=f"{field.header}：请从下拉框中选择表上印的选项。",
        promptTitle=field.header[:32],
        prompt=field_hint(field)[:255],
        showInputMessage=True,
    )
    validation.add(f"{letter}2:{letter}{MAX_ROW}")
    ws.add_data_validation(validation)


def _write_instructions(ws: Worksheet, form: FormSpec, campaign_name: str) -> None:
    lines = [
        f"{form.title}（批量填报模板 第{form.version}版）",
        f"工作：{campaign_name}",
        "",
        "填写方法：",
        *(f"· 工作表「{s.name}」：{s.row}。" for s in form.sheets),
        *(["· 每一行都要填写户主的居民身份证号码，系统靠它把户、成员等各表对应起来。"] if form.household_key else []),
        "· 第一行是列标题（表上印的指标代码和名称），不要修改、删除或调换列，也不要插入列。",
        "· 红色标题为必填项，蓝色为选填项；把鼠标停在标题上可以看到填写要求。",
        "· 有下拉框的列请从下拉框中选择；多选项之间用顿号“、”分隔。",
        "· 身份证号码、电话、银行账号列已设为文本格式，请直接输入或“选择性粘贴为数值”，"
        "不要让 Excel 把号码变成 3.70102E+17 这样的数字（后几位会丢失）。",
        "· 日期写成 2020-10-01，年月写成 2020-09。",
        "· 不要合并单元格，不要使用公式。",
        "· 全角数字和多余空格会自动规范，不必手工修改。",
        "",
        "上传：填好后由本单位在录入窗口开放期间上传；同一单位再次上传同一张表，将整体替换上一次的数据。",
        "问题行会逐行列出（单元格、指标、原因），改正后重新上传整个文件即可。",
    ]
    ws.column_dimensions["A"].width = INSTRUCTIONS_WIDTH
    lines += [f"说明：{note}" for note in form.notes]
    for row, text in enumerate(lines, start=1):
        cell = ws.cell(row=row, column=1, value=text)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if row == 1:
            cell.font = Font(bold=True, size=14)
        # Spreadsheet programs do not grow a row for wrapped text on their own (the PDF showed the last
        # line only): give each row the lines it needs, a Chinese character being two columns wide.
        width = sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
        ws.row_dimensions[row].height = 18 * max(1, -(-width // INSTRUCTIONS_WIDTH)) + (6 if row == 1 else 0)
