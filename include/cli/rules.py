"""``campaign validate``: the rules run over the stored records, a problem list per unit."""

from __future__ import annotations

import argparse
from pathlib import Path

from include.cli.common import (
    Commands,
    UsageError,
    load_calendar,
    now_at,
    print_json,
)
from include.rules.stages import STAGES


def cmd_validate(args: argparse.Namespace) -> int:
    import polars as pl

    from include.rules.problem_list import write_problem_list
    from include.rules.problems import validate
    from include.rules.stages import problem_list_name

    calendar = load_calendar(args.campaign)
    at = now_at(args.at)
    names = calendar.unit_names
    if args.unit and args.unit not in names:
        raise UsageError(f"--unit：{calendar.name}没有单位“{args.unit}”")
    stage = args.stage
    if stage is None:
        phase = next((p.id for p in calendar.phases if p.starts <= at < p.ends and p.id in STAGES), None)
        stage = phase or "analysis"
    out = Path(args.out)
    run = validate(calendar, stage, at, [args.unit] if args.unit else None)
    files = []
    for unit in run.units:
        mine = run.problems.filter(pl.col("unit") == unit)
        path = out / problem_list_name(calendar.id, stage, unit)
        write_problem_list(mine, path, unit_name=names[unit], campaign_name=calendar.name, stage=stage, rules=run.rules)
        files.append(str(path))
    if args.json:
        print_json({**run.as_json(), "files": files})
        return 0
    summary = run.summary()
    print(f"{calendar.name} {stage}：{summary['units']} 个单位，问题 {summary['problems']} 个 → {out}")
    for unit, count in summary["by_unit"].items():
        print(f"  {names.get(unit, unit)}：{count}")
    for rule in run.rules:
        if rule.state in ("not_run", "no_data"):
            print(f"  未运行：{rule.title}（{rule.rule}）：{rule.reason}")
    return 0


def register(commands: Commands) -> None:
    validate = commands.add_parser("validate", help="运行校验规则，给每个单位写出问题清单（Excel）")
    validate.add_argument("--campaign", required=True)
    validate.add_argument("--unit", help="只重跑这一个单位；缺省为全部")
    validate.add_argument("--stage", choices=STAGES, help="缺省为 --at 所在阶段")
    validate.add_argument("--at", help="运行时刻（ISO-8601，带时区）；缺省为当前时间")
    validate.add_argument("--out", required=True, help="问题清单写到这个目录")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(handler=cmd_validate)
