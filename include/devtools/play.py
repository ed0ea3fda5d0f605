"""Who does what when in a simulated campaign (``campaign simulate``) and in ``make start``'s demo: each unit's
reports and declarations on time, late or never, one after the closing, one with another unit's token, the
counties' part where the calendar has one, and the officer's answers to applications."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from include.calendar import Calendar
from include.calendar.tree import LEVEL_WORDS


@dataclass(frozen=True)
class Attempt:
    at: dt.datetime
    unit: str  # the unit the report is for
    milestone: str
    token_of: str  # whose token is used
    expect_http: int


@dataclass(frozen=True)
class Play:
    attempts: list[Attempt]
    expected: dict[tuple[str, str], str]  # (unit, milestone) -> on_time | late | missing
    roles: dict[str, str]  # role -> unit code
    # Where the calendar's window asks the province to approve: what the officer does with each unit's
    # application (approve, reject, or leave it to time out), and the outcome the store must then record.
    answers: dict[str, str] = field(default_factory=dict)  # unit -> approve | reject | timeout
    approvals: dict[str, str] = field(default_factory=dict)  # unit -> approved | rejected | timed_out | not_applied
    # Milestones the units below owe (Shandong's counties' data entry): each top-level unit's gate, as the grid
    # must show it: (unit, milestone) -> (state, label after the unit's name), e.g. ("success", "12/12 县区已完成").
    gates: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


def make_play(calendar: Calendar, seed: int = 2020) -> Play:
    """Who does what when, at realistic places between each phase's start and each door's closing."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible play, not a secret
    units = calendar.unit_codes
    roles = {"never": units[-1], "after_closing": units[-2], "cross_token": units[1], "victim": units[2]}
    milestones = [item for item in calendar.milestones if calendar.reporters_of(item)]
    closing_target = max(
        (item for item in milestones if calendar.door_closes(item) == calendar.system_close.at),
        key=lambda item: item.due,
        default=milestones[-1],
    )
    attempts: list[Attempt] = []
    expected: dict[tuple[str, str], str] = {}
    late_count = 0
    for milestone in milestones:
        phase = calendar.phase(milestone.phase)
        door = calendar.door_closes(milestone)
        for index, unit in enumerate(calendar.reporters_of(milestone)):
            if unit == roles["never"]:
                expected[(unit, milestone.id)] = "missing"
                continue
            if unit == roles["after_closing"] and milestone is closing_target:
                attempts.append(Attempt(door + dt.timedelta(seconds=1.5), unit, milestone.id, unit, 409))
                expected[(unit, milestone.id)] = "missing"
                continue
            can_be_late = (door - milestone.due).total_seconds() > 4
            if can_be_late and (rng.random() < 0.2 or (late_count == 0 and index == 3)):
                at = milestone.due + (door - milestone.due) * rng.uniform(0.15, 0.5)
                expected[(unit, milestone.id)] = "late"
                late_count += 1
            else:
                # Well before the due instant: a phase start also starts a gate task per unit, and on a small
                # machine those task processes can hold an answer back by seconds.
                at = phase.starts + (milestone.due - phase.starts) * rng.uniform(0.3, 0.65)
                expected[(unit, milestone.id)] = "on_time"
            attempts.append(Attempt(at, unit, milestone.id, unit, 201))
    first = milestones[0]
    victim_at = next(item.at for item in attempts if (item.unit, item.milestone) == (roles["victim"], first.id))
    attempts.append(Attempt(victim_at - dt.timedelta(seconds=1), roles["victim"], first.id, roles["cross_token"], 403))
    gates = _below_play(calendar, rng, roles, attempts, expected)
    gates |= _verified_play(calendar, expected)
    answers, approvals = _officer_play(calendar, expected, roles)
    return Play(sorted(attempts, key=lambda item: item.at), expected, roles, answers, approvals, gates)


def _below_play(
    calendar: Calendar,
    rng: random.Random,
    roles: dict[str, str],
    attempts: list[Attempt],
    expected: dict[tuple[str, str], str],
) -> dict[tuple[str, str], tuple[str, str]]:
    """The counties' part, where the calendar has one (seed 000: "县、乡扶贫部门完成全部数据录入"): every county
    declares on time, except one late under the first city and none under the city that never reports; the
    counties of one city declare through their city's token (on behalf); one county tries its sibling's.
    Returns each city's gate as the grid must show it."""
    units = calendar.unit_codes
    roles |= {"late_county_city": units[0], "on_behalf": units[5 % len(units)]}
    gates: dict[tuple[str, str], tuple[str, str]] = {}
    for milestone in calendar.milestones:
        level = calendar.level_of(milestone)
        if level == calendar.units.level or milestone.by == "office":
            continue
        owers = set(calendar.owers(milestone))
        phase = calendar.phase(milestone.phase)
        door = calendar.door_closes(milestone)
        word = LEVEL_WORDS[level]
        for city in units:
            counties = [node.code for node in calendar.tree.subtree(city)[1:] if node.code in owers]
            if not counties:
                continue
            late = 0
            for index, county in enumerate(counties):
                if city == roles["never"]:
                    expected[(county, milestone.id)] = "missing"
                    continue
                token = city if city == roles["on_behalf"] else county
                if city == roles["late_county_city"] and index == 1 and (door - milestone.due).total_seconds() > 4:
                    at = milestone.due + (door - milestone.due) * rng.uniform(0.15, 0.4)
                    expected[(county, milestone.id)] = "late"
                    late += 1
                else:  # spread wide over the phase: 136 counties answer within seconds of each other otherwise
                    at = phase.starts + (milestone.due - phase.starts) * rng.uniform(0.15, 0.75)
                    expected[(county, milestone.id)] = "on_time"
                attempts.append(Attempt(at, county, milestone.id, token, 201))
            if city == roles["late_county_city"] and len(counties) > 1:  # a county's token is not its sibling's
                sibling = next(item for item in attempts if (item.unit, item.milestone) == (counties[0], milestone.id))
                attempts.append(
                    Attempt(sibling.at - dt.timedelta(seconds=1), counties[0], milestone.id, counties[1], 403)
                )
            done = len(counties) if city != roles["never"] else 0
            label = f"{done}/{len(counties)} {word}已完成" + (f" · 逾期 {late}" if late else "")
            gates[(city, milestone.id)] = (
                ("success", label) if done == len(counties) else ("failed", f"{label} · 未完成 {len(counties) - done}")
            )
    return gates


def _verified_play(calendar: Calendar, expected: dict[tuple[str, str], str]) -> dict[tuple[str, str], tuple[str, str]]:
    """A gate on data (Shandong's verification, seed 000: "各市根据问题清单…开展实地核查"): the play enters no data and
    the validation waits until the campaign is over, so no unit has a list to answer and every gate fails when the
    door closes, counting none (the demo, whose units upload and answer, turns them green)."""
    gates: dict[tuple[str, str], tuple[str, str]] = {}
    for milestone in calendar.milestones:
        if not milestone.verified:
            continue
        for unit in calendar.owers(milestone):
            expected[(unit, milestone.id)] = "missing"
            gates[(unit, milestone.id)] = ("failed", "已核查 0/0 · 未完成")
    return gates


def _officer_play(
    calendar: Calendar, expected: dict[tuple[str, str], str], roles: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The officer approves most applications, rejects one (with a reason) and leaves one unanswered; a unit
    that never applies is never asked about."""
    window = next((item for item in calendar.entry_windows if item.approval), None)
    application = calendar.application_of(window) if window is not None else None
    if application is None:
        return {}, {}
    units = calendar.unit_codes
    roles |= {"rejected": units[3], "unanswered": units[4]}
    answers: dict[str, str] = {}
    approvals: dict[str, str] = {}
    for unit in calendar.reporters_of(application):
        if expected.get((unit, application.id)) == "missing":
            approvals[unit] = "not_applied"
            continue
        answers[unit] = {roles["rejected"]: "reject", roles["unanswered"]: "timeout"}.get(unit, "approve")
        approvals[unit] = {"approve": "approved", "reject": "rejected", "timeout": "timed_out"}[answers[unit]]
    return answers, approvals
