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
        return approval is not None and approval.approved
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


def record_approval(
    engine: Engine, calendar: Calendar, window_id: str, unit: str, *, approved: bool, by: str, at: dt.datetime
) -> bool:
    """Record the province's decision on a unit's application; True if the window opened now.

    A later decision replaces an earlier one (a wrong rejection can be put right), and both are audited.
    """
    window = calendar.window(window_id)
    verb = "批准" if approved else "驳回"
    with session_scope(engine) as session:
        lock_unit(session, calendar.id, unit)
        decided = session.scalar(
            select(Approval).where(
                Approval.campaign_id == calendar.id, Approval.window == window_id, Approval.unit == unit
            )
        )
        if decided is None:
            session.add(
                Approval(
                    campaign_id=calendar.id,
                    window=window_id,
                    unit=unit,
                    approved=approved,
                    decided_by=by,
                    decided_at=at,
                )
            )
            detail = f"{verb}开通“{window.name}”"
        elif decided.approved != approved:
            earlier = f"{'批准' if decided.approved else '驳回'}（{decided.decided_by}）"
            decided.approved, decided.decided_by, decided.decided_at = approved, by, at
            detail = f"改为{verb}开通“{window.name}”，取代此前的{earlier}"
        else:
            detail = None
        if detail is not None:
            session.flush()
            audit(
                session,
                at=at,
                action="approved" if approved else "rejected",
                actor=by,
                campaign_id=calendar.id,
                unit=unit,
                detail=detail,
            )
        return try_open(session, calendar, window, unit, at, by)


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
