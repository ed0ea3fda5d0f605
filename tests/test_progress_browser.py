"""The progress page in a real browser: Debian's Chromium, headless, driven by Playwright (issue 6).

The page is served by the campaign app on a local port, as the plugin serves it under Airflow; the test
checks the matrix a province officer reads (seed 000's cities: 济南市 reported on time, 青岛市 late, the
others not at all by 12-02) and saves screenshots in the test's temporary folder (pytest's ``tmp_path``,
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
        assert page.locator('td[data-state="missing"]').count() == 14
        colour = page.locator('td[data-state="missing"]').first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(198, 40, 40)"  # red for 未报
        assert page.locator("svg rect").count() == 32 and page.locator("svg").is_visible()
        page.screenshot(path=str(OUT / "progress-page.png"), full_page=True)
        rows.nth(15).locator("a").click()
        page.wait_for_load_state()
        assert "济南市（370100）" in page.locator("h1").inner_text()
        page.screenshot(path=str(OUT / "progress-unit.png"), full_page=True)
        browser.close()
    print("screenshots:", *sorted(OUT.iterdir()))
    assert (OUT / "progress-page.png").stat().st_size > 10_000
