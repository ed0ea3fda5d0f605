"""The door's commands: a unit's report, tokens, the province's approvals, the status of every unit."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from include.calendar.instants import local_text
from include.cli.common import (
    EXIT_INVALID,
    Commands,
    UsageError,
    duration_option,
    load_calendar,
    now_at,
    open_engine,
    print_json,
)
from include.masking import short_masked


def cmd_report_submit(args: argparse.Namespace) -> int:
    import getpass

    from include.door.submissions import Actor, ReportRefused, submit_report

    calendar = load_calendar(args.campaign)
    at = now_at(args.at)
    content = file_name = None
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"--file：找不到文件“{args.file}”")
        content, file_name = path.read_bytes(), path.name
    engine = open_engine()
    try:
        result = submit_report(
            engine,
            calendar,
            unit=args.unit,
            milestone_id=args.milestone,
            at=at,
            actor=Actor(name=f"cli:{getpass.getuser()}"),
            file_name=file_name,
            content=content,
        )
    except ReportRefused as refused:
        if args.json:
            print_json({"refused": refused.reason, "message": refused.message})
        else:
            print(f"拒收：{refused.message}", file=sys.stderr)
        return refused.exit_code
    finally:
        engine.dispose()
    if args.json:
        print_json(result.as_json())
    else:
        words = {"on_time": "按时收到", "late": "已收到（逾期）", "duplicate": "与已收到的版本相同，未新增版本"}
        print(f"{result.unit} {result.milestone}：{words[result.outcome]}，第 {result.version} 版")
        for window in result.windows_opened:
            print(f"已为 {result.unit} 开放录入窗口 {window}")
    return 0


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    from include.door.keys import TokenConfigError
    from include.door.tokens import PROVINCE, issue_token

    at = now_at(args.at)
    campaign = load_calendar(args.campaign) if args.campaign else None
    if (
        campaign is not None
        and args.unit != PROVINCE
        and (args.unit not in campaign.tree or args.unit == campaign.office.code)
    ):
        raise UsageError(f"战役 {campaign.id} 没有单位“{short_masked(args.unit)}”")
    if args.expires:
        expires = at + duration_option(args.expires, "--expires")
    else:
        expires = campaign.ends + dt.timedelta(days=30) if campaign is not None else None
    engine = open_engine()
    try:
        token_id, plain = issue_token(
            engine,
            args.unit,
            at,
            args.label or "",
            kind=args.kind,
            campaign_id=campaign.id if campaign else None,
            expires_at=expires,
        )
    except (ValueError, TokenConfigError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        engine.dispose()
    print(f"已为 {args.unit} 签发令牌 #{token_id}（只显示这一次，请妥善保存）：")
    print(plain)
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    from include.door.tokens import revoke_tokens

    if args.unit is None and args.id is None:
        raise UsageError("请给出 --unit 或 --id")
    engine = open_engine()
    count = revoke_tokens(engine, now_at(args.at), unit=args.unit, token_id=args.id)
    engine.dispose()
    print(f"已吊销 {count} 个令牌")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """The province's decision on a unit's application, or a later one that replaces it (both audited)."""
    from include.door.windows import record_approval

    calendar = load_calendar(args.campaign)
    if args.unit not in calendar.unit_names:
        raise UsageError(f"战役 {calendar.id} 没有单位“{short_masked(args.unit)}”")
    windows = [w for w in calendar.entry_windows if w.approval and (args.window in (None, w.id))]
    if not windows:
        raise UsageError(
            f"{calendar.name}没有需要省级审批的录入窗口{f'“{short_masked(args.window)}”' if args.window else ''}"
        )
    reason = (args.reason or "").strip()
    if not args.approve and not reason:
        raise UsageError("驳回须写明原因（--reason），原因会告知该单位，并记入审计日志")
    if len(reason) > 500:
        raise UsageError(f"驳回原因过长（{len(reason)} 字），请写在 500 字以内")
    engine = open_engine()
    try:
        opened = record_approval(
            engine,
            calendar,
            windows[0].id,
            args.unit,
            approved=args.approve,
            by=f"cli:{args.by}",
            name=args.by,
            reason=reason or None,
            at=now_at(args.at),
        )
    finally:
        engine.dispose()
    name = calendar.unit_names[args.unit]
    verdict = "批准" if args.approve else "驳回"
    told = f"，原因：{reason}（该单位的状态与上传提示会告知）" if not args.approve else ""
    print(f"已记录：{verdict}{name}开通“{windows[0].name}”（{args.by}）{told}{'，录入窗口已开放' if opened else ''}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from include.calendar.tree import LEVEL_WORDS
    from include.door.status import STATE_WORDS, WINDOW_WORDS, campaign_status, lagging_first
    from include.door.windows import APPROVAL_WORDS

    calendar = load_calendar(args.campaign)
    if args.under is not None and args.under not in calendar.tree:
        raise UsageError(f"战役 {calendar.id} 没有单位代码 {short_masked(args.under, 12)}（campaign units 查看）")
    engine = open_engine()
    status = campaign_status(engine, calendar, now_at(args.at), under=args.under)
    engine.dispose()
    if args.json:
        print_json(status)
        return 0
    print(f"{calendar.name}　截至 {status['at']}")
    names = {item.id: item.name for item in calendar.milestones}
    for rate in status["rates"]:
        if not rate["due"]:
            continue
        children, subtree = rate["children"], rate["subtree"]
        lagging = "、".join(calendar.name_of(code) for code in rate["lagging"])
        print(
            f"【{rate['name']}】{names[rate['milestone']]}：下级 {children['received']}/{children['expected']} 已完成"
            f"（按时 {children['on_time']}）；全辖 {subtree['received']}/{subtree['expected']}"
            f"（按时率 {subtree['on_time_rate']:.0%}）{f'　未完成：{lagging}' if lagging else ''}"
        )
    for unit in lagging_first(status["units"]):
        cells = "　".join(f"{item['id']}:{STATE_WORDS[item['state']]}" for item in unit["milestones"])
        window = unit["entry_window"]
        approval = (window or {}).get("approval") if unit["level"] == calendar.units.level else None
        answer = f"　省级审批:{APPROVAL_WORDS[approval['state']]}" if approval else ""
        if approval and approval["reason"]:
            answer += f"（{approval['reason']}）"
        print(
            f"{unit['name']}（{unit['unit']}，{LEVEL_WORDS[unit['level']]}）　{cells}　"
            f"录入窗口:{WINDOW_WORDS[window['state']] if window else '—'}{answer}"
        )
    return 0


def cmd_roster_template(args: argparse.Namespace) -> int:
    from include.door.rosters import write_template

    calendar = load_calendar(args.campaign)
    write_template(calendar, Path(args.out))
    print(f"已写出{calendar.name}的乡镇、村名册模板 → {args.out}")
    return 0


def cmd_roster_load(args: argparse.Namespace) -> int:
    from include.calendar.registry import UnknownCampaign, load_campaign
    from include.door.rosters import RosterRefused, load_roster, read_xlsx, read_yaml

    try:
        calendar = load_campaign(args.campaign, roster=False)
    except UnknownCampaign:
        load_calendar(args.campaign)  # the usage error every command gives, with the campaigns there are
        raise
    at = now_at(args.at)
    path = Path(args.file)
    engine = open_engine()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            roster = read_yaml(path)
        else:
            roster = read_xlsx(path, calendar.id, args.source or f"{path.name}（{local_text(at)}载入）")
        loaded = load_roster(engine, calendar, roster, at, args.actor)
    except RosterRefused as refused:
        if args.json:
            print(json.dumps({"status": "refused", "problems": refused.problems}, ensure_ascii=False, indent=2))
        else:
            print(f"名册未载入（{len(refused.problems)} 个问题），原名册保持不变：", file=sys.stderr)
            for problem in refused.problems:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"status": "loaded", **loaded.as_json()}, ensure_ascii=False, indent=2))
    else:
        again = "，替换原名册" if loaded.replaced else ""
        print(f"已载入{calendar.name}的名册：{loaded.townships} 个乡镇、{loaded.villages} 个村{again}")
    return 0


def cmd_workload_template(args: argparse.Namespace) -> int:
    from include.door.workload import write_template

    calendar = load_calendar(args.campaign)
    write_template(calendar, Path(args.out))
    print(f"已写出{calendar.name}的工作台账模板 → {args.out}")
    return 0


def cmd_workload_load(args: argparse.Namespace) -> int:
    from include.door.workload import WorkloadRefused, load_workload, read_workload_xlsx

    calendar = load_calendar(args.campaign)
    at = now_at(args.at)
    path = Path(args.file)
    engine = open_engine()
    try:
        by_unit = read_workload_xlsx(path, calendar)
        loaded = load_workload(engine, calendar, by_unit, at, args.actor, args.source or path.name)
    except WorkloadRefused as refused:
        if args.json:
            print(json.dumps({"status": "refused", "problems": refused.problems}, ensure_ascii=False, indent=2))
        else:
            print(f"工作台账未载入（{len(refused.problems)} 个问题），原台账保持不变：", file=sys.stderr)
            for problem in refused.problems:
                print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"status": "loaded", "units": loaded}, ensure_ascii=False, indent=2))
    else:
        listed = "，".join(f"{calendar.name_of(unit)} {n} 户" for unit, n in loaded.items())
        print(f"已载入{calendar.name}的工作台账：{listed}")
    return 0


def register(commands: Commands) -> None:
    workload = commands.add_parser("workload", help="工作台账（本年度须入户核实、更新的户）：模板与载入")
    workload_commands = workload.add_subparsers(dest="workload_command", required=True, metavar="子命令")
    template = workload_commands.add_parser("template", help="写出工作台账的 Excel 模板")
    template.add_argument("--campaign", required=True, metavar="ID")
    template.add_argument("--out", required=True, metavar="FILE")
    template.set_defaults(handler=cmd_workload_template)
    load = workload_commands.add_parser("load", help="载入工作台账（替换文件中各单位原有的台账）")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--campaign", required=True, metavar="ID")
    load.add_argument("--source", help="台账来源（默认：文件名）")
    load.add_argument("--actor", default="cli", help="载入者（记入审计日志）")
    load.add_argument("--at", help="以此时刻为“现在”（ISO-8601，带时区）")
    load.add_argument("--json", action="store_true")
    load.set_defaults(handler=cmd_workload_load)

    roster = commands.add_parser("roster", help="乡镇、村名册：模板与载入")
    roster_commands = roster.add_subparsers(dest="roster_command", required=True, metavar="子命令")
    template = roster_commands.add_parser("template", help="写出名册的 Excel 模板")
    template.add_argument("--campaign", required=True, metavar="ID")
    template.add_argument("--out", required=True, metavar="FILE")
    template.set_defaults(handler=cmd_roster_template)
    load = roster_commands.add_parser("load", help="载入名册（.xlsx 模板或 .yaml），有问题则整体不载入")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--campaign", required=True, metavar="ID")
    load.add_argument("--source", help="名册来源（默认：文件名与载入时间）")
    load.add_argument("--actor", default="cli", help="载入者（记入审计日志）")
    load.add_argument("--at", help="以此时刻为“现在”（ISO-8601，带时区）")
    load.add_argument("--json", action="store_true")
    load.set_defaults(handler=cmd_roster_load)
    report = commands.add_parser("report", help="单位报送材料")
    report_commands = report.add_subparsers(dest="report_command", required=True, metavar="子命令")
    submit = report_commands.add_parser("submit", help="报送一份材料（到期后逾期标注，系统关闭后拒收）")
    submit.add_argument("--campaign", required=True, metavar="ID")
    submit.add_argument("--unit", required=True, metavar="CODE")
    submit.add_argument("--milestone", required=True, metavar="M")
    submit.add_argument("--file", metavar="PATH")
    submit.add_argument("--at", help="以此时刻报送（ISO-8601，带时区）")
    submit.add_argument("--json", action="store_true")
    submit.set_defaults(handler=cmd_report_submit)

    tokens = commands.add_parser("tokens", help="单位访问令牌")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="子命令")
    issue = token_commands.add_parser("issue", help="签发令牌（--unit province 为省级令牌）")
    issue.add_argument("--unit", required=True, metavar="CODE")
    issue.add_argument(
        "--kind",
        choices=["read", "submit", "office"],
        help="read 只读（进度链接）；submit 报送（单位默认）；office 省级办公室（province 默认）",
    )
    issue.add_argument("--campaign", metavar="ID", help="只适用于这项战役（默认：全部战役）")
    issue.add_argument("--expires", metavar="DURATION", help="有效期，如 30d、12h（默认：战役结束后 30 天，或 365 天）")
    issue.add_argument("--label")
    issue.add_argument("--at")
    issue.set_defaults(handler=cmd_tokens_issue)
    revoke = token_commands.add_parser("revoke", help="吊销令牌")
    revoke.add_argument("--unit", metavar="CODE")
    revoke.add_argument("--id", type=int)
    revoke.add_argument("--at")
    revoke.set_defaults(handler=cmd_tokens_revoke)

    approve = commands.add_parser("approve", help="省级审批单位的录入申请，或改正此前的决定（均记入审计日志）")
    approve.add_argument("--campaign", required=True, metavar="ID")
    approve.add_argument("--unit", required=True, metavar="CODE")
    approve.add_argument("--window", metavar="ID", help="录入窗口（默认：唯一需要审批的窗口）")
    decision = approve.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", dest="approve", action="store_true", help="批准")
    decision.add_argument("--reject", dest="approve", action="store_false", help="驳回")
    approve.add_argument("--by", required=True, metavar="NAME", help="作出决定的省级人员")
    approve.add_argument("--reason", metavar="TEXT", help="驳回原因（驳回时必填，告知该单位）")
    approve.add_argument("--at")
    approve.set_defaults(handler=cmd_approve)

    status = commands.add_parser("status", help="各单位报送与录入窗口状态")
    status.add_argument("--campaign", required=True, metavar="ID")
    status.add_argument("--under", metavar="CODE", help="只看这个单位及其下级（如一个市和它的县区）")
    status.add_argument("--at")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
