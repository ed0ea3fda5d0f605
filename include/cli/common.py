"""What the ``campaign`` commands share: exit codes, the usage error, the options every group reads."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pendulum

from include import paths
from include.calendar import Calendar, read_calendar
from include.calendar.instants import TimeFormatError, parse_duration, parse_instant
from include.masking import short_masked

if TYPE_CHECKING:  # imported when a command needs them: `campaign --help` stays fast
    from sqlalchemy.engine import Engine

    from include.calendar.model import Unit
    from include.forms.spec import FormSpec

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CLOSED = 3  # the door or the entry window is closed at the instant

Commands = argparse._SubParsersAction


class UsageError(Exception):
    """A user mistake with a Chinese message; exits with code 2."""


def load_calendar(calendar_ref: str, *, file_ok: bool = False) -> Calendar:
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


def instant_option(text: str, option: str) -> pendulum.DateTime:
    try:
        return parse_instant(text)
    except TimeFormatError as exc:
        raise UsageError(f"{option}：{exc}") from None


def duration_option(text: str, option: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except TimeFormatError as exc:
        raise UsageError(f"{option}：{exc}") from None


def now_at(at: str | None) -> pendulum.DateTime:
    """The instant a command acts at: ``--at`` if given; the real clock only here, at the edge."""
    return instant_option(at, "--at") if at else pendulum.now("UTC")


def open_engine() -> Engine:
    """The campaign store, at the code's migration (a local run's SQLite store is created on first use; nothing
    is migrated here: `campaign db upgrade` does that)."""
    from include.store.db import StoreNotReady, open_store

    try:
        return open_store()
    except StoreNotReady as exc:
        raise UsageError(str(exc)) from None


def print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def campaign_form(calendar: Calendar, form_id: str) -> FormSpec:
    """One of the campaign's forms, or a usage error naming the ones it uses."""
    from include.forms.spec import get_form

    if form_id not in calendar.forms:
        raise UsageError(f"{calendar.name}不使用表“{form_id}”（可用：{'、'.join(calendar.forms) or '无'}）")
    return get_form(form_id)


def campaign_unit(calendar: Calendar, code: str) -> Unit:
    for unit in calendar.unit_list:
        if unit.code == code:
            return unit
    raise UsageError(f"--unit：{calendar.name}没有单位“{short_masked(code)}”")


def print_row_errors(errors: list, stream: TextIO, limit: int = 50) -> None:
    for error in errors[:limit]:
        value = "（空）" if error.value is None else f"（填的是：{error.value}）"
        print(f"  {error.sheet} {error.cell}  {error.message}{value}", file=stream)
    if len(errors) > limit:
        print(f"  ……另有 {len(errors) - limit} 处，用 --json 查看全部", file=stream)


def masked_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
