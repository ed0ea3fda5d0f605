"""A county uploads its own workbooks, or its city does for it; never both (issue 15, item 2).

Seed 000 gives the data entry to the counties ("11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作") and
the verification to the cities ("各市根据问题清单…组织县、乡扶贫部门开展实地核查"). So a county's own upload goes
in with its city's window, its households count for it, and its problems are in its city's problem list. One
county's households come from one uploader: a city's rows of a county that uploads itself are rejected, and a
county's upload is refused while its city's data in force hold households of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from include.forms import records
from include.forms.spec import get_form

CAMPAIGN, CITY, LIXIA, LICHENG, FORM = "2020-shandong", "370100", "370102", "370112", "2020-1"
AT = "2020-11-20T10:00+08:00"


def ok(run_cli, *args) -> str:
    code, out, err = run_cli(*args)
    assert code == 0, err
    return out


@pytest.fixture
def workbooks(run_cli, tmp_path) -> dict[str, Path]:
    """历下区's own workbook, and 济南市's of 40 households over its counties."""
    found = {}
    for unit, households, seed in ((LIXIA, 15, 8), (CITY, 40, 9)):
        ok(run_cli, "synth", "--campaign", CAMPAIGN, "--households", str(households), "--defect-rate", "0.3",
           "--seed", str(seed), "--out", tmp_path / unit, "--units", unit)  # fmt: skip
        found[unit] = tmp_path / unit / f"{CAMPAIGN}-{FORM}-{unit}.xlsx"
    return found


def ingest(run_cli, path: Path, unit: str) -> tuple[int, dict]:
    code, out, _ = run_cli("ingest", path, "--campaign", CAMPAIGN, "--unit", unit, "--at", AT, "--json")
    return code, json.loads(out)


def counties_in(path: Path) -> list[str]:
    form = get_form(FORM)
    ws = openpyxl.load_workbook(path, read_only=True)[form.sheet("households").name]
    rows = list(ws.iter_rows(values_only=True))
    column = [str(h) for h in rows[0]].index(next(str(h) for h in rows[0] if str(h).startswith("县（")))
    return [row[column] for row in rows[1:] if row[column]]


def test_a_countys_own_upload_counts_for_it_and_is_verified_in_its_citys_list(run_cli, window_open, workbooks):
    code, result = ingest(run_cli, workbooks[LIXIA], LIXIA)
    assert code == 0 and result["unit"] == LIXIA and result["status"] == "stored"
    assert records.current_version(CAMPAIGN, FORM, LIXIA) is not None

    # 济南市's workbook: its 历下区 rows are 历下区's to upload now; the other counties' are stored
    code, result = ingest(run_cli, workbooks[CITY], CITY)
    assert code == 0, result
    lixia_rows = counties_in(workbooks[CITY]).count("历下区")
    assert lixia_rows > 0, "the seeded workbook has households of 历下区"
    own = [e for e in result["rejected_rows"] if "历下区已自行上传本县区的数据" in e["message"]]
    assert len(own) == lixia_rows

    report = json.loads(ok(run_cli, "progress", "--campaign", CAMPAIGN, "--at", AT, "--json"))
    units = {unit["unit"]: unit for level in report["levels"] for unit in level["units"]}
    stored_city = records.scan(CAMPAIGN, FORM, "households", [CITY]).collect().height
    stored_lixia = records.scan(CAMPAIGN, FORM, "households", [LIXIA]).collect().height
    assert units[LIXIA]["entered"] == stored_lixia > 0
    assert units[CITY]["entered"] == stored_city + stored_lixia

    # validation: 历下区's problems are in 济南市's list, with 历下区 as their county
    out = ok(run_cli, "validate", "--campaign", CAMPAIGN, "--unit", CITY, "--stage", "analysis",
             "--at", "2020-12-02T09:00+08:00", "--out", Path(workbooks[CITY]).parent / "lists", "--json")  # fmt: skip
    problems = json.loads(out)["problems"]
    assert problems and {p["unit"] for p in problems} == {CITY}
    lixia_keys = set(records.scan(CAMPAIGN, FORM, "households", [LIXIA]).collect()[get_form(FORM).household_key])
    assert any(p["household"] in lixia_keys for p in problems), "the county's own data are verified with its city's"


def test_a_countys_upload_is_refused_while_its_city_holds_its_households(run_cli, window_open, workbooks):
    code, result = ingest(run_cli, workbooks[CITY], CITY)
    assert code == 0
    held = counties_in(workbooks[CITY]).count("历城区")
    assert held > 0
    # 历城区's own workbook (济南市's, rewritten to 历城区's households only, as a county would send it)
    form = get_form(FORM)
    wb = openpyxl.load_workbook(workbooks[CITY])
    ws = wb[form.sheet("households").name]
    header = [str(cell.value) for cell in ws[1]]
    county = next(i for i, h in enumerate(header, start=1) if h.startswith("县（"))
    for row in range(ws.max_row, 1, -1):
        if ws.cell(row=row, column=county).value != "历城区":
            ws.delete_rows(row)
    own = workbooks[CITY].with_name("历城区.xlsx")
    wb.save(own)
    before = records.current_version(CAMPAIGN, FORM, LICHENG)
    code, result = ingest(run_cli, own, LICHENG)
    assert code == 2 and result["refused"] == "uploaded_by_parent"
    assert result["message"].startswith(f"济南市在用的数据（2020-1）中已有历城区的 {held} 户")
    assert records.current_version(CAMPAIGN, FORM, LICHENG) == before is None, "nothing stored"


def test_a_township_of_a_roster_enters_through_its_county(run_cli, workbooks):
    code, _, err = run_cli("ingest", workbooks[LIXIA], "--campaign", CAMPAIGN, "--unit", "370102001", "--at", AT)
    assert code == 2 and "没有可以上传工作簿的单位" in err


def test_a_city_whose_counties_entered_clean_data_is_verified_at_the_analysis(run_cli, window_open, tmp_path):
    """Seed 000: "各市根据问题清单以及自查发现的问题，组织县、乡扶贫部门开展实地核查". 历下区 enters its own households, with
    no defect; the analysis gives 济南市 an empty list, and 济南市's verification is done then: there is nothing to
    verify, yet data were entered (青岛市, which entered nothing, has verified nothing)."""
    ok(run_cli, "synth", "--campaign", CAMPAIGN, "--households", "12", "--defect-rate", "0", "--seed", "4",
       "--out", tmp_path / "clean", "--units", LIXIA)  # fmt: skip
    code, result = ingest(run_cli, tmp_path / "clean" / f"{CAMPAIGN}-{FORM}-{LIXIA}.xlsx", LIXIA)
    assert code == 0 and result["status"] == "stored"
    out = json.loads(ok(run_cli, "validate", "--campaign", CAMPAIGN, "--stage", "analysis", "--at",
                        "2020-12-01T09:00+08:00", "--out", tmp_path / "lists", "--json"))  # fmt: skip
    assert [p for p in out["problems"] if p["unit"] == CITY] == []
    status = json.loads(ok(run_cli, "status", "--campaign", CAMPAIGN, "--at", "2020-12-02T09:00+08:00", "--json"))
    state = {
        unit["unit"]: item["state"]
        for unit in status["units"]
        for item in unit["milestones"]
        if item["id"] == "verification_done"
    }
    assert (state[CITY], state["370200"]) == ("on_time", "pending")
