"""Two reminder deliverers at once on one store: each reminder still arrives once (include/reminders/outbox.py).

The reminders DAG's task and an operator's ``campaign remind`` may deliver the same outbox at the same time.
A row another live deliverer has claimed (its lease not run out) is that deliverer's: never looked up, sent or
marked by a second one. A row whose lease ran out (its deliverer died) is looked up by its key and sent at
most once more. A permanent answer about one message (an unknown channel) fails that message only.

The reminders are 2020-shandong's of 12-02 with nothing reported (seed 000: "各市将动态管理工作开展情况报省扶贫
开发办" by 2020-11-30 24:00, "9月30日前，市、县、乡逐级进行部署培训"): for each of the two, an overdue notice to each of
the 16 cities and one digest of them to the province's channel, 34 in all over 17 channels.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import sys
import threading
import time

import pendulum
import pytest
from sqlalchemy import select, text, update

from include.calendar import read_calendar
from include.calendar.instants import parse_instant
from include.paths import CONFIG_CAMPAIGNS
from include.reminders import delivery, outbox, senders
from include.reminders.policy import reminders_due
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import OutboxMessage
from tests.conftest import database_urls
from tests.fake_slack import TOKEN, FakeSlack

pytestmark = pytest.mark.integration

AT = "2020-12-02T09:00+08:00"
JINAN, QINGDAO, HEZE = "370100", "370200", "371700"
CALENDAR = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
DUE = 2 * (16 + 1)  # the day's reminders in play: two milestones, 16 cities and one digest each
SCHEMA = "outbox_races"  # a schema of its own on PostgreSQL: other tests may reset ``public`` meanwhile


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request, tmp_path):
    urls = {url.split(":")[0].split("+")[0]: url for url in database_urls(tmp_path)}
    if request.param not in urls:
        pytest.skip("CAMPAIGN_TEST_POSTGRES_URL not set")
    url = urls[request.param]
    if request.param == "postgresql":
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
        engine.dispose()
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{SCHEMA}"
    upgrade(url)
    return url


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def slack():
    running = FakeSlack(per_channel_per_second=1000.0).serve()  # no rate limit: the deliverers overlap freely
    yield running
    running.stop()


def due(engine):
    """The cities' two milestones of the day: the completion report and the cascade training (seed 000:
    "9月30日前，市、县、乡逐级进行部署培训"), each overdue for all 16 and one digest to the province."""
    reminders = [
        r
        for r in reminders_due(engine, CALENDAR, parse_instant(AT))
        if r.milestone in ("completion_report", "cascade_training")
    ]
    assert len(reminders) == DUE and len({r.channel for r in reminders}) == 17
    assert any(
        r.text.startswith("【逾期】济南市：“各市报送动态管理工作开展情况”已于2020-11-30 24:00截止") for r in reminders
    )
    return reminders


class SlowSlack(senders.SlackSender):
    """The real client, a little slow before each post: a second deliverer starts while the first is sending."""

    def __init__(self, url: str, delay: float = 0.15) -> None:
        super().__init__(TOKEN, base_url=url, timeout=5)
        self.delay = delay

    async def send(self, message):
        await asyncio.sleep(self.delay)
        return await super().send(message)


class Looking(senders.SlackSender):
    """The real client, noting the keys it looks up."""

    def __init__(self, url: str) -> None:
        super().__init__(TOKEN, base_url=url, timeout=5)
        self.looked_up: list[str] = []

    async def find(self, message):
        self.looked_up.append(message.key)
        return await super().find(message)


def rows(engine) -> dict[str, OutboxMessage]:
    with session_scope(engine) as session:
        found = {row.key: row for row in session.scalars(select(OutboxMessage))}
        session.expunge_all()
        return found


def claim_as(engine, key: str, owner: str, lease_until: dt.datetime, claimed_at: dt.datetime) -> None:
    """What a deliverer leaves when it has claimed a row: ``sending``, its owner and lease."""
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key == key)
            .values(state="sending", attempts=1, claimed_by=owner, lease_until=lease_until, claimed_at=claimed_at)
        )


def posted(slack, key: str, channel: str) -> None:
    """A message the earlier deliverer got into Slack before it died."""
    metadata = {"event_type": senders.SlackSender.EVENT, "event_payload": {"key": key}}
    slack.fake.messages.append(
        {"channel": channel, "text": "…", "ts": f"{time.time():.0f}.999999", "metadata": metadata}
    )


def test_two_deliverers_at_once_send_each_reminder_once(store_url, slack):
    """The DAG's task and an operator's `campaign remind` at the same time, each with its own engine and client."""
    engines = [make_engine(store_url), make_engine(store_url)]
    reminders = due(engines[0])
    assert outbox.enqueue(engines[0], reminders) == DUE
    results: dict[int, delivery.Delivery] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            results[n] = delivery.deliver(engines[n], SlowSlack(slack.url), backoff=0.05, workers=4)
        except BaseException as error:
            errors.append(error)

    first = threading.Thread(target=run, args=(0,))
    first.start()
    deadline = time.monotonic() + 20
    while not outbox.counts(engines[1]).get("sending") and time.monotonic() < deadline:
        time.sleep(0.01)  # the second starts while the first holds claims it is sending
    second = threading.Thread(target=run, args=(1,))
    second.start()
    first.join(120)
    second.join(120)
    for engine in engines:
        engine.dispose()
    assert not errors, errors
    engine = make_engine(store_url)
    left = outbox.counts(engine)
    stored = rows(engine)
    engine.dispose()
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in reminders} and set(keys.values()) == {1}, keys.most_common(5)
    assert len(slack.fake.messages) == DUE
    assert left == {"sent": DUE}
    assert all(row.receipt and row.sent_at for row in stored.values())
    assert sum(r.sent + r.recovered for r in results.values()) >= DUE


def test_two_deliverer_processes_on_one_store_send_each_reminder_once(store_url, tmp_path):
    """Two processes delivering to one local sink: every reminder is written once."""
    engine = make_engine(store_url)
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    sink = tmp_path / "sink.jsonl"
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from include.reminders import delivery, senders\n"
        "from include.store.db import make_engine\n"
        "class Slow(senders.SinkSender):\n"
        "    async def send(self, message):\n"
        "        await asyncio.sleep(0.2)\n"
        "        return await super().send(message)\n"
        "result = delivery.deliver(make_engine(sys.argv[1]), Slow(Path(sys.argv[2])), backoff=0.05)\n"
        "print(result.as_json())\n"
    )
    command = [sys.executable, "-c", script, store_url, str(sink)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    deadline = time.monotonic() + 60
    while not outbox.counts(engine).get("sending") and time.monotonic() < deadline:
        time.sleep(0.01)
    processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    lines = sink.read_text(encoding="utf-8").splitlines()
    written = [line.split('"key": "')[1].split('"')[0] for line in lines]
    assert sorted(written) == sorted(r.key for r in reminders)  # each once
    assert outbox.counts(engine) == {"sent": DUE}
    engine.dispose()


def test_a_row_under_another_deliverers_live_lease_is_left_alone(engine, slack):
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    jinan = next(r for r in reminders if r.unit == JINAN and r.kind == "overdue")
    now = pendulum.now("UTC")
    other = "airflow-worker-2:4026531836:31337:5eadbeef"  # the DAG's task on another machine, sending it now
    claim_as(engine, jinan.key, other, lease_until=now + dt.timedelta(minutes=2), claimed_at=now)
    started = time.monotonic()
    sender = Looking(slack.url)
    result = delivery.deliver(engine, sender, backoff=0.5)
    assert time.monotonic() - started < 10  # it did not wait out its backoff rounds for a row not its own
    assert (result.sent, result.recovered, result.failed) == (DUE - 1, 0, 0)
    assert jinan.key not in slack.fake.keys()  # not sent again ...
    assert sender.looked_up == [] and slack.fake.calls["conversations.history"] == 0  # ... nor looked up
    row = rows(engine)[jinan.key]
    assert (row.state, row.claimed_by, row.attempts) == ("sending", other, 1)  # nor marked
    assert row.lease_until == now + dt.timedelta(minutes=2)
    assert outbox.counts(engine) == {"sent": DUE - 1, "sending": 1}


def test_a_row_whose_lease_ran_out_is_looked_up_and_sent_at_most_once(engine, slack):
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    jinan = next(r for r in reminders if r.unit == JINAN and r.kind == "overdue")
    qingdao = next(r for r in reminders if r.unit == QINGDAO and r.kind == "overdue")
    now = pendulum.now("UTC")
    dead = "airflow-worker-2:4026531836:31337:5eadbeef"  # died two minutes ago, its lease ran out a minute ago
    for reminder in (jinan, qingdao):
        claim_as(
            engine, reminder.key, dead, lease_until=now - dt.timedelta(minutes=1), claimed_at=now.subtract(minutes=3)
        )
    posted(slack, qingdao.key, qingdao.channel)  # 青岛市's notice got out before the crash; 济南市's did not
    sender = Looking(slack.url)
    result = delivery.deliver(engine, sender, backoff=0.05)
    assert (result.sent, result.recovered, result.failed) == (DUE - 1, 1, 0)
    assert sorted(sender.looked_up) == sorted([jinan.key, qingdao.key])  # both looked up by their key, once
    assert slack.fake.calls["conversations.history"] == 1  # 济南市's channel has no message: nothing to read
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in reminders} and set(keys.values()) == {1}
    assert outbox.counts(engine) == {"sent": DUE}


def test_a_row_of_a_dead_process_on_this_machine_is_resolved_at_once(engine, slack):
    """A deliverer killed on this machine: its claims are taken over without waiting for the lease to run out."""
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    jinan = next(r for r in reminders if r.unit == JINAN and r.kind == "overdue")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # exited and reaped
    dead = outbox.owner_id(pid=pid)
    assert dead.startswith(socket.gethostname()[:40] + ":") and f":{pid}:" in dead
    now = pendulum.now("UTC")
    claim_as(engine, jinan.key, dead, lease_until=now + dt.timedelta(minutes=2), claimed_at=now)
    result = delivery.deliver(engine, senders.SlackSender(TOKEN, base_url=slack.url, timeout=5), backoff=0.05)
    assert (result.sent, result.failed) == (DUE, 0)
    assert set(slack.fake.keys().values()) == {1} and len(slack.fake.messages) == DUE
    assert outbox.counts(engine) == {"sent": DUE}


class NoSuchChannel(senders.SlackSender):
    """Slack answering ``channel_not_found`` for one channel's history (菏泽市's channel was archived)."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(TOKEN, base_url=url, timeout=5)
        self.gone = channel
        self.looked_up: list[str] = []

    async def find(self, message):
        self.looked_up.append(message.key)
        if message.channel == self.gone:
            raise senders.PermanentError("Slack 200 channel_not_found")
        return await super().find(message)


def test_a_permanent_error_in_a_lookup_fails_that_reminder_only(engine, slack):
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    heze = next(r for r in reminders if r.unit == HEZE and r.kind == "overdue")
    jinan = next(r for r in reminders if r.unit == JINAN and r.kind == "overdue")
    now = pendulum.now("UTC")
    for reminder in (heze, jinan):  # both left sending by a deliverer that died, its lease run out
        claim_as(engine, reminder.key, "gone:0:1:00000000", lease_until=now - dt.timedelta(seconds=1), claimed_at=now)
    sender = NoSuchChannel(slack.url, heze.channel)
    result = delivery.deliver(engine, sender, backoff=0.05)
    assert heze.key in sender.looked_up and jinan.key in sender.looked_up
    assert (result.sent, result.failed) == (DUE - 1, 1)
    row = rows(engine)[heze.key]
    assert row.state == "failed" and "channel_not_found" in row.last_error
    keys = slack.fake.keys()
    assert set(keys) == {r.key for r in reminders} - {heze.key} and set(keys.values()) == {1}
    assert outbox.counts(engine) == {"sent": DUE - 1, "failed": 1}


class Broken(senders.SlackSender):
    """A sender that breaks on one message (a bug, a revoked token for one workspace): the others still go."""

    def __init__(self, url: str, key: str, error: Exception) -> None:
        super().__init__(TOKEN, base_url=url, timeout=5)
        self.key, self.error = key, error

    async def send(self, message):
        if message.key == self.key:
            raise self.error
        return await super().send(message)


@pytest.mark.parametrize("error", [senders.PermanentError("Slack 200 invalid_auth"), RuntimeError("unexpected")])
def test_an_error_sending_one_reminder_fails_that_reminder_only(engine, slack, error):
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    heze = next(r for r in reminders if r.unit == HEZE and r.kind == "overdue")
    result = delivery.deliver(engine, Broken(slack.url, heze.key, error), backoff=0.05)
    assert (result.sent, result.failed) == (DUE - 1, 1)
    row = rows(engine)[heze.key]
    assert row.state == "failed" and str(error) in row.last_error
    assert set(slack.fake.keys()) == {r.key for r in reminders} - {heze.key}
    assert set(slack.fake.keys().values()) == {1}


def test_a_deliverer_that_lost_its_claim_cannot_overwrite_the_new_owners_outcome(engine):
    """A deliverer whose lease ran out (paused, then back) reports what it did: the row is another's by now."""
    reminders = due(engine)
    outbox.enqueue(engine, reminders)
    jinan = next(r for r in reminders if r.unit == JINAN and r.kind == "overdue")
    now = pendulum.now("UTC")
    claim_as(engine, jinan.key, "new-owner:0:2:00000000", lease_until=now + dt.timedelta(minutes=2), claimed_at=now)
    row = rows(engine)[jinan.key]
    for outcome in ("again", "ambiguous", "sent", "permanent"):
        with session_scope(engine) as session:
            delivery._record(session, [(row, outcome, "late")], outbox.MAX_ATTEMPTS, delivery.Delivery(), "old-owner")
        after = rows(engine)[jinan.key]
        assert (after.state, after.claimed_by, after.receipt, after.last_error) == (
            "sending",
            "new-owner:0:2:00000000",
            None,
            None,
        )
