"""Which reminders are due on a day: the calendar's reminder policy (``reminders:``) against the store.

Kinds, for units that have not reported (a milestone the units do without a report: every unit):
- ``before_3``, ``before_1``: that many working days before the due day (the policy's
  ``before_working_days``), on working days;
- ``due_today``: on the due day, even a holiday;
- ``overdue``: each working day after the due day while late reports are still taken, to the unit;
  ``escalation_parent`` to its office from ``escalate_parent_after`` working days late, and
  ``escalation_province`` to the province from ``escalate_province_after`` (one message where the
  office is the province);
- ``progress``: during the policy's phases, to a unit whose entered households fall behind the share
  of its roster expected by now (even entry over the window) by more than ``progress_margin``;
- ``closing``: on the day an entry window or the system closes, even a holiday, to the units concerned.

Each reminder has a dedupe key (campaign, milestone, unit, kind, day): the outbox sends a key once.
Texts are Chinese and carry no names, ID numbers or phone numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy.engine import Engine

from include.calendar import Calendar
from include.calendar.instants import last_day, local_day, local_text
from include.calendar.model import Milestone
from include.calendar.workdays import is_working_day, working_days_between
from include.door.status import campaign_status, main_window
from include.progress.report import expected_share, unit_progress


@dataclass(frozen=True)
class Reminder:
    campaign: str
    milestone: str  # a milestone id, a window id for ``closing`` and ``progress``, or ``system_close``
    unit: str  # the unit the reminder is about
    kind: str
    channel: str  # where it goes: the unit's, its office's or the province's channel
    day: str  # the local day, ISO
    text: str

    @property
    def key(self) -> str:
        """Dedupe key: a reminder with this key is sent once, whatever reruns or crashes happen."""
        return f"{self.campaign}/{self.milestone}/{self.unit}/{self.kind}/{self.day}"

    def as_json(self) -> dict[str, str]:
        return {**asdict(self), "key": self.key}


def channel_of(calendar: Calendar, code: str) -> str:
    policy = calendar.reminders
    return policy.channels.get(code, policy.channel.format(code=code))


def _pending(calendar: Calendar, milestone: Milestone, states: dict[tuple[str, str], str]) -> list[str]:
    """The units that still owe the milestone: no report yet, or every unit where nothing is reported."""
    if milestone.report is None:
        return calendar.unit_codes
    return [
        code for code in calendar.reporters_of(milestone) if states.get((code, milestone.id)) in ("pending", "missing")
    ]


def reminders_due(engine: Engine, calendar: Calendar, at: dt.datetime) -> list[Reminder]:
    """Every reminder the policy implies for the local day of ``at``, in a stable order."""
    policy = calendar.reminders
    day = local_day(at)
    working = is_working_day(day)
    names = calendar.unit_names
    status = campaign_status(engine, calendar, at)
    states = {(unit["unit"], item["id"]): item["state"] for unit in status["units"] for item in unit["milestones"]}
    url = policy.progress_url.format(campaign=calendar.id)
    office = calendar.office
    province = policy.province or office
    found: list[Reminder] = []

    def add(milestone: str, unit: str, kind: str, channel: str, text: str) -> None:
        found.append(Reminder(calendar.id, milestone, unit, kind, channel, day.isoformat(), text))

    for milestone in sorted(calendar.milestones, key=lambda item: (item.due, item.id)):
        if milestone.by == "office":
            continue
        due_day = last_day(milestone.due)
        due = local_text(milestone.due, end=True)
        duty = "尚未报送" if milestone.report else "请按时完成"
        for code in _pending(calendar, milestone, states):
            name = names.get(code, code)
            if day < due_day and working:
                ahead = working_days_between(day, due_day)
                if ahead in policy.before_working_days:
                    add(
                        milestone.id, code, f"before_{ahead}", channel_of(calendar, code),
                        f"【截止提醒】{name}：“{milestone.name}”将于{due}截止，还有{ahead}个工作日，{duty}。"
                        f"进度见 {url}",
                    )  # fmt: skip
            elif day == due_day and policy.on_due_day:
                add(
                    milestone.id, code, "due_today", channel_of(calendar, code),
                    f"【今日截止】{name}：“{milestone.name}”今天截止（{due}），{duty}。进度见 {url}",
                )  # fmt: skip
            elif day > due_day and milestone.report and working and policy.overdue_daily:
                closes = calendar.door_closes(milestone)
                if at >= closes:
                    continue
                late = working_days_between(due_day, day)
                until = local_text(closes, end=True)
                add(
                    milestone.id, code, "overdue", channel_of(calendar, code),
                    f"【逾期】{name}：“{milestone.name}”已于{due}截止，已逾期{late}个工作日，尚未报送。"
                    f"请尽快报送（{until}前仍可补报，记为逾期）。进度见 {url}",
                )  # fmt: skip
                escalate = f"【逾期通报】{name}“{milestone.name}”已逾期{late}个工作日未报送（截止{due}），请督促。"
                to_province = late >= policy.escalate_province_after
                if late >= policy.escalate_parent_after and not (to_province and province.code == office.code):
                    add(milestone.id, code, "escalation_parent", channel_of(calendar, office.code), escalate)
                if to_province:
                    add(milestone.id, code, "escalation_province", channel_of(calendar, province.code), escalate)

    phase = next((p for p in calendar.phases if p.starts <= at < p.ends), None)
    window = main_window(calendar)
    if phase is not None and phase.id in policy.progress_phases and window is not None and working:
        expected = expected_share(window, at)
        closes = local_text(window.closes, end=True)
        for code, progress in unit_progress(calendar).items():
            if progress.share is None or progress.share >= expected - policy.progress_margin:
                continue
            add(
                window.id, code, "progress", channel_of(calendar, code),
                f"【进度提醒】{names.get(code, code)}：已录入{progress.entered}户，占底数{progress.roster}户的"
                f"{progress.share:.0%}，按计划此时应达到{expected:.0%}左右（{window.name}{closes}截止），请加快录入。"
                f"进度见 {url}",
            )  # fmt: skip

    for item in calendar.entry_windows:
        if last_day(item.closes) != day or item.closes == calendar.system_close.at:
            continue  # a window closing with the system: the system's closing says it
        closes = local_text(item.closes, end=True)
        for unit in status["units"]:
            if item is window and (unit["entry_window"] or {}).get("state") != "open":
                continue
            add(
                item.id, unit["unit"], "closing", channel_of(calendar, unit["unit"]),
                f"【今日关闭】{unit['name']}：“{item.name}”将于{closes}关闭，请在关闭前完成录入和修改。",
            )  # fmt: skip
    if last_day(calendar.system_close.at) == day:
        closes = local_text(calendar.system_close.at, end=True)
        for code, name in names.items():
            add(
                "system_close", code, "closing", channel_of(calendar, code),
                f"【系统关闭】{name}：信息系统将于{closes}关闭，关闭后不能再录入或修改数据。",
            )  # fmt: skip
    return found
