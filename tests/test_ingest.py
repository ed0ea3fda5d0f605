"""Templates, ingestion and refusals (issue 4), on 2020-shandong's 附件1 (seed 000).

The unit is 济南市 (370100). Its entry window opens when its completion report is in (seed 000:
"11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办"), and closes at 11-30 24:00
("11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作").
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlwt
from msoffcrypto.format.ooxml import OOXMLFile

from include.forms import records
from include.forms.spec import get_form
from include.forms.template import MARKER_PREFIX, MARKER_SHEET, OPTIONS_SHEET

CAMPAIGN = "2020-shandong"
UNIT = "370100"
FORM = "2020-1"
REPORT_AT = "2020-11-12T10:00+08:00"
AT = "2020-11-20T10:00+08:00"
AFTER_CLOSE = "2020-12-01T00:00+08:00"  # 11-30 24:00 is the first instant after the window


def ingest(run_cli, path: Path, at: str = AT) -> tuple[int, dict]:
    code, out, err = run_cli("ingest", path, "--campaign", CAMPAIGN, "--unit", UNIT, "--at", at, "--json")
    assert out, err
    return code, json.loads(out)


def state() -> tuple[str | None, dict | None]:
    """The version in force and its metadata: what a refused upload must leave alone."""
    return records.current_version(CAMPAIGN, FORM, UNIT), records.current_meta(CAMPAIGN, FORM, UNIT)


def edit(path: Path, sheet: str, changes: dict[str, object]) -> Path:
    wb = openpyxl.load_workbook(path)
    for cell, value in changes.items():
        wb[sheet][cell] = value
    wb.save(path)
    return path


# -- templates ---------------------------------------------------------------------------------


def test_forms_list_names_every_seed_form(run_cli):
    code, out, _ = run_cli("forms", "list", "--json")
    assert code == 0
    listed = {form["id"]: form for form in json.loads(out)}
    assert set(listed) == {"2017-1", "2017-2", "2017-3", "2020-1", "2020-2", "2020-3", "2020-4", "2020-5", "2023-1"} | {
        "registry"
    }
    assert listed["2020-1"]["name"] == "新识别贫困户信息采集表"
    assert [form_id for form_id, form in listed.items() if not form["printed"]] == ["registry"]


def test_the_registry_figures_are_a_workbook_like_any_form(run_cli, tmp_path, window_open):
    """The monitoring scale (seed 004: "一般为建档立卡贫困人口 5% 左右") is measured against them."""
    out = tmp_path / "底数表.xlsx"
    code, _, err = run_cli("forms", "template", "registry", "--campaign", CAMPAIGN, "--out", out)
    assert code == 0, err
    wb = openpyxl.load_workbook(out)
    ws = wb["县（市、区）"]
    assert [c.value for c in ws[1]][:5] == [
        "县（市、区、旗）", "行政区划代码", "建档立卡贫困户数（户）", "建档立卡贫困人口数（人）", "是否深度贫困地区",
    ]  # fmt: skip
    ws.append(["历下区", "370102", 1200, 3100, "否"])
    ws.append(["章丘区", "370114", 5400, 13900, "是"])
    ws.append(["历下区", "370102", 1, 1, "否"])  # the same county twice: both rows are refused, each naming both
    wb.save(out)
    code, result = ingest(run_cli, out)
    assert code == 0, result
    assert result["form"] == "registry" and result["accepted_rows"] == 1
    assert [row["cell"] for row in result["rejected_rows"]] == ["A2", "A4"]
    assert all("第2、4行重复" in row["message"] for row in result["rejected_rows"])


def test_template_heads_columns_with_code_and_label_and_keeps_ids_as_text(run_cli, tmp_path):
    out = tmp_path / "附件1.xlsx"
    code, _, err = run_cli("forms", "template", FORM, "--campaign", CAMPAIGN, "--out", out)
    assert code == 0, err
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[0] == "填表说明"
    assert "新识别贫困户信息采集表" in wb["填表说明"]["A1"].value
    members = wb["家庭成员"]
    headers = [cell.value for cell in members[1]]
    assert "A4 居民身份证(残疾人证)号码" in headers
    assert headers[0] == "户主居民身份证(残疾人证)号码"
    id_column = openpyxl.utils.get_column_letter(headers.index("A4 居民身份证(残疾人证)号码") + 1)
    assert members.column_dimensions[id_column].number_format == "@"
    households = wb["户"]
    household_headers = [cell.value for cell in households[1]]
    a25 = openpyxl.utils.get_column_letter(household_headers.index("A25 军烈属") + 1)
    lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in households.data_validations.dataValidation}
    assert f"{a25}2" in lists, "A25 军烈属 has a yes/no dropdown"
    options = wb[OPTIONS_SHEET]
    a27a = openpyxl.utils.get_column_letter(household_headers.index("A27a 致贫原因1(单选项)") + 1)
    source_column = lists[f"{a27a}2"].split("!")[1].split(":")[0].replace("$", "").rstrip("0123456789")
    printed = [options[f"{source_column}{row}"].value for row in range(2, 16)]
    # seed 000: "A27a致贫原因1(单选项):□因病 □因残 □因学 □因灾 □因婚 □因丧 □缺土地 …" plus seed 004's 因疫情
    assert printed[:3] == ["因病", "因残", "因学"] and printed[-1] == "因疫情"
    marker = wb[MARKER_SHEET]
    assert marker.sheet_state == "veryHidden"
    assert {row[0].value: row[1].value for row in marker.iter_rows()}["form"] == FORM
    assert wb.defined_names[f"{MARKER_PREFIX}form"].attr_text == f'"{FORM}"'
    assert wb.defined_names[f"{MARKER_PREFIX}form"].hidden


def test_template_refuses_a_form_the_campaign_does_not_use(run_cli, tmp_path):
    code, _, err = run_cli("forms", "template", "2017-2", "--campaign", CAMPAIGN, "--out", tmp_path / "x.xlsx")
    assert code == 2
    assert "不使用表" in err
    assert not (tmp_path / "x.xlsx").exists()


# -- ingestion ---------------------------------------------------------------------------------


def _expected(value: object, field) -> object:
    """What the store should hold for a value written into the workbook."""
    if value is None or value == "":
        return None
    if field.type in ("money", "area", "number"):
        return float(value)
    if field.type == "integer":
        return int(value)
    if field.type == "date":
        return value.date() if isinstance(value, dt.datetime) else value
    if field.type == "month":
        return dt.date(int(str(value)[:4]), int(str(value)[5:7]), 1)
    if field.type == "multiple":  # an option may itself contain 、
        text = str(value)
        whole = [option for option in field.choices if "、" in option]
        for i, option in enumerate(whole):
            text = text.replace(option, f"@{i}@")
        return [whole[int(part[1:-1])] if part.startswith("@") else part for part in text.split("、")]
    return str(value)


def assert_round_trip(path: Path, result: dict, campaign: str, form_id: str, unit: str) -> int:
    """Every value written into the workbook is the value stored; returns how many were compared."""
    assert result["status"] == "stored"
    assert result["rejected_rows"] == []
    form = get_form(form_id)
    wb = openpyxl.load_workbook(path)
    compared = 0
    for sheet in form.sheets:
        fields = form.fields_of(sheet.id)
        written = [
            row for row in wb[sheet.name].iter_rows(min_row=2, values_only=True) if any(v is not None for v in row)
        ]
        stored = records.scan(campaign, form_id, sheet.id).collect().sort("_row")
        assert stored.height == len(written) == result["accepted_by_sheet"][sheet.name]
        for row, record in zip(written, stored.iter_rows(named=True), strict=True):
            for value, field in zip(row, fields, strict=True):
                assert record[field.key] == _expected(value, field), (sheet.name, record["_row"], field.header)
                compared += 1
            assert record["unit"] == unit
    return compared


def test_synth_workbook_round_trips_every_value(run_cli, window_open, good):
    code, result = ingest(run_cli, good)
    assert code == 0, result
    assert assert_round_trip(good, result, CAMPAIGN, FORM, UNIT) > 2000


def test_2023_monitoring_form_round_trips_multiple_options(run_cli, tmp_path):
    """Seed 003's form: multiple-choice risks and measures, among them "其他（森林草原火灾、海洋灾害等）",
    an option that itself contains the separator; entry "12月8日前完成信息录入", cleaning to 12-31 24:00."""
    out = tmp_path / "jixia"
    code, _, err = run_cli(
        "synth", "--campaign", "2023-zibo-jixia", "--households", "60", "--seed", "4", "--out", out, "--units", "JX02"
    )
    assert code == 0, err
    path = out / "2023-zibo-jixia-2023-1-JX02.xlsx"
    code, stdout, err = run_cli(
        "ingest", path, "--campaign", "2023-zibo-jixia", "--unit", "JX02", "--at", "2023-12-08T23:59:59+08:00", "--json"
    )
    assert code == 0, stdout + err
    result = json.loads(stdout)
    assert assert_round_trip(path, result, "2023-zibo-jixia", "2023-1", "JX02") > 2000
    households = records.scan("2023-zibo-jixia", "2023-1", "households").collect()
    assert households["A27a"].list.len().max() >= 2
    wb = openpyxl.load_workbook(path)
    a27a = [c.value for c in wb["户"][1]].index("A27a 因自然灾害")
    written = [row[a27a] for row in wb["户"].iter_rows(min_row=2, values_only=True) if row[a27a]]
    assert any("其他（森林草原火灾、海洋灾害等）" in value for value in written), "synth uses the option with 、"
    code, _, _ = run_cli(
        "ingest", path, "--campaign", "2023-zibo-jixia", "--unit", "JX02", "--at", "2024-01-01T00:00+08:00", "--json"
    )
    assert code == 3, "12月31日24时，国家将统一关闭巩固脱贫攻坚成果数据录入功能"


def test_same_bytes_twice_change_nothing_and_a_new_file_replaces_the_old(
    run_cli, window_open, good, synth_dir, tmp_path
):
    assert ingest(run_cli, good)[0] == 0
    version, meta = state()
    code, again = ingest(run_cli, good)
    assert code == 0 and again["status"] == "unchanged"
    assert state() == (version, meta)
    smaller = edit(tmp_path / "smaller.xlsx" if shutil.copy(good, tmp_path / "smaller.xlsx") else good, "户", {})
    wb = openpyxl.load_workbook(smaller)
    households = wb["户"]
    keep = households.max_row - 5
    households.delete_rows(keep + 1, 5)
    wb.save(smaller)
    code, replaced = ingest(run_cli, smaller)
    assert code == 0 and replaced["status"] == "stored"
    new_version, _ = state()
    assert new_version != version
    assert records.scan(CAMPAIGN, FORM, "households").collect().height == keep - 1
    # the replaced version is kept (superseded) for readers that pinned it; removed later (records.prune)
    assert (records.unit_dir(CAMPAIGN, FORM, UNIT) / version).is_dir() and version != new_version
    # members of the five removed households are rejected by name, the others stored
    orphans = [r for r in replaced["rejected_rows"] if r["sheet"] == "家庭成员"]
    assert orphans and all("「户」表中没有这一户" in r["message"] for r in orphans)


def test_window_not_open_is_exit_3_and_stores_nothing(run_cli, good):
    code, result = ingest(run_cli, good)
    assert code == 3
    assert result["refused"] == "window_closed"
    assert "录入窗口" in result["message"] and "2020-11-30 24:00" in result["message"]
    assert state() == (None, None)


def test_after_the_closing_is_exit_3(run_cli, window_open, good):
    code, result = ingest(run_cli, good, at=AFTER_CLOSE)
    assert code == 3
    assert "2020-12-01 00:00 未开放" in result["message"]
    assert state() == (None, None)


def test_bad_rows_are_listed_with_cell_field_masked_value_and_message(run_cli, window_open, good):
    form = get_form(FORM)
    member_headers = [f.header for f in form.fields_of("members")]
    col = {h: openpyxl.utils.get_column_letter(i + 1) for i, h in enumerate(member_headers)}
    edit(
        good,
        "家庭成员",
        {
            f"{col['A4 居民身份证(残疾人证)号码']}3": "37010219800101123",  # 17 characters
            f"{col['A15 是否会讲普通话']}4": "会",  # not 是/否
            f"{col['A13 务工时间（月）']}5": "六个月",
        },
    )
    code, result = ingest(run_cli, good)
    assert code == 0
    errors = {r["cell"]: r for r in result["rejected_rows"]}
    id_error = errors[f"{col['A4 居民身份证(残疾人证)号码']}3"]
    assert id_error["sheet"] == "家庭成员"
    assert id_error["field"] == "A4 居民身份证(残疾人证)号码"
    assert id_error["value"] == "370102*******1123", "ID numbers are masked in the report"
    assert "18位" in id_error["message"]
    assert "是" in errors[f"{col['A15 是否会讲普通话']}4"]["message"]
    assert "整数" in errors[f"{col['A13 务工时间（月）']}5"]["message"]
    members = records.scan(CAMPAIGN, FORM, "members").collect()
    assert set(members["_row"]).isdisjoint({3, 4, 5})
    assert members.height > 50


def test_full_width_digits_and_stray_spaces_are_normalised(run_cli, window_open, good):
    wb = openpyxl.load_workbook(good)
    households = wb["户"]
    original = households["A2"].value
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in original)
    households["A2"] = f"  {full_width} "
    money_col = openpyxl.utils.get_column_letter([c.value for c in households[1]].index("A28 工资性收入（元）") + 1)
    households[f"{money_col}2"] = "１２３４．５"
    for row in wb["家庭成员"].iter_rows(min_row=2):
        if row[0].value == original:
            row[0].value = full_width + "\u3000"
    wb.save(good)
    code, result = ingest(run_cli, good)
    assert code == 0 and result["rejected_rows"] == [], result
    stored = records.scan(CAMPAIGN, FORM, "households").collect().filter(pl.col("_row") == 2)
    assert stored["household_id"][0] == original
    assert stored["A28"][0] == 1234.5


def test_dates_as_text_or_serials_are_read_and_impossible_dates_rejected(run_cli, window_open, good):
    headers = [f.header for f in get_form(FORM).fields_of("helpers")]
    start = openpyxl.utils.get_column_letter(headers.index("帮扶开始时间") + 1)
    edit(
        good,
        "帮扶责任人",
        {f"{start}2": "2020年10月1日", f"{start}3": "2020/10/1", f"{start}4": 44105, f"{start}5": "2020-02-30"},
    )
    code, result = ingest(run_cli, good)
    assert code == 0
    helpers = records.scan(CAMPAIGN, FORM, "helpers").collect()
    by_row = dict(zip(helpers["_row"], helpers["helper_start"], strict=True))
    assert by_row[2] == by_row[3] == by_row[4] == dt.date(2020, 10, 1)
    assert [r["cell"] for r in result["rejected_rows"]] == [f"{start}5"]
    assert "日期无法识别或不存在" in result["rejected_rows"][0]["message"]


# -- whole-file refusals: one Chinese message each, exit 2, the data in force unchanged --------


def _zip_rewrite(src: Path, dst: Path, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if replace and item.filename in replace:
                data = replace[item.filename]
            zout.writestr(item, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def _sheet_part(path: Path, sheet_name: str) -> str:
    wb = openpyxl.load_workbook(path, read_only=True)
    index = wb.sheetnames.index(sheet_name) + 1
    wb.close()
    return f"xl/worksheets/sheet{index}.xml"


def _not_zip(good, tmp):
    (tmp / "a.xlsx").write_bytes("户主,姓名\n张三,李四\n".encode())
    return tmp / "a.xlsx"


def _docx(good, tmp):
    path = tmp / "a.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return path


def _xls(good, tmp):
    book = xlwt.Workbook()
    book.add_sheet("户").write(0, 0, "户主居民身份证(残疾人证)号码")
    book.save(str(tmp / "a.xls"))
    return tmp / "a.xls"


def _encrypted(good, tmp):
    out = io.BytesIO()
    with good.open("rb") as fh:
        office = OOXMLFile(fh)
        office.encrypt("123456", out)
    (tmp / "a.xlsx").write_bytes(out.getvalue())
    return tmp / "a.xlsx"


def _other_form(good, tmp):
    from include.forms.template import write_template

    return write_template(get_form("2017-2"), tmp / "a.xlsx", campaign_id="2017-shanxi", campaign_name="山西")


def _old_version(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb.defined_names[f"{MARKER_PREFIX}version"].attr_text = '"0"'  # a template written for version 0
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _no_marker(good, tmp):
    """The same sheets and headings retyped into a workbook of one's own: no template marker."""
    source = openpyxl.load_workbook(good)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet in get_form(FORM).sheets:
        target = wb.create_sheet(sheet.name)
        for row in source[sheet.name].iter_rows(values_only=True):
            target.append(row)
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _missing_column(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb["家庭成员"].delete_cols(7)  # A6 民族
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _renamed_column(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb["家庭成员"]["G1"] = "民族（汉族填汉）"
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _merged(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb["户"].merge_cells("C3:C4")
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _formula(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb["户"]["AB3"] = "=1+1"
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _number_id(good, tmp):
    wb = openpyxl.load_workbook(good)
    wb["家庭成员"]["E3"] = 370102198001011234.0  # what Excel keeps of a pasted 18-digit ID: 3.70102E+17
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _too_many_rows(good, tmp):
    part = _sheet_part(good, "帮扶责任人")
    with zipfile.ZipFile(good) as z:
        xml = z.read(part).decode()
    last = xml.rindex('<row r="')
    number = xml[last + 8 : xml.index('"', last + 8)]
    tail = xml[last:].replace(f'r="{number}"', 'r="1048577"').replace(f'{number}"', '1048577"')
    return _zip_rewrite(good, tmp / "a.xlsx", replace={part: (xml[:last] + tail).encode()})


def _entity_bomb(good, tmp):
    lol = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<si><t>&lol3;</t></si></sst>"
    )
    with zipfile.ZipFile(good) as z:
        name = "xl/sharedStrings.xml" if "xl/sharedStrings.xml" in z.namelist() else "xl/styles.xml"
    return _zip_rewrite(good, tmp / "a.xlsx", replace={name: lol.encode()})


def _zip_bomb(good, tmp):
    return _zip_rewrite(good, tmp / "a.xlsx", add={"xl/media/image1.bin": b"\0" * (64 * 1024 * 1024)})


def _all_rows_bad(good, tmp):
    wb = openpyxl.load_workbook(good)
    for row in wb["户"].iter_rows(min_row=2):
        row[11].value = "也许"  # A25 军烈属 takes only 是/否
    wb.save(tmp / "a.xlsx")
    return tmp / "a.xlsx"


def _empty(good, tmp):
    from include.forms.template import write_template

    return write_template(get_form(FORM), tmp / "a.xlsx", campaign_id=CAMPAIGN, campaign_name="山东")


REFUSALS = [
    ("not_zip", _not_zip, "不是 Excel 工作簿"),
    ("docx", _docx, "Word 文档"),
    ("xls", _xls, "旧版 Excel（.xls）"),
    ("encrypted", _encrypted, "打开密码"),
    ("wrong_form", _other_form, "「附件2 贫困户信息采集表」（2017-2）的模板"),
    ("old_version", _old_version, "模板是第0版，现行是第1版"),
    ("no_marker", _no_marker, "不是本系统下发的模板"),
    ("missing_column", _missing_column, "缺少列：A6 民族"),
    ("renamed_column", _renamed_column, "无法识别的列：G 列「民族（汉…」"),  # a header echoed as a masked prefix
    ("merged", _merged, "C3:C4 是合并单元格"),
    ("formula", _formula, "AB3 单元格含有公式"),
    ("number_id", _number_id, "E3 单元格（A4 居民身份证(残疾人证)号码）被 Excel 存成了数字（显示为 3.70102E+17）"),
    ("too_many_rows", _too_many_rows, "超过 Excel 的 1,048,576 行上限"),
    ("entity_bomb", _entity_bomb, "XML 实体声明"),
    ("zip_bomb", _zip_bomb, "压缩比异常"),
    ("all_rejected", _all_rows_bad, "没有一行通过检查，未保存，原有数据保持不变"),
    ("empty", _empty, "没有填写任何数据行"),
]


@pytest.mark.parametrize(("case", "make", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_bad_workbook_is_refused_whole_with_one_message(run_cli, window_open, good, tmp_path, case, make, message):
    assert ingest(run_cli, good)[0] == 0
    before = state()
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = make(good, bad_dir)
    code, result = ingest(run_cli, bad)
    assert code == 2, result
    assert message in result["message"]
    assert state() == before, "a refused file changes nothing"


def test_file_over_the_size_limit_is_refused(run_cli, window_open, good, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_MAX_UPLOAD_BYTES", "10000")
    code, result = ingest(run_cli, good)
    assert code == 2
    assert "超过上传上限" in result["message"]
    assert state() == (None, None)


def test_refusals_are_in_the_audit_log(run_cli, window_open, good, tmp_path):
    from sqlalchemy import select

    from include.store.db import make_engine, session_scope
    from include.store.models import AuditEntry

    ingest(run_cli, _formula(good, tmp_path))
    ingest(run_cli, good)
    engine = make_engine()
    with session_scope(engine) as session:
        actions = [
            (e.action, e.unit) for e in session.scalars(select(AuditEntry).where(AuditEntry.action.like("ingest%")))
        ]
    engine.dispose()
    assert actions == [("ingest_refused", UNIT), ("ingest", UNIT)]
