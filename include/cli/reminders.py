"""``campaign remind``: the reminders due at an instant, listed or sent through the outbox."""

from __future__ import annotations

import argparse
import sys

from include.cli.common import (
    Commands,
    load_calendar,
    now_at,
    open_engine,
    print_json,
)


def cmd_remind(args: argparse.Namespace) -> int:
    from include.calendar.workdays import UnknownYear
    from include.reminders.policy import reminders_due

    calendar = load_calendar(args.campaign)
    engine = open_engine()
    try:
        due = reminders_due(engine, calendar, now_at(args.at))
        if args.dry_run:
            if args.json:
                print_json([reminder.as_json() for reminder in due])
                return 0
            for reminder in due:
                print(f"{reminder.channel}\t{reminder.kind}\t{reminder.text}")
            print(f"共 {len(due)} 条提醒（{calendar.name}，{due[0].day if due else now_at(args.at).date()}），未发送")
            return 0
        from include.reminders import delivery, outbox, senders

        new = outbox.enqueue(engine, due)
        sender = senders.sender_from_env()
        result = delivery.deliver(
            engine, sender, campaign=calendar.id, progress=lambda line: print(line, file=sys.stderr), **sender.pace
        )
        summary = {
            "due": len(due),
            "new": new,
            "via": sender.name,
            **result.as_json(),
            "outbox": outbox.counts(engine, calendar.id),
        }
        if isinstance(sender, senders.SinkSender):
            summary["sink"] = str(sender.path)
        if args.json:
            print_json(summary)
        else:
            where = f"本地文件 {sender.path}" if isinstance(sender, senders.SinkSender) else "Slack"
            print(
                f"应发 {len(due)} 条，新写入发件箱 {new} 条；经{where}发送 {result.sent} 条，"
                f"核对补记 {result.recovered} 条，待重试 {result.retried} 条，失败 {result.failed} 条"
            )
        return 1 if result.failed else 0
    except UnknownYear as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def register(commands: Commands) -> None:
    remind = commands.add_parser("remind", help="某一时刻应发的提醒（截止前、当天、逾期、进度、关闭）")
    remind.add_argument("--campaign", required=True, metavar="ID")
    remind.add_argument("--at", help="时刻（ISO-8601，带时区；默认现在），按其所在的北京日期计")
    remind.add_argument("--dry-run", action="store_true", help="只列出，不发送")
    remind.add_argument("--json", action="store_true")
    remind.set_defaults(handler=cmd_remind)
