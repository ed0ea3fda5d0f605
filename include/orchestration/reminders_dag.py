"""One reminders DAG per campaign calendar: each Chinese working day at 09:00, it sends the day's reminders.

The task works out the reminders due (include/reminders/policy.py), writes them to the outbox and delivers them
(include/reminders/outbox.py): through Slack when the Airflow connection ``slack_api_default`` holds a token (its
password; its host, if set, another API address), else through ``SLACK_BOT_TOKEN``, else into the local sink
file ``$CAMPAIGN_HOME/reminders/sink.jsonl``. A retry or a rerun of a day sends nothing twice.

Imported at DAG-parse time: builds objects only (no store, no network).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from include.calendar import Calendar
from include.calendar.instants import last_day, local_day
from include.orchestration.reminder_timetable import WorkingDayTimetable

log = logging.getLogger(__name__)
SLACK_CONNECTION = "slack_api_default"

DOC = """
# 提醒

每个中国工作日北京时间 {send_at} 运行（按国务院公布的节假日和调休安排；截止日、关闭日即使是节假日也运行），
给尚未报送的单位发截止前（{before} 个工作日）、当天和逾期提醒，逾期 {parent} 个工作日起同时告知上级，
{province} 个工作日起告知省里；采集和录入阶段给录入进度落后的单位发进度提醒。

提醒先写入发件箱（同一单位、同一事项、同一类型、同一天只发一次），再经 Slack（连接 `slack_api_default`）发送；
没有配置 Slack 时写到 `$CAMPAIGN_HOME/reminders/sink.jsonl`。重跑某天不会重复发送。

命令行查看某天应发的提醒：`campaign remind --campaign {campaign} --at 2020-12-02T09:00+08:00 --dry-run`。
"""


def special_days(calendar: Calendar) -> tuple[dt.date, ...]:
    """Due days of the units' milestones and closing days: reminded even on a holiday."""
    days = {last_day(item.due) for item in calendar.milestones if item.by == "units"}
    days |= {last_day(window.closes) for window in calendar.entry_windows}
    days.add(last_day(calendar.system_close.at))
    return tuple(sorted(days))


def _sender() -> Any:
    from include.reminders import senders

    try:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(SLACK_CONNECTION)
    except Exception:
        return senders.sender_from_env()
    if not connection.password:
        return senders.sender_from_env()
    return senders.SlackSender(connection.password, base_url=connection.host or None)


def build_reminders_dag(calendar: Calendar) -> DAG:
    policy = calendar.reminders
    with DAG(
        dag_id=f"{calendar.id}-reminders",
        dag_display_name=f"{calendar.name}：提醒",
        description=f"{calendar.name}：工作日 {policy.send_at} 发送截止、逾期和进度提醒",
        schedule=WorkingDayTimetable(
            local_day(calendar.starts),
            last_day(calendar.ends),
            policy.send_at,
            special_days(calendar),
        ),
        start_date=calendar.starts,
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=1)},
        doc_md=DOC.format(
            send_at=policy.send_at,
            before="、".join(str(n) for n in policy.before_working_days),
            parent=policy.escalate_parent_after,
            province=policy.escalate_province_after,
            campaign=calendar.id,
        ),
        tags=["reminders", str(calendar.year)],
    ) as dag:

        @task(task_display_name="发送当天的提醒")
        def send_reminders(campaign: str, logical_date: dt.datetime | None = None) -> dict[str, Any]:
            from include.calendar.registry import load_campaign
            from include.reminders import delivery, outbox
            from include.reminders.policy import reminders_due
            from include.store.db import open_store

            calendar = load_campaign(campaign)
            at = logical_date or pendulum.now("UTC")
            engine = open_store()
            try:
                due = reminders_due(engine, calendar, at)
                new = outbox.enqueue(engine, due)
                sender = _sender()
                result = delivery.deliver(engine, sender, campaign=campaign, progress=log.info, **sender.pace)
            finally:
                engine.dispose()
            summary = {"due": len(due), "new": new, "via": sender.name, **result.as_json()}
            log.info("提醒：应发 %d 条，新写入 %d 条，经 %s 发送 %d 条", len(due), new, sender.name, result.sent)
            if result.failed:
                raise RuntimeError(f"{result.failed} 条提醒发送失败（见发件箱 last_error），其余已发送：{summary}")
            return summary

        send_reminders(calendar.id)
    return dag
