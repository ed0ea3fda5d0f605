"""The progress page in a real browser: Debian's Chromium, headless, driven by Playwright (issue 6).

The page is served by the campaign app on a local port, as the plugin serves it under Airflow; the test
checks the matrix a province officer reads (seed 000's cities: 济南市 reported on time, 青岛市 late, the
others not at all by 12-02) and drills down province → 济南市 → a county (seed 000: "11月30日24时前，县、乡扶贫部门
完成全部数据录入": of 济南市's 12 counties 8 declared on time, 1 late, 3 not at all), and saves screenshots in the test's temporary folder (pytest's ``tmp_path``,
never the repository); their paths are printed.
"""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.devtools.local_airflow import free_port
from include.door.submissions import Actor, submit_report
from include.door.tokens import issue_token
from include.store.db import make_engine, upgrade
from include.web.app import create_app

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"  # scripts/ensure-browser installs it


@pytest.fixture
def served(tmp_path):
    url = upgrade(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}")
    engine = make_engine(url)
    calendar = load_campaign("2020-shandong")
    token = issue_token(engine, "province", parse_instant("2020-11-01T00:00+08:00"), kind="read")[1]
    for unit, at in (("370100", "2020-11-20T10:00+08:00"), ("370200", "2020-12-01T10:00+08:00")):
        submit_report(
            engine, calendar, unit=unit, milestone_id="completion_report", at=parse_instant(at),
            actor=Actor(name="test", unit=unit), file_name="报告.pdf", content=b"report",
        )  # fmt: skip
    jinan = [node.code for node in calendar.tree.children("370100")]
    for n, county in enumerate(jinan[:9]):
        submit_report(
            engine, calendar, unit=county, milestone_id="entry_done",
            at=parse_instant("2020-12-01T09:00+08:00" if n == 8 else "2020-11-27T16:00+08:00"),
            actor=Actor(name="test", unit="370100"),
        )  # fmt: skip
    app = create_app(clock=lambda: parse_instant("2020-12-02T10:00+08:00"), database_url=url)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/progress/2020-shandong?token={token}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_the_progress_page_in_headless_chromium(served, tmp_path):
    from playwright.sync_api import sync_playwright

    OUT = tmp_path / "screenshots"
    OUT.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
        page.goto(served)
        rows = page.locator("#matrix tbody tr")
        assert rows.count() == 16
        assert rows.nth(15).locator("td.name").inner_text() == "济南市"  # on time: last
        assert rows.nth(14).locator("td.name").inner_text() == "青岛市"  # late: before it
        # 14 cities' completion reports, and each city's undeclared cascade training and collection
        assert page.locator('td[data-state="missing"]').count() == 14 + 2 * 16
        colour = page.locator('td[data-state="missing"]').first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(198, 40, 40)"  # red for 未报
        assert page.locator("svg rect").count() == 32 and page.locator("svg").is_visible()
        entry = page.locator('#rates tr[data-milestone="entry_done"]')  # the province's rates on the counties' entry
        assert entry.locator("td").nth(2).inner_text() == "0/16"  # no city has all its counties in
        assert entry.locator("td").nth(6).inner_text() == "9/136"  # 9 of the province's 136 counties have
        report = page.locator('#rates tr[data-milestone="completion_report"]')
        assert report.locator("td").nth(2).inner_text() == "2/16" and report.locator("td").nth(3).inner_text() == "1"
        page.screenshot(path=str(OUT / "progress-page.png"), full_page=True)
        rows.nth(15).locator("a").click()
        page.wait_for_load_state()
        assert "济南市（370100）" in page.locator("h1").inner_text()
        rate = page.locator('#rates tr[data-milestone="entry_done"]')
        assert rate.locator("td").nth(1).inner_text() == "9/12" and rate.locator("td").nth(2).inner_text() == "8"
        assert rate.locator("td").nth(5).inner_text() == "钢城区、平阴县、商河县"  # the three that have not
        counties = page.locator("#children tbody tr")
        assert counties.count() == 12
        first = [counties.nth(n).locator("td.name").inner_text() for n in range(3)]
        assert first == ["钢城区", "平阴县", "商河县"]  # lagging first, in the tree's order
        assert counties.nth(3).locator('td[data-state="late"]').count() == 1  # then 莱芜区, late
        page.screenshot(path=str(OUT / "progress-city.png"), full_page=True)
        counties.nth(0).locator("a").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "钢城区（370117）"
        assert "未报" in page.locator("table").first.inner_text()
        assert "（工作簿和问题清单按所属市汇总）" in page.locator("body").inner_text()
        page.screenshot(path=str(OUT / "progress-county.png"), full_page=True)
        browser.close()
    print("screenshots:", *sorted(OUT.iterdir()))
    assert (OUT / "progress-page.png").stat().st_size > 10_000
