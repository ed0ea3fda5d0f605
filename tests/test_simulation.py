"""`campaign simulate 2020-shandong`: 16 cities played through the HTTP API on a real Airflow.

Seed 000: "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办" … "12月31日24时关闭信息系统。"
"""

from __future__ import annotations

from collections import Counter

import pendulum
import pytest

from include.calendar import read_calendar
from include.calendar.compress import compress
from include.calendar.instants import parse_duration
from include.devtools.simulation import make_play
from include.paths import CONFIG_CAMPAIGNS

pytestmark = pytest.mark.airflow


def test_the_play_has_every_role():
    calendar = compress(
        read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml"), pendulum.datetime(2030, 1, 1), parse_duration("3m")
    )
    play = make_play(calendar)
    states = Counter(play.expected.values())
    assert states["missing"] == 3 + 1  # the city that never reports, and one refused after the closing
    assert states["late"] >= 1 and states["on_time"] > states["late"]
    assert Counter(item.expect_http for item in play.attempts)[403] == 1
    assert Counter(item.expect_http for item in play.attempts)[409] == 1
    refused = next(item for item in play.attempts if item.expect_http == 409)
    assert refused.at >= calendar.system_close.at
    for attempt in play.attempts:
        key = (attempt.unit, attempt.milestone)
        milestone = next(item for item in calendar.milestones if item.id == attempt.milestone)
        if attempt.expect_http == 201:
            assert (attempt.at < milestone.due) == (play.expected[key] == "on_time")


def test_simulated_shandong_campaign_passes(sqlite_simulation):
    result, outcome = sqlite_simulation
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("模拟结果：通过")
    table = lines[lines.index(next(line for line in lines if line.startswith("单位"))) + 1 : -1]
    assert len(table) == 16
    assert any("逾期" in line for line in table) and any("未报" in line for line in table)
    assert table[-1].startswith("菏泽市") and table[-1].count("未报") == 3
    assert outcome["run"] == "failed" and outcome["validated"] == ["analysis", "completion", "verification"]
    assert outcome["states"]["371700/completion_report"] == "missing"  # 菏泽市 never reports
