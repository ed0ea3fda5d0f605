"""Entry windows per unit: opened by the unit's required reports (and the province's approval where the
calendar asks for it), closed at the calendar's closing instant. The state lives in the campaign store,
so the door (CLI, HTTP API) and the campaign DAG agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from include.calendar.instants import local_text
from include.calendar.model import Calendar, EntryWindow
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import Approval, Report, WindowState


def lock_unit(session: Session, campaign_id: str, unit: str) -> None:
    """Serialise, per campaign and unit, the transactions that add what opens a unit's window (a report, an
    approval) and then look whether everything is in. Without it, on PostgreSQL's READ COMMITTED a report and
    an approval committing at the same moment each miss the other, and the window stays shut (write skew).
    The lock is held to the transaction's end; SQLite has one writer at a time already."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"window:{campaign_id}:{unit}".encode()).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
        )


def _requirements_met(session: Session, calendar: Calendar, window: EntryWindow, unit: str) -> bool:
    for milestone in window.requires:
        found = session.scalar(
            select(Report.id).where(
                Report.campaign_id == calendar.id, Report.unit == unit, Report.milestone == milestone
            )
        )
        if found is None:
            return False
    if window.approval:
        approval = session.scalar(
            select(Approval).where(
                Approval.campaign_id == calendar.id, Approval.window == window.id, Approval.unit == unit
            )
        )
        return approval is not None and approval.outcome == "approved"
    return True


def _state_row(session: Session, calendar: Calendar, window: EntryWindow, unit: str) -> WindowState | None:
    return session.scalar(
        select(WindowState).where(
            WindowState.campaign_id == calendar.id, WindowState.window == window.id, WindowState.unit == unit
        )
    )


def try_open(session: Session, calendar: Calendar, window: EntryWindow, unit: str, at: dt.datetime, actor: str) -> bool:
    """Open the unit's window if everything it needs is in; True if this call opened it.

    A window qualified before its opening instant opens at that instant; after its closing, never.
    """
    if at >= window.closes:
        return False
    if _state_row(session, calendar, window, unit) is not None:
        return False
    if not _requirements_met(session, calendar, window, unit):
        return False
    opened_at = max(at, window.opens)
    session.add(WindowState(campaign_id=calendar.id, window=window.id, unit=unit, opened_at=opened_at))
    audit(
        session,
        at=at,
        action="window_opened",
        actor=actor,
        campaign_id=calendar.id,
        unit=unit,
        detail=f"“{window.name}”自 {local_text(opened_at)} 开放，至 {local_text(window.closes, end=True)} 关闭",
    )
    return True


def open_ready_windows(engine: Engine, calendar: Calendar, window_id: str, at: dt.datetime, actor: str) -> list[str]:
    """Open the window for every unit that qualifies (all of them where nothing is required)."""
    window = calendar.window(window_id)
    with session_scope(engine) as session:
        opened = []
        for unit in calendar.unit_list:
            lock_unit(session, calendar.id, unit.code)
            if try_open(session, calendar, window, unit.code, at, actor):
                opened.append(unit.code)
        return opened


def close_windows(engine: Engine, calendar: Calendar, window_id: str, at: dt.datetime, actor: str) -> list[str]:
    """Close the window for every unit at its closing instant; returns the units closed by this call."""
    window = calendar.window(window_id)
    closed = []
    with session_scope(engine) as session:
        rows = session.scalars(
            select(WindowState).where(
                WindowState.campaign_id == calendar.id,
                WindowState.window == window_id,
                WindowState.closed_at.is_(None),
            )
        )
        for row in rows:
            row.closed_at = window.closes
            closed.append(row.unit)
            audit(
                session,
                at=at,
                action="window_closed",
                actor=actor,
                campaign_id=calendar.id,
                unit=row.unit,
                detail=f"“{window.name}”于 {local_text(window.closes, end=True)} 关闭",
            )
    return closed


# The province's answer to a unit's application, and the word every status, page and refusal shows for it; a
# unit whose window asks for approval is also "pending" (applied, not yet answered) or "not_applied".
APPROVAL_WORDS = {
    "approved": "已批准",
    "rejected": "已驳回",
    "timed_out": "超时未审批",
    "pending": "待审批",
    "not_applied": "未申请",
}
NO_REASON = "审批人未填写原因"


@dataclass(frozen=True)
class Decision:
    """Who answered an application: an identity the audit log keeps (``airflow:<user id>``, ``cli:<name>``) and
    the person's name; a rejection's reason, which the unit is told."""

    by: str
    name: str | None = None
    reason: str | None = None

    @property
    def who(self) -> str:
        """The person as the audit log reads: their name and, where it says more, the identity."""
        if self.name and self.by.endswith(f":{self.name}"):
            return self.name
        return f"{self.name}，{self.by}" if self.name else self.by


def _approval(session: Session, calendar: Calendar, window_id: str, unit: str) -> Approval | None:
    return session.scalar(
        select(Approval).where(Approval.campaign_id == calendar.id, Approval.window == window_id, Approval.unit == unit)
    )


def record_approval(
    engine: Engine,
    calendar: Calendar,
    window_id: str,
    unit: str,
    *,
    approved: bool,
    by: str,
    at: dt.datetime,
    name: str | None = None,
    reason: str | None = None,
) -> bool:
    """Record the province's decision on a unit's application; True if the window opened now.

    A later decision replaces an earlier one or a timeout (a wrong rejection can be put right), and both are
    audited as "省级审批：…" with the person's name. A rejection always has a reason (``NO_REASON`` if none was
    given), which the unit's status and refusals quote.
    """
    window = calendar.window(window_id)
    decision = Decision(by, name or by.partition(":")[2] or by, (reason or "").strip() or None)
    outcome = "approved" if approved else "rejected"
    reason_text = None if approved else decision.reason or NO_REASON
    verb = f"批准开通{window.name}" if approved else f"驳回开通{window.name}"
    because = "" if approved else f"原因：{reason_text}；"
    with session_scope(engine) as session:
        lock_unit(session, calendar.id, unit)
        decided = _approval(session, calendar, window_id, unit)
        if decided is None:
            decided = Approval(campaign_id=calendar.id, window=window_id, unit=unit)
            session.add(decided)
            detail = f"省级审批：{verb}（{because}{decision.who}）"
        elif (decided.outcome, decided.reason) != (outcome, reason_text):
            earlier = APPROVAL_WORDS[decided.outcome]
            if decided.decided_by:
                earlier += f"（{Decision(decided.decided_by, decided.decided_by_name).who}）"
            detail = f"省级审批：改为{verb}（{because}{decision.who}），取代此前的{earlier}"
        else:
            detail = None
        if detail is not None:
            decided.approved, decided.outcome, decided.reason = approved, outcome, reason_text
            decided.decided_by, decided.decided_by_name, decided.decided_at = decision.by, decision.name, at
            session.flush()
            audit(session, at=at, action=outcome, actor=by, campaign_id=calendar.id, unit=unit, detail=detail)
        return try_open(session, calendar, window, unit, at, by)


def record_timeout(engine: Engine, calendar: Calendar, window_id: str, unit: str, at: dt.datetime) -> bool:
    """Record that nobody answered the unit's application before the window closed (超时未审批: no decision, no
    rejection); True if recorded now. A decision already recorded is never replaced by a timeout."""
    window = calendar.window(window_id)
    with session_scope(engine) as session:
        lock_unit(session, calendar.id, unit)
        if _approval(session, calendar, window_id, unit) is not None:
            return False
        session.add(
            Approval(
                campaign_id=calendar.id,
                window=window_id,
                unit=unit,
                approved=False,
                outcome="timed_out",
                decided_at=at,
            )
        )
        session.flush()
        audit(
            session,
            at=at,
            action="approval_timed_out",
            actor="airflow",
            campaign_id=calendar.id,
            unit=unit,
            detail=(f"省级审批：超时未审批，至 {local_text(window.closes, end=True)} 无人审批，{window.name}未开通"),
        )
        return True


@dataclass(frozen=True)
class ApprovalView:
    state: str  # one of APPROVAL_WORDS
    by: str | None = None  # the officer's name
    at: dt.datetime | None = None
    reason: str | None = None


def approval_view(
    session: Session, calendar: Calendar, window: EntryWindow, unit: str, at: dt.datetime
) -> ApprovalView:
    """The province's answer to the unit's application as it stood at ``at``."""
    decided = _approval(session, calendar, window.id, unit)
    if decided is not None and decided.decided_at <= at:
        name = decided.decided_by_name or decided.decided_by
        return ApprovalView(decided.outcome, name, decided.decided_at, decided.reason)
    application = calendar.application_of(window)
    applied = application is not None and session.scalar(
        select(Report.id).where(
            Report.campaign_id == calendar.id,
            Report.unit == unit,
            Report.milestone == application.id,
            Report.received_at <= at,
        )
    )
    return ApprovalView("pending" if applied else "not_applied")


@dataclass(frozen=True)
class WindowView:
    state: str  # not_open | open | closed
    opened_at: dt.datetime | None
    closes_at: dt.datetime


def window_view(session: Session, calendar: Calendar, window: EntryWindow, unit: str, at: dt.datetime) -> WindowView:
    """The unit's window as it stood at ``at`` (a window that needs nothing opens at its instant)."""
    row = _state_row(session, calendar, window, unit)
    opened_at = row.opened_at if row is not None else None
    if opened_at is None and not window.requires and not window.approval:
        opened_at = window.opens
    if opened_at is None or at < opened_at:
        state = "closed" if at >= window.closes else "not_open"
        return WindowView(state, None, window.closes)
    return WindowView("open" if at < window.closes else "closed", opened_at, window.closes)


def is_open(engine: Engine, calendar: Calendar, window_id: str, unit: str, at: dt.datetime) -> bool:
    window = calendar.window(window_id)
    with session_scope(engine) as session:
        return window_view(session, calendar, window, unit, at).state == "open"
