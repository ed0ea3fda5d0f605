"""Every unit's reports and entry window at one instant: on_time, late, missing or pending."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select

from include.calendar.instants import local_iso
from include.calendar.model import Calendar, EntryWindow
from include.door.windows import approval_view, window_view
from include.store.db import session_scope
from include.store.models import Report


def main_window(calendar: Calendar) -> EntryWindow | None:
    """The unit's entry window: the one in the entry phase, else the first."""
    windows = calendar.entry_windows
    return next((item for item in windows if item.phase == "entry"), windows[0] if windows else None)


# A milestone's state for a unit, and the word every page, workbook and command shows for it.
STATE_WORDS = {"on_time": "按时", "late": "逾期", "missing": "未报", "pending": "未到期"}
# A unit's entry window at an instant, and its word.
WINDOW_WORDS = {"not_open": "未开放", "open": "开放中", "closed": "已关闭"}


def milestone_state(due: dt.datetime, received_at: dt.datetime | None, at: dt.datetime) -> str:
    """One of ``STATE_WORDS``: received before the door's due instant, after it, not by a passed one, not yet due."""
    if received_at is not None:
        return "on_time" if received_at < due else "late"
    return "missing" if at >= due else "pending"


def campaign_status(engine: Engine, calendar: Calendar, at: dt.datetime) -> dict[str, Any]:
    """The JSON of ``campaign status``: reports received by ``at`` count, later ones do not."""
    with session_scope(engine) as session:
        firsts = {
            (unit, milestone): received
            for unit, milestone, received in session.execute(
                select(Report.unit, Report.milestone, func.min(Report.received_at))
                .where(Report.campaign_id == calendar.id, Report.received_at <= at)
                .group_by(Report.unit, Report.milestone)
            )
        }
        window = main_window(calendar)
        units = []
        for unit in calendar.unit_list:
            milestones = []
            for item in sorted(calendar.milestones, key=lambda item: item.due):
                if item.report is None or unit.code not in calendar.reporters_of(item):
                    continue
                received = firsts.get((unit.code, item.id))
                if received is not None and received.tzinfo is None:
                    received = received.replace(tzinfo=dt.UTC)
                milestones.append(
                    {
                        "id": item.id,
                        "state": milestone_state(item.due, received, at),
                        "received_at": local_iso(received) if received else None,
                    }
                )
            entry_window = None
            if window is not None:
                view = window_view(session, calendar, window, unit.code, at)
                entry_window = {
                    "state": view.state,
                    "opened_at": local_iso(view.opened_at) if view.opened_at else None,
                    "closes_at": local_iso(view.closes_at),
                }
                if window.approval:
                    answer = approval_view(session, calendar, window, unit.code, at)
                    entry_window["approval"] = {
                        "state": answer.state,
                        "by": answer.by,
                        "at": local_iso(answer.at) if answer.at else None,
                        "reason": answer.reason,
                    }
            units.append({"unit": unit.code, "name": unit.name, "milestones": milestones, "entry_window": entry_window})
    return {"campaign": calendar.id, "at": local_iso(at), "units": units}
