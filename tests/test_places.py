"""A unit uploads only the households of its own part of the tree (issue 15, item 2).

Seed 000: "市不漏县，县不漏乡，乡不漏村" — each level has its own households. A household whose address lies
under another city (or province, or a county of another city) is not the uploading city's: stored under it, it
would be counted twice and verified by the wrong office. Its row is rejected with a row message saying what the
address says and what it should say; its members go with it; every other household is stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter

from include.calendar import read_calendar
from include.door.places import place_of
from include.forms import records
from include.forms.spec import get_form
from include.paths import CONFIG_CAMPAIGNS
from tests.test_tree import guangdong

CAMPAIGN, UNIT, FORM = "2020-shandong", "370100", "2020-1"
AT = "2020-11-20T10:00+08:00"


def _columns(form_id: str, sheet: str) -> dict[str, str]:
    return {f.key: get_column_letter(i + 1) for i, f in enumerate(get_form(form_id).fields_of(sheet))}


def _household_ids(path: Path, form_id: str) -> dict[int, str]:
    """The household key of each household row, by row, as the workbook has it."""
    form = get_form(form_id)
    column = _columns(form_id, "households")[form.household_key]
    sheet = openpyxl.load_workbook(path)[form.sheet("households").name]
    return {row: sheet[f"{column}{row}"].value for row in range(2, sheet.max_row + 1) if sheet[f"{column}{row}"].value}


def test_households_living_under_another_city_are_rejected_with_their_members(run_cli, window_open, good):
    """济南市's workbook with one household written under 烟台市's 芝罘区, one under 烟台市 itself, one in 河北省,
    one under 蓬莱市 (merged into 烟台市蓬莱区 in 2020, so no unit in the year of the campaign), and one under
    莱芜区 — 莱芜市 became 济南市's 莱芜区 in 2019, so by 2020 it is 济南市's own and is kept."""
    column = _columns(FORM, "households")
    sheet_name = get_form(FORM).sheet("households").name
    ids = _household_ids(good, FORM)
    wb = openpyxl.load_workbook(good)
    sheet = wb[sheet_name]
    moved = {
        3: ("address_county", "芝罘区"),
        4: ("address_city", "烟台市"),
        5: ("address_province", "河北省"),
        6: ("address_county", "蓬莱市"),
        7: ("address_county", "莱芜区"),
        8: ("address_county", "历下"),  # the short names clerks write: 历下区, 济南市
        9: ("address_city", "济南"),
    }
    for row, (key, value) in moved.items():
        sheet[f"{column[key]}{row}"] = value
    wb.save(good)

    code, out, err = run_cli("ingest", good, "--campaign", CAMPAIGN, "--unit", UNIT, "--at", AT, "--json")
    assert code == 0, err
    result = json.loads(out)
    outside = {
        int(error["cell"].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")): error
        for error in result["rejected_rows"]
        if error["sheet"] == sheet_name and "住址不在济南市" in error["message"]
    }
    assert sorted(outside) == [3, 4, 5, 6], result["rejected_rows"]
    assert outside[3]["cell"] == f"{column['address_county']}3"
    assert outside[3]["value"] == "芝罘区" and "莱芜区" in outside[3]["message"]
    assert "应由其住址所在的单位上传" in outside[3]["message"]
    assert outside[4]["message"].startswith("市（地、州、盟）：住址不在济南市：本市的户应为济南市。")
    assert outside[4]["value"] == "烟台市"
    assert outside[5]["value"] == "河北省" and "本市的户应为山东省" in outside[5]["message"]
    assert outside[6]["value"] == "蓬莱市"

    stored = records.scan(CAMPAIGN, FORM, "households").collect()
    key = get_form(FORM).household_key
    assert set(stored[key]).isdisjoint({ids[row] for row in (3, 4, 5, 6)})
    assert ids[7] in set(stored[key]), "莱芜区 is 济南市's in 2020"
    assert {ids[8], ids[9]} <= set(stored[key]), "历下 and 济南 are 历下区 and 济南市"
    members = records.scan(CAMPAIGN, FORM, "members").collect()
    assert set(members[key]).isdisjoint({ids[row] for row in (3, 4, 5, 6)}), "their members go with them"
    member_errors = [e for e in result["rejected_rows"] if e["sheet"] != sheet_name]
    assert member_errors and all("未通过检查" in e["message"] for e in member_errors)
    refused = {
        int(e["cell"].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) for e in result["rejected_rows"] if e["sheet"] == sheet_name
    }
    assert stored.height == len(ids) - len(refused & set(ids)), "every other household is stored"


def test_what_each_level_may_upload(tmp_path):
    """The names each address column may hold: a city's own counties of the year; a childless city's (东莞市) any
    county; a town plan's villages its own county (万州区 of 重庆市, whose 市 column reads 市辖区 or 重庆市), and the
    village's name only once a roster names the villages (the placeholders do not)."""
    shandong = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    jinan = dict(place_of(shandong, "370100").columns)
    assert jinan["address_province"] == ("山东省",) and jinan["address_city"] == ("济南市",)
    assert {"历下区", "莱芜区", "钢城区", "章丘区"} <= set(jinan["address_county"])
    assert "市辖区" not in jinan["address_county"] and len(jinan["address_county"]) == 12
    county = dict(place_of(shandong, "370102").columns)
    assert county["address_city"] == ("济南市",) and county["address_county"] == ("历下区",)
    assert place_of(shandong, "370000") is None, "the office's code is no unit's"

    dongguan = dict(place_of(guangdong(tmp_path), "441900").columns)
    assert dongguan["address_city"] == ("东莞市",) and dongguan["address_county"] is None

    longju = read_calendar(CONFIG_CAMPAIGNS / "2020-chongqing-longju.yaml")
    village = dict(place_of(longju, "LJ01").columns)
    assert village["address_province"] == ("重庆市",) and {"重庆市", "市辖区"} <= set(village["address_city"])
    assert village["address_county"] == ("万州区",) and village["address_village"] is None
