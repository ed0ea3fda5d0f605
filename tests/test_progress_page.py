"""The progress page (issue 6): the unit × milestone matrix coloured by state, lagging units first, a completion
chart drawn server-side as SVG, a drill-down per unit; the province sees every unit, a unit its own only.

2020-shandong at 12-02 10:00 (seed 000: the cities report "11月11日至11月30日"): 济南市 reported on time,
青岛市 late, the others not at all.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.door.submissions import Actor, submit_report
from include.door.tokens import issue_token
from include.store.db import make_engine, upgrade
from include.web.app import create_app

JINAN, QINGDAO = "370100", "370200"


@pytest.fixture
def page(tmp_path):
    url = upgrade(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}")
    engine = make_engine(url)
    calendar = load_campaign("2020-shandong")
    at = parse_instant("2020-11-01T00:00+08:00")
    tokens = {u: issue_token(engine, u, at, kind="read")[1] for u in (JINAN, "province")}  # progress links
    for unit, at in ((JINAN, "2020-11-20T10:00+08:00"), (QINGDAO, "2020-12-01T10:00+08:00")):
        submit_report(
            engine, calendar, unit=unit, milestone_id="completion_report", at=parse_instant(at),
            actor=Actor(name="test", unit=unit), file_name="报告.pdf", content=b"report",
        )  # fmt: skip
    client = TestClient(create_app(clock=lambda: parse_instant("2020-12-02T10:00+08:00"), database_url=url))
    yield client, tokens
    engine.dispose()


def test_the_province_sees_every_city_worst_first_with_an_svg_chart(page):
    client, tokens = page
    response = client.get(f"/progress/2020-shandong?token={tokens['province']}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    units = re.findall(r'<tr data-unit="(\d+)">', html)
    assert len(units) == 16 and units[-2:] == [QINGDAO, JINAN]  # the 14 missing first, then late, then on time
    assert re.search(rf'data-unit="{JINAN}">.*?data-state="on_time">按时', html)
    assert re.search(rf'data-unit="{QINGDAO}">.*?data-state="late">逾期', html)
    # 14 cities' completion reports missing, and every city's cascade training and collection undeclared
    assert html.count('data-state="missing">未报') == 14 + 16 * 2
    assert "<svg" in html and html.count("<rect") == 32  # a track and a bar per city
    assert "<script" not in html and "http" not in html.split("<svg", 1)[0].lower().replace("http://www.w3", "")


def test_a_city_sees_its_own_row_and_drills_down_but_not_into_another(page):
    client, tokens = page
    html = client.get(f"/progress/2020-shandong?token={tokens[JINAN]}").text
    assert re.findall(r'<tr data-unit="(\d+)">', html) == [JINAN]
    assert "本单位" in html
    unit = client.get(f"/progress/2020-shandong/units/{JINAN}?token={tokens[JINAN]}")
    assert unit.status_code == 200 and "济南市（370100）" in unit.text and "按时" in unit.text
    assert re.search(r"录入窗口：(未开放|开放中|已关闭|—)；", unit.text), unit.text  # a word, never "open"
    # Times as a clerk reads them (Beijing time, to the minute), never ISO-8601 with microseconds
    assert "<td>2020-11-20 10:00</td>" in unit.text and "截至 2020-12-02 10:00" in unit.text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", unit.text)
    other = client.get(f"/progress/2020-shandong/units/{QINGDAO}?token={tokens[JINAN]}")
    assert other.status_code == 403 and "只能查看单位 370100" in other.text


def test_without_a_token_the_page_says_how_to_get_one(page):
    client, _ = page
    response = client.get("/progress/2020-shandong")
    assert response.status_code == 401 and "查看进度需要令牌" in response.text


def test_the_menu_entry_lists_the_campaigns(page):
    client, tokens = page
    html = client.get(f"/progress/?token={tokens[JINAN]}").text  # exchanged for a session cookie
    assert 'href="2020-shandong"' in html and "2017-shanxi" in html and tokens[JINAN] not in html
