"""The ``campaign`` command.

Exit codes: 0 done; 1 the input is invalid (a calendar with problems); 2 a usage error (unknown
calendar, unreadable instant) or a file refused as a whole; 3 the door or entry window is closed.
Messages are Chinese; identifiers and JSON keys are English.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pendulum

from include import paths
from include.calendar import Calendar, CalendarError, read_calendar
from include.calendar.compress import compress, to_yaml
from include.calendar.render import calendar_json, calendar_text
from include.masking import redact, short_masked
from include.timeutil import TimeFormatError, local_iso, local_text, parse_duration, parse_instant

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CLOSED = 3  # the door or the entry window is closed at the instant
DEMO_SOURCE = "2020-shandong"
DEMO_ID = "demo-2020-shandong"


class UsageError(Exception):
    """A user mistake with a Chinese message; exits with code 2."""


def _load(calendar_ref: str, *, file_ok: bool = False) -> Calendar:
    """A campaign's calendar by id (the registry); with ``file_ok`` (commands that read a calendar the
    operator names, such as ``calendar show``) also a file by its path."""
    from include.calendar.registry import UnknownCampaign, load_campaign

    try:
        return load_campaign(calendar_ref)
    except UnknownCampaign:
        if file_ok and Path(calendar_ref).is_file():
            return read_calendar(calendar_ref)
    known = "、".join(path.stem for path in paths.calendar_files()) or "无"
    raise UsageError(f"找不到日历“{short_masked(calendar_ref)}”（已有：{known}）")


def _instant(text: str, option: str) -> pendulum.DateTime:
    try:
        return parse_instant(text)
    except TimeFormatError as exc:
        raise UsageError(f"{option}：{exc}") from None


def _duration(text: str, option: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise UsageError(f"{option}：{exc}") from None


def _now(at: str | None) -> pendulum.DateTime:
    """The instant a command acts at: ``--at`` if given; the real clock only here, at the edge."""
    return _instant(at, "--at") if at else pendulum.now("UTC")


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


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
    calendar = _load(args.id, file_ok=True)
    if args.json:
        print(json.dumps(calendar_json(calendar), ensure_ascii=False, indent=2))
    else:
        print(calendar_text(calendar), end="")
    return 0


def _compressed(source: str, start: str, span: str, new_id: str | None) -> Calendar:
    calendar = _load(source, file_ok=True)
    return compress(calendar, _instant(start, "--start"), _duration(span, "--span"), new_id)


def cmd_calendar_compress(args: argparse.Namespace) -> int:
    calendar = _compressed(args.id, args.start, args.span, args.new_id)
    write_atomically(Path(args.out), to_yaml(calendar))
    print(f"已写出压缩日历 {calendar.id}：{local_iso(calendar.starts)} 至 {local_iso(calendar.ends)} → {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Write the demo campaign: 2020-shandong compressed to start shortly after ``--at``."""
    start = (_now(args.at) + _duration(args.delay, "--delay")).replace(microsecond=0)
    calendar = _compressed(DEMO_SOURCE, start.isoformat(), args.span, DEMO_ID)
    out = paths.home_campaigns() / f"{DEMO_ID}.yaml"
    write_atomically(out, to_yaml(calendar))
    print(f"演示战役 {DEMO_ID}：{local_iso(calendar.starts)} 开始，{local_iso(calendar.ends)} 结束 → {out}")
    return 0


def _engine():  # noqa: ANN202 - a SQLAlchemy Engine, imported lazily
    """The campaign store, ready for use (a local SQLite store is migrated on first use; production never)."""
    from include.store.db import StoreNotReady, open_store

    try:
        return open_store()
    except StoreNotReady as exc:
        raise UsageError(str(exc)) from None


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_report_submit(args: argparse.Namespace) -> int:
    import getpass

    from include.submissions import Actor, ReportRefused, submit_report

    calendar = _load(args.campaign)
    at = _now(args.at)
    content = file_name = None
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise UsageError(f"--file：找不到文件“{args.file}”")
        content, file_name = path.read_bytes(), path.name
    engine = _engine()
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
            _print_json({"refused": refused.reason, "message": refused.message})
        else:
            print(f"拒收：{refused.message}", file=sys.stderr)
        return refused.exit_code
    finally:
        engine.dispose()
    if args.json:
        _print_json(result.as_json())
    else:
        words = {"on_time": "按时收到", "late": "已收到（逾期）", "duplicate": "与已收到的版本相同，未新增版本"}
        print(f"{result.unit} {result.milestone}：{words[result.outcome]}，第 {result.version} 版")
        for window in result.windows_opened:
            print(f"已为 {result.unit} 开放录入窗口 {window}")
    return 0


def cmd_tokens_issue(args: argparse.Namespace) -> int:
    from include.tokens import PROVINCE, TokenConfigError, issue_token

    at = _now(args.at)
    campaign = _load(args.campaign) if args.campaign else None
    if campaign is not None and args.unit != PROVINCE and args.unit not in {u.code for u in campaign.unit_list}:
        raise UsageError(f"战役 {campaign.id} 没有单位“{short_masked(args.unit)}”")
    if args.expires:
        expires = at + _duration(args.expires, "--expires")
    else:
        expires = campaign.ends + dt.timedelta(days=30) if campaign is not None else None
    engine = _engine()
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
    from include.tokens import revoke_tokens

    if args.unit is None and args.id is None:
        raise UsageError("请给出 --unit 或 --id")
    engine = _engine()
    count = revoke_tokens(engine, _now(args.at), unit=args.unit, token_id=args.id)
    engine.dispose()
    print(f"已吊销 {count} 个令牌")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """The province's decision on a unit's application, or a later one that replaces it (both audited)."""
    from include.windows import record_approval

    calendar = _load(args.campaign)
    if args.unit not in {u.code for u in calendar.unit_list}:
        raise UsageError(f"战役 {calendar.id} 没有单位“{short_masked(args.unit)}”")
    windows = [w for w in calendar.entry_windows if w.approval and (args.window in (None, w.id))]
    if not windows:
        raise UsageError(
            f"{calendar.name}没有需要省级审批的录入窗口{f'“{short_masked(args.window)}”' if args.window else ''}"
        )
    engine = _engine()
    try:
        opened = record_approval(
            engine, calendar, windows[0].id, args.unit, approved=args.approve, by=f"cli:{args.by}", at=_now(args.at)
        )
    finally:
        engine.dispose()
    name = calendar.unit_names[args.unit]
    verdict = "批准" if args.approve else "驳回"
    print(f"已记录：{verdict}{name}开通“{windows[0].name}”（{args.by}）{'，录入窗口已开放' if opened else ''}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from include.status import STATE_WORDS, campaign_status

    calendar = _load(args.campaign)
    engine = _engine()
    status = campaign_status(engine, calendar, _now(args.at))
    engine.dispose()
    if args.json:
        _print_json(status)
        return 0
    windows = {"not_open": "未开放", "open": "开放中", "closed": "已关闭"}
    print(f"{calendar.name}　截至 {status['at']}")
    for unit in status["units"]:
        cells = "　".join(f"{item['id']}:{STATE_WORDS[item['state']]}" for item in unit["milestones"])
        window = unit["entry_window"]
        print(f"{unit['name']}（{unit['unit']}）　{cells}　录入窗口:{windows[window['state']] if window else '—'}")
    return 0


def cmd_remind(args: argparse.Namespace) -> int:
    from include.reminders import reminders_due
    from include.workdays import UnknownYear

    calendar = _load(args.campaign)
    engine = _engine()
    try:
        due = reminders_due(engine, calendar, _now(args.at))
        if args.dry_run:
            if args.json:
                _print_json([reminder.as_json() for reminder in due])
                return 0
            for reminder in due:
                print(f"{reminder.channel}\t{reminder.kind}\t{reminder.text}")
            print(f"共 {len(due)} 条提醒（{calendar.name}，{due[0].day if due else _now(args.at).date()}），未发送")
            return 0
        from include import outbox

        new = outbox.enqueue(engine, due)
        sender = outbox.sender_from_env()
        delivery = outbox.deliver(
            engine, sender, campaign=calendar.id, progress=lambda line: print(line, file=sys.stderr), **sender.pace
        )
        summary = {
            "due": len(due),
            "new": new,
            "via": sender.name,
            **delivery.as_json(),
            "outbox": outbox.counts(engine, calendar.id),
        }
        if isinstance(sender, outbox.SinkSender):
            summary["sink"] = str(sender.path)
        if args.json:
            _print_json(summary)
        else:
            where = f"本地文件 {sender.path}" if isinstance(sender, outbox.SinkSender) else "Slack"
            print(
                f"应发 {len(due)} 条，新写入发件箱 {new} 条；经{where}发送 {delivery.sent} 条，"
                f"核对补记 {delivery.recovered} 条，待重试 {delivery.retried} 条，失败 {delivery.failed} 条"
            )
        return 1 if delivery.failed else 0
    except UnknownYear as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def cmd_progress(args: argparse.Namespace) -> int:
    from include.progress import progress_report, write_progress_xlsx
    from include.status import STATE_WORDS

    calendar = _load(args.campaign)
    engine = _engine()
    try:
        report = progress_report(engine, calendar, _now(args.at))
    finally:
        engine.dispose()
    if args.json:
        _print_json(report)
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from include.simulation import simulate

    _load(args.id)
    passed = simulate(
        args.id,
        _duration(args.span, "--span"),
        seed=args.seed,
        startup=args.startup,
        executor=args.executor,
        workers=args.workers,
        drills=tuple(args.drill),
        outcome_file=Path(args.outcome) if args.outcome else None,
        out=lambda line: print(line, flush=True),
    )
    return 0 if passed else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from include.store.db import upgrade

    url = upgrade(args.url)
    print(f"战役状态库已升级到最新版本：{_masked_url(url)}")
    return 0


def _form(calendar: Calendar, form_id: str):  # noqa: ANN202 - a FormSpec, imported lazily
    """One of the campaign's forms, or a usage error naming the ones it uses."""
    from include.forms.spec import get_form

    if form_id not in calendar.forms:
        raise UsageError(f"{calendar.name}不使用表“{form_id}”（可用：{'、'.join(calendar.forms) or '无'}）")
    return get_form(form_id)


def cmd_forms_list(args: argparse.Namespace) -> int:
    from include.forms.spec import all_forms

    forms = all_forms()
    if args.json:
        _print_json(
            [
                {
                    "id": form.id,
                    "version": form.version,
                    "name": form.name,
                    "attachment": form.attachment,
                    "seed": form.seed,
                    "printed": form.printed,
                    "sheets": [{"id": s.id, "name": s.name, "columns": len(form.fields_of(s.id))} for s in form.sheets],
                }
                for form in forms.values()
            ]
        )
        return 0
    for form in forms.values():
        sheets = "、".join(f"{s.name}（{len(form.fields_of(s.id))} 列）" for s in form.sheets)
        print(f"{form.id}  {form.title}  第{form.version}版  {sheets}")
    return 0


def cmd_forms_template(args: argparse.Namespace) -> int:
    from include.forms.template import write_template

    calendar = _load(args.campaign)
    form = _form(calendar, args.form)
    out = write_template(form, Path(args.out), campaign_id=calendar.id, campaign_name=calendar.name)
    print(f"已写出模板「{form.title}」第{form.version}版 → {out}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    import getpass

    from include.forms.workbook import WorkbookRefused
    from include.ingest import WindowClosed, ingest

    calendar = _load(args.campaign)
    units = calendar.unit_names
    if args.unit not in units:
        raise UsageError(f"--unit：{calendar.name}没有单位“{args.unit}”")
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"找不到文件“{args.file}”")
    at = _now(args.at)
    engine = _engine()
    try:
        result = ingest(
            engine,
            calendar,
            path,
            args.unit,
            at,
            actor=f"cli:{getpass.getuser()}",
            replace_confirm=args.replace_confirm,
        )
    except (WorkbookRefused, WindowClosed) as refused:
        reason = refused.reason if isinstance(refused, WorkbookRefused) else "window_closed"
        errors = getattr(refused, "errors", [])
        if args.json:
            _print_json(
                {
                    "file": redact(path.name),
                    "unit": args.unit,
                    "refused": reason,
                    "message": refused.message,
                    "accepted_rows": 0,
                    "rejected_rows": [error.as_json() for error in errors],
                }
            )
        else:
            print(f"拒收：{refused.message}", file=sys.stderr)
            _print_row_errors(errors, sys.stderr)
        return EXIT_CLOSED if isinstance(refused, WindowClosed) else EXIT_USAGE
    finally:
        engine.dispose()
    if args.json:
        _print_json(result.as_json())
        return 0
    sheets = "，".join(f"{name} {count} 行" for name, count in result.rows_by_sheet.items())
    if result.status != "stored":
        state = "与在用数据相同，未改变"
    elif result.previous_households is None:
        state = f"已保存（{result.households} 户）"
    else:
        state = (
            f"已保存：{result.households} 户替换上一次上传的 {result.previous_households} 户"
            "（上一版本可用 campaign records restore 恢复）"
        )
    print(f"{units[args.unit]} {result.form}：{state}；接收 {sheets}；问题 {len(result.rejected_rows)} 处")
    _print_row_errors(result.rejected_rows, sys.stdout)
    return 0


def _print_row_errors(errors: list, stream: TextIO, limit: int = 50) -> None:
    for error in errors[:limit]:
        value = "（空）" if error.value is None else f"（填的是：{error.value}）"
        print(f"  {error.sheet} {error.cell}  {error.message}{value}", file=stream)
    if len(errors) > limit:
        print(f"  ……另有 {len(errors) - limit} 处，用 --json 查看全部", file=stream)


def _unit(calendar: Calendar, code: str):  # noqa: ANN202 - a Unit
    for unit in calendar.unit_list:
        if unit.code == code:
            return unit
    raise UsageError(f"--unit：{calendar.name}没有单位“{short_masked(code)}”")


def _records_form(calendar: Calendar, unit: str, args: argparse.Namespace) -> str:
    """The form asked for, or the only one of the campaign's forms the unit has uploaded."""
    from include import records

    if args.form:
        return _form(calendar, args.form).id
    uploaded = [f for f in calendar.forms if records.history(calendar.id, f, unit)]
    if len(uploaded) == 1:
        return uploaded[0]
    listed = "、".join(uploaded or calendar.forms)
    raise UsageError(f"--form：请指明哪张表（{'本单位已上传：' if uploaded else '本工作的表：'}{listed}）")


def cmd_records_history(args: argparse.Namespace) -> int:
    from include import records

    calendar = _load(args.campaign)
    unit = _unit(calendar, args.unit)
    form_id = _records_form(calendar, unit.code, args)
    versions = records.history(calendar.id, form_id, unit.code)
    if args.json:
        _print_json({"unit": unit.code, "form": form_id, "versions": [v.as_json() for v in versions]})
        return 0
    if not versions:
        print(f"{unit.name} {form_id}：尚无上传的数据")
        return 0
    print(f"{unit.name} {form_id}：保存着 {len(versions)} 个版本（在用的在前）")
    for v in versions:
        meta = v.meta
        mark = "在用" if v.in_force else "    "
        at = local_text(dt.datetime.fromisoformat(meta["at"])) if meta.get("at") else ""
        print(f"  {mark} {v.version}  {at}  {redact(meta.get('file', ''))}  {meta.get('households', '?')} 户")
    return 0


def cmd_records_restore(args: argparse.Namespace) -> int:
    import getpass

    from include import records
    from include.ingest import WindowClosed, restore_version

    calendar = _load(args.campaign)
    unit = _unit(calendar, args.unit)
    form_id = _records_form(calendar, unit.code, args)
    engine = _engine()
    try:
        restored, replaced = restore_version(
            engine, calendar, form_id, unit.code, args.version, _now(args.at), actor=f"cli:{getpass.getuser()}"
        )
    except WindowClosed as closed:
        print(f"拒绝：{closed.message}", file=sys.stderr)
        return EXIT_CLOSED
    except records.NoSuchVersion:
        raise UsageError(
            f"--version：{unit.name} {form_id} 没有保存版本“{args.version}”（campaign records history 可查）"
        ) from None
    finally:
        engine.dispose()
    if args.json:
        _print_json({"restored": restored.as_json(), "replaced": replaced.as_json() if replaced else None})
        return 0
    was = f"，替换了 {replaced.meta.get('households', '?')} 户的版本 {replaced.version}" if replaced else ""
    print(f"{unit.name} {form_id}：已恢复版本 {restored.version}（{restored.meta.get('households', '?')} 户）{was}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from include.synth import synthesize

    calendar = _load(args.campaign)
    if args.households < 1:
        raise UsageError("--households 至少为 1")
    if not 0 <= args.defect_rate <= 1:
        raise UsageError("--defect-rate 应在 0 到 1 之间")
    form = _form(calendar, args.form) if args.form else None
    units = args.units.split(",") if args.units else None
    known = {unit.code for unit in calendar.unit_list}
    for unit in units or []:
        if unit not in known:
            raise UsageError(f"--units：{calendar.name}没有单位“{unit}”")
    truth = synthesize(
        calendar,
        Path(args.out),
        households=args.households,
        defect_rate=args.defect_rate,
        seed=args.seed,
        form=form,
        units=units,
        progress=print,
    )
    truth_file = Path(args.out) / "ground_truth.json"
    print(f"共 {len(truth['files'])} 个工作簿，注入缺陷 {len(truth['defects'])} 处 → {truth_file}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    import polars as pl

    from include.rules.problem_list import write_problem_list
    from include.rules.problems import validate
    from include.rules.stages import STAGES, problem_list_name

    calendar = _load(args.campaign)
    at = _now(args.at)
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
        write_problem_list(mine, path, unit_name=names[unit], campaign_name=calendar.name, stage=stage)
        files.append(str(path))
    if args.json:
        _print_json({**run.as_json(), "files": files})
        return 0
    summary = run.summary()
    print(f"{calendar.name} {stage}：{summary['units']} 个单位，问题 {summary['problems']} 个 → {out}")
    for unit, count in summary["by_unit"].items():
        print(f"  {names.get(unit, unit)}：{count}")
    return 0


def _masked_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaign", description="扶贫对象动态管理战役：日历、状态库与演示")
    commands = parser.add_subparsers(dest="command", required=True, metavar="命令")

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

    demo = commands.add_parser("demo", help="在战役主目录生成压缩的 2020-shandong 演示战役")
    demo.add_argument("--at", help="以此时刻为“现在”（ISO-8601，带时区）")
    demo.add_argument("--delay", default="90s", help="距“现在”多久开始（默认 90s）")
    demo.add_argument("--span", default="6m", help="全程时长（默认 6m）")
    demo.set_defaults(handler=cmd_demo)

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
    approve.add_argument("--at")
    approve.set_defaults(handler=cmd_approve)

    status = commands.add_parser("status", help="各单位报送与录入窗口状态")
    status.add_argument("--campaign", required=True, metavar="ID")
    status.add_argument("--at")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    remind = commands.add_parser("remind", help="某一时刻应发的提醒（截止前、当天、逾期、进度、关闭）")
    remind.add_argument("--campaign", required=True, metavar="ID")
    remind.add_argument("--at", help="时刻（ISO-8601，带时区；默认现在），按其所在的北京日期计")
    remind.add_argument("--dry-run", action="store_true", help="只列出，不发送")
    remind.add_argument("--json", action="store_true")
    remind.set_defaults(handler=cmd_remind)

    progress = commands.add_parser("progress", help="各单位进度：报送、录入占底数的比例、未整改问题，落后的在前")
    progress.add_argument("--campaign", required=True, metavar="ID")
    progress.add_argument("--at", help="时刻（ISO-8601，带时区；默认现在）")
    shown = progress.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true")
    shown.add_argument("--xlsx", metavar="FILE", help="写成 Excel（含完成比例条形图）")
    progress.set_defaults(handler=cmd_progress)

    simulate = commands.add_parser("simulate", help="在真实 Airflow 上模拟一次压缩的战役并给出核对结论")
    simulate.add_argument("id", metavar="ID")
    simulate.add_argument("--span", required=True, help="全程时长，如 3m")
    simulate.add_argument("--seed", type=int, default=2020, help="模拟报送的随机种子")
    simulate.add_argument("--startup", type=float, default=100.0, help="Airflow 启动预留秒数（默认 100）")
    simulate.add_argument(
        "--executor",
        choices=["local", "celery"],
        default="local",
        help="local：airflow standalone 与 SQLite；celery：PostgreSQL、Redis 与多个 Celery worker",
    )
    simulate.add_argument("--workers", type=int, default=2, help="Celery worker 个数（默认 2）")
    simulate.add_argument(
        "--drill", action="append", default=[], choices=["restart-scheduler"], help="故障演练（仅 celery）"
    )
    simulate.add_argument("--outcome", metavar="FILE", help="把结果（状态、闸门、运行状态）写成 JSON，便于比较两次运行")
    simulate.set_defaults(handler=cmd_simulate)

    forms = commands.add_parser("forms", help="采集表：清单与批量填报模板")
    form_commands = forms.add_subparsers(dest="forms_command", required=True)
    forms_list = form_commands.add_parser("list", help="列出所有采集表")
    forms_list.add_argument("--json", action="store_true")
    forms_list.set_defaults(handler=cmd_forms_list)
    template = form_commands.add_parser("template", help="写出一张表的批量填报模板（.xlsx）")
    template.add_argument("form", help="表编号，如 2020-1")
    template.add_argument("--campaign", required=True)
    template.add_argument("--out", required=True)
    template.set_defaults(handler=cmd_forms_template)

    ingest = commands.add_parser("ingest", help="读入单位填好的工作簿（逐行检查，整体替换上一次上传）")
    ingest.add_argument("file")
    ingest.add_argument("--campaign", required=True)
    ingest.add_argument("--unit", required=True)
    ingest.add_argument("--at", help="上传时刻（ISO-8601，带时区）；缺省为当前时间")
    ingest.add_argument(
        "--replace-confirm",
        action="store_true",
        help="确认以明显少得多的户替换在用数据（少于一半时须确认；原数据可用 records restore 恢复）",
    )
    ingest.add_argument("--json", action="store_true")
    ingest.set_defaults(handler=cmd_ingest)

    stored = commands.add_parser("records", help="单位已上传数据的版本：查看、恢复")
    records_commands = stored.add_subparsers(dest="records_command", required=True, metavar="子命令")
    history = records_commands.add_parser("history", help="列出单位某张表保存着的各个版本")
    restore = records_commands.add_parser(
        "restore", help="把某个保存的版本恢复为在用数据（录入窗口开放期间，记入审计日志）"
    )
    for sub in (history, restore):
        sub.add_argument("--campaign", required=True)
        sub.add_argument("--unit", required=True)
        sub.add_argument("--form", help="表的编号；工作只有一张表时可省略")
        sub.add_argument("--json", action="store_true")
    restore.add_argument("--version", required=True, help="版本号（campaign records history 列出）")
    restore.add_argument("--at", help="恢复时刻（ISO-8601，带时区）；缺省为当前时间")
    history.set_defaults(handler=cmd_records_history)
    restore.set_defaults(handler=cmd_records_restore)

    synth = commands.add_parser("synth", help="生成各单位的模拟填报工作簿（含已知缺陷与标准答案）")
    synth.add_argument("--campaign", required=True)
    synth.add_argument("--households", type=int, required=True, help="总户数，平均分到各单位")
    synth.add_argument("--defect-rate", type=float, default=0.0, help="每户注入一个缺陷的概率（0–1）")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True)
    synth.add_argument("--form", help="表编号；缺省为本工作含家庭成员的户表")
    synth.add_argument("--units", help="只为这些单位生成，逗号分隔")
    synth.set_defaults(handler=cmd_synth)

    validate = commands.add_parser("validate", help="运行校验规则，给每个单位写出问题清单（Excel）")
    validate.add_argument("--campaign", required=True)
    validate.add_argument("--unit", help="只重跑这一个单位；缺省为全部")
    validate.add_argument("--stage", choices=["analysis", "verification", "completion"], help="缺省为 --at 所在阶段")
    validate.add_argument("--at", help="运行时刻（ISO-8601，带时区）；缺省为当前时间")
    validate.add_argument("--out", required=True, help="问题清单写到这个目录")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(handler=cmd_validate)

    db = commands.add_parser("db", help="战役状态库")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="子命令")
    db_upgrade = db_commands.add_parser("upgrade", help="执行数据库迁移到最新版本")
    db_upgrade.add_argument("--url", help="数据库 URL（默认 CAMPAIGN_DB_URL 或主目录下的 SQLite）")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"错误：{redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except CalendarError as exc:
        for problem in exc.problems:
            print(problem.line(exc.file), file=sys.stderr)
        return EXIT_INVALID


def _entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _entry()
