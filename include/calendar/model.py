"""The campaign calendar: phases, milestones, entry windows and the system closing of one plan.

A calendar file (config/campaigns/*.yaml) is read into these frozen models. Every instant carries
its offset; ``ends``, ``due`` and ``closes`` are exclusive (the 24:00 rule of DOMAIN.md).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, PrivateAttr

from include.calendar.instants import TIMEZONE, local_iso, parse_instant
from include.calendar.tree import LEVELS, Level, Tree


def _to_instant(value: object) -> pendulum.DateTime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"时间“{value}”缺少时区偏移（如 +08:00），不能使用不带时区的时间")
        return pendulum.instance(value).in_timezone("UTC")
    if isinstance(value, str):
        return parse_instant(value)
    raise ValueError(f"时间“{value}”应写成带时区偏移的 ISO-8601 文本，如 2020-11-30T24:00:00+08:00")


Instant = Annotated[
    dt.datetime, PlainValidator(_to_instant), PlainSerializer(local_iso, return_type=str, when_used="json")
]


class PhaseId(StrEnum):
    """Canonical phase ids, in the order of the seed plans (DOMAIN.md)."""

    training = "training"
    collection = "collection"
    entry = "entry"
    analysis = "analysis"
    verification = "verification"
    completion = "completion"
    summary = "summary"


PHASE_ORDER = list(PhaseId)


class ReportKind(StrEnum):
    """The reports a unit sends to its office (DOMAIN.md, "Units and reports")."""

    completion_report = "completion_report"  # 动态管理工作开展情况报告
    entry_application = "entry_application"  # 数据录入申请书
    signed_lists = "signed_lists"  # 村负责人、第一书记签字的名单
    verification_report = "verification_report"  # 核查整改报告
    sampling_report = "sampling_report"  # 贫困村退出抽检报告
    summary = "summary"  # 工作总结


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Office(_Frozen):
    code: str = Field(pattern=r"^\d{6}$")
    name: str


class Unit(_Frozen):
    code: str
    name: str
    placeholder: bool = False


class UnitsSpec(_Frozen):
    """Who reports to the office: a province's cities derived from GB/T 2260, or listed villages."""

    level: Literal["city", "village"]
    derive_from: str | None = Field(default=None, pattern=r"^\d{6}$")
    placeholder: bool = False
    listed: tuple[Unit, ...] = Field(default=(), alias="list")


class ParentDeadline(_Frozen):
    """A deadline set by a parent plan (district, nation) that this plan must keep inside."""

    id: str
    name: str
    due: Instant
    quote: str
    source: str | None = None


class Phase(_Frozen):
    id: PhaseId
    name: str
    starts: Instant
    ends: Instant
    quote: str
    within: str | None = None
    # The seed dates no end of its own: it ends with the item named (include/calendar/load.py fills ``ends``).
    until: str | None = None


class Milestone(_Frozen):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    phase: str
    due: Instant
    reporters: Literal["all"] | tuple[str, ...] = ()
    report: ReportKind | None = None
    within: str | None = None
    quote: str
    # Who does it: the units (the default; they get reminders) or the office itself (a training it holds,
    # the problem lists it sends back), which nobody is reminded of.
    by: Literal["units", "office"] = "units"
    # The level of the units that owe it (county for seed 000's data entry); the calendar's units by default.
    level: Level | None = None
    # A gate on data (issue 16): done when every problem of the unit's list of this stage has a 核查结果; the
    # system records it then (include/progress/verification.py), nobody declares it by hand.
    verified: Literal["analysis", "verification", "completion"] | None = None
    # The seed dates no due of its own: it is due with the item named, e.g. the window an application opens
    # (include/calendar/load.py fills ``due``); pages and reminders say so.
    until: str | None = None


# What an ``until`` may name, in the order the loader looks (Shanxi's window and phase are both "entry"): the
# section, the instant it gives, and the word for it.
UNTIL_SOURCES = (
    ("entry_windows", "closes", "关闭"),
    ("milestones", "due", "截止"),
    ("parent_deadlines", "due", ""),
    ("phases", "ends", "结束"),
)


class EntryWindow(_Frozen):
    """When units may enter data into the national system; per unit it opens on its report."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    phase: str
    opens: Instant
    closes: Instant
    requires: tuple[str, ...] = ()
    approval: Literal["province"] | None = None
    within: str | None = None
    quote: str


class SystemClose(_Frozen):
    at: Instant
    quote: str
    within: str | None = None


class ReminderPolicy(_Frozen):
    """When and where units are reminded (issue 6); every threshold is configurable per calendar."""

    send_at: str = Field(default="09:00", pattern=r"^\d{2}:\d{2}$")  # local time, on Chinese working days
    before_working_days: tuple[int, ...] = (3, 1)  # reminders this many working days before a due day
    on_due_day: bool = True  # sent even on a holiday
    overdue_daily: bool = True  # each working day after the due day, while late reports are taken
    escalate_parent_after: int = 1  # working days late: the unit's parent office is told as well
    escalate_province_after: int = 3  # working days late: the province is told
    progress_phases: tuple[PhaseId, ...] = (PhaseId.collection, PhaseId.entry)
    progress_margin: float = Field(default=0.10, ge=0, le=1)  # behind the expected share by more than this
    channel: str = "dm-{code}"  # the Slack channel of a unit or an office, by its code
    channels: dict[str, str] = {}  # channels that do not follow the pattern, by code
    level_channels: dict[Level, str] = {}  # a pattern per level ({code}, {parent}): 136 counties need no entries
    province: Office | None = None  # the province's office, where the calendar's office is below it
    progress_url: str = "http://localhost:8080/campaign/progress/{campaign}"


class Period(_Frozen):
    starts: Instant
    ends: Instant
    quote: str
    source: str | None = None


class StatusDate(_Frozen):
    at: Instant
    quote: str


class Threshold(_Frozen):
    value: float
    unit: str
    quote: str
    source: str | None = None


class CountyFigure(_Frozen):
    value: float
    source: str  # the document the figure is read from: "临淄区2022年国民经济和社会发展统计公报"


class CountyFigures(_Frozen):
    """A figure each county has of its own (县农民人均可支配收入) that a rule compares with: no seed gives it, so the
    office enters it per county with its source; a rule that needs it and finds none is reported not run."""

    label: str  # "县（市、区）农民人均可支配收入"
    unit: str
    quote: str  # the seed sentence that asks for it
    source: str | None = None  # that sentence's seed, where it is not the calendar's
    counties: dict[str, CountyFigure] = {}  # by the county's name as the forms write it (临淄区)


class CompressedFrom(_Frozen):
    id: str
    start: Instant
    span_seconds: float


class Calendar(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    seed: str
    year: int
    timezone: Literal["Asia/Shanghai"] = TIMEZONE
    office: Office
    units: UnitsSpec
    parent_deadlines: tuple[ParentDeadline, ...] = ()
    phases: tuple[Phase, ...] = Field(min_length=1)
    milestones: tuple[Milestone, ...] = ()
    entry_windows: tuple[EntryWindow, ...] = ()
    system_close: SystemClose
    income_period: Period | None = None
    status_date: StatusDate | None = None
    thresholds: dict[str, Threshold] = {}
    county_figures: dict[str, CountyFigures] = {}
    forms: tuple[str, ...] = ()  # the collection forms the units fill in (include/forms/specs)
    reminders: ReminderPolicy = ReminderPolicy()
    compressed_from: CompressedFrom | None = None

    _unit_list: tuple[Unit, ...] = PrivateAttr(default=())
    _tree: Tree = PrivateAttr(default_factory=lambda: Tree([]))

    @property
    def unit_list(self) -> tuple[Unit, ...]:
        """The units that report to the office, resolved by the loader."""
        return self._unit_list

    @property
    def unit_codes(self) -> list[str]:
        """The reporting units' codes, in the calendar's order."""
        return [unit.code for unit in self.unit_list]

    @property
    def unit_names(self) -> dict[str, str]:
        """Each reporting unit's code → its name."""
        return {unit.code: unit.name for unit in self.unit_list}

    @property
    def tree(self) -> Tree:
        """Every unit of the campaign at every level, the office at the root, resolved by the loader."""
        return self._tree

    @property
    def office_level(self) -> Level:
        return "province" if self.units.level == "city" else "township"

    def level_of(self, milestone: Milestone) -> Level:
        """The level that owes the milestone: its own, the office's for the office's work, else the units'."""
        if milestone.by == "office":
            return self.office_level
        return milestone.level or self.units.level

    def owers(self, milestone: Milestone) -> list[str]:
        """The units that owe the milestone (a report, or a declaration that it is done): its listed
        reporters, else every unit of its level; nobody for the office's own work."""
        if milestone.by == "office":
            return []
        if milestone.reporters and milestone.reporters != "all":
            return list(milestone.reporters)
        level = self.level_of(milestone)
        if level == self.units.level:
            return self.unit_codes
        below = [node.code for node in self.tree.at_level(level)]
        if LEVELS.index(level) < LEVELS.index(self.units.level):
            return below
        # a city without counties (东莞市, 嘉峪关市) does the counties' work itself
        having = {ancestor.code for code in below for ancestor in self.tree.ancestors(code)}
        return [code for code in self.unit_codes if code not in having] + below

    def owed_by(self, code: str) -> list[Milestone]:
        """The milestones the unit owes, by due instant."""
        return [item for item in sorted(self.milestones, key=lambda item: item.due) if code in self.owers(item)]

    def may_act(self, acting: str | None, code: str) -> bool:
        """Whether a credential of unit ``acting`` (None: the province's) may read or act for unit ``code``: its
        own, or one below it. The office's code is no unit's: a token issued for that code (a county code reused
        as a town plan's office) gets nothing here."""
        if acting is None:
            return True
        tree = self.tree
        return acting in tree and acting != self.office.code and code in tree and tree.within(code, acting)

    def reporting_unit(self, code: str) -> str | None:
        """The top-level unit whose entry window and problem list a unit's data go by: itself, or its city."""
        if code in self.unit_names:
            return code
        return next((node.code for node in self.tree.ancestors(code) if node.code in self.unit_names), None)

    def may_upload(self, code: str) -> bool:
        """Whether workbooks may be stored under ``code``: a reporting unit's, or a county's own (seed 000: "县、乡
        扶贫部门完成全部数据录入"); a township or village of a province's roster enters through its county."""
        node = self.tree.get(code)
        if node is None or code == self.office.code:
            return False
        return code in self.unit_names or (node.level == "county" and self.reporting_unit(code) is not None)

    def name_of(self, code: str) -> str:
        node = self.tree.get(code)
        return node.name if node is not None else code

    def phases_in_order(self) -> list[Phase]:
        return sorted(self.phases, key=lambda phase: (PHASE_ORDER.index(phase.id), phase.starts))

    def milestone(self, milestone_id: str) -> Milestone | None:
        return next((item for item in self.milestones if item.id == milestone_id), None)

    def phase(self, phase_id: str) -> Phase | None:
        return next((phase for phase in self.phases if phase.id == phase_id), None)

    def until_words(self, item: Phase | Milestone) -> str:
        """ "" or, for an item the seed does not date, what bounds it: "（方案未定截止时间，以“…”关闭为限）"."""
        if item.until is None:
            return ""
        bound = next(
            (
                f"“{named.name}”{word}"
                for section, _, word in UNTIL_SOURCES
                for named in getattr(self, section)
                if named.id == item.until
            ),
            None,
        )
        word = "截止时间" if isinstance(item, Milestone) else "结束时间"
        return f"（方案未定{word}，以{bound or '信息系统关闭'}为限）"

    def door_closes(self, milestone: Milestone) -> dt.datetime:
        """When submissions for the milestone stop being taken: the system's closing for a milestone due by then,
        else the end of its phase (or of the campaign)."""
        if milestone.due <= self.system_close.at:
            return self.system_close.at
        phase = self.phase(milestone.phase)
        return phase.ends if phase is not None else self.ends

    def window(self, window_id: str) -> EntryWindow:
        return next(window for window in self.entry_windows if window.id == window_id)

    def application_of(self, window: EntryWindow) -> Milestone | None:
        """The application (数据录入申请书) that a window asks the province to approve, if it asks for approval."""
        if window.approval is None:
            return None
        return next(
            (
                item
                for item in self.milestones
                if item.id in window.requires and item.report == ReportKind.entry_application
            ),
            None,
        )

    def reporters_of(self, milestone: Milestone) -> list[str]:
        if milestone.reporters == "all":
            return self.unit_codes
        return list(milestone.reporters)

    @property
    def starts(self) -> pendulum.DateTime:
        """The first instant of the campaign."""
        return min(instant for _, instant in self.instants())

    @property
    def ends(self) -> pendulum.DateTime:
        """The last instant of the campaign (the end of its last phase or the system closing)."""
        return max(instant for _, instant in self.instants())

    def instants(self) -> list[tuple[str, pendulum.DateTime]]:
        """Every instant the campaign acts on, by field path, in time order."""
        found: list[tuple[str, pendulum.DateTime]] = []
        for phase in self.phases:
            found += [(f"phases.{phase.id}.starts", phase.starts), (f"phases.{phase.id}.ends", phase.ends)]
        found += [(f"milestones.{item.id}.due", item.due) for item in self.milestones]
        for window in self.entry_windows:
            found += [(f"entry_windows.{window.id}.opens", window.opens)]
            found += [(f"entry_windows.{window.id}.closes", window.closes)]
        found.append(("system_close.at", self.system_close.at))
        return sorted(found, key=lambda pair: pair[1])
