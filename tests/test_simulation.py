"""`campaign simulate`: every city played through the HTTP API on a real Airflow, and for Shanxi the province's
officer through Airflow's HITL API.

Seed 000: "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办" … "12月31日24时关闭信息系统。"
Seed 002: "以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
"""

from __future__ import annotations

from collections import Counter

import pendulum
import pytest

from include.calendar import read_calendar
from include.calendar.compress import compress
from include.calendar.instants import parse_duration
from include.devtools.play import make_play
from include.devtools.simulation import OFFICER
from include.paths import CONFIG_CAMPAIGNS
from tests.conftest import simulate

pytestmark = pytest.mark.airflow


def test_the_play_has_every_role():
    calendar = compress(
        read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml"), pendulum.datetime(2030, 1, 1), parse_duration("3m")
    )
    play = make_play(calendar)
    states = Counter(state for (unit, _), state in play.expected.items() if unit in calendar.unit_names)
    # the city that never reports, one refused after the closing, and every city's verification (a gate on data:
    # the play enters no data, so no city has a list to answer)
    assert states["missing"] == 3 + 1 + 15
    assert {play.gates[(city, "verification_done")] for city in calendar.unit_codes} == {
        ("failed", "已核查 0/0 · 未完成")
    }
    assert states["late"] >= 1 and states["on_time"] > states["late"]
    assert Counter(item.expect_http for item in play.attempts if item.unit in calendar.unit_names)[403] == 1
    assert Counter(item.expect_http for item in play.attempts)[409] == 1
    refused = next(item for item in play.attempts if item.expect_http == 409)
    assert refused.at >= calendar.system_close.at
    for attempt in play.attempts:
        key = (attempt.unit, attempt.milestone)
        milestone = next(item for item in calendar.milestones if item.id == attempt.milestone)
        if attempt.expect_http == 201:
            assert (attempt.at < milestone.due) == (play.expected[key] == "on_time")
    # The counties (seed 000: "县、乡扶贫部门完成全部数据录入"): all 136 play each county-level milestone; 菏泽市's
    # 9 never declare, 济南市 has one late (where late ones are still taken: data_completed is due at the closing),
    # 烟台市's declare through the city's token, one tries a sibling's token
    counties = {node.code for node in calendar.tree.at_level("county")}
    for milestone, late in (("entry_done", 1), ("data_completed", 0)):
        played = Counter(play.expected[(code, milestone)] for code in counties)
        assert played == {"on_time": 136 - 9 - late, "missing": 9} | ({"late": 1} if late else {})
        assert play.gates[("370100", milestone)] == ("success", "12/12 县区已完成" + (" · 逾期 1" if late else ""))
        assert play.gates[("371700", milestone)] == ("failed", "0/9 县区已完成 · 未完成 9")
        assert play.gates[("370200", milestone)] == ("success", "10/10 县区已完成")
        assert len(play.gates) % 16 == 0
        behalf = [item for item in play.attempts if item.milestone == milestone and item.token_of == "370600"]
        assert len(behalf) == len(calendar.tree.children("370600"))
        crossed = [item for item in play.attempts if item.milestone == milestone and item.expect_http == 403]
        assert [(item.unit[:4], item.token_of[:4], item.unit != item.token_of) for item in crossed] == [
            ("3701", "3701", True)
        ]


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


def test_the_officer_approves_most_rejects_one_and_leaves_one_to_time_out():
    calendar = compress(
        read_calendar(CONFIG_CAMPAIGNS / "2017-shanxi.yaml"), pendulum.datetime(2030, 1, 1), parse_duration("4m")
    )
    play = make_play(calendar)
    assert Counter(play.answers.values()) == {"approve": 7, "reject": 1, "timeout": 1}
    assert Counter(play.approvals.values()) == {"approved": 7, "rejected": 1, "timed_out": 1, "not_applied": 2}
    assert play.approvals[play.roles["never"]] == "not_applied"  # 吕梁市 never applies, is never asked about


def test_simulated_shanxi_campaign_with_the_officers_answers_passes(tmp_path):
    """Eleven cities apply; 张处长 answers in Airflow: 7 approved, 长治市 rejected with a reason, 晋城市 left to
    time out. The verdict checks every approval task, record, audit entry and window."""
    result, outcome = simulate(tmp_path, campaign="2017-shanxi")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("模拟结果：通过") and "11 项省级审批" in lines[-1]
    assert Counter(outcome["approval_tasks"].values()) == {"success": 8, "failed": 3}
    assert outcome["approval_tasks"]["长治市 · 已驳回"] == "success"
    assert outcome["approval_tasks"]["晋城市 · 超时未审批"] == "failed"
    assert outcome["approval_tasks"]["吕梁市 · 未申请"] == "failed"
    table = {line.split()[0]: line for line in lines if line.startswith(("长治市", "晋城市", "太原市"))}
    assert table["长治市"].endswith("省级审批：已驳回") and "（未开放）" in table["长治市"]
    assert table["晋城市"].endswith("省级审批：超时未审批")
    assert table["太原市"].endswith("省级审批：已批准") and "（曾开放）" in table["太原市"]
    assert outcome["problems"] == []
    assert f"省级审批（{OFFICER}，经 Airflow 的 HITL 接口）" in result.stdout
