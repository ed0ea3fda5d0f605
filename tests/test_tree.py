"""The administrative tree: counties from GB/T 2260 for the campaign's year, as `campaign units` lists them."""

from __future__ import annotations

import json

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
