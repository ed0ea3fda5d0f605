"""Which reminders are due on a day: the calendar's reminder policy (``reminders:``) against the store.

Every milestone is owed by the units of one level (``calendar.owers``: the cities' completion report, the
counties' declaration that data entry is done, Longju's villages' signed lists); a unit that has reported or
declared it is never reminded of it. Kinds, for the units that have not:
- ``before_3``, ``before_1``: that many working days before the due day (the policy's
  ``before_working_days``), on working days;
- ``due_today``: on the due day, even a holiday;
- ``overdue``: each working day after the due day while late reports are still taken, to the unit;
- digests up the tree, never one message per child to an office: from ``escalate_parent_after`` working
  days late, ``escalation_parent`` to each parent office (a city for its counties, the town for its
  villages) listing its lagging children; from ``escalate_province_after``, ``escalation_province`` to the
  province, one per parent office (one where the parent is the province itself);
- a gate on data (``verified:``): the same kinds, only to units whose problem list still has problems without a
  核查结果 (with the count answered); a unit with no list has nothing to verify and is not reminded;
- ``closing``: on the day an entry window or the system closes, even a holiday, to the units concerned.

- ``pace``: on working days of the entry, to a unit with a workload (工作台账, include/door/workload.py) that
  has not declared its entry done and that, at the pace of its last days, will finish after its deadline (or
  has entered nothing in those days); ``pace_parent``: one digest to its parent office naming them all.
  A unit without a workload gets none: the registry's registered households are no workload (this year's forms
  hold the changes, about 5 % of it).

Each reminder has a dedupe key (campaign, milestone, unit, kind, day): the outbox sends a key once. ``unit`` is
whom it is about (the parent office for a digest), ``to`` the unit whose channel receives it, ``about`` the
units it covers. Texts are Chinese and carry no names, ID numbers or phone numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine

from include.calendar import Calendar
from include.calendar.instants import last_day, local_day, local_text
from include.calendar.tree import LEVEL_WORDS
from include.calendar.workdays import is_working_day, working_days_between
from include.door.ingest import open_window
from include.door.status import campaign_status, main_window
from include.door.workload import entry_span, projections, workload_units
from include.rules.results import verification_counts


@dataclass(frozen=True)
class Reminder:
    campaign: str
    milestone: str  # a milestone id, a window id for ``closing``, or ``system_close``
    unit: str  # the unit the reminder is about; the parent office for a digest
    kind: str
    channel: str  # where it goes: the channel of ``to``
    day: str  # the local day, ISO
    text: str
    level: str = ""  # the level of ``unit``
    to: str = ""  # the unit whose channel receives it
    about: tuple[str, ...] = ()  # the units it covers: ``unit`` itself, or a digest's lagging children

    @property
    def key(self) -> str:
        """Dedupe key: a reminder with this key is sent once, whatever reruns or crashes happen."""
        return f"{self.campaign}/{self.milestone}/{self.unit}/{self.kind}/{self.day}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "about": list(self.about), "key": self.key}


def channel_of(calendar: Calendar, code: str) -> str:
    """A unit's channel: its own entry in ``channels``, else its level's pattern, else the default pattern."""
    policy = calendar.reminders
    if code in policy.channels:
        return policy.channels[code]
    node = calendar.tree.get(code)
    pattern = policy.level_channels.get(node.level, policy.channel) if node is not None else policy.channel
    return pattern.format(code=code, parent=node.parent if node is not None else "")


def reminders_due(engine: Engine, calendar: Calendar, at: dt.datetime) -> list[Reminder]:
    """Every reminder the policy implies for the local day of ``at``, in a stable order."""
    policy = calendar.reminders
    tree = calendar.tree
    day = local_day(at)
    working = is_working_day(day)
    status = campaign_status(engine, calendar, at)
    states = {(unit["unit"], item["id"]): item["state"] for unit in status["units"] for item in unit["milestones"]}
    url = policy.progress_url.format(campaign=calendar.id)
    province = policy.province or calendar.office
    found: list[Reminder] = []

    def level(code: str) -> str:
        node = tree.get(code)
        return node.level if node is not None else calendar.office_level

    def add(
        milestone: str, unit: str, kind: str, text: str, to: str | None = None, about: tuple[str, ...] = ()
    ) -> None:
        to = to or unit
        found.append(
            Reminder(
                calendar.id, milestone, unit, kind, channel_of(calendar, to), day.isoformat(), text,
                level(unit), to, about or (unit,),
            )
        )  # fmt: skip

    for milestone in sorted(calendar.milestones, key=lambda item: (item.due, item.id)):
        owers = calendar.owers(milestone)
        pending = [code for code in owers if states.get((code, milestone.id)) in ("pending", "missing")]
        counts: dict[str, tuple[int, int]] = {}
        if milestone.verified:  # a gate on data: only a unit with problems still unanswered has anything to do
            counts = {code: verification_counts(engine, calendar, code, milestone.verified) for code in pending}
            pending = [code for code in pending if counts[code][0] < counts[code][1]]
        if not pending:
            continue
        due_day = last_day(milestone.due)
        due = local_text(milestone.due, end=True) + calendar.until_words(milestone)
        duty = "尚未报送" if milestone.report else "请按时完成，完成后在系统中报告已完成"
        if milestone.verified:
            duty = "问题清单尚有问题未填写核查结果，请在清单的“核查结果”“说明”列填写后上传"
        if day < due_day:
            ahead = working_days_between(day, due_day) if working else 0
            if ahead in policy.before_working_days:
                for code in pending:
                    add(
                        milestone.id, code, f"before_{ahead}",
                        f"【截止提醒】{calendar.name_of(code)}：“{milestone.name}”将于{due}截止，还有{ahead}个工作日，"
                        f"{_answered(counts, code)}{duty}。进度见 {url}",
                    )  # fmt: skip
            continue
        if day == due_day:
            if policy.on_due_day:
                for code in pending:
                    add(
                        milestone.id, code, "due_today",
                        f"【今日截止】{calendar.name_of(code)}：“{milestone.name}”今天截止（{due}），"
                        f"{_answered(counts, code)}{duty}。"
                        f"进度见 {url}",
                    )  # fmt: skip
            continue
        closes = calendar.door_closes(milestone)
        if not (working and policy.overdue_daily) or at >= closes:
            continue
        late = working_days_between(due_day, day)
        until = local_text(closes, end=True)
        done = "尚未报送" if milestone.report else "尚未核查完" if milestone.verified else "尚未报告完成"
        act = "报送" if milestone.report else "填写核查结果并上传" if milestone.verified else "完成并报告"
        for code in pending:
            add(
                milestone.id, code, "overdue",
                f"【逾期】{calendar.name_of(code)}：“{milestone.name}”已于{due}截止，已逾期{late}个工作日，"
                f"{_answered(counts, code)}{done}。请尽快{act}（{until}前仍可补报，记为逾期）。进度见 {url}",
            )  # fmt: skip
        if late < policy.escalate_parent_after and late < policy.escalate_province_after:
            continue
        to_province = late >= policy.escalate_province_after
        by_parent: dict[str, list[str]] = {}
        for code in pending:
            node = tree.get(code)
            by_parent.setdefault(node.parent if node is not None and node.parent else calendar.office.code, []).append(
                code
            )
        for parent, children in by_parent.items():
            word = LEVEL_WORDS.get(level(children[0]), "单位")
            listed = "、".join(calendar.name_of(code) for code in children)
            text = (
                f"【逾期通报】{calendar.name_of(parent) if parent in tree else parent}：以下{len(children)}个{word}"
                f"{done}“{milestone.name}”（{due}截止，已逾期{late}个工作日）：{listed}。请督促。"
            )
            if parent == province.code:  # the parent is the province: one digest, of the later kind once due
                add(
                    milestone.id,
                    parent,
                    "escalation_province" if to_province else "escalation_parent",
                    text,
                    about=tuple(children),
                )
                continue
            if late >= policy.escalate_parent_after:
                add(milestone.id, parent, "escalation_parent", text, about=tuple(children))
            if to_province:
                add(milestone.id, parent, "escalation_province", text, to=province.code, about=tuple(children))

    if working:
        _pace_reminders(engine, calendar, at, states, add, url)

    window = main_window(calendar)
    for item in calendar.entry_windows:
        if last_day(item.closes) != day or item.closes == calendar.system_close.at:
            continue  # a window closing with the system: the system's closing says it
        closes = local_text(item.closes, end=True)
        for unit in status["units"]:
            if item is window and (unit["entry_window"] or {}).get("state") != "open":
                continue
            add(
                item.id, unit["unit"], "closing",
                f"【今日关闭】{unit['name']}：“{item.name}”将于{closes}关闭，请在关闭前完成录入和修改。",
            )  # fmt: skip
    if last_day(calendar.system_close.at) == day:
        closes = local_text(calendar.system_close.at, end=True)
        for unit in status["units"]:
            add(
                "system_close", unit["unit"], "closing",
                f"【系统关闭】{unit['name']}：信息系统将于{closes}关闭，关闭后不能再录入或修改数据。",
            )  # fmt: skip
    return found


def _answered(counts: dict[str, tuple[int, int]], code: str) -> str:
    """ "已核查 3/5，" for a unit of a gate on data, "" otherwise."""
    if code not in counts:
        return ""
    answered, total = counts[code]
    return f"问题清单已核查 {answered}/{total}，"


def _pace_reminders(
    engine: Engine, calendar: Calendar, at: dt.datetime, states: dict, add: Callable[..., None], url: str
) -> None:
    """The units with a workload whose pace misses their deadline (or that entered nothing lately), while their
    entry window is open and they have not declared their entry done: each told where its pace takes it, and one
    digest per parent office naming them. An office's sum of its counties is shown, not reminded."""
    day = local_day(at)
    workers = set(workload_units(calendar))
    behind: dict[str, list[tuple[str, str]]] = {}
    for code, ahead in sorted(projections(engine, calendar, at).items()):
        node = calendar.tree.get(code)
        start, _, milestone = entry_span(calendar, code)
        reporting = calendar.reporting_unit(code)
        if node is None or code not in workers or reporting is None or ahead.state not in ("behind", "stalled"):
            continue
        if not start <= day <= ahead.deadline or open_window(engine, calendar, reporting, at) is None:
            continue  # before the entry, after its deadline, or while no data can be entered
        if milestone is not None and states.get((code, milestone)) not in ("pending", "missing"):
            continue  # declared done
        name = calendar.name_of(code)
        share = f"{ahead.done / ahead.workload:.0%}"
        head = f"【进度预警】{name}：工作台账 {ahead.workload} 户，已录入 {ahead.done} 户（{share}）"
        deadline = f"{ahead.deadline:%m-%d}"
        if ahead.state == "behind":
            where = f"晚{ahead.days_late}天"
            text = (
                f"{head}；近{ahead.days}天每天约 {_per_day(ahead.pace)} 户，按此进度预计 {ahead.finish:%m-%d} 完成，"
                f"晚于 {deadline} 截止 {ahead.days_late} 天。请加快录入。进度见 {url}"
            )
        else:
            where = "近期无录入"
            text = f"{head}；近{ahead.days}天没有新录入，{deadline} 截止。请尽快录入。进度见 {url}"
        add(milestone or "entry", code, "pace", text)
        behind.setdefault(node.parent or calendar.office.code, []).append((code, f"{name}（{where}）"))
    for parent, units in behind.items():
        word = LEVEL_WORDS.get(calendar.tree.get(units[0][0]).level, "单位")  # type: ignore[union-attr]
        milestone = entry_span(calendar, units[0][0])[2] or "entry"
        listed = "、".join(text for _, text in units)
        add(
            milestone, parent, "pace_parent",
            f"【进度预警】{calendar.name_of(parent)}：按目前进度，以下{len(units)}个{word}将不能按期完成录入：{listed}。"
            f"请督促。进度见 {url}",
            about=tuple(code for code, _ in units),
        )  # fmt: skip


def _per_day(pace: float | None) -> str:
    """A pace as a clerk reads it: 12 a day, 0.4 a day."""
    return f"{pace:.0f}" if pace is not None and pace >= 10 else f"{pace or 0:.1f}".removesuffix(".0")
