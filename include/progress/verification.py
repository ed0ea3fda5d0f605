"""Gates on data (issue 16): a milestone done when a unit's verification is.

Seed 000: "12月11日至20日，各市根据问题清单以及自查发现的问题，组织县、乡扶贫部门开展实地核查，对查实的问题进行整改。"
A milestone with ``verified: <stage>`` is owed by the units that get that stage's problem list; it is done the
moment every problem of the unit's list has a 核查结果 (a 不属实 the office rejected does not count). Nobody
declares it by hand (the door refuses): this module records it, as ``system:核查结果``, whenever the count may
have changed — a list uploaded back, a review, a validation run — and the status, reminders, rates and the
campaign DAG's gate then treat it as any report (on time, late, missing).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from include.calendar import Calendar
from include.door.submissions import VERIFIED_BY, Actor, ReportRefused, Submission, submit_report
from include.rules.results import verification_counts
from include.rules.stages import STAGES


def declare_if_verified(engine: Engine, calendar: Calendar, unit: str, at: dt.datetime) -> list[Submission]:
    """Record every ``verified`` milestone of the unit whose list is fully answered at ``at`` (a second time is a
    duplicate, changing nothing); one whose door has closed stays as it is."""
    done = []
    for milestone in calendar.milestones:
        if milestone.verified not in STAGES or unit not in calendar.owers(milestone):
            continue
        answered, total = verification_counts(engine, calendar, unit, milestone.verified)
        if total == 0 and not (_listed(calendar, unit, milestone.verified) and _entered(calendar, unit)):
            continue  # no list of that stage yet, or one of no data: nothing has been verified
        if answered < total:
            continue
        try:
            done.append(
                submit_report(
                    engine, calendar, unit=unit, milestone_id=milestone.id, at=at, actor=Actor(VERIFIED_BY, None)
                )
            )
        except ReportRefused as refused:
            if refused.reason != "closed":
                raise
    return done


def _entered(calendar: Calendar, unit: str) -> bool:
    """Whether the unit has records of any form, its own or its counties' (whose problems are in its list): an empty
    list of a unit that entered nothing verifies nothing."""
    from include.forms import records

    return any(
        calendar.reporting_unit(stored) == unit
        for form_id in calendar.forms
        for stored in records.pin(calendar.id, form_id)
    )


def _listed(calendar: Calendar, unit: str, stage: str) -> bool:
    from include.rules.problems import stored_problems

    return stored_problems(calendar.id, stage, unit) is not None
