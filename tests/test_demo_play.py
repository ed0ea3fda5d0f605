"""`make start`'s demo plays its units (issue 15): the cities and counties of the compressed demo campaign report,
declare, upload workbooks with defects and get reminders, as `campaign simulate` plays them, through the campaign
app's HTTP API (served here on a local port as the plugin serves it under Airflow's api-server).

Seed 000's milestones, compressed to two minutes: the cities' "动态管理工作开展情况" by 11-30, the counties'
"11月30日24时前…完成全部数据录入", the cities' verification "各市根据问题清单…开展实地核查" (a gate on data: the three
uploaders answer their lists, on time, late and half), the closing "12月31日24时关闭信息系统".
"""

from __future__ import annotations

import json
import threading
import time

import pendulum
import pytest
import uvicorn

from include.calendar import read_calendar
from include.calendar.compress import compress, to_yaml
from include.calendar.instants import parse_duration
from include.devtools.demo_play import own_declarations, play_demo
from include.devtools.local_airflow import free_port
from include.devtools.play import make_play
from include.door.status import campaign_status
from include.forms import records
from include.paths import CONFIG_CAMPAIGNS
from include.store.db import make_engine, upgrade
from include.web.app import create_app

pytestmark = pytest.mark.integration


def analyse(calendar, url: str) -> None:
    """At the analysis phase's start, every unit's list, as the validation DAG writes them."""
    from include.progress.verification import declare_if_verified
    from include.rules.problems import validate
    from include.rules.results import follow_up

    time.sleep(max(0.0, (calendar.phase("analysis").starts - pendulum.now("UTC")).total_seconds()) + 0.5)
    engine = make_engine(url)
    at = pendulum.now("UTC")
    validate(calendar, "analysis", at, None, lambda unit: follow_up(engine, calendar.id, unit))
    for unit in calendar.unit_codes:
        declare_if_verified(engine, calendar, unit, at)
    engine.dispose()


def test_the_demo_plays_every_unit_as_the_simulation_does(tmp_path):
    source = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    calendar = compress(source, pendulum.now("UTC").add(seconds=8), parse_duration("2m"), new_id="demo-2020-shandong")
    calendar_file = tmp_path / "home" / "campaigns" / "demo-2020-shandong.yaml"
    calendar_file.parent.mkdir(parents=True)
    calendar_file.write_text(to_yaml(calendar), encoding="utf-8")
    url = upgrade(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}")
    server = uvicorn.Server(
        uvicorn.Config(create_app(database_url=url), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    analysed = threading.Thread(target=analyse, args=(calendar, url), daemon=True)
    analysed.start()  # what the validation DAG the campaign DAG triggers does under Airflow (make start)
    lines: list[str] = []
    try:
        done = play_demo(
            calendar_file, f"http://127.0.0.1:{server.config.port}", url, threading.Event(), lines.append,
            tmp_path / "demo",
        )  # fmt: skip
    finally:
        server.should_exit = True
    assert lines[-1].startswith("演示报送结束")
    play = make_play(calendar)
    engine = make_engine(url)
    status = campaign_status(engine, calendar, pendulum.now("UTC"))
    engine.dispose()
    states = {(unit["unit"], item["id"]): item["state"] for unit in status["units"] for item in unit["milestones"]}
    first, second, third = calendar.unit_codes[:3]  # the uploaders answer their lists: all, all late, half
    answered = {(first, "verification_done"): "on_time", (second, "verification_done"): "late"}
    want = play.expected | answered  # the others entered nothing: nothing to verify, never verified
    assert {key: states[key] for key in play.expected} == want  # on time, late and never, as planned
    assert states[(third, "verification_done")] == "missing" and done["上传核查结果 HTTP 201"] == 3
    counties = [key for key in play.expected if key[0] not in calendar.unit_names]
    assert len(counties) == 2 * 136
    declared = own_declarations(calendar)  # the cities' training and collection, which have no gate
    assert {(unit, milestone) for _, unit, milestone in declared} == {
        (city, milestone) for city in calendar.unit_codes[:-1] for milestone in ("cascade_training", "collection_done")
    }
    assert all(states[(unit, milestone)] == "on_time" for _, unit, milestone in declared)
    assert states[("371700", "cascade_training")] == "missing"  # 菏泽市 never reports
    assert done["报送 HTTP 201"] == sum(1 for item in play.attempts if item.expect_http == 201) + len(declared)
    assert done["报送 HTTP 403"] == sum(1 for item in play.attempts if item.expect_http == 403) >= 2
    assert done["报送 HTTP 409"] == 1  # the city that reports after the closing
    assert done["上传工作簿 HTTP 201"] == 3
    for city in calendar.unit_codes[:3]:  # their households are stored; the campaign DAG validates them
        assert records.version_in(records.unit_dir(calendar.id, "2020-1", city)) is not None
    sink = [json.loads(line) for line in (tmp_path / "home" / "reminders" / "sink.jsonl").read_text().splitlines()]
    assert sink and all("今日截止" in item["text"] for item in sink)
    # reminded on the due day: only units that had not completed by then (菏泽市 never does)
    assert any(item["text"].startswith("【今日截止】菏泽市") for item in sink)
