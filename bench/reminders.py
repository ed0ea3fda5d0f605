"""Reminder delivery: 3,000 reminders through the outbox to a local fake Slack Web API limited to one
message per second per channel, with faults on the way.

A national campaign's counties: 3,000 counties, each reminded once, in the channels of their 300 city
offices (10 each). The rate limit alone allows this in (10 − 1) × 1 s = 9 s. Two ways, in one run, each on a
fresh store and a fresh fake:
- the project's outbox, paced per channel (``SlackSender.pace``: one message per channel per second,
  channels side by side);
- the plain way, as the Airflow Slack provider's ``SlackHook`` does it: slack-sdk's synchronous ``WebClient``,
  one message after another, the rate limit left to its ``RateLimitErrorRetryHandler`` (wait out each 429's
  Retry-After), no outbox.
A third run repeats the project's way with faults: 30 answers of 500 before the message is taken, 30 of 500
after, 10 slow answers past the client's timeout. Printed: seconds, sent, retried, lost and duplicated, and
the ratio to the rate limit's bound. Goal (issue 6): none lost, none duplicated, within 10 % of what the rate
limit allows.

Run: ``make bench-reminders`` (or ``.venv/bin/python bench/reminders.py [--counties N]``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PER_CITY = 10


def reminders(counties: int) -> list:
    from include.reminders.policy import Reminder

    made = []
    for city in range(counties // PER_CITY):  # round robin over the cities, as the policy lists them
        for county in range(PER_CITY):
            code = f"{100000 + city * 100 + county:06d}"
            made.append(
                Reminder(
                    campaign="national-2020",
                    milestone="completion_report",
                    unit=code,
                    kind="escalation_parent",
                    channel=f"dm-city-{city:03d}",
                    day="2020-12-02",
                    text=f"【逾期通报】县{code}“各县报送动态管理工作开展情况”已逾期2个工作日未报送，请督促。",
                )
            )
    made.sort(key=lambda r: (int(r.unit[-2:]), r.channel))  # city by city within each round
    return made


def run(label: str, counties: int, pace: dict[str, float] | None, faults: bool = False) -> float:
    """One delivery on a fresh store, to a fresh fake Slack in a process of its own (as Slack is elsewhere).
    ``pace`` None: the plain way (no outbox)."""
    import httpx

    from include.devtools.local_airflow import free_port
    from include.reminders import delivery, outbox, senders
    from include.store.db import make_engine, upgrade
    from tests.fake_slack import TOKEN

    os.environ["CAMPAIGN_HOME"] = tempfile.mkdtemp(prefix="bench-reminders-")
    engine = make_engine(upgrade())
    due = reminders(counties)
    outbox.enqueue(engine, due)
    port = free_port()
    injected = ["500"] * 30 + ["500-after"] * 30 + ["slow"] * 10 if faults else []
    fake = subprocess.Popen([sys.executable, "-m", "tests.fake_slack", str(port), *injected], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/_fake/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        sender = senders.SlackSender(TOKEN, base_url=f"{base}/api/", timeout=2)  # imports before the clock starts
        start = time.perf_counter()
        if pace is None:
            sent, retried = plain(due, TOKEN, f"{base}/api/"), 0
        else:
            result = delivery.deliver(engine, sender, backoff=0.2, **pace)
            sent, retried = result.sent + result.recovered, result.retried
        seconds = time.perf_counter() - start
        stats = httpx.get(f"{base}/_fake/stats", timeout=10).json()
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        engine.dispose()
    arrived = stats["keys"]
    lost = sum(1 for r in due if r.key not in arrived)
    duplicated = sum(n - 1 for n in arrived.values() if n > 1)
    channels = {r.channel for r in due}
    bound = (max(sum(1 for r in due if r.channel == c) for c in channels) - 1) * 1.0
    print(
        f"  {label:<44}{seconds:>8.2f} s  发送 {sent:>5}  重试 {retried:>4}  "
        f"429 {stats['calls'].get('429', 0):>5}  丢失 {lost}  重复 {duplicated}  对限速下限 {seconds / bound:.2f}×",
        flush=True,
    )
    return seconds


def plain(due: list, token: str, url: str) -> int:
    """SlackHook's way: one ``WebClient.chat_postMessage`` after another; 429s waited out by the client."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    client = WebClient(token=token, base_url=url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)])
    for reminder in due:
        client.chat_postMessage(
            channel=reminder.channel,
            text=reminder.text,
            metadata={"event_type": "campaign_reminder", "event_payload": {"key": reminder.key}},
        )
    return len(due)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counties", type=int, default=3000)
    args = parser.parse_args()
    from include.reminders.senders import SlackSender

    bound = (PER_CITY - 1) * 1.0
    print(f"{args.counties:,} 条提醒，{args.counties // PER_CITY} 个频道，每频道每秒 1 条：限速下限 {bound:.0f} s")
    ours = run("本项目：发件箱，按频道限速、频道并行", args.counties, SlackSender.pace)
    plain = run("对照：SlackHook 式逐条发送，429 交给 slack-sdk", args.counties, None)
    run("本项目，另有 70 次故障（500、超时）", args.counties, SlackSender.pace, faults=True)
    print()
    reached = "达到" if ours <= 1.1 * bound else "未达到"
    print(f"本项目 {ours:.2f} s，为限速下限的 {ours / bound:.2f} 倍（目标 ≤ 1.10）：{reached}")
    print(f"对照 {plain:.2f} s：本项目快 {plain / ours:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
