"""The reminder outbox against a local fake Slack Web API, with the real slack-sdk client (issue 6).

What a user checks: every reminder arrives, once. A 429 is waited out (Retry-After); a 500, a timeout, an
outage or a kill in the middle of a batch loses nothing and sends nothing twice. Without a token the
reminders go to a local sink file. The reminders are 2020-shandong's of 12-02 (seed 000: the cities'
reports "11月11日至11月30日"; 滨州市 and 菏泽市 have not reported).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.reminders import delivery, outbox, senders
from include.reminders.policy import reminders_due
from include.store.db import make_engine, upgrade
from tests.fake_slack import TOKEN, FakeSlack

pytestmark = pytest.mark.integration

CITIES = [
    "370100", "370200", "370300", "370400", "370500", "370600", "370700", "370800", "370900", "371000", "371100",
    "371300", "371400", "371500",
]  # fmt: skip
AT = "2020-12-02T09:00+08:00"
DUE = 5  # the day's reminders: 滨州市 and 菏泽市 overdue, 菏泽市's training overdue, and two digests to the province
CALENDAR = load_campaign("2020-shandong")


@pytest.fixture
def engine(tmp_path, run_cli):
    def submit(unit: str, milestone: str, at: str) -> None:
        code, _, err = run_cli(
            "report", "submit", "--campaign", "2020-shandong", "--unit", unit, "--milestone", milestone, "--at", at
        )
        assert code == 0, err

    for city in CITIES:  # 滨州市 (371600) and 菏泽市 (371700) do not report
        submit(city, "completion_report", "2020-11-20T10:00+08:00")
    for city in [*CITIES, "371600", "371700"]:  # every city declares its collection done, all but 菏泽市 training
        if city != "371700":
            submit(city, "cascade_training", "2020-09-30T10:00+08:00")
        submit(city, "collection_done", "2020-11-10T10:00+08:00")
    for county in CALENDAR.tree.at_level("county"):  # and every county its data entry
        submit(county.code, "entry_done", "2020-11-28T10:00+08:00")
    engine = make_engine(upgrade())
    yield engine
    engine.dispose()


@pytest.fixture
def slack():
    running = FakeSlack(slow_seconds=2.5).serve()
    yield running
    running.stop()


def due(engine):
    reminders = reminders_due(engine, CALENDAR, parse_instant(AT))
    assert len(reminders) == DUE
    assert sorted(r.channel for r in reminders) == ["dm-370000", "dm-370000", "dm-371600", "dm-371700", "dm-371700"]
    return reminders


def sender(slack) -> senders.SlackSender:
    return senders.SlackSender(TOKEN, base_url=slack.url, timeout=1)


def test_the_same_reminders_twice_are_written_once(engine):
    assert outbox.enqueue(engine, due(engine)) == DUE
    assert outbox.enqueue(engine, due(engine)) == 0
    assert outbox.counts(engine) == {"pending": DUE}


def test_every_reminder_arrives_once_and_a_rerun_sends_nothing(engine, slack):
    outbox.enqueue(engine, due(engine))
    result = delivery.deliver(engine, sender(slack))
    assert (result.sent, result.failed) == (DUE, 0)
    assert outbox.counts(engine) == {"sent": DUE}
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in due(engine)} and set(keys.values()) == {1}
    # two notices to the province's channel within a second: the second met a 429 and waited Retry-After
    assert slack.fake.calls["429"] >= 1
    assert {m["channel"] for m in slack.fake.messages} == {"dm-371600", "dm-371700", "dm-370000"}
    outbox.enqueue(engine, due(engine))
    assert delivery.deliver(engine, sender(slack)).sent == 0
    assert len(slack.fake.messages) == DUE


def test_paced_by_channel_the_rate_limit_is_never_hit(engine, slack):
    """One message per channel per second, channels side by side: the province's two notices wait a second."""
    outbox.enqueue(engine, due(engine))
    result = delivery.deliver(engine, sender(slack), **senders.SlackSender.pace)
    assert (result.sent, result.retried, slack.fake.calls["429"]) == (DUE, 0, 0)
    province = [m for m in slack.fake.messages if m["channel"] == "dm-370000"]
    assert len(province) == 2 and float(province[1]["ts"].split(".")[0]) >= float(province[0]["ts"].split(".")[0])


@pytest.mark.parametrize("fault", ["500", "500-after", "slow", "429"])
def test_a_failed_or_unclear_answer_neither_loses_nor_doubles(engine, slack, fault):
    """500 before Slack took it: sent again; 500 or a timeout after it took it: found by key, not sent again."""
    slack.fake.faults.extend([fault, fault])
    outbox.enqueue(engine, due(engine))
    result = delivery.deliver(engine, sender(slack), backoff=0.05)
    assert result.failed == 0
    assert outbox.counts(engine) == {"sent": DUE}
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in due(engine)} and set(keys.values()) == {1}, keys
    if fault in ("500-after", "slow"):
        assert result.recovered == 2  # looked up in the channel's history by the key in the message metadata


def test_an_outage_leaves_the_reminders_waiting_and_they_go_once_it_ends(engine, slack):
    slack.fake.down = True
    outbox.enqueue(engine, due(engine))
    result = delivery.deliver(engine, sender(slack), backoff=0.01, max_attempts=3)
    assert result.sent == 0 and result.failed == 0
    assert outbox.counts(engine).get("sent") is None
    slack.fake.down = False
    result = delivery.deliver(engine, sender(slack), backoff=0.01)
    assert outbox.counts(engine) == {"sent": DUE}
    assert set(slack.fake.keys().values()) == {1} and len(slack.fake.messages) == DUE


def test_a_kill_mid_batch_then_a_restart_sends_each_reminder_once(engine, slack, tmp_path):
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url}
    command = [sys.executable, "-m", "include.cli.main", "remind", "--campaign", "2020-shandong", "--at", AT, "--json"]
    killed = subprocess.run(
        command, env={**env, "CAMPAIGN_OUTBOX_CRASH_AFTER": "2"}, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == 70, killed.stderr  # died right after its 2nd send, before marking the slot sent
    arrived = len(slack.fake.messages)
    assert arrived in (2, 3)  # the first slot: one message per channel, sent side by side
    # messages answered before the crash may already be marked sent; the rest is left sending (claimed, maybe
    # sent) or pending: nothing is lost
    left = outbox.counts(engine)
    marked = left.get("sent", 0)
    assert left.get("sending", 0) >= 1 and sum(left.values()) == DUE and set(left) <= {"sent", "sending", "pending"}
    restarted = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    summary = json.loads(restarted.stdout)
    # the ones that had arrived are found by their key, not sent again; the others are sent once
    assert (summary["new"], summary["recovered"], summary["sent"]) == (0, arrived - marked, DUE - arrived)
    assert summary["outbox"] == {"sent": DUE}
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in due(engine)} and set(keys.values()) == {1}


def test_without_a_token_reminders_go_to_the_local_sink(engine, run_cli, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    code, out, err = run_cli("remind", "--campaign", "2020-shandong", "--at", AT, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["via"] == "sink" and summary["sent"] == DUE
    lines = [json.loads(line) for line in senders.sink_path().read_text(encoding="utf-8").splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(r.key for r in due(engine))
    assert any("菏泽市：“各市报送动态管理工作开展情况”已于2020-11-30 24:00截止" in line["text"] for line in lines)
    code, out, _ = run_cli("remind", "--campaign", "2020-shandong", "--at", AT, "--json")
    assert json.loads(out)["sent"] == 0
    assert len(senders.sink_path().read_text(encoding="utf-8").splitlines()) == DUE
