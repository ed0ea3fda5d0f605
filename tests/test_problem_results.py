"""Problem lists that come back (issue 16, part 2): 核查结果 filled in the list as a clerk would, uploaded, stored.

Seed 000: "（五）问题数据核查。12月11日至20日，各市根据问题清单以及自查发现的问题，组织县、乡扶贫部门开展实地核查，
对查实的问题进行整改。" The lists of 2020-shandong's 济南市 and 青岛市 come from `campaign validate` on synthetic
workbooks with defects; the clerk fills the two open columns with openpyxl on the downloaded file.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from include.calendar.instants import parse_instant
from include.store.db import database_url, make_engine
from include.store.models import AuditEntry, ProblemResult
from tests.test_rules import load

CAMPAIGN, JINAN, QINGDAO, LIXIA = "2020-shandong", "370100", "370200", "370102"
AT = "2020-12-15T10:00+08:00"  # in 问题数据核查, 12-11 to 12-20


@pytest.fixture
def lists(run_cli, tmp_path) -> Path:
    load(run_cli, tmp_path, CAMPAIGN, "120", "0.5", "41")
    out = tmp_path / "lists"
    code, _, err = run_cli(
        "validate", "--campaign", CAMPAIGN, "--stage", "analysis", "--at", "2020-12-02T09:00+08:00", "--out", out
    )
    assert code == 0, err
    return out


def list_of(out: Path, unit: str, stage: str = "analysis") -> Path:
    return out / f"{CAMPAIGN}-{stage}-{unit}-问题清单.xlsx"


def rows_of(path: Path) -> list[tuple[str, int, dict[str, object]]]:
    wb = openpyxl.load_workbook(path)
    found = []
    for ws in wb.worksheets[1:]:
        header = [cell.value for cell in ws[1]]
        for row in ws.iter_rows(min_row=2):
            found.append((ws.title, row[0].row, dict(zip(header, (cell.value for cell in row), strict=False))))
    return found


def fill(path: Path, out: Path, answers: dict[int, tuple[str, str | None]], edit=None) -> Path:
    """The clerk's copy: the n-th open problem (in the list's order) gets ``answers[n]`` (核查结果, 说明)."""
    wb = openpyxl.load_workbook(path)
    n = 0
    for ws in wb.worksheets[1:]:
        header = [cell.value for cell in ws[1]]
        result, note = header.index("核查结果") + 1, header.index("说明") + 1
        for row in range(2, ws.max_row + 1):
            if ws.cell(row=row, column=header.index("状态") + 1).value == "已整改":
                continue
            if n in answers:
                ws.cell(row=row, column=result, value=answers[n][0])
                ws.cell(row=row, column=note, value=answers[n][1])
            if edit is not None:
                edit(ws, header, row, n)
            n += 1
    copy = out / f"filled-{len(list(out.glob('filled-*')))}.xlsx"
    wb.save(copy)
    return copy


def submit(run_cli, path: Path, unit: str = JINAN, *extra: str) -> tuple[int, dict]:
    code, out, err = run_cli("verify", "submit", path, "--campaign", CAMPAIGN, "--unit", unit, "--at", AT, "--json",
                             "--by", "历城区扶贫办 王会计", *extra)  # fmt: skip
    return code, json.loads(out) if out.strip() else {"stderr": err}


def stored() -> int:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(ProblemResult)).scalar_one()
    engine.dispose()
    return count


def test_the_list_has_two_open_columns_a_dropdown_and_everything_else_protected(lists):
    wb = openpyxl.load_workbook(list_of(lists, JINAN))
    ws = wb.worksheets[1]
    header = [cell.value for cell in ws[1]]
    assert header[0] == "问题编号" and header[-2:] == ["核查结果", "说明"]
    assert ws.protection.sheet, "the county's sheet is protected"
    assert not ws.cell(row=2, column=len(header) - 1).protection.locked
    assert not ws.cell(row=2, column=len(header)).protection.locked
    assert all(ws.cell(row=2, column=c).protection.locked for c in range(1, len(header) - 1))
    (choices,) = ws.data_validations.dataValidation
    assert choices.formula1 == '"属实，已整改,属实，待整改,不属实,无法核实"'
    assert "J2" in str(choices.sqref)
    assert str(wb.defined_names["_campaign_kind"].attr_text) == '"problem_list"'


def test_results_filled_in_the_list_come_back_and_are_counted(run_cli, lists, tmp_path):
    issued = rows_of(list_of(lists, JINAN))
    open_rows = [row for _, _, row in issued if row["状态"] != "已整改"]
    assert len(open_rows) >= 6
    filled = fill(list_of(lists, JINAN), tmp_path, {
        0: ("属实，已整改", None), 1: ("属实，已整改", "已在系统中改正身份证号"), 2: ("属实，待整改", None),
        3: ("不属实", "经入户核实，户主证件号码与户口簿一致"), 4: ("无法核实", "户主长期外出务工，电话无人接听"),
    })  # fmt: skip
    code, receipt = submit(run_cli, filled)
    assert code == 0, receipt
    assert receipt["answers"] == 5 and receipt["unit"] == JINAN and receipt["stage"] == "analysis"
    assert receipt["by_result"] == {"fixed": 2, "pending": 1, "not_a_problem": 1, "unverifiable": 1}
    assert (receipt["answered"], receipt["total"]) == (5, len(open_rows))
    engine = make_engine(database_url())
    with engine.connect() as connection:
        rows = connection.execute(select(ProblemResult).order_by(ProblemResult.id)).all()
        entry = connection.execute(select(AuditEntry).where(AuditEntry.action == "problem_results")).one()
    engine.dispose()
    assert [row.problem for row in rows] == [str(row["问题编号"]) for row in open_rows[:5]]
    assert rows[3].result == "not_a_problem" and rows[3].note == "经入户核实，户主证件号码与户口簿一致"
    assert {row.submitted_by for row in rows} == {"cli:历城区扶贫办 王会计"} and not any(row.on_behalf for row in rows)
    assert rows[0].at == parse_instant(AT)
    assert "济南市提交“数据分析和问题梳理”问题清单的核查结果 5 条" in entry.detail

    code, out, _ = run_cli("verify", "status", "--campaign", CAMPAIGN, "--json")
    progress = {row["unit"]: (row["answered"], row["total"]) for row in json.loads(out)["units"]}
    assert progress[JINAN] == (5, len(open_rows)) and progress[QINGDAO][0] == 0

    # The next list of 济南市 shows what it already answered, in the open cells.
    code, _, err = run_cli("validate", "--campaign", CAMPAIGN, "--unit", JINAN, "--stage", "verification",
                           "--at", "2020-12-12T09:00+08:00", "--out", lists)  # fmt: skip
    assert code == 0, err
    again = {str(row["问题编号"]): row for _, _, row in rows_of(list_of(lists, JINAN, "verification"))}
    assert again[str(open_rows[3]["问题编号"])]["核查结果"] == "不属实"
    assert again[str(open_rows[3]["问题编号"])]["说明"] == "经入户核实，户主证件号码与户口簿一致"


def edited_message(ws, header, row, n):
    if n == 1:
        ws.cell(row=row, column=header.index("问题说明") + 1, value="已核实无误")


def changed_number(ws, header, row, n):
    if n == 2:
        ws.cell(row=row, column=1, value="Q0000000000A")


@pytest.mark.parametrize(
    ("case", "answers", "edit", "expected"),
    [
        ("edited_protected_cell", {0: ("属实，已整改", None), 1: ("属实，已整改", None)}, edited_message,
         "「问题说明」与下发的清单不一致"),
        ("changed_number", {2: ("属实，已整改", None)}, changed_number, "问题编号「Q0000000000A」不是本清单的问题"),
        ("not_a_problem_without_a_note", {0: ("不属实", None)}, None, "核查结果为“不属实”的，请在“说明”中写明情况"),
        ("not_an_option", {0: ("已核实", None)}, None, "核查结果「已核实」不是可选项"),
        ("a_note_without_a_result", {0: (None, "已入户")}, None, "填了说明但未选核查结果"),
    ],
)  # fmt: skip
def test_a_list_with_one_bad_row_is_refused_whole_with_that_row(
    run_cli, lists, tmp_path, case, answers, edit, expected
):
    filled = fill(list_of(lists, JINAN), tmp_path, {**answers, 5: ("属实，已整改", None)}, edit)
    code, refused = submit(run_cli, filled)
    assert code == 1 and refused["error"] == "rows", refused
    assert "整份清单未被接收，未作任何更改" in refused["message"]
    assert len(refused["rows"]) == 1 and expected in refused["rows"][0] and "第" in refused["rows"][0]
    assert stored() == 0  # the good row was not stored either


def test_another_units_list_and_a_countys_answer_for_another_county_are_refused(run_cli, lists, tmp_path):
    qingdao = fill(list_of(lists, QINGDAO), tmp_path, {0: ("属实，已整改", None)})
    code, refused = submit(run_cli, qingdao, JINAN)
    assert code == 1 and refused["error"] == "wrong_list" and "370200 的问题清单" in refused["message"]

    # 历下区 answers in 济南市's list: its own households' problems only.
    issued = [(sheet, row) for sheet, _, row in rows_of(list_of(lists, JINAN)) if row["状态"] != "已整改"]
    counties = [sheet for sheet, _ in issued]
    assert "历下区" in counties and len(set(counties)) > 1, counties
    own = counties.index("历下区")
    other = next(n for n, sheet in enumerate(counties) if sheet != "历下区")
    filled = fill(list_of(lists, JINAN), tmp_path, {own: ("属实，已整改", None), other: ("属实，已整改", None)})
    code, refused = submit(run_cli, filled, JINAN, "--acting", LIXIA)
    assert code == 1 and len(refused["rows"]) == 1
    assert f"这个问题属于{counties[other]}，不是历下区的问题，不能代为填写" in refused["rows"][0]
    assert stored() == 0
    mine = fill(list_of(lists, JINAN), tmp_path, {own: ("属实，已整改", None)})
    code, receipt = submit(run_cli, mine, JINAN, "--acting", LIXIA)
    assert code == 0 and receipt["answers"] == 1
    engine = make_engine(database_url())
    with engine.connect() as connection:
        (row,) = connection.execute(select(ProblemResult)).all()
    engine.dispose()
    assert row.on_behalf and row.unit == JINAN  # entered by the county, into its city's list


def test_a_data_workbook_is_not_a_problem_list(run_cli, lists, tmp_path):
    template = tmp_path / "template.xlsx"
    code, _, err = run_cli("forms", "template", "2020-1", "--campaign", CAMPAIGN, "--out", template)
    assert code == 0, err
    code, refused = submit(run_cli, template)
    assert code == 1 and refused["error"] == "not_a_problem_list" and "问题清单" in refused["message"]
    not_xlsx = tmp_path / "note.xlsx"
    not_xlsx.write_text("核查完毕", encoding="utf-8")
    code, refused = submit(run_cli, not_xlsx)
    assert code == 1 and refused["error"] == "not_xlsx"


def test_the_list_goes_out_and_comes_back_through_the_http_door(run_cli, lists, tmp_path):
    """济南市 downloads its list and sends it back filled; 历下区's token gets only its own households' problems and
    may answer those; 青岛市's token may neither read nor answer 济南市's list."""
    import io

    from fastapi.testclient import TestClient

    from include.door.tokens import issue_token
    from include.store.db import upgrade
    from include.web.app import create_app
    from tests.test_api import Clock

    url = upgrade()
    engine = make_engine(url)
    at = parse_instant("2020-12-01T00:00+08:00")
    tokens = {unit: issue_token(engine, unit, at)[1] for unit in (JINAN, QINGDAO, LIXIA)}
    client = TestClient(create_app(clock=Clock(AT), database_url=url))

    def get(unit: str, token: str, stage: str = "analysis"):
        return client.get(f"/api/campaigns/{CAMPAIGN}/units/{unit}/problem-list", params={"stage": stage},
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def post(unit: str, token: str, path: Path):
        return client.post("/api/problem-results", headers={"Authorization": f"Bearer {token}"},
                           data={"campaign": CAMPAIGN, "unit": unit},
                           files={"file": ("清单.xlsx", path.read_bytes(), "application/octet-stream")})  # fmt: skip

    whole = get(JINAN, tokens[JINAN])
    assert whole.status_code == 200 and whole.headers["cache-control"] == "no-store"
    downloaded = tmp_path / "downloaded.xlsx"
    downloaded.write_bytes(whole.content)
    assert [row["问题编号"] for _, _, row in rows_of(downloaded)] == [
        row["问题编号"] for _, _, row in rows_of(list_of(lists, JINAN))
    ]
    lixia = get(JINAN, tokens[LIXIA])
    assert lixia.status_code == 200
    own = openpyxl.load_workbook(io.BytesIO(lixia.content))
    assert own.sheetnames == ["汇总", "历下区"]
    assert get(JINAN, tokens[QINGDAO]).status_code == 403
    assert get(LIXIA, tokens[LIXIA]).status_code == 404  # lists go per city
    assert get(JINAN, tokens[JINAN], "completion").status_code == 404  # not run yet

    filled = fill(downloaded, tmp_path, {0: ("属实，已整改", None), 1: ("不属实", "户口簿与证件一致")})
    assert post(JINAN, tokens[QINGDAO], filled).status_code == 403
    accepted = post(JINAN, tokens[JINAN], filled)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["answers"] == 2 and accepted.json()["answered"] == 2
    bad = fill(downloaded, tmp_path, {0: ("不属实", None)})
    refused = post(JINAN, tokens[JINAN], bad)
    assert refused.status_code == 422 and refused.json()["error"] == "rows"
    assert "请在“说明”中写明情况" in refused.json()["rejected_rows"][0]
    again = tmp_path / "again.xlsx"
    again.write_bytes(get(JINAN, tokens[JINAN]).content)  # the answers come back with the list
    answered = [row for _, _, row in rows_of(again) if row["核查结果"]]
    assert [(row["核查结果"], row["说明"]) for row in answered] == [
        ("属实，已整改", None),
        ("不属实", "户口簿与证件一致"),
    ]
    engine.dispose()


def answer(path: Path, out: Path, answers: dict[str, tuple[str, str | None]]) -> Path:
    """The clerk's copy with ``answers`` by problem number."""
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets[1:]:
        header = [cell.value for cell in ws[1]]
        for row in range(2, ws.max_row + 1):
            given = answers.get(str(ws.cell(row=row, column=1).value))
            if given:
                ws.cell(row=row, column=header.index("核查结果") + 1, value=given[0])
                ws.cell(row=row, column=header.index("说明") + 1, value=given[1])
    copy = out / f"answered-{len(list(out.glob('answered-*')))}.xlsx"
    wb.save(copy)
    return copy


def test_the_rectification_loop_closes(run_cli, lists, tmp_path):
    """Seed 000's 核查 (12-11 to 12-20) and 修改完善 (12-21 to 12-31): 济南市 answers five problems of its analysis list;
    the province accepts one 不属实 and rejects another with its reason; 济南市 corrects the one transfer it said it
    fixed in its workbook (and not another it also said fixed); the completion run marks the corrected one fixed,
    the other reopened, leaves the accepted 不属实 closed and the rest to verify."""
    issued = [row for _, _, row in rows_of(list_of(lists, JINAN)) if row["状态"] != "已整改"]
    transfers = [row for row in issued if row["规则"] == "转移性收入与分项之和不符"]
    others = [row for row in issued if row["规则"] != "转移性收入与分项之和不符" and row["户主身份证号码"]
              not in {t["户主身份证号码"] for t in transfers}]  # fmt: skip
    assert transfers and len(others) >= 4, [row["规则"] for row in issued]
    corrected, said_fixed, accepted, rejected, pending = transfers[0], *others[:4]
    number = lambda row: str(row["问题编号"])  # noqa: E731
    filled = answer(list_of(lists, JINAN), tmp_path, {
        number(corrected): ("属实，已整改", "已按分项改正转移性收入"),
        number(said_fixed): ("属实，已整改", None),
        number(accepted): ("不属实", "入户核实：与户口簿一致"),
        number(rejected): ("不属实", "电话核实"),
        number(pending): ("属实，待整改", "待户主返乡后补录"),
    })  # fmt: skip
    code, receipt = submit(run_cli, filled)
    assert code == 0 and receipt["answers"] == 5, receipt
    review = ("verify", "review", "--campaign", CAMPAIGN, "--unit", JINAN, "--by", "省扶贫办 张处长",
              "--at", "2020-12-16T10:00+08:00")  # fmt: skip
    assert run_cli(*review, "--problem", number(accepted), "--accept")[0] == 0
    code, _, err = run_cli(*review, "--problem", number(rejected), "--reject")
    assert code != 0 and "驳回“不属实”必须写明原因" in err
    code, out, _ = run_cli(*review, "--problem", number(rejected), "--reject", "--reason", "电话核实不足为凭，请入户")
    assert code == 0 and "请单位重新核查" in out
    code, _, err = run_cli(*review, "--problem", number(pending), "--accept")
    assert code != 0 and "只有“不属实”需要审核" in err
    code, out, _ = run_cli("verify", "status", "--campaign", CAMPAIGN, "--unit", JINAN, "--json")
    (status,) = json.loads(out)["units"]
    assert status["answered"] == 4  # the rejected 不属实 is to be answered again

    # 济南市 corrects the transfer it said it fixed: A29 again the sum of its parts (seed 000's 附件1 A29a–f).
    workbook = tmp_path / CAMPAIGN / f"{CAMPAIGN}-2020-1-{JINAN}.xlsx"
    wb = openpyxl.load_workbook(workbook)
    ws = wb["户"]
    header = [str(cell.value) for cell in ws[1]]
    column = {code: header.index(next(text for text in header if text.split(" ")[0] == code))
              for code in ("A29", "A29a", "A29b", "A29c", "A29d", "A29e", "A29f")}  # fmt: skip
    key = next(i for i, text in enumerate(header) if text.startswith("户主居民身份证"))
    for row in ws.iter_rows(min_row=2):
        if str(row[key].value) == corrected["户主身份证号码"]:
            row[column["A29"]].value = sum(float(row[column[f"A29{s}"]].value or 0) for s in "abcdef")
    wb.save(workbook)
    code, out, err = run_cli("ingest", workbook, "--campaign", CAMPAIGN, "--unit", JINAN,
                             "--at", "2020-12-22T10:00+08:00", "--json")  # fmt: skip
    assert code == 0, out + err

    code, out, err = run_cli("validate", "--campaign", CAMPAIGN, "--unit", JINAN, "--stage", "completion",
                             "--at", "2020-12-25T09:00+08:00", "--out", lists, "--json")  # fmt: skip
    assert code == 0, err
    completion = json.loads(out)
    ids = {}
    for problem in completion["problems"]:
        from include.rules.problems import problem_id

        ids[problem_id(CAMPAIGN, problem["rule"], problem["household"], problem["person"], problem["fields"])] = problem
    assert ids[number(corrected)]["status"] == "fixed"
    assert ids[number(said_fixed)]["status"] == "reopened"
    assert ids[number(accepted)]["status"] == "dismissed"
    assert ids[number(rejected)]["status"] == "open" and ids[number(pending)]["status"] == "open"
    assert completion["summary"]["problems"] == len(issued) - 2  # the corrected one and the accepted 不属实 closed
    rows = {str(row["问题编号"]): row for _, _, row in rows_of(list_of(lists, JINAN, "completion"))}
    assert rows[number(accepted)]["状态"] == "经核实不属实" and rows[number(said_fixed)]["状态"] == "报已整改但仍存在"
    engine = make_engine(database_url())
    with engine.connect() as connection:
        reviews = connection.execute(select(AuditEntry.detail).where(AuditEntry.action == "result_review")).all()
    engine.dispose()
    assert len(reviews) == 2 and "驳回（原因：电话核实不足为凭，请入户）" in reviews[1][0]


@pytest.fixture
def verified_campaign() -> str:
    """2020-shandong, whose verification is a gate on data (seed 000 asks for no report of it): 济南市's is done when its
    analysis list is all answered."""
    return CAMPAIGN


@pytest.mark.airflow
def test_verification_is_a_gate_on_data(run_cli, tmp_path, verified_campaign):
    """济南市's verification is done when every problem of its list has a result, recorded by the system at that
    moment (on time before 12-20 24时); nobody declares it by hand; the gate's label counts the answers."""
    import pendulum
    from airflow.sdk.exceptions import AirflowFailException

    from include.calendar.registry import load_campaign
    from include.orchestration.gates import ReportGate

    calendar = load_campaign(verified_campaign)
    code, _, err = run_cli("synth", "--campaign", verified_campaign, "--households", "30", "--defect-rate", "0.3",
                           "--seed", "5", "--out", tmp_path / "synth", "--units", JINAN)  # fmt: skip
    assert code == 0, err
    assert run_cli("report", "submit", "--campaign", verified_campaign, "--unit", JINAN, "--milestone",
                   "completion_report", "--at", "2020-11-12T10:00+08:00")[0] == 0  # fmt: skip
    code, out, err = run_cli("ingest", tmp_path / "synth" / f"{verified_campaign}-2020-1-{JINAN}.xlsx", "--campaign",
                             verified_campaign, "--unit", JINAN, "--at", "2020-11-20T10:00+08:00")  # fmt: skip
    assert code == 0, out + err
    code, _, err = run_cli("validate", "--campaign", verified_campaign, "--stage", "analysis",
                           "--at", "2020-12-02T09:00+08:00", "--out", tmp_path / "lists")  # fmt: skip
    assert code == 0, err
    declare = run_cli("report", "submit", "--campaign", verified_campaign, "--unit", JINAN, "--milestone",
                      "verification_done", "--at", "2020-12-15T10:00+08:00")  # fmt: skip
    assert declare[0] != 0 and "按核查结果完成" in declare[1] + declare[2]

    issued = tmp_path / "lists" / f"{verified_campaign}-analysis-{JINAN}-问题清单.xlsx"
    numbers = [str(row["问题编号"]) for _, _, row in rows_of(issued) if row["状态"] != "已整改"]
    assert len(numbers) >= 2

    def gate() -> ReportGate:
        milestone = calendar.milestone("verification_done")
        return ReportGate(
            task_id="gate_verification_done", campaign_id=calendar.id, milestone="verification_done", unit=JINAN,
            unit_names=calendar.unit_names, due=milestone.due, gives_up_at=calendar.door_closes(milestone), poll=2.0,
            verified="analysis",
        )  # fmt: skip

    def status() -> str:
        code, out, err = run_cli("status", "--campaign", verified_campaign, "--under", JINAN, "--json",
                               "--at", "2020-12-21T09:00+08:00")  # fmt: skip
        assert code == 0, err
        unit = next(item for item in json.loads(out)["units"] if item["unit"] == JINAN)
        return next(item["state"] for item in unit["milestones"] if item["id"] == "verification_done")

    half = answer(issued, tmp_path, {number: ("属实，已整改", None) for number in numbers[:-1]})
    code, out, err = run_cli("verify", "submit", half, "--campaign", verified_campaign, "--unit", JINAN,
                             "--at", "2020-12-15T10:00+08:00", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["completed"] == [], out + err
    assert status() == "missing"
    context: dict = {}
    with pytest.raises(AirflowFailException, match=r"济南市的问题清单未在 .* 前核查完毕"):
        gate().report_in(context, {"received_at": None})
    assert context["gate_label"] == f"济南市 · 已核查 {len(numbers) - 1}/{len(numbers)} · 未完成"
    # As the deadline nears, the unit with problems unanswered is reminded, with its count; the other cities have
    # no list, nothing to verify, and are not.
    reminders = remind(run_cli, verified_campaign, "2020-12-17T09:00+08:00")
    assert [(r["unit"], r["kind"]) for r in reminders] == [(JINAN, "before_1")]
    assert f"问题清单已核查 {len(numbers) - 1}/{len(numbers)}，问题清单尚有问题未填写核查结果" in reminders[0]["text"]

    rest = answer(issued, tmp_path, {numbers[-1]: ("无法核实", "户主已去世，家属不在本地")})
    code, out, err = run_cli("verify", "submit", rest, "--campaign", verified_campaign, "--unit", JINAN,
                             "--at", "2020-12-18T16:00+08:00", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["completed"] == ["verification_done"], out + err
    assert status() == "on_time"
    assert remind(run_cli, verified_campaign, "2020-12-18T09:00+08:00") == []  # all answered: nobody reminded
    context = {}
    assert gate().execute(context) == "on_time"
    assert context["gate_label"] == f"济南市 · 已核查 {len(numbers)}/{len(numbers)} · 按时"
    assert pendulum.instance(calendar.milestone("verification_done").due) > parse_instant("2020-12-18T16:00+08:00")


def remind(run_cli, campaign: str, at: str) -> list[dict]:
    """The reminders of the gate on data on the day of ``at``."""
    code, out, err = run_cli("remind", "--campaign", campaign, "--at", at, "--dry-run", "--json")
    assert code == 0, err
    return [r for r in json.loads(out) if r["milestone"] == "verification_done"]


CHECKS = ("与公安户籍信息比对不一致", "与民政低保数据比对不一致", "与残联数据比对不一致", "疑似已死亡未标注",
          "疑似财政供养人员", "家庭成员有车辆登记", "家庭成员有工商注册")  # fmt: skip


def test_a_national_list_of_1200_problems_joins_the_loop(run_cli, tmp_path):
    """Seed 000: "国务院扶贫办和省扶贫开发办同时开展数据分析". A national list of 1,200 problems on the two cities'
    households, plus rows it cannot place, is imported; its problems go into the cities' lists with the project's
    own, come back with results, and those said fixed are closed by the next run."""
    from include.forms import records

    load(run_cli, tmp_path, CAMPAIGN, "240", "0.2", "43")
    households = records.scan(CAMPAIGN, "2020-1", "households").select("unit", "household_id").collect()
    keys = households["household_id"].to_list()
    assert len(keys) == 240
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["序号", "户主身份证号码", "问题人员身份证号码", "问题类型", "问题描述"])
    for i in range(1200):
        key = keys[i % len(keys)]
        ws.append([i + 1, key, key, CHECKS[i // len(keys)], f"比对发现疑点（批次 2020-12，第 {i + 1} 条）"])
    ws.append([1201, 3.70102e17, None, "与公安户籍信息比对不一致", "证件号码被 Excel 改成了数字"])
    ws.append([1202, "110101199003077777", None, "疑似已死亡未标注", "北京市东城区的户"])
    ws.append([1203, "370102199003071234", None, "疑似已死亡未标注", "济南市历下区的户，尚未录入"])
    national = tmp_path / "国务院扶贫办问题清单.xlsx"
    wb.save(national)

    code, out, err = run_cli("verify", "import", national, "--campaign", CAMPAIGN, "--source", "national",
                             "--label", "国务院扶贫办数据质量问题清单", "--at", "2020-12-03T10:00+08:00", "--json")  # fmt: skip
    assert code == 0, err
    imported = json.loads(out)
    assert imported["rows"] == 1203 and imported["placed"] == 1201
    per_unit = dict(households.group_by("unit").len().iter_rows())
    assert imported["by_unit"] == {JINAN: per_unit[JINAN] * 5 + 1, QINGDAO: per_unit[QINGDAO] * 5}
    assert len(imported["unplaced"]) == 2 and all("370102199003071234" not in line for line in imported["unplaced"])
    assert any("110101" in line and "不属本工作" in line for line in imported["unplaced"])

    out_dir = tmp_path / "lists"
    code, out, err = run_cli("validate", "--campaign", CAMPAIGN, "--stage", "analysis", "--at",
                             "2020-12-04T09:00+08:00", "--out", out_dir, "--json")  # fmt: skip
    assert code == 0, err
    analysis = json.loads(out)
    issued = [p for p in analysis["problems"] if p["rule"] == "national"]
    assert len(issued) == 1201 and {p["status"] for p in issued} == {"new"}
    assert any(p["rule"] != "national" for p in analysis["problems"]), "the project's own problems are there too"
    listed = [row for _, _, row in rows_of(list_of(out_dir, JINAN)) if row["规则"] == "国务院扶贫办下发的问题"]
    assert len(listed) == imported["by_unit"][JINAN]
    assert listed[0]["问题说明"].startswith("【国务院扶贫办数据质量问题清单：")
    answers = {str(row["问题编号"]): ("属实，已整改", "已在系统中更正") for row in listed[:30]}
    filled = answer(list_of(out_dir, JINAN), tmp_path, answers)
    code, out, err = run_cli("verify", "submit", filled, "--campaign", CAMPAIGN, "--unit", JINAN, "--at", AT, "--json")
    assert code == 0 and json.loads(out)["answers"] == 30, out + err

    code, out, err = run_cli("validate", "--campaign", CAMPAIGN, "--unit", JINAN, "--stage", "completion", "--at",
                             "2020-12-25T09:00+08:00", "--out", out_dir, "--json")  # fmt: skip
    assert code == 0, err
    statuses = {}
    for problem in json.loads(out)["problems"]:
        if problem["rule"] == "national":
            statuses[problem["status"]] = statuses.get(problem["status"], 0) + 1
    assert statuses == {"fixed": 30, "open": imported["by_unit"][JINAN] - 30}
