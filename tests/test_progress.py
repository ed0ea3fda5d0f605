"""`campaign progress`: per city, report states, households entered against the roster, open problems; worst first.

2020-shandong at 12-02 09:00 (seed 000: the cities report "11月11日至11月30日", the province analyses
"12月1日至10日"): 菏泽市 has not reported, 滨州市 reported late; 济南市 and 青岛市 entered synth workbooks
and were validated; the rosters are the registry figures they uploaded.
"""

from __future__ import annotations

import json

import openpyxl
import polars as pl

from include.forms import records

CITIES = [
    "370100", "370200", "370300", "370400", "370500", "370600", "370700", "370800", "370900", "371000", "371100",
    "371300", "371400", "371500",
]  # fmt: skip
AT = "2020-12-02T09:00+08:00"


def setup(run_cli, tmp_path) -> dict:
    def ok(*args):
        code, out, err = run_cli(*args)
        assert code == 0, err
        return out

    for city in CITIES:
        ok("report", "submit", "--campaign", "2020-shandong", "--unit", city, "--milestone", "completion_report",
           "--at", "2020-11-20T10:00+08:00")  # fmt: skip
    ok("report", "submit", "--campaign", "2020-shandong", "--unit", "371600", "--milestone", "completion_report",
       "--at", "2020-12-01T10:00+08:00")  # fmt: skip
    synth = tmp_path / "synth"
    ok("synth", "--campaign", "2020-shandong", "--households", "60", "--defect-rate", "0.3", "--seed", "3",
       "--out", synth, "--units", "370100,370200")  # fmt: skip
    for city in ("370100", "370200"):
        ok("ingest", synth / f"2020-shandong-2020-1-{city}.xlsx", "--campaign", "2020-shandong", "--unit", city,
           "--at", "2020-11-25T10:00+08:00")  # fmt: skip
    for city, roster in (("370100", 1000), ("370200", 40)):
        counties = pl.DataFrame({"county": ["甲县", "乙县"], "registered_households": [roster - 10, 10], "unit": city})
        records.replace("2020-shandong", "registry", city, "r1", {"counties": counties}, {})
    lists = tmp_path / "lists"
    out = ok("validate", "--campaign", "2020-shandong", "--stage", "analysis", "--at", AT, "--out", lists, "--json")
    return json.loads(out)


def test_progress_worst_first_with_entered_share_and_open_problems(run_cli, tmp_path):
    validated = setup(run_cli, tmp_path)
    code, out, err = run_cli("progress", "--campaign", "2020-shandong", "--at", AT, "--json")
    assert code == 0, err
    report = json.loads(out)
    units = report["units"]
    assert [u["unit"] for u in units[:2]] == ["371700", "371600"]  # 菏泽市 missing, then 滨州市 late

    def report_of(unit: dict) -> dict:
        return next(item for item in unit["milestones"] if item["id"] == "completion_report")

    assert report_of(units[0]) == {"id": "completion_report", "state": "missing", "received_at": None}
    assert report_of(units[1])["state"] == "late"
    jinan = next(u for u in units if u["unit"] == "370100")
    qingdao = next(u for u in units if u["unit"] == "370200")
    # no share of the registry (1,000 and 40 registered households): this year's forms are its changes
    assert (jinan["entered"], qingdao["entered"]) == (30, 30) and "roster" not in jinan
    # 济南市's share is of the milestones due by 12-02 that it and its 12 counties have completed: its own
    # completion report of cascade training, collection and the report; each county's entry_done
    assert jinan["done"] == {"expected": 3 + 12, "received": 1, "on_time": 1} and jinan["share"] == round(1 / 15, 4)
    assert [u["unit"] for u in units].index("370100") < [u["unit"] for u in units].index("370200")
    problems = [p for p in validated["problems"] if p["unit"] == "370100"]
    assert jinan["open_problems"] == len(problems) > 0 and jinan["problems_stage"] == "analysis"
    zibo = next(u for u in units if u["unit"] == "370300")
    assert (zibo["entered"], zibo["open_problems"]) == (0, 0)
    counties = next(level for level in report["levels"] if level["level"] == "county")
    assert len(counties["units"]) == 136
    # a city's households are its counties', by the county of each address; with no workload, no share
    of_jinan = [u for u in counties["units"] if u["parent"] == "370100"]
    assert sum(u["entered"] for u in of_jinan) == 30 and all(u["workload"] is None for u in of_jinan)


def test_progress_workbook_has_a_chart_and_text_cells(run_cli, tmp_path):
    setup(run_cli, tmp_path)
    out = tmp_path / "进度.xlsx"
    code, stdout, err = run_cli("progress", "--campaign", "2020-shandong", "--at", AT, "--xlsx", out)
    assert code == 0, err
    assert "16 个市，136 个县区" in stdout
    ws = openpyxl.load_workbook(out)["进度"]
    assert ws._charts, "a native chart of completion per unit"
    rows = list(ws.iter_rows(min_row=4, values_only=True))
    assert [row[0] for row in rows[:2]] == ["菏泽市", "滨州市"]
    headers = [c.value for c in ws[3]]
    report = headers.index("各市报送动态管理工作开展情况")
    assert rows[0][report] == "未报" and rows[1][report] == "逾期"
    jinan = next(row for row in rows if row[0] == "济南市")
    assert jinan[headers.index("已录入（户）")] == 30 and jinan[headers.index("到期事项已完成")] == "1/15"
    assert "底数（户）" not in headers
    wb = openpyxl.load_workbook(out)
    assert len([row for row in wb["县区进度"].iter_rows(min_row=4, values_only=True) if row[0]]) == 136
    rates = list(wb["报送率"].iter_rows(min_row=2, values_only=True))
    province = next(
        row for row in rates if row[0] == "山东省扶贫开发办公室" and row[2] == "各市报送动态管理工作开展情况"
    )
    assert province[3:6] == (16, 15, 14)  # 16 cities expected, 15 received (滨州市 late), 14 on time


def test_a_city_without_counties_has_its_cells_under_the_same_columns(tmp_path):
    """Guangdong 2020: 东莞市 has no counties, so it owes the counties' data entry itself and its row has one more
    milestone than 广州市's. Every row of a level has the level's columns, in one order; 广州市's cell for the
    counties' work says it does not owe it ("—"), so no state sits under another milestone's heading."""
    from include.calendar.instants import parse_instant
    from include.progress.report import progress_report
    from include.store.db import make_engine, upgrade
    from tests.test_tree import guangdong

    engine = make_engine(upgrade())
    report = progress_report(engine, guangdong(tmp_path), parse_instant("2020-12-02T09:00+08:00"))
    cities = next(level for level in report["levels"] if level["level"] == "city")
    columns = [item["id"] for item in cities["milestones"]]
    assert "entry_done" in columns
    for unit in cities["units"]:
        assert [item["id"] for item in unit["milestones"]] == columns, unit["name"]
    rows = {unit["unit"]: {item["id"]: item["state"] for item in unit["milestones"]} for unit in cities["units"]}
    assert rows["440100"]["entry_done"] == "not_owed" and rows["441900"]["entry_done"] == "missing"
    assert rows["440100"]["completion_report"] == rows["441900"]["completion_report"] == "missing"
    engine.dispose()
