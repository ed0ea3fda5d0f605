"""Campaigns and the calendar instants the campaign DAG has passed, written idempotently."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Engine, select

from include.calendar.compress import to_yaml
from include.calendar.model import Calendar
from include.store.db import insert_or_ignore, session_scope
from include.store.models import CalendarEvent, Campaign


def calendar_sha256(calendar: Calendar) -> str:
    return hashlib.sha256(to_yaml(calendar).encode("utf-8")).hexdigest()


def register_campaign(engine: Engine, calendar: Calendar, at: dt.datetime) -> None:
    """Make the campaign known to the store; a changed calendar updates its name and hash."""
    digest = calendar_sha256(calendar)
    # Several instants of a campaign can pass at once: the first writer wins, the others change nothing.
    statement = (
        insert_or_ignore(engine, Campaign.__table__)
        .values(id=calendar.id, name=calendar.name, calendar_sha256=digest, registered_at=at)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    with session_scope(engine) as session:
        session.execute(statement)
        row = session.get(Campaign, calendar.id)
        if row.calendar_sha256 != digest:
            row.name, row.calendar_sha256 = calendar.name, digest


@dataclass(frozen=True)
class PassedInstant:
    key: str
    kind: str
    due_at: dt.datetime
    recorded_at: dt.datetime
    run_id: str | None


def record_event(
    engine: Engine,
    calendar: Calendar,
    *,
    key: str,
    kind: str,
    due_at: dt.datetime,
    recorded_at: dt.datetime,
    run_id: str | None = None,
) -> bool:
    """Record that the campaign passed an instant; True if this call recorded it, False if known.

    The same field at the same instant is one event, however often a task is rerun.
    """
    register_campaign(engine, calendar, recorded_at)
    statement = (
        insert_or_ignore(engine, CalendarEvent.__table__)
        .values(campaign_id=calendar.id, key=key, kind=kind, due_at=due_at, recorded_at=recorded_at, run_id=run_id)
        .on_conflict_do_nothing(index_elements=["campaign_id", "key", "due_at"])
        .returning(CalendarEvent.__table__.c.id)
    )
    with session_scope(engine) as session:
        return session.execute(statement).first() is not None


def passed_instants(engine: Engine, campaign_id: str) -> list[PassedInstant]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(CalendarEvent).where(CalendarEvent.campaign_id == campaign_id).order_by(CalendarEvent.due_at)
        )
        return [PassedInstant(row.key, row.kind, row.due_at, row.recorded_at, row.run_id) for row in rows]
