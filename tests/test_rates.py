"""Reporting rates rolled up the tree (issue 15, DHIS2's "reporting rate": expected, received, on time), checked
against an independent count of a scripted play.

2020-shandong at 2020-12-02T09:00+08:00. Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作"
(each county declares entry_done) and "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办" (each city's
completion report). The play: counties declare on time, late (after 11-30 24:00, before 12-02 09:00), after the
instant (not counted yet) or never, by a rule on their code that the test counts again on its own.
"""

from __future__ import annotations

import json

import pytest

AT = "2020-12-02T09:00+08:00"
PROVINCE = "370000"


def submit(run_cli, unit: str, milestone: str, at: str) -> None:
    code, _, err = run_cli(
        "report", "submit", "--campaign", "2020-shandong", "--unit", unit, "--milestone", milestone, "--at", at
    )
    assert code == 0, err


def when(code: str) -> str | None:
    """When a county declares its entry done: by the last digit of its code."""
    return {
        "1": "2020-11-30T23:59+08:00",  # on time, a minute before 24:00
        "2": "2020-12-01T08:00+08:00",  # late
        "3": "2020-12-02T09:01+08:00",  # after the instant: not received yet
    }.get(code[-1], None if code[-1] in "45" else "2020-11-20T10:00+08:00")


@pytest.fixture
def played(run_cli):
    code, out, err = run_cli("units", "--campaign", "2020-shandong", "--json")
    assert code == 0, err
    units = json.loads(out)
    for unit in units:
        if unit["level"] == "county" and when(unit["code"]):
            submit(run_cli, unit["code"], "entry_done", when(unit["code"]))
        if unit["level"] == "city" and unit["code"] not in ("371600", "371700"):
            submit(run_cli, unit["code"], "completion_report", "2020-11-25T10:00+08:00")
    submit(run_cli, "371600", "completion_report", "2020-12-01T10:00+08:00")  # 滨州市 late, 菏泽市 never
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", AT, "--json")
    assert code == 0, err
    return units, json.loads(out)


def count(codes: list[str]) -> dict:
    """The independent count: on time before 12-01 00:00, late after it and by the instant."""
    times = [when(code) for code in codes]
    on_time = sum(1 for at in times if at and at < "2020-12-01")
    late = sum(1 for at in times if at and "2020-12-01" <= at <= "2020-12-02T09:00")
    return {"expected": len(codes), "received": on_time + late, "on_time": on_time}


def rate_of(status: dict, office: str, milestone: str) -> dict:
    return next(r for r in status["rates"] if r["office"] == office and r["milestone"] == milestone)


def test_every_citys_rate_on_its_counties_equals_the_count(played):
    units, status = played
    cities = [unit["code"] for unit in units if unit["level"] == "city"]
    assert len(cities) == 16
    for city in cities:
        counties = [unit["code"] for unit in units if unit["parent"] == city]
        rate = rate_of(status, city, "entry_done")
        want = count(counties)
        assert {key: rate["children"][key] for key in want} == want, city
        assert rate["subtree"]["expected"] == want["expected"]
        assert rate["children"]["received_rate"] == round(want["received"] / want["expected"], 4)
        assert rate["children"]["on_time_rate"] == round(want["on_time"] / want["expected"], 4)
        assert rate["lagging"] == [code for code in counties if count([code])["received"] == 0]


def test_the_provinces_rates_over_its_cities_and_its_whole_subtree(played):
    units, status = played
    counties = [unit["code"] for unit in units if unit["level"] == "county"]
    entry = rate_of(status, PROVINCE, "entry_done")
    want = count(counties)
    assert {key: entry["subtree"][key] for key in want} == want
    assert want["expected"] == 136 and 0 < want["on_time"] < want["received"] < 136
    # a city counts as received when all its counties have declared, on time when all did on time
    cities = [unit["code"] for unit in units if unit["level"] == "city"]
    whole = [count([u["code"] for u in units if u["parent"] == city]) for city in cities]
    assert entry["children"]["expected"] == 16
    assert entry["children"]["received"] == sum(c["received"] == c["expected"] for c in whole)
    assert entry["children"]["on_time"] == sum(c["on_time"] == c["expected"] for c in whole)
    report = rate_of(status, PROVINCE, "completion_report")
    assert {key: report["children"][key] for key in ("expected", "received", "on_time")} == {
        "expected": 16,
        "received": 15,
        "on_time": 14,
    }
    assert report["lagging"] == ["371700"] and report["lagging_names"] == ["菏泽市"]


def test_under_a_city_only_its_subtree_is_counted(run_cli, played):
    units, _ = played
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", AT, "--under", "370100", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert {unit["unit"] for unit in status["units"]} == {"370100"} | {
        unit["code"] for unit in units if unit["parent"] == "370100"
    }
    assert {rate["office"] for rate in status["rates"]} == {"370100"}
    code, out, err = run_cli("status", "--campaign", "2020-shandong", "--at", AT, "--under", "370100")
    assert code == 0, err
    jinan = [u["code"] for u in units if u["parent"] == "370100"]
    want = count(jinan)
    line = next(line for line in out.splitlines() if line.startswith("【济南市】县、乡完成全部数据录入"))
    assert f"下级 {want['received']}/{want['expected']} 已完成（按时 {want['on_time']}）" in line
