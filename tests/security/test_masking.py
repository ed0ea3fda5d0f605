"""Finding 4: no personal number from a workbook in any refusal (replayed on the real code).

A workbook whose header row was deleted used to be refused with the first household's ID number, phone,
address and bank data echoed in the HTTP reply, the CLI's stderr and the ``audit_log`` (which can never be
cleaned). Here real workbooks (``campaign synth``, 2020-shandong, 济南市 370100) are broken the ways a
clerk breaks them, refused through the HTTP API and the CLI (text and ``--json``), and every reply, every
line printed, every row of every table of the campaign store (audit log, outbox: the chat text) and every
log record (DEBUG, the whole test) is searched for every ID, phone and account number in the uploaded file.

The unit's entry window opens with its completion report (seed 000: "11月11日至11月30日，各市将动态管理
工作开展情况报省扶贫开发办") and closes at "11月30日24时"; the uploads are made on 2020-11-20.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from include.calendar.instants import parse_instant
from include.door.tokens import issue_token
from include.forms.spec import get_form
from include.forms.template import MARKER_PREFIX
from include.masking import mask_id, redact, short_masked
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry, Base
from include.web.app import create_app
from tests.test_api import Clock

CAMPAIGN = "2020-shandong"
UNIT = "370100"  # 济南市
FORM = "2020-1"
REPORT_AT = "2020-11-12T10:00+08:00"  # the completion report: the entry window opens
AT = "2020-11-20T10:00+08:00"  # inside the window (it closes 2020-11-30 24:00)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ACCOUNT = "6222021234567890123"  # a 19-digit bank account written into a workbook

# What a personal number looks like in a cell: an ID (17 digits and a digit or X, 20 for a disability
# card), a mobile phone, an account of 16–19 digits (any run of 11+ digits is taken), a fixed-line phone.
NUMBER_IN_CELL = re.compile(r"\d{11,}[Xx]?|0\d{2,3}-\d{7,8}", re.ASCII)
FULL_WIDTH = str.maketrans("0123456789Xx-", "０１２３４５６７８９ＸＸ－")


def full_width(text: str) -> str:
    return text.translate(FULL_WIDTH)


def personal_numbers(path: Path, also: set[str] = frozenset()) -> set[str]:
    """Every ID, phone and account number in the workbook as uploaded, read cell by cell with openpyxl."""
    wb = openpyxl.load_workbook(path)
    found = set(also)
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            for value in row:
                if value is None:
                    continue
                text = f"{value:.0f}" if isinstance(value, float) and abs(value) >= 1e10 else str(value)
                found.update(NUMBER_IN_CELL.findall(text.translate({ord(c): None for c in " \u3000"})))
                found.update(NUMBER_IN_CELL.findall(text))
    wb.close()
    return found


def header_row(ws) -> int:
    """The header row: the one with the form's column titles ("户主居民身份证…", "A4 …", "A23 …")."""
    for row in ws.iter_rows(min_row=1, max_row=10):
        texts = [str(c.value) for c in row if isinstance(c.value, str)]
        if any(t.startswith("户主居民身份证") for t in texts) or any(re.match(r"A\d+[a-z]? ", t) for t in texts):
            return row[0].row
    raise AssertionError(f"no header row in {ws.title}")


def column_of(sheet_id: str, header: str) -> str:
    headers = [f.header for f in get_form(FORM).fields_of(sheet_id)]
    return get_column_letter(headers.index(header) + 1)


# -- the refused variants ------------------------------------------------------------------------

Maker = Callable[[Path, Path], tuple[Path, set[str]]]


def _edit(good: Path, tmp: Path, change: Callable[[openpyxl.Workbook], set[str] | None]) -> tuple[Path, set[str]]:
    wb = openpyxl.load_workbook(good)
    planted = change(wb) or set()
    out = tmp / "济南市附件1.xlsx"
    wb.save(out)
    return out, planted


def _header_deleted(sheet: str) -> Maker:
    def make(good, tmp):
        def change(wb):
            ws = wb[sheet]
            ws.delete_rows(header_row(ws))  # the first data row now sits where the header was

        return _edit(good, tmp, change)

    return make


def _header_renamed(sheet: str, sheet_id: str, header: str, source: str | None, form: Callable[[str], str]) -> Maker:
    """The header of ``header`` replaced by a value (of the column ``source`` in row 3, or the account)."""

    def make(good, tmp):
        def change(wb):
            ws = wb[sheet]
            value = ACCOUNT if source is None else str(ws[f"{column_of(sheet_id, source)}3"].value)
            ws[f"{column_of(sheet_id, header)}{header_row(ws)}"] = form(value)
            return {value}

        return _edit(good, tmp, change)

    return make


def _id_as_number(good, tmp):
    def change(wb):
        cell = wb["家庭成员"][f"{column_of('members', 'A4 居民身份证(残疾人证)号码')}3"]
        original = str(cell.value).replace("X", "0")  # one ending in X is no number in Excel: its digits are
        cell.value = float(original)  # what Excel keeps of a pasted 18-digit ID: 3.70114E+17
        return {original}

    return _edit(good, tmp, change)


def _account_as_number(good, tmp):
    def change(wb):
        wb["户"][f"{column_of('households', '银行账号（选填）')}3"] = int(ACCOUNT)  # a 19-digit <v>6222…</v>
        return {ACCOUNT}

    return _edit(good, tmp, change)


def _version_is_a_phone(good, tmp):
    def change(wb):
        phone = str(wb["户"][f"{column_of('households', '联系电话')}2"].value)
        wb.defined_names[f"{MARKER_PREFIX}version"].attr_text = f'"{phone}"'
        return {phone}

    return _edit(good, tmp, change)


def _every_household_has_its_id_in_a_yes_no_column(good, tmp):
    """Columns shifted: the ID lands in A25 军烈属 (是/否) on every row, so no row passes."""

    def change(wb):
        ws = wb["户"]
        a25 = column_of("households", "A25 军烈属")
        for row in range(2, ws.max_row + 1):
            if ws[f"A{row}"].value:
                ws[f"{a25}{row}"] = ws[f"A{row}"].value

    return _edit(good, tmp, change)


def _spaced(value: str) -> str:
    return f"{value[:6]} {value[6:14]} {value[14:]}"


# (id, make, reason, what the message must still say: the sheet, the column letter or cell, what to do)
VARIANTS = [
    ("household_header_deleted", _header_deleted("户"), "columns", ["工作表「户」", "A 列", "H 列", "按原样恢复"]),
    ("member_header_deleted", _header_deleted("家庭成员"), "columns", ["工作表「家庭成员」", "E 列", "按原样恢复"]),
    ("helper_header_deleted", _header_deleted("帮扶责任人"), "columns", ["工作表「帮扶责任人」", "H 列", "按原样恢复"]),
    (
        "header_is_a_phone",
        _header_renamed("户", "households", "联系电话", "联系电话", str),
        "columns",
        ["工作表「户」", "H 列", "缺少列：联系电话", "按原样恢复"],
    ),
    (
        "header_is_an_id",
        _header_renamed("家庭成员", "members", "A6 民族", "A4 居民身份证(残疾人证)号码", str),
        "columns",
        ["工作表「家庭成员」", "G 列", "缺少列：A6 民族", "按原样恢复"],
    ),
    (
        "header_is_a_full_width_id",
        _header_renamed("户", "households", "乡（镇）", "户主居民身份证(残疾人证)号码", full_width),
        "columns",
        ["工作表「户」", "E 列", "按原样恢复"],
    ),
    (
        "header_is_a_spaced_id_with_a_name",
        _header_renamed(
            "家庭成员", "members", "A7 政治面貌", "A4 居民身份证(残疾人证)号码", lambda v: f"董浩娜{_spaced(v)}"
        ),
        "columns",
        ["工作表「家庭成员」", "H 列", "按原样恢复"],
    ),
    (
        "header_is_an_account",
        _header_renamed("户", "households", "开户银行（选填）", None, str),
        "columns",
        ["工作表「户」", "I 列", "按原样恢复"],
    ),
    ("id_stored_as_number", _id_as_number, "number_id", ["工作表「家庭成员」", "E3", "“文本”格式"]),
    ("account_stored_as_number", _account_as_number, "number_id", ["工作表「户」", "J3", "“文本”格式"]),
    ("version_marker_is_a_phone", _version_is_a_phone, "old_version", ["请下载新模板"]),
    (
        "every_row_has_an_id_in_a_yes_no_column",
        _every_household_has_its_id_in_a_yes_no_column,
        "all_rejected",
        ["没有一行通过检查", "请按问题清单改正"],
    ),
]


# -- the world: a synthetic workbook, the window open, a unit's token, the API --------------------


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    from include.cli.main import main

    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--campaign", CAMPAIGN, "--households", "20", "--seed", "7", "--out", str(out),
                 "--units", UNIT]) == 0  # fmt: skip
    return out


@pytest.fixture
def world(caplog, run_cli, synth_dir, tmp_path):
    caplog.set_level(logging.DEBUG)  # every log record of the whole test is searched,
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")  # the SQL and its parameters too
    code, _, err = run_cli(
        "report", "submit", "--campaign", CAMPAIGN, "--unit", UNIT, "--milestone", "completion_report",
        "--at", REPORT_AT,
    )  # fmt: skip
    assert code == 0, err
    url = upgrade()
    engine = make_engine(url)
    token = issue_token(engine, UNIT, parse_instant("2020-11-01T00:00+08:00"))[1]
    client = TestClient(create_app(clock=Clock(AT), database_url=url))
    good = tmp_path / "good.xlsx"
    shutil.copy(synth_dir / f"{CAMPAIGN}-{FORM}-{UNIT}.xlsx", good)
    yield {"client": client, "token": token, "engine": engine, "good": good}
    client.close()
    engine.dispose()


def upload(world, path: Path):
    return world["client"].post(
        "/api/workbooks",
        headers={"Authorization": f"Bearer {world['token']}"},
        data={"campaign": CAMPAIGN, "unit": UNIT},
        files={"file": (path.name, path.read_bytes(), XLSX)},
    )


def cli_ingest(run_cli, path: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("ingest", path, "--campaign", CAMPAIGN, "--unit", UNIT, "--at", AT, *extra)


def store_rows(engine) -> list[tuple[str, str]]:
    """Every column of every row of every table of the campaign store (the audit log, the outbox …)."""
    rows = []
    with session_scope(engine) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                rows.extend((f"{table.name}.{column}", str(value)) for column, value in row._mapping.items())
    return rows


def assert_nothing_leaks(numbers: set[str], sinks: dict[str, str]) -> None:
    assert numbers, "the workbook has personal numbers to look for"
    leaks = sorted(
        {
            (sink, mask_id(number))
            for sink, text in sinks.items()
            for number in numbers
            if number in text or full_width(number) in text
        }
    )
    assert not leaks, f"personal numbers in clear (shown masked here): {leaks[:20]}"


def sinks_of(world, caplog, replies: dict[str, str]) -> dict[str, str]:
    sinks = dict(replies)
    for column, value in store_rows(world["engine"]):
        sinks[f"store {column}"] = sinks.get(f"store {column}", "") + "\n" + value
    sinks["log records"] = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    sinks["log text"] = caplog.text
    return sinks


# -- the attack and its variants -----------------------------------------------------------------


@pytest.mark.parametrize(("case", "make", "reason", "says"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_a_refusal_quotes_no_personal_number_anywhere(world, run_cli, caplog, tmp_path, case, make, reason, says):
    bad, planted = make(world["good"], tmp_path)
    numbers = personal_numbers(bad, planted)
    assert planted <= numbers

    response = upload(world, bad)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == reason

    code, out, err = cli_ingest(run_cli, bad)
    assert code == 2, out + err
    code, json_out, json_err = cli_ingest(run_cli, bad, "--json")
    assert code == 2, json_out + json_err
    result = json.loads(json_out)
    assert result["refused"] == reason

    # still useful: the sheet, the column letter (or cell) and what to do, in each reply
    for message in (body["message"], result["message"], err):
        for fragment in says:
            assert fragment in message, (fragment, message)
    if reason == "all_rejected":
        first = body["rejected_rows"][0]
        assert (first["sheet"], first["cell"], first["field"]) == (
            "户",
            f"{column_of('households', 'A25 军烈属')}2",
            "A25 军烈属",
        )
        assert "只能填“是”或“否”" in first["message"]
        assert f"户 {first['cell']}" in err

    with session_scope(world["engine"]) as session:
        refused = session.scalars(select(AuditEntry).where(AuditEntry.action == "ingest_refused")).all()
    assert len(refused) == 3, "each refusal is in the audit log"
    assert all(says[0] in entry.detail or reason == "old_version" for entry in refused)

    assert_nothing_leaks(
        numbers,
        sinks_of(
            world,
            caplog,
            {
                "HTTP reply": response.text,
                "HTTP reply (decoded)": json.dumps(body, ensure_ascii=False),
                "CLI stdout": out,
                "CLI stderr": err,
                "CLI --json stdout": json_out,
                "CLI --json stderr": json_err,
            },
        ),
    )


def test_the_header_row_deleted_is_named_by_column_with_masked_values(world, run_cli, tmp_path):
    """The original attack, read closely: the first household's ID and phone are shown masked, its address
    and bank only as a short prefix, and the reply names the sheet and each column letter."""
    bad, _ = _header_deleted("户")(world["good"], tmp_path)
    first = [c.value for c in openpyxl.load_workbook(world["good"])["户"][2]]
    body = upload(world, bad).json()
    message = body["message"]
    assert body["error"] == "columns"
    assert f"A 列「{mask_id(first[0])}」" in message
    assert f"H 列「{first[7][:3]}****{first[7][-4:]}」" in message
    village = first[5]
    assert village not in message and f"F 列「{short_masked(village)}」" in message
    assert "找不到模板的表头" in message and "第1行是" in message
    assert "请不要删除或改写模板的表头行" in message


# -- row errors of a workbook accepted in part ---------------------------------------------------


def test_rejected_rows_of_a_partly_accepted_workbook_are_masked(world, run_cli, caplog, tmp_path):
    wb = openpyxl.load_workbook(world["good"])
    households, members = wb["户"], wb["家庭成员"]
    h = {f.header: get_column_letter(i + 1) for i, f in enumerate(get_form(FORM).fields_of("households"))}
    m = {f.header: get_column_letter(i + 1) for i, f in enumerate(get_form(FORM).fields_of("members"))}
    phone = str(households[f"{h['联系电话']}4"].value)
    member_id = str(members[f"{m['A4 居民身份证(残疾人证)号码']}3"].value)
    edits = {
        ("户", f"{h['A25 军烈属']}3"): households["A3"].value,  # an ID in a 是/否 column
        ("户", f"{h['A39 是否加入农民专业合作组织']}4"): phone,  # a phone in a 是/否 column
        ("户", f"{h['A23 识别标准（单选）']}5"): ACCOUNT,  # an account in a single-choice column
        ("户", f"{h['A28 工资性收入（元）']}6"): f"电话{phone}",  # a phone in a money column
        ("户", f"{h['联系电话']}7"): phone + "1",  # a phone one digit too long
        ("户", f"{h['银行账号（选填）']}8"): ACCOUNT + "ABC",  # an account with letters
        ("户", f"{h['村']}9"): "村" * 190 + f"联系人电话{phone}，卡号{ACCOUNT}",  # text over 200 characters
        ("家庭成员", f"{m['A15 是否会讲普通话']}3"): member_id,  # an ID in a 是/否 column
        ("家庭成员", f"{m['A4 居民身份证(残疾人证)号码']}4"): member_id + "X",  # 19 characters
        ("家庭成员", f"{m['A1 姓名']}5"): full_width(member_id) + "董浩娜" * 10,  # a full-width ID in a long name
        ("帮扶责任人", "H3"): phone[:-1] + "O",  # a letter O for a zero
    }
    for (sheet, cell), value in edits.items():
        wb[sheet][cell] = value
    bad = tmp_path / "济南市附件1.xlsx"
    wb.save(bad)
    numbers = personal_numbers(bad, {phone, member_id, ACCOUNT})

    response = upload(world, bad)
    assert response.status_code == 201, response.text
    body = response.json()
    code, out, err = cli_ingest(run_cli, bad)
    assert code == 0, out + err
    code, json_out, json_err = cli_ingest(run_cli, bad, "--json")
    assert code == 0, json_out + json_err
    result = json.loads(json_out)

    for reply in (body, result):
        assert reply["accepted_rows"] > 0
        errors = {(e["sheet"], e["cell"]): e for e in reply["rejected_rows"]}
        assert set(edits) <= set(errors), sorted(set(edits) - set(errors))
        for key in edits:  # each bad cell named, with its field, what to write, and its value masked
            error = errors[key]
            assert error["field"] in error["message"] and "：" in error["message"]
            assert error["value"] is None or "*" in str(error["value"]), error
        assert "只能填“是”或“否”" in errors[("户", f"{h['A25 军烈属']}3")]["message"]
        assert "18位" in errors[("家庭成员", f"{m['A4 居民身份证(残疾人证)号码']}4")]["message"]
    for key in edits:
        assert f"{key[0]} {key[1]}" in out

    assert_nothing_leaks(
        numbers,
        sinks_of(
            world,
            caplog,
            {
                "HTTP reply": response.text,
                "HTTP reply (decoded)": json.dumps(body, ensure_ascii=False),
                "CLI stdout": out,
                "CLI stderr": err,
                "CLI --json stdout": json_out,
                "CLI --json stderr": json_err,
            },
        ),
    )


# -- the choke point -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "370102198001011234",
        "37010219800101123X",
        "37010219800101123x",
        "13812345678",
        ACCOUNT,
        "6222021234567890",
        "37010219800101123401",  # a disability card
        "０５３１－８６０１２３４５",
        "370102-198001-011234",  # typed in groups, or with the separators a clerk's tool puts in
        "370102 19800101 1234",
        "a370102_198001_011234",
        "138123-45678",
    ],
)
def test_redact_masks_every_form_of_a_number(number):
    for written in (number, full_width(number), number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))):
        text = redact(f"第3行「{written}」，又见{written}。")
        assert written not in text and "*" in text, text
    assert redact("138 1234 5678、138-1234-5678") == "138****5678、138****5678"


def test_redact_keeps_what_is_no_personal_number():
    text = "工作表「户」的 E3 单元格被 Excel 存成了数字（显示为 3.70102E+17），2020-11-30 24:00 前，共 1,048,576 行。"
    assert redact(text) == text
    assert short_masked("370100") == "370100" and short_masked("济南市历下区") == "济南市…"


def test_a_refused_unit_or_milestone_is_kept_masked_in_the_audit_log(tmp_path):
    """The audit log's unit and milestone columns hold codes; a value the calendar does not know (an ID number sent
    as the unit) is kept only masked, since the log can never be cleaned."""
    from sqlalchemy import select

    from include.calendar.instants import parse_instant
    from include.calendar.registry import load_campaign
    from include.door.submissions import Actor, ReportRefused, submit_report
    from include.store.db import make_engine, session_scope, upgrade
    from include.store.models import AuditEntry

    engine = make_engine(upgrade(f"sqlite:///{tmp_path / 'store.db'}"))
    calendar = load_campaign("2020-shandong")
    at = parse_instant("2020-11-20T10:00+08:00")
    for unit, milestone in (("370102198001011234", "completion_report"), ("370100", "x13812345678")):
        with pytest.raises(ReportRefused):
            submit_report(engine, calendar, unit=unit, milestone_id=milestone, at=at, actor=Actor("province"))
    with session_scope(engine) as session:
        rows = session.scalars(select(AuditEntry)).all()
        stored = " ".join(f"{row.unit} {row.milestone} {row.detail}" for row in rows)
    assert len(rows) == 2
    assert "370102198001011234" not in stored and "13812345678" not in stored
    assert rows[1].unit == "370100"  # a code the calendar knows stays as it is
    engine.dispose()
