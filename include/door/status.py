"""Every unit's reports and entry window at one instant: on_time, late, missing or pending."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from include.calendar.instants import local_iso
from include.calendar.model import Calendar, EntryWindow, Milestone
from include.door.windows import approval_view, window_view
from include.store.db import session_scope
from include.store.models import Report


def main_window(calendar: Calendar) -> EntryWindow | None:
    """The unit's entry window: the one in the entry phase, else the first."""
    windows = calendar.entry_windows
    return next((item for item in windows if item.phase == "entry"), windows[0] if windows else None)


# A milestone's state for a unit, and the word every page, workbook and command shows for it.
STATE_WORDS = {"on_time": "按时", "late": "逾期", "missing": "未报", "pending": "未到期", "not_owed": "—"}
# A unit's entry window at an instant, and its word.
WINDOW_WORDS = {"not_open": "未开放", "open": "开放中", "closed": "已关闭"}


def milestone_state(due: dt.datetime, received_at: dt.datetime | None, at: dt.datetime) -> str:
    """One of ``STATE_WORDS``: received before the door's due instant, after it, not by a passed one, not yet due."""
    if received_at is not None:
        return "on_time" if received_at < due else "late"
    return "missing" if at >= due else "pending"


def _first_reports(session: Session, calendar: Calendar, at: dt.datetime) -> dict[tuple[str, str], dt.datetime]:
    """When each unit's first version of each report or declaration came in, of those in by ``at``."""
    firsts = {}
    for unit, milestone, received in session.execute(
        select(Report.unit, Report.milestone, func.min(Report.received_at))
        .where(Report.campaign_id == calendar.id, Report.received_at <= at)
        .group_by(Report.unit, Report.milestone)
    ):
        firsts[(unit, milestone)] = received.replace(tzinfo=dt.UTC) if received.tzinfo is None else received
    return firsts


def tracked_milestones(calendar: Calendar) -> list[Milestone]:
    """The milestones units owe (a report, or a declaration that it is done), by due instant."""
    return [item for item in sorted(calendar.milestones, key=lambda item: item.due) if calendar.owers(item)]


def campaign_status(engine: Engine, calendar: Calendar, at: dt.datetime, under: str | None = None) -> dict[str, Any]:
    """The JSON of ``campaign status``: every unit that owes something, at every level, with its milestones and
    entry window (a county's is its city's), and the reporting rates of every office; reports received by ``at``
    count, later ones do not. ``under`` narrows it to one unit's subtree."""
    tree = calendar.tree
    tracked = tracked_milestones(calendar)
    owers = {item.id: set(calendar.owers(item)) for item in tracked}
    top = set(calendar.unit_codes)
    with session_scope(engine) as session:
        firsts = _first_reports(session, calendar, at)
        window = main_window(calendar)
        windows = {code: _window_json(session, calendar, window, code, at) for code in calendar.unit_codes}
        units = []
        for node in tree:
            if node.parent is None or (under is not None and not tree.within(node.code, under)):
                continue
            owed = [item for item in tracked if node.code in owers[item.id]]
            if not owed and node.code not in top:
                continue
            milestones = []
            for item in owed:
                received = firsts.get((node.code, item.id))
                milestones.append(
                    {
                        "id": item.id,
                        "state": milestone_state(item.due, received, at),
                        "received_at": local_iso(received) if received else None,
                    }
                )
            city = (
                node.code
                if node.code in top
                else next((n.code for n in tree.ancestors(node.code) if n.code in top), None)
            )
            units.append(
                {
                    "unit": node.code,
                    "name": node.name,
                    "level": node.level,
                    "parent": node.parent,
                    "milestones": milestones,
                    "entry_window": windows.get(city) if city is not None else None,
                }
            )
    states = {(unit["unit"], item["id"]): item["state"] for unit in units for item in unit["milestones"]}
    rates = reporting_rates(calendar, tracked, states, at, under)
    return {"campaign": calendar.id, "at": local_iso(at), "units": units, "rates": rates}


def lagging_first(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units with more missing, then more late milestones first; the tree's order otherwise."""
    return sorted(
        units,
        key=lambda unit: (
            -sum(item["state"] == "missing" for item in unit["milestones"]),
            -sum(item["state"] == "late" for item in unit["milestones"]),
        ),
    )


def _window_json(
    session: Session, calendar: Calendar, window: EntryWindow | None, unit: str, at: dt.datetime
) -> dict[str, Any] | None:
    if window is None:
        return None
    view = window_view(session, calendar, window, unit, at)
    entry_window: dict[str, Any] = {
        "state": view.state,
        "opened_at": local_iso(view.opened_at) if view.opened_at else None,
        "closes_at": local_iso(view.closes_at),
    }
    if window.approval:
        answer = approval_view(session, calendar, window, unit, at)
        entry_window["approval"] = {
            "state": answer.state,
            "by": answer.by,
            "at": local_iso(answer.at) if answer.at else None,
            "reason": answer.reason,
        }
    return entry_window


def _rate(states: list[str]) -> dict[str, Any]:
    expected = len(states)
    received = sum(state in ("on_time", "late") for state in states)
    on_time = states.count("on_time")
    return {
        "expected": expected,
        "received": received,
        "on_time": on_time,
        "received_rate": round(received / expected, 4) if expected else None,
        "on_time_rate": round(on_time / expected, 4) if expected else None,
    }


def rolled_up_state(states: list[str], at_due: bool) -> str:
    """An office's state on a milestone its units owe: received when all are, on time when all were."""
    if states and all(state == "on_time" for state in states):
        return "on_time"
    if states and all(state in ("on_time", "late") for state in states):
        return "late"
    return "missing" if at_due else "pending"


def reporting_rates(
    calendar: Calendar,
    tracked: list[Milestone],
    states: dict[tuple[str, str], str],
    at: dt.datetime,
    under: str | None = None,
) -> list[dict[str, Any]]:
    """For every office and milestone its units owe: expected, received and on time, with the two rates, over its
    children (a child that does not owe it itself counts as received when all its units below have) and over its
    whole subtree; and which of its children lag (have not), in the tree's order."""
    tree = calendar.tree
    found = []
    for office in tree:
        if not tree.children(office.code) or (under is not None and not tree.within(office.code, under)):
            continue
        below = [node.code for node in tree.subtree(office.code)[1:]]
        for item in tracked:
            subtree = [states[(code, item.id)] for code in below if (code, item.id) in states]
            if not subtree:
                continue
            children: dict[str, str] = {}
            for child in tree.children(office.code):
                if (child.code, item.id) in states:
                    children[child.code] = states[(child.code, item.id)]
                    continue
                theirs = [
                    states[(n.code, item.id)] for n in tree.subtree(child.code)[1:] if (n.code, item.id) in states
                ]
                if theirs:
                    children[child.code] = rolled_up_state(theirs, at >= item.due)
            lagging = [code for code, state in children.items() if state in ("missing", "pending")]
            found.append(
                {
                    "office": office.code,
                    "name": office.name,
                    "level": office.level,
                    "milestone": item.id,
                    "due": at >= item.due,
                    "children": _rate(list(children.values())),
                    "subtree": _rate(subtree),
                    "lagging": lagging,
                    "lagging_names": [calendar.name_of(code) for code in lagging],
                }
            )
    return found
