"""Workbooks as clerks and their tools really write them (issue 13), against `campaign ingest`.

Seed 001 warns that a wrong ID or name in the data "将追究相关人员责任": no wrong value may be stored
silently, every problem names the file's own cell, and no upload wipes a unit's data by accident. The
files are written by openpyxl and by hand: a POI-style sheet (shared strings, ``t="n"``, numbers as
``3.70116196501033E17``), XML with a namespace prefix, cells and rows without ``r=``.

The unit is 济南市 (370100) of 2020-shandong (seed 000); its entry window opens with its completion report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from include.forms import records
from include.forms.spec import get_form
from include.forms.template import MARKER_PREFIX
from tests.test_ingest import AT, CAMPAIGN, FORM, UNIT, _sheet_part, _zip_rewrite, ingest, state

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
SST_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
ROOT = Path(__file__).resolve().parent.parent


def headers(sheet_id: str) -> list[str]:
    return [f.header for f in get_form(FORM).fields_of(sheet_id)]


def column(sheet_id: str, header: str) -> str:
    return get_column_letter(headers(sheet_id).index(header) + 1)


def rows_of(path: Path, sheet: str) -> list[list[object]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = [list(row) for row in wb[sheet].iter_rows(values_only=True)]
    wb.close()
    return rows


class Num:
    """A number cell, its ``<v>`` written as given (``3.70116196501033E17``, as POI writes a double)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Err:
    """An Excel error value (``t="e"``), e.g. #N/A from a VLOOKUP pasted as values."""

    def __init__(self, text: str) -> None:
        self.text = text


def sheet_xml(
    rows: list[list[object]], *, prefix: str = "", refs: bool = True, shared: list[str] | None = None
) -> bytes:
    """A worksheet written by hand. Text goes to ``shared`` (POI's way) when given, inline otherwise; a
    float or ``Num`` is a number cell (``t="n"``, as POI writes it), ``Err`` an error cell. Without
    ``refs`` neither rows nor cells carry ``r=`` (allowed by the standard; some writers leave it out)."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f'xmlns:{prefix}="{MAIN_NS}"' if prefix else f'xmlns="{MAIN_NS}"'
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{p}worksheet {xmlns}><{p}sheetData>']
    for r, row in enumerate(rows, start=1):
        out.append(f'<{p}row r="{r}">' if refs else f"<{p}row>")
        for c, value in enumerate(row, start=1):
            ref = f' r="{get_column_letter(c)}{r}"' if refs else ""
            if value is None:
                if not refs:
                    out.append(f"<{p}c/>")  # without r=, an empty cell must be written to keep the next one's place
                continue
            if isinstance(value, Err):
                out.append(f'<{p}c{ref} t="e"><{p}v>{escape(value.text)}</{p}v></{p}c>')
            elif isinstance(value, (Num, float, int)):
                text = value.text if isinstance(value, Num) else repr(value)
                out.append(f'<{p}c{ref} t="n"><{p}v>{text}</{p}v></{p}c>')
            elif shared is not None:
                shared.append(str(value))
                out.append(f'<{p}c{ref} t="s"><{p}v>{len(shared) - 1}</{p}v></{p}c>')
            else:
                out.append(f'<{p}c{ref} t="inlineStr"><{p}is><{p}t>{escape(str(value))}</{p}t></{p}is></{p}c>')
        out.append(f"</{p}row>")
    out.append(f"</{p}sheetData></{p}worksheet>")
    return "".join(out).encode()


def with_sheet(good: Path, out: Path, sheet: str, xml: bytes, shared: list[str] | None = None) -> Path:
    """``good`` with one sheet's XML replaced (and a shared-string table added, as POI writes one)."""
    replace = {_sheet_part(good, sheet): xml}
    add = {}
    if shared is not None:
        items = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in shared)
        add["xl/sharedStrings.xml"] = f'<sst xmlns="{MAIN_NS}" count="{len(shared)}">{items}</sst>'.encode()
        with zipfile.ZipFile(good) as z:
            rels = z.read("xl/_rels/workbook.xml.rels").decode()
            types = z.read("[Content_Types].xml").decode()
        rel = f'<Relationship Id="rIdSST" Type="{SST_TYPE}" Target="sharedStrings.xml"/>'
        replace["xl/_rels/workbook.xml.rels"] = rels.replace("</Relationships>", rel + "</Relationships>").encode()
        override = (
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
        replace["[Content_Types].xml"] = types.replace("</Types>", override + "</Types>").encode()
    return _zip_rewrite(good, out, replace=replace, add=add)


def moved(rows: list[list[object]], index: int) -> list[list[object]]:
    """The column at ``index`` moved to the end (a clerk's own column order)."""
    return [row[:index] + row[index + 1 :] + [row[index]] for row in rows]


def errors_by_cell(result: dict) -> dict[str, dict]:
    return {f"{e['sheet']}!{e['cell']}": e for e in result["rejected_rows"]}


def ingest_rows(run_cli, good: Path, tmp_path: Path, sheet: str, rows: list[list[object]]) -> dict[str, dict]:
    """``good`` with one sheet written by hand from ``rows``, ingested (accepted in part): its row errors by cell."""
    code, result = ingest(run_cli, with_sheet(good, tmp_path / "a.xlsx", sheet, sheet_xml(rows)))
    assert code == 0, result
    return errors_by_cell(result)


def stored(sheet_id: str) -> pl.DataFrame:
    return records.scan(CAMPAIGN, FORM, sheet_id).collect()


# -- 1. an ID that went through a float is refused, wherever its column is and however it is written ----


@pytest.mark.parametrize(
    ("style", "number"),
    [
        ("poi_shared_strings", Num("3.70116196501033E17")),  # Apache POI: a double in scientific notation
        ("prefixed_xml", Num("370116196501033024")),  # the float written out in full: 18 digits, the last ones wrong
        ("no_r_attributes", Num("3.70116196501033e+17")),
    ],
)
def test_an_id_stored_as_a_number_in_a_moved_column_is_refused(window_open, run_cli, good, tmp_path, style, number):
    rows = moved(rows_of(good, "家庭成员"), headers("members").index("A4 居民身份证(残疾人证)号码"))
    id_column = get_column_letter(len(rows[0]))  # V: the ID column moved to the end
    rows[2][-1] = number
    shared = [] if style == "poi_shared_strings" else None
    xml = sheet_xml(rows, prefix="x" if style == "prefixed_xml" else "", refs=style != "no_r_attributes", shared=shared)
    code, result = ingest(run_cli, with_sheet(good, tmp_path / "a.xlsx", "家庭成员", xml, shared))
    assert code == 2, result
    assert result["refused"] == "number_id"
    assert f"{id_column}3 单元格（A4 居民身份证(残疾人证)号码）被 Excel 存成了数字" in result["message"]
    assert "3.70116E+17" in result["message"] and "后几位已经丢失" in result["message"]
    assert state() == (None, None), "nothing stored"


def test_hand_written_sheets_without_r_are_read_cell_for_cell(window_open, run_cli, good, tmp_path):
    """No r= on rows or cells, a prefix, shared strings: the same values as the template's own file."""
    code, plain = ingest(run_cli, good)
    assert code == 0 and plain["rejected_rows"] == [], plain
    expected = stored("members").drop("unit").sort("_row")
    for kwargs in ({"refs": False}, {"prefix": "x", "refs": False}, {"shared": []}):
        shared = kwargs.get("shared")
        xml = sheet_xml(rows_of(good, "家庭成员"), **kwargs)
        other = with_sheet(good, tmp_path / f"b{len(kwargs)}{bool(shared)}.xlsx", "家庭成员", xml, shared)
        code, result = ingest(run_cli, other)
        assert code == 0 and result["rejected_rows"] == [], (kwargs, result)
        assert stored("members").drop("unit").sort("_row").equals(expected), kwargs


# -- 2. the file's own cell is named -------------------------------------------------------------------


def test_a_header_one_row_lower_names_the_files_own_cell(window_open, run_cli, good, tmp_path):
    """A merged title row above the header (as offices like to add): the header is found by its content,
    the data are read, and a bad date typed in F5 is reported as F5."""
    wb = openpyxl.load_workbook(good)
    ws = wb["帮扶责任人"]
    ws.insert_rows(1)
    ws["A1"] = "济南市帮扶责任人名单（2020年11月）"
    ws.merge_cells("A1:H1")
    start = column("helpers", "帮扶开始时间")
    ws[f"{start}5"] = "2020-13-01"
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 0, result
    assert list(errors_by_cell(result)) == [f"帮扶责任人!{start}5"]
    helpers = stored("helpers")
    assert helpers["_row"].min() == 3, "the first data row is the file's row 3"


def test_an_id_column_moved_to_v_is_reported_at_v(window_open, run_cli, good, tmp_path):
    rows = moved(rows_of(good, "家庭成员"), headers("members").index("A4 居民身份证(残疾人证)号码"))
    rows[2][-1] = str(rows[2][-1])[:17]  # 17 characters
    error = ingest_rows(run_cli, good, tmp_path, "家庭成员", rows)["家庭成员!V3"]
    assert error["field"] == "A4 居民身份证(残疾人证)号码" and "18位" in error["message"]
    assert "现为17位" in error["message"]


# -- 3. digits of other scripts ------------------------------------------------------------------------

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_digits_of_another_script_are_refused_with_the_character_named(window_open, run_cli, good, tmp_path):
    wb = openpyxl.load_workbook(good)
    members, households = wb["家庭成员"], wb["户"]
    id_cell = f"{column('members', 'A4 居民身份证(残疾人证)号码')}3"
    income_cell = f"{column('households', 'A28 工资性收入（元）')}4"
    members[id_cell] = str(members[id_cell].value).translate(ARABIC_INDIC)
    households[income_cell] = "1200".translate(ARABIC_INDIC)
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 0, result
    errors = errors_by_cell(result)
    assert "非阿拉伯数字“٣”" in errors[f"家庭成员!{id_cell}"]["message"]
    assert "非阿拉伯数字“١”" in errors[f"户!{income_cell}"]["message"]
    assert 4 not in stored("households")["_row"].to_list(), "the household is not stored with a null income"
    assert not stored("members")["A4"].str.contains(r"[^0-9X]").any()


# -- 4. control characters: refused, and never able to stop a problem list -----------------------------


def test_a_control_character_in_excels_escape_form_is_refused_with_the_cell_named(window_open, run_cli, good, tmp_path):
    rows = rows_of(good, "家庭成员")
    name_index = headers("members").index("A1 姓名")
    rows[3][name_index] = "沈_x0007_然_x001B_"  # what Excel writes for U+0007 and U+001B
    error = ingest_rows(run_cli, good, tmp_path, "家庭成员", rows)[f"家庭成员!{get_column_letter(name_index + 1)}4"]
    assert "第2个字符是不可见的控制字符（U+0007）" in error["message"]
    assert not stored("members")["A1"].str.contains(r"[\x00-\x1f]").any()


def test_a_control_character_already_stored_cannot_stop_the_problem_list(window_open, run_cli, good, tmp_path):
    """Data stored before this check (or by another path) with a control character in a head's name: the
    unit still gets its problem list, the character shown as �."""
    assert ingest(run_cli, good)[0] == 0
    version = records.current_version(CAMPAIGN, FORM, UNIT)
    folder = records.unit_dir(CAMPAIGN, FORM, UNIT) / version
    members = pl.read_parquet(folder / "members.parquet")
    members = members.with_columns(pl.col("A1").str.replace(r"^(.)", "$1\x07"))
    members.write_parquet(folder / "members.parquet")
    out = tmp_path / "lists"
    code, stdout, err = run_cli("validate", "--campaign", CAMPAIGN, "--unit", UNIT, "--at", AT, "--out", out, "--json")
    assert code == 0, err
    [path] = json.loads(stdout)["files"]
    wb = openpyxl.load_workbook(path)
    names = [row[2].value for ws in wb.worksheets[1:] for row in ws.iter_rows(min_row=2) if row[2].value]
    assert all(ws["C1"].value == "户主姓名" for ws in wb.worksheets[1:])
    assert names and any("\ufffd" in name for name in names)


# -- 5. a re-upload with far fewer households ----------------------------------------------------------


def one_household(good: Path, out: Path) -> Path:
    """The unit's workbook with every household but the first deleted (its members are then refused as
    belonging to no household: 39 of 40 households missing)."""
    wb = openpyxl.load_workbook(good)
    ws = wb["户"]
    ws.delete_rows(3, ws.max_row)
    wb.save(out)
    return out


def test_a_re_upload_with_one_household_is_refused_unless_confirmed_and_can_be_undone(
    window_open, run_cli, good, tmp_path
):
    code, first = ingest(run_cli, good)
    assert code == 0
    households = first["households"]
    assert households == 40
    before = state()
    small = one_household(good, tmp_path / "a.xlsx")
    code, refused = ingest(run_cli, small)
    assert code == 2 and refused["refused"] == "shrinks", refused
    assert "只有 1 户" in refused["message"] and "在用的数据有 40 户" in refused["message"]
    assert "--replace-confirm" in refused["message"]
    assert state() == before, "the 40 households stay in force"

    code, out, err = run_cli(
        "ingest", small, "--campaign", CAMPAIGN, "--unit", UNIT, "--at", AT, "--replace-confirm", "--json"
    )
    assert code == 0, err
    replaced = json.loads(out)
    assert (replaced["households"], replaced["previous_households"]) == (1, 40)
    assert stored("households").height == 1

    code, out, err = run_cli("records", "history", "--campaign", CAMPAIGN, "--unit", UNIT, "--json")
    assert code == 0, err
    versions = json.loads(out)["versions"]
    assert [(v["in_force"], v["households"]) for v in versions] == [(True, 1), (False, 40)]
    code, out, err = run_cli(
        "records", "restore", "--campaign", CAMPAIGN, "--unit", UNIT, "--version", versions[1]["version"], "--at", AT
    )
    assert code == 0, err
    assert "已恢复" in out and "40 户" in out
    assert state() == before and stored("households").height == 40
    from sqlalchemy import select

    from include.store.db import make_engine, session_scope
    from include.store.models import AuditEntry

    engine = make_engine()
    with session_scope(engine) as session:
        details = [e.detail for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "records_restore"))]
    engine.dispose()
    assert len(details) == 1 and "40 户" in details[0] and "1 户" in details[0]


def test_restoring_after_the_closing_is_refused(window_open, run_cli, good, tmp_path):
    assert ingest(run_cli, good)[0] == 0
    version = records.current_version(CAMPAIGN, FORM, UNIT)
    code, _, err = run_cli(
        "records", "restore", "--campaign", CAMPAIGN, "--unit", UNIT, "--version", version,
        "--at", "2020-12-01T00:00+08:00",
    )  # fmt: skip
    assert code == 3 and "未开放" in err


# -- 6. another campaign's template ---------------------------------------------------------------------


def test_another_campaigns_template_is_refused(window_open, run_cli, good, tmp_path):
    wb = openpyxl.load_workbook(good)
    wb.defined_names[f"{MARKER_PREFIX}campaign"].attr_text = '"2023-zibo-jixia"'
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 2 and result["refused"] == "wrong_campaign", result
    assert "「2023-zibo-jixia」的模板" in result["message"] and "--campaign 2020-shandong" in result["message"]


# -- 7. numbers and dates never guessed; duplicates named -----------------------------------------------


def test_numbers_and_dates_are_not_guessed(window_open, run_cli, good, tmp_path):
    wb = openpyxl.load_workbook(good)
    households, helpers, members = wb["户"], wb["帮扶责任人"], wb["家庭成员"]
    cells = {
        ("帮扶责任人", f"{column('helpers', '帮扶开始时间')}2"): ("2020", "只填了年份"),
        ("户", f"{column('households', 'A28 工资性收入（元）')}2"): ("1200,50", "不要用逗号"),
        ("户", f"{column('households', 'A28 工资性收入（元）')}3"): ("-5", "不能为负数"),
        ("户", f"{column('households', 'A28 工资性收入（元）')}5"): ("1200元", "不要带单位“元”"),
    }
    area = next((f.header for f in get_form(FORM).fields_of("households") if f.type == "area"), None)
    if area:
        cells[("户", f"{column('households', area)}6")] = ("2,5", "请只填数字")
    for (sheet, cell), (value, _) in cells.items():
        {"户": households, "帮扶责任人": helpers, "家庭成员": members}[sheet][cell] = value
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 0, result
    errors = errors_by_cell(result)
    for (sheet, cell), (_, says) in cells.items():
        assert says in errors[f"{sheet}!{cell}"]["message"], errors.get(f"{sheet}!{cell}")
    assert 2 not in stored("helpers")["_row"].to_list(), "2020 is not read as 1905-07-12"


def test_a_member_pasted_twice_is_refused_with_both_rows_named(window_open, run_cli, good, tmp_path):
    wb = openpyxl.load_workbook(good)
    ws = wb["家庭成员"]
    copy = [c.value for c in ws[3]]
    last = ws.max_row + 1
    for i, value in enumerate(copy, start=1):
        ws.cell(row=last, column=i, value=value)
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 0, result
    duplicated = [e for e in result["rejected_rows"] if "重复" in e["message"]]
    assert {e["cell"] for e in duplicated} == {"E3", f"E{last}"}
    assert all(f"第3、{last}行重复" in e["message"] for e in duplicated)
    assert not set(stored("members")["_row"].to_list()) & {3, last}


# -- 8. messages that help ------------------------------------------------------------------------------


def test_a_strict_open_xml_file_is_named_as_such(window_open, run_cli, good, tmp_path):
    with zipfile.ZipFile(good) as z:
        workbook = z.read("xl/workbook.xml").decode()
    strict = workbook.replace(MAIN_NS, STRICT_NS)
    code, result = ingest(
        run_cli, _zip_rewrite(good, tmp_path / "a.xlsx", replace={"xl/workbook.xml": strict.encode()})
    )
    assert code == 2 and result["refused"] == "strict_xml"
    assert "Strict Open XML" in result["message"] and "Excel 工作簿(*.xlsx)" in result["message"]


@pytest.mark.parametrize(
    ("inserted", "named"), [("'", "第7个字符是撇号（'）"), ("\u200b", "第7个字符是零宽空格（U+200B）")]
)
def test_a_stray_character_inside_an_id_is_named_with_its_place(window_open, run_cli, good, tmp_path, inserted, named):
    wb = openpyxl.load_workbook(good)
    cell = f"{column('members', 'A4 居民身份证(残疾人证)号码')}3"
    value = str(wb["家庭成员"][cell].value)
    wb["家庭成员"][cell] = value[:6] + inserted + value[6:]
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 0
    assert named in errors_by_cell(result)[f"家庭成员!{cell}"]["message"]


def test_a_sheet_without_its_header_says_where_the_header_goes(window_open, run_cli, good, tmp_path):
    wb = openpyxl.load_workbook(good)
    wb["户"].delete_rows(1)
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 2 and result["refused"] == "columns"
    assert "表头应在第1行" in result["message"] and "找不到模板的表头" in result["message"]
    assert len(result["message"]) < 400, "not a list of 46 missing columns"


def test_an_excel_error_value_is_named_and_a_phone_shown_enough_to_find(window_open, run_cli, good, tmp_path):
    rows = rows_of(good, "户")
    a23 = headers("households").index("A23 识别标准（单选）")
    phone = headers("households").index("联系电话")
    rows[2][a23] = Err("#N/A")
    rows[3][phone] = "无"
    errors = ingest_rows(run_cli, good, tmp_path, "户", rows)
    assert "Excel 的错误值（#N/A）" in errors[f"户!{get_column_letter(a23 + 1)}3"]["message"]
    phone_error = errors[f"户!{get_column_letter(phone + 1)}4"]
    assert phone_error["value"] == "无", "text in a phone cell is shown, not ***"


# -- 9. memory follows the data --------------------------------------------------------------------------


@pytest.mark.integration
def test_one_space_in_the_last_cell_does_not_cost_a_dense_sheet(window_open, good, tmp_path):
    """A space typed in AT1048576: a dense reader takes 46 × 1,048,576 cells (2.5 GB); this one the cells."""
    part = _sheet_part(good, "家庭成员")
    with zipfile.ZipFile(good) as z:
        xml = z.read(part).decode()
    far = '<row r="1048576"><c r="AT1048576" t="inlineStr"><is><t xml:space="preserve"> </t></is></c></row>'
    sparse = _zip_rewrite(
        good, tmp_path / "a.xlsx", replace={part: xml.replace("</sheetData>", far + "</sheetData>").encode()}
    )
    script = (
        "import json, sys\n"
        "from include.cli.main import main\n"
        f"code = main(['ingest', {str(sparse)!r}, '--campaign', {CAMPAIGN!r}, '--unit', {UNIT!r}, '--at', {AT!r}, '--json'])\n"
        "hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
        "print(json.dumps({'code': code, 'peak_mb': int(hwm.split()[1]) / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["code"] == 0, done.stdout + done.stderr
    assert last["peak_mb"] < 700, f"peak {last['peak_mb']:.0f} MB for a 44 KB sheet"
    assert re.search(r'"accepted_rows": \d+', done.stdout)


def test_a_date_cell_of_a_1904_workbook_is_read_from_1904(window_open, run_cli, good, tmp_path):
    """Excel for Mac's old default counts dates from 1904-01-01: the same serial is another day."""
    import datetime as dt

    rows = rows_of(good, "帮扶责任人")
    start = headers("helpers").index("帮扶开始时间")
    serial = (dt.date(2020, 10, 1) - dt.date(1904, 1, 1)).days
    rows[1][start] = float(serial)
    xml = sheet_xml(rows)
    with zipfile.ZipFile(good) as z:
        workbook = z.read("xl/workbook.xml").decode()
    if "<workbookPr" in workbook:
        workbook = re.sub(r"<workbookPr\b", '<workbookPr date1904="1"', workbook, count=1)
    else:
        workbook = workbook.replace("<bookViews>", '<workbookPr date1904="1"/><bookViews>', 1)
    out = with_sheet(good, tmp_path / "a.xlsx", "帮扶责任人", xml)
    out = _zip_rewrite(out, tmp_path / "b.xlsx", replace={"xl/workbook.xml": workbook.encode()})
    code, result = ingest(run_cli, out)
    assert code == 0 and result["rejected_rows"] == [], result
    helpers = stored("helpers")
    assert helpers.filter(pl.col("_row") == 2)["helper_start"][0] == dt.date(2020, 10, 1)


def test_a_re_upload_without_its_members_is_refused_too(window_open, run_cli, good, tmp_path):
    """Every household kept but every member deleted: the members sheet shrinks to nothing."""
    assert ingest(run_cli, good)[0] == 0
    before = state()
    wb = openpyxl.load_workbook(good)
    wb["家庭成员"].delete_rows(2, wb["家庭成员"].max_row)
    wb.save(tmp_path / "a.xlsx")
    code, result = ingest(run_cli, tmp_path / "a.xlsx")
    assert code == 2 and result["refused"] == "shrinks", result
    assert "「家庭成员」0 行" in result["message"]
    assert state() == before


def test_numbers_past_what_a_float_holds_and_spaces_inside_names_are_caught(window_open, run_cli, good, tmp_path):
    rows = rows_of(good, "户")
    income = headers("households").index("A28 工资性收入（元）")
    rows[1][income] = Num("1e400")
    rows[2][income] = "12345678901234567"
    errors = ingest_rows(run_cli, good, tmp_path, "户", rows)
    letter = get_column_letter(income + 1)
    assert "数值过大" in errors[f"户!{letter}2"]["message"] and "数值过大" in errors[f"户!{letter}3"]["message"]
    wb = openpyxl.load_workbook(good)
    name_cell = f"{column('members', 'A1 姓名')}3"
    name = str(wb["家庭成员"][name_cell].value)
    wb["家庭成员"][name_cell] = name[0] + "\u2009" + name[1:]  # a thin space pasted from a web page
    wb.save(tmp_path / "b.xlsx")
    code, result = ingest(run_cli, tmp_path / "b.xlsx")
    assert code == 0, result
    assert name in stored("members")["A1"].to_list()
