"""``campaign validate``: the rules run over the stored records, a problem list per unit; ``campaign verify``:
the lists' 核查结果 uploaded back, and how far each unit's verification has come."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from include.cli.common import (
    Commands,
    UsageError,
    load_calendar,
    now_at,
    open_engine,
    print_json,
)
from include.rules.stages import STAGES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from include.calendar import Calendar


def cmd_validate(args: argparse.Namespace) -> int:
    import polars as pl

    from include.rules.problem_list import write_problem_list
    from include.rules.problems import validate, workload_households
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
    from include.rules.results import follow_up, results_for_list

    out = Path(args.out)
    engine = open_engine()
    run = validate(
        calendar, stage, at, [args.unit] if args.unit else None, lambda unit: follow_up(engine, calendar.id, unit),
        workload_households(engine, calendar.id),
    )  # fmt: skip
    files = []
    for unit in run.units:
        mine = run.problems.filter(pl.col("unit") == unit)
        path = out / problem_list_name(calendar.id, stage, unit)
        write_problem_list(
            mine, path, unit_name=names[unit], campaign_name=calendar.name, stage=stage, rules=run.rules,
            campaign_id=calendar.id, unit=unit, results=results_for_list(engine, calendar.id, unit),
        )  # fmt: skip
        files.append(str(path))
        declared(calendar, unit, at, engine)  # a list with nothing to verify is verified
    if args.json:
        print_json({**run.as_json(), "files": files})
        return 0
    summary = run.summary()
    print(f"{calendar.name} {stage}：{summary['units']} 个单位，问题 {summary['problems']} 个 → {out}")
    for unit, count in summary["by_unit"].items():
        print(f"  {names.get(unit, unit)}：{count}")
    for rule in run.rules:
        if rule.short:
            print(f"  {rule.word}：{rule.title}（{rule.rule}）：{rule.reason}")
    return 0


def list_of_unit(calendar: Calendar, unit: str, acting: str | None = None) -> None:
    """A usage error unless ``unit`` has a problem list that ``acting`` may answer (results.answering)."""
    from include.rules.results import ResultsRefused, answering

    try:
        answering(calendar, unit, acting)
    except ResultsRefused as refused:
        raise UsageError(refused.message) from None


def cmd_verify_submit(args: argparse.Namespace) -> int:
    from include.rules.results import ResultsRefused, describe, submit_results

    calendar = load_calendar(args.campaign)
    acting = args.acting or None
    list_of_unit(calendar, args.unit, acting)
    at = now_at(args.at)
    engine = open_engine()
    try:
        submitted = submit_results(
            engine, calendar, args.unit, Path(args.file), at, actor=f"cli:{args.by}", acting=acting
        )
    except ResultsRefused as refused:
        if args.json:
            print_json({"error": refused.reason, "message": refused.message, "rows": refused.rows})
        else:
            print(refused.message)
            for row in refused.rows[:50]:
                print(f"  {row}")
        return 1
    done = declared(calendar, args.unit, at, engine)
    if args.json:
        print_json({**submitted.as_json(), "completed": done})
    else:
        print(describe(submitted, calendar, at))
        for milestone in done:
            print(f"  全部问题已填写核查结果：“{calendar.milestone(milestone).name}”已记为完成")
    return 0


def declared(calendar: Calendar, unit: str, at: dt.datetime, engine: Engine) -> list[str]:
    """The milestones done by the unit's verification, recorded now (include/progress/verification.py)."""
    from include.progress.verification import declare_if_verified

    return [done.milestone for done in declare_if_verified(engine, calendar, unit, at)]


def cmd_verify_import(args: argparse.Namespace) -> int:
    from include.rules.imported import SOURCES, ImportRefused, import_list

    calendar = load_calendar(args.campaign)
    label = args.label or f"{SOURCES[args.source]}问题清单"
    try:
        imported = import_list(calendar, Path(args.file), source=args.source, label=label, at=now_at(args.at))
    except ImportRefused as refused:
        raise UsageError(refused.message) from None
    if args.json:
        print_json(imported.as_json())
        return 0
    print(f"{label}：{imported.rows} 行，已对应到单位 {imported.placed} 个问题，下次校验起列入各单位的问题清单")
    for unit, count in imported.by_unit.items():
        print(f"  {calendar.name_of(unit)}：{count}")
    if imported.unplaced:
        print(f"未能对应的 {len(imported.unplaced)} 行（未导入）：")
        for line in imported.unplaced[:50]:
            print(f"  {line}")
    return 0


def cmd_verify_status(args: argparse.Namespace) -> int:
    from include.rules.results import verification_counts

    calendar = load_calendar(args.campaign)
    units = [args.unit] if args.unit else calendar.unit_codes
    engine = open_engine()
    rows = []
    for unit in units:
        answered, total = verification_counts(engine, calendar, unit, args.stage)
        rows.append({"unit": unit, "name": calendar.name_of(unit), "answered": answered, "total": total})
    rows.sort(key=lambda row: (row["answered"] - row["total"], row["unit"]))  # the furthest behind first
    if args.json:
        print_json({"campaign": calendar.id, "stage": args.stage, "units": rows})
        return 0
    for row in rows:
        print(f"{row['name']} · 已核查 {row['answered']}/{row['total']}")
    return 0


def cmd_verify_review(args: argparse.Namespace) -> int:
    from include.rules.results import ReviewRefused, review_result

    calendar = load_calendar(args.campaign)
    list_of_unit(calendar, args.unit)
    at = now_at(args.at)
    engine = open_engine()
    try:
        row = review_result(
            engine, calendar, args.unit, args.problem, accept=args.accept, reason=args.reason,
            by=f"cli:{args.by}", at=at,
        )  # fmt: skip
    except ReviewRefused as refused:
        raise UsageError(refused.message) from None
    declared(calendar, args.unit, at, engine)
    verdict = "认可，以后的校验不再列出" if args.accept else f"驳回（{row.review_reason}），请单位重新核查"
    if args.json:
        print_json({"problem": row.problem, "unit": row.unit, "review": row.review, "reason": row.review_reason})
    else:
        print(f"{calendar.name_of(args.unit)}问题 {row.problem} 的“不属实”：{verdict}")
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

    verify = commands.add_parser(
        "verify", help="问题清单的核查结果：上传（submit）、审核（review）、导入下发的清单（import）与进度（status）"
    )
    steps = verify.add_subparsers(dest="step", required=True, metavar="子命令")
    submit = steps.add_parser("submit", help="上传填好“核查结果”“说明”的问题清单（整份接收或整份退回）")
    submit.add_argument("file")
    submit.add_argument("--campaign", required=True)
    submit.add_argument("--unit", required=True, help="清单所属的单位（市）")
    submit.add_argument("--acting", help="填写者的单位（县区只能填本县区的问题）；缺省为清单所属单位")
    submit.add_argument("--by", default="operator", help="填写人（记入审计日志）")
    submit.add_argument("--at", help="提交时刻（ISO-8601，带时区）；缺省为当前时间")
    submit.add_argument("--json", action="store_true")
    submit.set_defaults(handler=cmd_verify_submit)
    review = steps.add_parser("review", help="省、市审核单位报的“不属实”：认可（--accept）或驳回（--reject --reason）")
    review.add_argument("--campaign", required=True)
    review.add_argument("--unit", required=True)
    review.add_argument("--problem", required=True, help="问题编号（清单第一列）")
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--accept", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    review.add_argument("--reason", help="驳回的原因（驳回时必填）")
    review.add_argument("--by", default="operator", help="审核人（记入审计日志）")
    review.add_argument("--at", help="审核时刻（ISO-8601，带时区）；缺省为当前时间")
    review.add_argument("--json", action="store_true")
    review.set_defaults(handler=cmd_verify_review)
    issued = steps.add_parser(
        "import", help="导入国务院扶贫办、省扶贫开发办下发的问题清单（Excel），与本系统的问题一同核查"
    )
    issued.add_argument("file")
    issued.add_argument("--campaign", required=True)
    issued.add_argument("--source", choices=("national", "province"), required=True)
    issued.add_argument("--label", help="清单名称（写入每个问题的说明）；缺省为“来源 + 问题清单”")
    issued.add_argument("--at", help="导入时刻（ISO-8601，带时区）；缺省为当前时间")
    issued.add_argument("--json", action="store_true")
    issued.set_defaults(handler=cmd_verify_import)
    status = steps.add_parser("status", help="各单位已核查的问题数")
    status.add_argument("--campaign", required=True)
    status.add_argument("--unit")
    status.add_argument("--stage", choices=STAGES, default="analysis", help="清单的阶段（默认 analysis）")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_verify_status)
