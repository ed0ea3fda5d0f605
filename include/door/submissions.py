"""The door: one rule set for every report a unit submits, by the command line or the HTTP API.

- A report for a milestone whose due instant has passed is accepted and marked late.
- Once the door of a milestone has closed (the system closing at 24:00, or the end of the phase of a
  milestone due after the closing), a submission is refused and changes nothing but the audit log.
- A unit's token acts for that unit only; the province's acts for all, recorded as on behalf.
- The same file twice is one report; a changed file is a new version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from include.calendar.instants import local_iso, local_text
from include.calendar.model import Calendar, Milestone
from include.door.windows import lock_unit, try_open
from include.errors import Refused
from include.masking import short_masked
from include.paths import campaign_home
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import Report

DECLARATION = "declaration"  # the kind of a report that only says a milestone is done (it may carry no file)
ATTEMPTS = 8  # versions taken by submissions racing this one: read again and retry, then answer busy


def max_report_bytes() -> int:
    """The largest report file taken (``CAMPAIGN_MAX_REPORT_BYTES``, default 50 MB)."""
    return int(os.environ.get("CAMPAIGN_MAX_REPORT_BYTES", str(50 * 1024 * 1024)))


VERIFIED_BY = "system:核查结果"  # who records a milestone done by its verification (include/progress/verification.py)


class ReportRefused(Refused):
    """A submission the door does not take; ``message`` is Chinese and says what to do next."""

    STATUS: ClassVar[dict[str, int]] = {
        "closed": 409,
        "forbidden": 403,
        "unknown_unit": 422,
        "unknown_milestone": 422,
        "verified_by_results": 409,
        "too_large": 413,
        "busy": 503,
    }
    EXIT: ClassVar[dict[str, int]] = {"closed": 3}

    @property
    def http_status(self) -> int:
        return self.STATUS.get(self.reason, 422)

    @property
    def exit_code(self) -> int:
        return self.EXIT.get(self.reason, 2)


@dataclass(frozen=True)
class Actor:
    """Who submits: ``unit`` is the one unit the credential acts for, None for the province."""

    name: str
    unit: str | None = None


@dataclass(frozen=True)
class Submission:
    campaign: str
    unit: str
    milestone: str
    outcome: str  # on_time | late | duplicate
    version: int
    received_at: dt.datetime
    late: bool
    on_behalf: bool
    file_sha256: str | None
    windows_opened: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        """What the CLI (``--json``) and the HTTP API answer: instants in local time."""
        return {
            "campaign": self.campaign,
            "unit": self.unit,
            "milestone": self.milestone,
            "outcome": self.outcome,
            "version": self.version,
            "received_at": local_iso(self.received_at),
            "late": self.late,
            "on_behalf": self.on_behalf,
            "file_sha256": self.file_sha256,
            "windows_opened": list(self.windows_opened),
        }


@dataclass(frozen=True)
class _Attempt:
    """One call of `submit_report`: what is asked, by whom and when; every refusal of it is audited."""

    engine: Engine
    calendar: Calendar
    unit: str
    milestone_id: str
    actor: Actor
    at: dt.datetime

    @property
    def on_behalf(self) -> bool:
        """The province's, or a unit's for a unit below it (a city for its county)."""
        return self.actor.unit != self.unit

    def record(self, session: Session, action: str, detail: str) -> None:
        """This attempt's entry in the audit log."""
        calendar = self.calendar
        audit(
            session,
            at=self.at,
            action=action,
            actor=self.actor.name,
            campaign_id=calendar.id,
            # A value the calendar does not know is the sender's, not a code: kept only masked.
            unit=self.unit if self.unit in calendar.tree else short_masked(self.unit, 8),
            milestone=self.milestone_id
            if any(item.id == self.milestone_id for item in calendar.milestones)
            else short_masked(self.milestone_id, 8),
            on_behalf=self.on_behalf,
            detail=detail,
        )

    def refuse(self, reason: str, message: str) -> ReportRefused:
        """The refusal to raise, written to the audit log first."""
        with session_scope(self.engine) as session:
            self.record(session, "refused", f"[{reason}] {message}")
        return ReportRefused(reason, message)


def _file_digest(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _store_file(
    calendar: Calendar, unit: str, milestone: str, name: str, source: Path | bytes, sha: str
) -> tuple[Path, bool]:
    """Keep the file under its content's hash; return its path and whether this call created it (False: the
    same bytes were already kept, by an earlier version or by a submission racing this one, and stay theirs).

    The bytes go to a temporary name of this call's own and are linked into place only if nothing is there, so
    two writers of the same file never share a temporary name and a losing writer never removes the winner's."""
    folder = campaign_home() / "reports" / calendar.id / unit / milestone
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.\-]", "_", Path(name).name)[-80:].lstrip(".") or "report"
    path = folder / f"{sha[:16]}-{safe}"
    tmp = folder / f".{uuid.uuid4().hex}.part"
    try:
        if isinstance(source, bytes):
            tmp.write_bytes(source)
        else:
            shutil.copyfile(source, tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path, False
        return path, True
    finally:
        tmp.unlink(missing_ok=True)


def _referenced(engine: Engine, file: Path) -> bool:
    """Whether a report version points to the file (then it is not this failed call's to remove)."""
    try:
        with session_scope(engine) as session:
            return session.scalar(select(Report.id).where(Report.file_path == str(file)).limit(1)) is not None
    except Exception:  # the store is unreachable: the file was ours alone, since no row could point to it
        return False


def submit_report(
    engine: Engine,
    calendar: Calendar,
    *,
    unit: str,
    milestone_id: str,
    at: dt.datetime,
    actor: Actor,
    file_name: str | None = None,
    content: bytes | None = None,
    file: Path | None = None,
) -> Submission:
    """Take a report at ``at`` or raise `ReportRefused`; every outcome is in the audit log.

    The report's file is ``content`` (bytes) or ``file`` (a path, read in chunks: an upload never sits in memory).
    """
    attempt = _Attempt(engine, calendar, unit, milestone_id, actor, at)
    milestone = _milestone_owed(attempt)
    _check_door_open(attempt, milestone)
    _check_size(attempt, content, file)
    source: Path | bytes | None = content if content is not None else file
    sha = hashlib.sha256(content).hexdigest() if content is not None else _file_digest(file) if file else None
    created: list[Path] = []  # files this call put in place: kept only if a version points to them in the end
    try:
        return _take(attempt, milestone, file_name, source, sha, created)
    finally:
        for path in created:
            if not _referenced(engine, path):
                path.unlink(missing_ok=True)


def _milestone_owed(attempt: _Attempt) -> Milestone:
    """The milestone asked for, if the unit exists, owes it a report, and the sender may act for the unit."""
    calendar, unit = attempt.calendar, attempt.unit
    if unit not in calendar.tree or unit == calendar.office.code:
        raise attempt.refuse(
            "unknown_unit",
            f"战役 {calendar.id} 没有单位“{short_masked(unit)}”。"
            f"请核对单位代码（campaign units --campaign {calendar.id}）。",
        )
    name = calendar.name_of(unit)
    acting = attempt.actor.unit
    if not calendar.may_act(acting, unit):  # before the milestone: a probe learns nothing of another unit
        raise attempt.refuse(
            "forbidden",
            f"此凭证只能为单位 {acting} 及其下级单位报送，不能代{name}报送。"
            "请使用本单位的令牌，或请上级单位、省级办公室代报。",
        )
    milestone = next((item for item in calendar.milestones if item.id == attempt.milestone_id), None)
    if milestone is None or unit not in calendar.owers(milestone):
        known = "、".join(item.id for item in calendar.owed_by(unit) if not item.verified)  # none is by hand
        raise attempt.refuse(
            "unknown_milestone",
            f"{name}无需报送节点“{short_masked(attempt.milestone_id, 32)}”。该单位应报送的节点：{known or '无'}。",
        )
    if milestone.verified and attempt.actor.name != VERIFIED_BY:
        raise attempt.refuse(
            "verified_by_results",
            f"“{milestone.name}”按核查结果完成：{name}的问题清单每个问题都填写核查结果并上传后，系统即记为完成，"
            "无需（也不能）另行报送。请上传填好的问题清单（campaign verify submit）。",
        )
    return milestone


def _check_door_open(attempt: _Attempt, milestone: Milestone) -> None:
    closes = attempt.calendar.door_closes(milestone)
    if attempt.at >= closes:
        raise attempt.refuse(
            "closed",
            f"“{milestone.name}”已于 {local_text(closes, end=True)} 截止报送（信息系统已关闭），"
            f"本次报送未被接受，未作任何更改。如确需补报，请联系{attempt.calendar.office.name}。",
        )


def _check_size(attempt: _Attempt, content: bytes | None, file: Path | None) -> None:
    size = len(content) if content is not None else file.stat().st_size if file is not None else 0
    limit = max_report_bytes()
    if size > limit:
        raise attempt.refuse(
            "too_large",
            f"附件 {size / 1024 / 1024:.1f} MB，超过上限 {limit / 1024 / 1024:.0f} MB。请压缩或拆分后重新报送。",
        )


def _take(
    attempt: _Attempt,
    milestone: Milestone,
    file_name: str | None,
    source: Path | bytes | None,
    sha: str | None,
    created: list[Path],
) -> Submission:
    """The report as a new version (or the same file again), retried while racing submissions take versions."""
    calendar, unit = attempt.calendar, attempt.unit
    for tries in range(ATTEMPTS):
        if tries:
            time.sleep(random.uniform(0.01, 0.05) * tries)  # noqa: S311 - jitter, not a secret
        try:
            with session_scope(attempt.engine) as session:
                lock_unit(session, calendar.id, unit)
                latest = session.scalar(
                    select(Report)
                    .where(Report.campaign_id == calendar.id, Report.unit == unit, Report.milestone == milestone.id)
                    .order_by(Report.version.desc())
                    .limit(1)
                )
                if latest is not None and latest.file_sha256 == sha:
                    return _same_again(session, attempt, milestone, latest)
                path: Path | None = None
                if source is not None and sha is not None:
                    path, new = _store_file(calendar, unit, milestone.id, file_name or "report", source, sha)
                    if new:
                        created.append(path)
                version = (latest.version + 1) if latest is not None else 1
                return _new_version(session, attempt, milestone, version, file_name, sha, path)
        except IntegrityError:
            # Another submission took this version number at the same moment: read again and retry (the file
            # stays for the retry; if the retry finds the same bytes in force, the caller removes it).
            continue
    raise attempt.refuse(
        "busy",
        f"同一时间{calendar.name_of(unit)}有多份“{milestone.name}”在报送，本份未能保存，未作任何更改。请稍后重新报送。",
    )


def _same_again(session: Session, attempt: _Attempt, milestone: Milestone, latest: Report) -> Submission:
    """The same file as the version in force: no new version, and a window left shut is opened now."""
    attempt.record(session, "duplicate", f"与第 {latest.version} 版相同，未新增版本")
    return Submission(
        attempt.calendar.id,
        attempt.unit,
        milestone.id,
        "duplicate",
        latest.version,
        latest.received_at,
        latest.late,
        latest.on_behalf,
        latest.file_sha256,
        _open_windows(session, attempt, milestone),
    )


def _new_version(
    session: Session,
    attempt: _Attempt,
    milestone: Milestone,
    version: int,
    file_name: str | None,
    sha: str | None,
    path: Path | None,
) -> Submission:
    """The report as version ``version``, on time or late, audited; the windows it opens are opened."""
    late = attempt.at >= milestone.due
    session.add(
        Report(
            campaign_id=attempt.calendar.id,
            unit=attempt.unit,
            milestone=milestone.id,
            kind=milestone.report.value if milestone.report else DECLARATION,
            version=version,
            received_at=attempt.at,
            late=late,
            submitted_by=attempt.actor.name,
            on_behalf=attempt.on_behalf,
            file_name=file_name,
            file_sha256=sha,
            file_path=str(path) if path else None,
        )
    )
    session.flush()
    lateness = f"逾期（截止 {local_text(milestone.due, end=True)}）" if late else "按时"
    behalf = ""
    if attempt.on_behalf:
        behalf = (
            "（省级代报）" if attempt.actor.unit is None else f"（{attempt.calendar.name_of(attempt.actor.unit)}代报）"
        )
    attempt.record(
        session, "late" if late else "accepted", f"收到“{milestone.name}”第 {version} 版，{lateness}{behalf}"
    )
    return Submission(
        attempt.calendar.id,
        attempt.unit,
        milestone.id,
        "late" if late else "on_time",
        version,
        attempt.at,
        late,
        attempt.on_behalf,
        sha,
        _open_windows(session, attempt, milestone),
    )


def _open_windows(session: Session, attempt: _Attempt, milestone: Milestone) -> tuple[str, ...]:
    """The entry windows this report opens for the unit (those that require it, once all they require is in)."""
    calendar = attempt.calendar
    return tuple(
        window.id
        for window in calendar.entry_windows
        if milestone.id in window.requires
        and try_open(session, calendar, window, attempt.unit, attempt.at, attempt.actor.name)
    )


def first_received_by(engine: Engine, calendar_id: str, units: list[str], milestone: str) -> dict[str, dt.datetime]:
    """When each of the units' first version came in, for those that have reported or declared the milestone."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Report.unit, func.min(Report.received_at))
            .where(Report.campaign_id == calendar_id, Report.unit.in_(units), Report.milestone == milestone)
            .group_by(Report.unit)
        )
        return {
            unit: received.replace(tzinfo=dt.UTC) if received.tzinfo is None else received for unit, received in rows
        }


def first_received(engine: Engine, calendar_id: str, unit: str, milestone: str) -> dt.datetime | None:
    """When the unit's first version of the report came in (what counts for on time or late)."""
    with session_scope(engine) as session:
        return session.scalar(
            select(func.min(Report.received_at)).where(
                Report.campaign_id == calendar_id, Report.unit == unit, Report.milestone == milestone
            )
        )
