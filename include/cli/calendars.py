"""The calendar commands: check, show and compress a campaign's calendar, write the demo campaign."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from include import paths
from include.calendar import Calendar, CalendarError, read_calendar
from include.calendar.compress import compress, to_yaml
from include.calendar.instants import local_iso
from include.calendar.render import calendar_json, calendar_text
from include.calendar.tree import LEVEL_WORDS, LEVELS, Node
from include.cli.common import (
    EXIT_INVALID,
    Commands,
    UsageError,
    duration_option,
    instant_option,
    load_calendar,
    now_at,
)
from include.masking import short_masked
from include.paths import write_atomically

DEMO_SOURCE = "2020-shandong"
DEMO_ID = "demo-2020-shandong"


def cmd_calendar_check(args: argparse.Namespace) -> int:
    status = 0
    for file in args.files:
        try:
            calendar = read_calendar(file)
        except CalendarError as exc:
            status = EXIT_INVALID
            for problem in exc.problems:
                print(problem.line(file))
            continue
        if not args.quiet:
            print(f"{file}: 有效（{calendar.id}，{len(calendar.phases)} 个阶段，{len(calendar.milestones)} 个节点）")
    return status


def cmd_calendar_show(args: argparse.Namespace) -> int:
    calendar = load_calendar(args.id, file_ok=True)
    if args.json:
        print(json.dumps(calendar_json(calendar), ensure_ascii=False, indent=2))
    else:
        print(calendar_text(calendar), end="")
    return 0


def unit_nodes(calendar: Calendar, level: str | None, under: str | None) -> list[Node]:
    """The campaign's units, of one level or all, under one unit or the whole tree; refuse an unknown code."""
    if under is not None and under not in calendar.tree:
        raise UsageError(
            f"战役 {calendar.id} 没有单位代码 {short_masked(under, 12)}。"
            f"请用 campaign units --campaign {calendar.id} 查看全部单位。"
        )
    nodes = calendar.tree.subtree(under) if under is not None else list(calendar.tree)
    return [node for node in nodes if level is None or node.level == level]


def cmd_units(args: argparse.Namespace) -> int:
    calendar = load_calendar(args.campaign, file_ok=True)
    nodes = unit_nodes(calendar, args.level, args.under)
    if args.json:
        print(json.dumps([node.as_json() for node in nodes], ensure_ascii=False, indent=2))
        return 0
    counts = "，".join(f"{LEVEL_WORDS[level]} {n}" for level in LEVELS if (n := sum(x.level == level for x in nodes)))
    print(f"{calendar.name}：{len(nodes)} 个单位（{counts or '无'}）")
    depth = {node.code: len(calendar.tree.ancestors(node.code)) for node in nodes}
    top = min(depth.values(), default=0)
    for node in nodes:
        print(f"{'  ' * (depth[node.code] - top)}{node.code}  {node.name}（{LEVEL_WORDS[node.level]}）")
    return 0


def _compressed(source: str, start: str, span: str, new_id: str | None) -> Calendar:
    calendar = load_calendar(source, file_ok=True)
    return compress(calendar, instant_option(start, "--start"), duration_option(span, "--span"), new_id)


def cmd_calendar_compress(args: argparse.Namespace) -> int:
    calendar = _compressed(args.id, args.start, args.span, args.new_id)
    write_atomically(Path(args.out), to_yaml(calendar))
    print(f"已写出压缩日历 {calendar.id}：{local_iso(calendar.starts)} 至 {local_iso(calendar.ends)} → {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write the demo campaign: 2020-shandong compressed to start shortly after ``--at``."""
    start = (now_at(args.at) + duration_option(args.delay, "--delay")).replace(microsecond=0)
    calendar = _compressed(DEMO_SOURCE, start.isoformat(), args.span, DEMO_ID)
    out = paths.home_campaigns() / f"{DEMO_ID}.yaml"
    write_atomically(out, to_yaml(calendar))
    print(f"演示战役 {DEMO_ID}：{local_iso(calendar.starts)} 开始，{local_iso(calendar.ends)} 结束 → {out}")
    return 0


def register(commands: Commands) -> None:
    calendar = commands.add_parser("calendar", help="战役日历：检查、查看、压缩")
    calendar_commands = calendar.add_subparsers(dest="calendar_command", required=True, metavar="子命令")
    check = calendar_commands.add_parser("check", help="检查日历文件，每个问题一行")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("-q", "--quiet", action="store_true", help="只输出问题")
    check.set_defaults(handler=cmd_calendar_check)
    show = calendar_commands.add_parser("show", help="以北京时间显示日历")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_calendar_show)
    squeeze = calendar_commands.add_parser("compress", help="平移并按比例压缩日历")
    squeeze.add_argument("id", metavar="ID")
    squeeze.add_argument("--start", required=True, help="新的开始时间（ISO-8601，带时区）")
    squeeze.add_argument("--span", required=True, help="全程时长，如 6m、2h、PT6M")
    squeeze.add_argument("--out", required=True, metavar="FILE")
    squeeze.add_argument("--id", dest="new_id", help="新日历编号（默认 ID-compressed）")
    squeeze.set_defaults(handler=cmd_calendar_compress)

    units = commands.add_parser("units", help="战役的各级单位：省、市、县区（乡镇、村）")
    units.add_argument("--campaign", required=True, metavar="ID")
    units.add_argument("--level", choices=LEVELS, help="只列出这一级")
    units.add_argument("--under", metavar="CODE", help="只列出这个单位及其下级")
    units.add_argument("--json", action="store_true")
    units.set_defaults(handler=cmd_units)

    demo = commands.add_parser("demo", help="在战役主目录生成压缩的 2020-shandong 演示战役")
    demo.add_argument("--at", help="以此时刻为“现在”（ISO-8601，带时区）")
    demo.add_argument("--delay", default="90s", help="距“现在”多久开始（默认 90s）")
    demo.add_argument("--span", default="6m", help="全程时长（默认 6m）")
    demo.set_defaults(handler=cmd_demo)
