"""``campaign progress``: every unit's progress, lagging first, as text, JSON or a workbook."""

from __future__ import annotations

import argparse
from pathlib import Path

from include.cli.common import (
    Commands,
    load_calendar,
    now_at,
    open_engine,
    print_json,
)


def cmd_progress(args: argparse.Namespace) -> int:
    from include.door.status import STATE_WORDS
    from include.progress.report import progress_report, write_progress_xlsx

    calendar = load_calendar(args.campaign)
    engine = open_engine()
    try:
        report = progress_report(engine, calendar, now_at(args.at))
    finally:
        engine.dispose()
    if args.json:
        print_json(report)
        return 0
    if args.xlsx:
        out = write_progress_xlsx(report, Path(args.xlsx))
        print(f"进度表（{len(report['units'])} 个单位，落后的在前）→ {out}")
        return 0
    print(f"{calendar.name}　截至 {report['at']}（落后的在前）")
    for unit in report["units"]:
        states = "　".join(f"{item['id']}:{STATE_WORDS[item['state']]}" for item in unit["milestones"])
        share = f"{unit['share']:.0%}" if unit["share"] is not None else "无底数"
        problems = "—" if unit["open_problems"] is None else unit["open_problems"]
        entered = f"已录入 {unit['entered']} 户（{share}）"
        print(f"{unit['name']}（{unit['unit']}）　{states}　{entered}　未整改问题 {problems}")
    return 0


def register(commands: Commands) -> None:
    progress = commands.add_parser("progress", help="各单位进度：报送、录入占底数的比例、未整改问题，落后的在前")
    progress.add_argument("--campaign", required=True, metavar="ID")
    progress.add_argument("--at", help="时刻（ISO-8601，带时区；默认现在）")
    shown = progress.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true")
    shown.add_argument("--xlsx", metavar="FILE", help="写成 Excel（含完成比例条形图）")
    progress.set_defaults(handler=cmd_progress)
