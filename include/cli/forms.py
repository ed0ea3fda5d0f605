"""The forms' commands: the forms and their templates, a unit's workbook read in, its stored versions."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from include.calendar import Calendar
from include.calendar.instants import local_text
from include.cli.common import (
    EXIT_CLOSED,
    EXIT_USAGE,
    Commands,
    UsageError,
    campaign_form,
    campaign_unit,
    load_calendar,
    now_at,
    open_engine,
    print_json,
    print_row_errors,
)
from include.masking import redact, short_masked


def cmd_forms_list(args: argparse.Namespace) -> int:
    from include.forms.spec import all_forms

    forms = all_forms()
    if args.json:
        print_json(
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

    calendar = load_calendar(args.campaign)
    form = campaign_form(calendar, args.form)
    out = write_template(form, Path(args.out), campaign_id=calendar.id, campaign_name=calendar.name)
    print(f"已写出模板「{form.title}」第{form.version}版 → {out}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    import getpass

    from include.door.ingest import WindowClosed, ingest
    from include.forms.workbook import WorkbookRefused

    calendar = load_calendar(args.campaign)
    if not calendar.may_upload(args.unit):
        unit = short_masked(args.unit)
        raise UsageError(f"--unit：{calendar.name}没有可以上传工作簿的单位“{unit}”（市或县区的代码）")
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"找不到文件“{args.file}”")
    at = now_at(args.at)
    engine = open_engine()
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
            print_json(
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
            print_row_errors(errors, sys.stderr)
        return EXIT_CLOSED if isinstance(refused, WindowClosed) else EXIT_USAGE
    finally:
        engine.dispose()
    if args.json:
        print_json(result.as_json())
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
    print(f"{calendar.name_of(args.unit)} {result.form}：{state}；接收 {sheets}；问题 {len(result.rejected_rows)} 处")
    print_row_errors(result.rejected_rows, sys.stdout)
    return 0


def _records_form(calendar: Calendar, unit: str, args: argparse.Namespace) -> str:
    """The form asked for, or the only one of the campaign's forms the unit has uploaded."""
    from include.forms import records

    if args.form:
        return campaign_form(calendar, args.form).id
    uploaded = [f for f in calendar.forms if records.history(calendar.id, f, unit)]
    if len(uploaded) == 1:
        return uploaded[0]
    listed = "、".join(uploaded or calendar.forms)
    raise UsageError(f"--form：请指明哪张表（{'本单位已上传：' if uploaded else '本工作的表：'}{listed}）")


def cmd_records_history(args: argparse.Namespace) -> int:
    from include.forms import records

    calendar = load_calendar(args.campaign)
    unit = campaign_unit(calendar, args.unit)
    form_id = _records_form(calendar, unit.code, args)
    versions = records.history(calendar.id, form_id, unit.code)
    if args.json:
        print_json({"unit": unit.code, "form": form_id, "versions": [v.as_json() for v in versions]})
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

    from include.door.ingest import WindowClosed, restore_version
    from include.forms import records

    calendar = load_calendar(args.campaign)
    unit = campaign_unit(calendar, args.unit)
    form_id = _records_form(calendar, unit.code, args)
    engine = open_engine()
    try:
        restored, replaced = restore_version(
            engine, calendar, form_id, unit.code, args.version, now_at(args.at), actor=f"cli:{getpass.getuser()}"
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
        print_json({"restored": restored.as_json(), "replaced": replaced.as_json() if replaced else None})
        return 0
    was = f"，替换了 {replaced.meta.get('households', '?')} 户的版本 {replaced.version}" if replaced else ""
    print(f"{unit.name} {form_id}：已恢复版本 {restored.version}（{restored.meta.get('households', '?')} 户）{was}")
    return 0


def register(commands: Commands) -> None:
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
