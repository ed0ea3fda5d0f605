"""``campaign progress``: every unit's progress, lagging first, as text, JSON or a workbook."""

from __future__ import annotations

import argparse
from pathlib import Path

from include.cli.common import (
    Commands,
    UsageError,
    load_calendar,
    now_at,
    open_engine,
    print_json,
)
from include.masking import short_masked


def cmd_progress(args: argparse.Namespace) -> int:
    from include.door.status import STATE_WORDS
    from include.progress.report import progress_report, workload_words, write_progress_xlsx

    calendar = load_calendar(args.campaign)
    if args.under is not None and args.under not in calendar.tree:
        raise UsageError(f"战役 {calendar.id} 没有单位代码 {short_masked(args.under, 12)}（campaign units 查看）")
    engine = open_engine()
    try:
        report = progress_report(engine, calendar, now_at(args.at), under=args.under)
    finally:
        engine.dispose()
    if args.json:
        print_json(report)
        return 0
    if args.xlsx:
        out = write_progress_xlsx(report, Path(args.xlsx))
        counted = "，".join(f"{len(level['units'])} 个{level['word']}" for level in report["levels"])
        print(f"进度表（{counted}，落后的在前）→ {out}")
        return 0
    print(f"{calendar.name}　截至 {report['at']}（落后的在前）")
    for level in report["levels"]:
        print(f"— {level['word']}（{len(level['units'])} 个）")
        for unit in level["units"]:
            states = "　".join(f"{item['id']}:{STATE_WORDS[item['state']]}" for item in unit["milestones"])
            done = unit["done"]
            share = f"（{unit['share']:.0%}）" if unit["share"] is not None else ""
            entered = "" if unit["entered"] is None else f"　已录入 {unit['entered']} 户"
            problems = "" if unit["open_problems"] is None else f"　未整改问题 {unit['open_problems']}"
            workload = "" if unit["workload"] is None else f"　工作台账 {workload_words(unit['workload'])}"
            print(
                f"{unit['name']}（{unit['unit']}）　{states}　到期事项已完成 {done['received']}/{done['expected']}"
                f"{share}{entered}{workload}{problems}"
            )
    return 0


def register(commands: Commands) -> None:
    progress = commands.add_parser(
        "progress", help="各级单位进度：报送、到期事项完成比例、已录入户数、未整改问题，落后的在前"
    )
    progress.add_argument("--campaign", required=True, metavar="ID")
    progress.add_argument("--at", help="时刻（ISO-8601，带时区；默认现在）")
    progress.add_argument("--under", metavar="CODE", help="只看这个单位及其下级（如一个市和它的县区）")
    shown = progress.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true")
    shown.add_argument("--xlsx", metavar="FILE", help="写成 Excel（每级一张表，含完成比例条形图，另有报送率表）")
    progress.set_defaults(handler=cmd_progress)
