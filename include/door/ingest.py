"""Ingestion: a unit's filled-in workbook into the records store, while its entry window is open.

The steps, each of which can stop the upload with nothing stored:
1. the unit's entry window must be open at ``at`` (``WindowClosed``);
2. the file as a whole must pass (include/forms/workbook.py: ``WorkbookRefused``);
3. rows are checked (include/forms/check.py); rejected rows are reported, the others stored;
   a file with no acceptable row at all is refused, so that it cannot wipe the data in force, and so is
   one that would replace the unit's data with far fewer households (``replace_floor``: fewer than half)
   unless the clerk confirms it (``replace_confirm``); the previous version stays restorable
   (``records.history``/``restore``);
4. the accepted rows replace the unit's earlier upload of the same form atomically (include/forms/records.py),
   together with the upload's audit row: the new version is staged, the audit row added and flushed in a
   transaction of the campaign store, the version made current while that transaction is open, and put
   back if the commit fails. A store that cannot be reached leaves the data in force unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from include.calendar import Calendar
from include.calendar.instants import local_text
from include.calendar.model import EntryWindow
from include.door.places import held_by_parent, households_check
from include.door.windows import ApprovalView, approval_view, is_open
from include.door.workload import record_day
from include.forms import records
from include.forms.check import Checked, RowError, read_and_check
from include.forms.spec import FormSpec
from include.forms.workbook import WorkbookRefused
from include.masking import redact
from include.store.audit import audit
from include.store.db import session_scope

log = logging.getLogger(__name__)


class WindowClosed(Exception):
    """The unit's entry window is not open at the upload instant."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class IngestResult:
    file: str
    form: str
    unit: str
    status: str  # stored | unchanged
    version: str
    accepted_rows: int
    rows_by_sheet: dict[str, int]
    rejected_rows: list[RowError] = field(default_factory=list)
    households: int = 0  # in this upload (rows of the household sheet, or all rows of a form without one)
    previous_households: int | None = None  # in the version it replaced; None when there was none

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "form": self.form,
            "unit": self.unit,
            "status": self.status,
            "version": self.version,
            "accepted_rows": self.accepted_rows,
            "accepted_by_sheet": self.rows_by_sheet,
            "rejected_rows": [error.as_json() for error in self.rejected_rows],
            "households": self.households,
            "previous_households": self.previous_households,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_window(engine: Engine, calendar: Calendar, unit: str, at: dt.datetime) -> str | None:
    """The id of an entry window open for the unit at ``at``, or None."""
    for window in calendar.entry_windows:
        if is_open(engine, calendar, window.id, unit, at):
            return window.id
    return None


def _closed_message(engine: Engine, calendar: Calendar, unit: str, at: dt.datetime) -> str:
    """Why the unit may not enter data at ``at``, and what to do: where a window waits for the province's answer
    to the unit's application, that answer (or its absence); else the windows' times."""
    name = calendar.unit_names.get(unit, unit)
    with session_scope(engine) as session:
        for window in calendar.entry_windows:
            if window.approval:
                message = _approval_refusal(name, window, approval_view(session, calendar, window, unit, at), at)
                if message is not None:
                    return message
    windows = "；".join(
        f"{w.name} {local_text(w.opens)} 至 {local_text(w.closes, end=True)}" for w in calendar.entry_windows
    )
    return (
        f"{name}的录入窗口在 {local_text(at)} 未开放（{windows or '本工作没有录入窗口'}）。"
        "窗口需在报送所需材料（及审批）后才开放；请在窗口开放期间上传，或联系上级扶贫部门。"
    )


def _approval_refusal(name: str, window: EntryWindow, answer: ApprovalView, at: dt.datetime) -> str | None:
    """The refusal that the province's answer (rejected, timed out) or its wait (pending, not applied) gives."""
    until = local_text(window.closes, end=True)
    if answer.state == "rejected":
        return (
            f"省级已驳回{name}开通{window.name}的申请（原因：{answer.reason}；{answer.by}，{local_text(answer.at)}），"
            f"录入窗口未开放。请按原因整改后联系省扶贫办重新审批；改为批准后窗口立即开放，至 {until} 关闭。"
        )
    if answer.state == "timed_out":
        return (
            f"{name}的录入申请在 {until} 窗口关闭前未获省级审批（超时未审批），录入窗口未开放，现已关闭。"
            "请联系省扶贫办。"
        )
    if not window.opens <= at < window.closes:
        return None
    if answer.state == "pending":
        return (
            f"{name}的《数据录入申请书》已收到，正等待省级审批；批准后录入窗口立即开放，至 {until} 关闭。"
            "如时间紧迫，请联系省扶贫办。"
        )
    if answer.state == "not_applied":
        return (
            f"{name}尚未报送《数据录入申请书》：{window.name}须经省级批准后才开放（至 {until} 关闭），请先报送申请书。"
        )
    return None


REPLACE_FLOOR_ENV = "CAMPAIGN_REPLACE_FLOOR"
DEFAULT_REPLACE_FLOOR = 0.5


def replace_floor() -> float:
    """An upload with fewer households than this share of the version in force needs confirming."""
    return float(os.environ.get(REPLACE_FLOOR_ENV) or DEFAULT_REPLACE_FLOOR)


def households_in(form: FormSpec, rows_by_sheet: dict[str, int]) -> int:
    """Households of an upload: the rows of the household sheet, or all rows of a form without one."""
    if form.household_key:
        home = form.sheet(form.field(form.household_key).sheet).name
        return rows_by_sheet.get(home, 0)
    return sum(rows_by_sheet.values())


def _previous_households(calendar: Calendar, form: FormSpec, unit: str) -> tuple[int | None, dict | None]:
    meta = records.current_meta(calendar.id, form.id, unit)
    if meta is None:
        return None, None
    return int(meta.get("households", households_in(form, meta.get("accepted_by_sheet", {})))), meta


def _check_shrink(
    checked: Checked, previous: int | None, meta: dict | None, households: int, rows: dict[str, int], confirmed: bool
) -> None:
    """Far fewer households, or far fewer rows in any sheet (all members deleted, say), than the version in
    force: refused unless confirmed."""
    if confirmed or previous is None or meta is None:
        return
    floor = replace_floor()
    before = meta.get("accepted_by_sheet", {})
    shrunk = [
        f"「{sheet}」{rows.get(sheet, 0)} 行（在用 {count} 行）"
        for sheet, count in before.items()
        if count and rows.get(sheet, 0) < count * floor
    ]
    if households >= previous * floor and not shrunk:
        return
    when = local_text(dt.datetime.fromisoformat(meta["at"])) if meta.get("at") else "上一次"
    rejected = f"（另有 {len(checked.errors)} 处问题未通过检查，见问题清单）" if checked.errors else ""
    sheets = f"其中{'、'.join(shrunk)}。" if shrunk else ""
    raise WorkbookRefused(
        "shrinks",
        f"本次文件通过检查的只有 {households} 户{rejected}，本单位在用的数据有 {previous} 户"
        f"（{when}上传的「{meta.get('file', '')}」）；{sheets}保存将用少得多的数据替换在用数据，"
        "未保存，原有数据保持不变。如只是改正部分户，请在完整的工作簿中改正后重新上传；"
        "如确实只保留这些数据，请勾选“确认替换”（命令行加 --replace-confirm）后重新上传。",
        checked.errors,
    )


def ingest(
    engine: Engine,
    calendar: Calendar,
    path: Path,
    unit: str,
    at: dt.datetime,
    actor: str,
    *,
    replace_confirm: bool = False,
    on_behalf: bool = False,
) -> IngestResult:
    """Read, check and store ``path`` as ``unit``'s data; raise ``WindowClosed`` or ``WorkbookRefused``.

    ``replace_confirm``: the clerk confirmed that far fewer households replace the data in force; ``on_behalf``: an
    office above the unit uploads for it (a city for its county), audited as such."""
    reporting = calendar.reporting_unit(unit) or unit  # a county enters in its city's window
    if open_window(engine, calendar, reporting, at) is None:
        message = _closed_message(engine, calendar, reporting, at)
        _audit(engine, calendar, unit, at, actor, "ingest_refused", f"{path.name}：{message}")
        raise WindowClosed(message)
    try:
        checked = _read(path, calendar, unit)
        held = held_by_parent(calendar, unit, checked.form)
        if held:
            parent = calendar.name_of(reporting)
            raise WorkbookRefused(
                "uploaded_by_parent",
                f"{parent}在用的数据（{checked.form.id}）中已有{calendar.name_of(unit)}的 {held} 户："
                "一个县区的数据只能由一个单位上传，未保存。请继续由{parent}上传；或请{parent}重新上传不含本县区的工作簿后，再由本县区上传。",
            )
        if checked.accepted_rows == 0:
            if sum(checked.rows.values()) == 0:
                raise WorkbookRefused("empty", "文件中没有填写任何数据行。请在模板的数据表中逐行填写后上传。")
            raise WorkbookRefused(
                "all_rejected",
                f"文件中 {len(checked.errors)} 处问题，没有一行通过检查，未保存，原有数据保持不变。"
                "请按问题清单改正后重新上传。",
                checked.errors,
            )
        rows_by_sheet = {checked.form.sheet(sheet_id).name: table.height for sheet_id, table in checked.tables.items()}
        households = households_in(checked.form, rows_by_sheet)
        previous, previous_meta = _previous_households(calendar, checked.form, unit)
        _check_shrink(checked, previous, previous_meta, households, rows_by_sheet, replace_confirm)
    except WorkbookRefused as refused:
        _audit(engine, calendar, unit, at, actor, "ingest_refused", f"{path.name}：{refused.message}")
        raise
    form = checked.form
    sha = file_sha256(path)
    version = f"{sha[:20]}-v{form.version}"
    tables = {sheet_id: table.with_columns(pl.lit(unit).alias("unit")) for sheet_id, table in checked.tables.items()}
    meta = {
        "file": path.name,
        "sha256": sha,
        "form": form.id,
        "form_version": form.version,
        "unit": unit,
        "at": at.isoformat(),
        "actor": actor,
        "accepted_by_sheet": rows_by_sheet,
        "households": households,
        "rejected": len(checked.errors),
        "replace_confirmed": replace_confirm and previous is not None,
    }
    staged = records.stage(calendar.id, form.id, unit, version, tables, meta)
    with records.publishing(staged) as publication:
        result = IngestResult(
            file=path.name,
            form=form.id,
            unit=unit,
            status="stored" if publication.changed else "unchanged",
            version=version,
            accepted_rows=checked.accepted_rows,
            rows_by_sheet=rows_by_sheet,
            rejected_rows=checked.errors,
            households=households,
            previous_households=previous,
        )
        replaced = f"，{households} 户替换原有的 {previous} 户" if previous is not None and publication.changed else ""
        confirmed = "（上传者已确认替换）" if meta["replace_confirmed"] else ""
        detail = (
            f"{path.name}（{form.id}，sha256 {sha[:12]}）："
            f"{'已保存' if publication.changed else '与在用数据相同，未改变'}，"
            f"接收 {result.accepted_rows} 行，问题 {len(checked.errors)} 处{replaced}{confirmed}"
        )
        with session_scope(engine) as session:
            audit(
                session,
                at=at,
                action="ingest",
                actor=actor,
                detail=detail[:1000],
                campaign_id=calendar.id,
                unit=unit,
                on_behalf=on_behalf,
            )
            session.flush()  # the audit row is in the store's transaction before the records go live
            publication.publish()  # and the commit at the end of this block makes both visible
        # a failed commit propagates through ``publishing``, which puts the previous version back
    if publication.changed:
        _keep_the_days_figures(engine, calendar, unit, at)
    return result


def _keep_the_days_figures(engine: Engine, calendar: Calendar, unit: str, at: dt.datetime) -> None:
    """The day's entered households of the unit, its counties and the offices above (include/door/workload.py).
    The upload is stored already: a figure that cannot be kept now is logged, and kept with the next upload."""
    tree = calendar.tree
    units = [node.code for node in tree.subtree(unit)] + [node.code for node in tree.ancestors(unit)]
    try:
        record_day(engine, calendar, at, units)
    except Exception:  # the upload stands; only the day's statistics wait for the next one
        log.exception("未能记录 %s 当日的录入统计", unit)


def _read(path: Path, calendar: Calendar, unit: str) -> Checked:
    """The workbook read and checked, households outside the unit's part of the tree rejected; a file that breaks
    the reader in a way no check names (an XML part that is not XML, a bad CRC, an unknown compression, an encrypted
    entry) is refused like any damaged file, not a 500."""
    try:
        return read_and_check(path, calendar.forms, calendar.id, households_check(calendar, unit))
    except WorkbookRefused:
        raise
    except Exception as exc:  # the file's fault: what the reader raised goes to the server's log only
        log.warning("工作簿无法读取（%s）：%s", path.name, redact(repr(exc))[:300])
        raise WorkbookRefused(
            "bad_zip", "文件已损坏或不是 Excel 保存的工作簿，无法读取。请在 Excel 中重新保存为 .xlsx 后上传。"
        ) from None


def _audit(
    engine: Engine, calendar: Calendar, unit: str, at: dt.datetime, actor: str, action: str, detail: str
) -> None:
    with session_scope(engine) as session:
        audit(session, at=at, action=action, actor=actor, detail=detail[:1000], campaign_id=calendar.id, unit=unit)


def restore_version(
    engine: Engine, calendar: Calendar, form_id: str, unit: str, version: str, at: dt.datetime, actor: str
) -> tuple[records.Version, records.Version | None]:
    """Put a stored version of the unit's data for the form back in force, while its entry window is open
    (a restore changes the data like an upload does), audited; (the version restored, the one it replaced).
    ``WindowClosed`` outside the window, ``records.NoSuchVersion`` if it is not stored."""
    reporting = calendar.reporting_unit(unit) or unit
    if open_window(engine, calendar, reporting, at) is None:
        message = _closed_message(engine, calendar, reporting, at)
        _audit(engine, calendar, unit, at, actor, "records_restore_refused", f"{form_id} {version[:12]}：{message}")
        raise WindowClosed(message)
    versions = {v.version: v for v in records.history(calendar.id, form_id, unit)}
    if version not in versions:
        raise records.NoSuchVersion(version)
    with session_scope(engine) as session:
        previous = records.restore(calendar.id, form_id, unit, version)
        restored, replaced = versions[version], versions.get(previous or "")
        detail = f"{form_id}：恢复 {_described(restored)}" + (f"，替换 {_described(replaced)}" if replaced else "")
        audit(
            session,
            at=at,
            action="records_restore",
            actor=actor,
            detail=detail[:1000],
            campaign_id=calendar.id,
            unit=unit,
        )
    return restored, replaced


def _described(version: records.Version) -> str:
    meta = version.meta
    at = local_text(dt.datetime.fromisoformat(meta["at"])) if meta.get("at") else "?"
    return f"{meta.get('file', '')}（{version.version[:12]}，{meta.get('households', '?')} 户，{at}上传）"
