"""The administrative tree: counties from GB/T 2260 for the campaign's year, as `campaign units` lists them."""

from __future__ import annotations

import json
import re

from include.calendar.registry import load_campaign
from include.cli.main import main


def test_shandong_2020_has_its_136_counties_and_no_grouping_codes() -> None:
    calendar = load_campaign("2020-shandong")
    counties = calendar.tree.at_level("county")
    assert len(counties) == 136
    assert all(node.name != "市辖区" for node in counties)
    # 2020: 蓬莱市 and 长岛县 were merged into the new 蓬莱区; the year counts once, after the change.
    yantai = [node.name for node in calendar.tree.children("370600")]
    assert "蓬莱区" in yantai and "蓬莱市" not in yantai and "长岛县" not in yantai
    # Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入" is owed by every county.
    entry_done = next(item for item in calendar.milestones if item.id == "entry_done")
    assert calendar.owers(entry_done) == [node.code for node in counties]


def test_campaign_units_lists_one_city_and_its_counties(capsys) -> None:
    assert main(["units", "--campaign", "2020-shandong", "--under", "370100", "--json"]) == 0
    units = json.loads(capsys.readouterr().out)
    assert units[0] == {"code": "370100", "name": "济南市", "level": "city", "parent": "370000"}
    assert len(units) == 13 and all(unit["parent"] == "370100" for unit in units[1:])
    assert main(["units", "--campaign", "2020-shandong", "--under", "999999"]) == 2
    assert "没有单位代码" in capsys.readouterr().err


def test_a_city_without_counties_owes_the_counties_work_itself(tmp_path):
    """Guangdong 2020: 东莞市 (441900) and 中山市 (442000) have no counties in GB/T 2260 (their towns sit directly
    under them); the counties' data entry (seed 000's "县、乡扶贫部门完成全部数据录入") is then the city's own."""
    calendar = guangdong(tmp_path)
    entry = next(item for item in calendar.milestones if item.id == "entry_done")
    owers = calendar.owers(entry)
    assert {"441900", "442000"} <= set(owers) and "440100" not in owers  # 广州市's districts owe it, not the city
    assert all(calendar.tree.get(code).level == "county" for code in owers if code not in ("441900", "442000"))


def guangdong(tmp_path):
    """Seed 000's calendar, for Guangdong's office and cities instead of Shandong's."""
    from include.calendar import read_calendar
    from include.paths import CONFIG_CAMPAIGNS

    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    text = text.replace('code: "370000"', 'code: "440000"').replace('derive_from: "370000"', 'derive_from: "440000"')
    text = text.replace("\nid: 2020-shandong\n", "\nid: 2020-guangdong\n")
    (tmp_path / "2020-guangdong.yaml").write_text(text, encoding="utf-8")
    return read_calendar(tmp_path / "2020-guangdong.yaml")


def test_a_token_of_the_office_code_is_no_units_token():
    """2023-zibo-jixia's office is 370305 (临淄区's code): a token issued for that code elsewhere gets nothing here."""
    from include.calendar.registry import load_campaign

    jixia = load_campaign("2023-zibo-jixia")
    assert jixia.office.code == "370305"
    village = jixia.unit_codes[0]
    assert not jixia.may_act("370305", village) and not jixia.may_act("370305", "370305")
    assert jixia.may_act(None, village) and jixia.may_act(village, village)
    shandong = load_campaign("2020-shandong")
    assert shandong.may_act("370100", "370102") and not shandong.may_act("370102", "370100")
    assert not shandong.may_act("370102", "370103") and not shandong.may_act("370000", "370100")


def test_a_city_merged_in_the_year_is_counted_once(tmp_path):
    """GB/T 2260 counts 2018 twice for Shandong: 莱芜市 [1992-2018] with 莱城区 and 钢城区, and 济南市's new 莱芜区
    and 钢城区 [2018-]. A campaign runs at the year's end: 16 cities, 莱芜's districts under 济南市 once."""
    from include.calendar import read_calendar
    from include.paths import CONFIG_CAMPAIGNS

    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    text = text.replace("\nid: 2020-shandong\n", "\nid: 2018-shandong\n").replace("\nyear: 2020\n", "\nyear: 2018\n")
    text = re.sub(r"\b(20\d\d)-(\d\d-\d\dT)", lambda m: f"{int(m[1]) - 2}-{m[2]}", text)  # every instant 2 years back
    (tmp_path / "2018-shandong.yaml").write_text(text, encoding="utf-8")
    calendar = read_calendar(tmp_path / "2018-shandong.yaml")
    assert len(calendar.unit_codes) == 16 and "371200" not in calendar.unit_codes
    jinan = [node.name for node in calendar.tree.children("370100")]
    assert {"莱芜区", "钢城区"} <= set(jinan)
    names = [node.name for node in calendar.tree.at_level("county")]
    assert names.count("钢城区") == 1 and "莱城区" not in names and len(names) == 137
