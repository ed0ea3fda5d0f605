"""Townships (乡、镇、街道) and villages (村、社区) from the roster an office loads (issue 15, item 1).

GB/T 2260 stops at the county; below it the statistical division codes (统计用区划代码) give a township 9 digits
(its county's 6 and 3 of its own) and a village 12 (its township's 9 and 3). An office loads its roster with
``campaign roster load`` (the Excel template of ``campaign roster template``, or this module's YAML form); it is
kept as ``$CAMPAIGN_HOME/rosters/<campaign>.json`` and applied whenever the campaign's calendar is loaded:

- a province's plan gains townships under their counties (or under a city without counties, 东莞市) and villages
  under their townships;
- a town's plan (龙驹镇, 稷下街道) names its one township, its office, and its villages replace the placeholder
  units of the calendar (LJ01 …), so that reports, gates and reminders go to the real villages.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from include import paths
from include.calendar.model import Calendar, Unit
from include.calendar.tree import Node, Tree

log = logging.getLogger(__name__)

TOWNSHIP_CODE = r"^\d{9}$"
VILLAGE_CODE = r"^\d{12}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Contact(_Frozen):
    """Whom the office calls about the unit (optional; kept with the roster for the office's own use)."""

    name: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, pattern=r"^[0-9+\-() ]{5,20}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", max_length=80)


class RosterVillage(_Frozen):
    code: str = Field(pattern=VILLAGE_CODE)
    name: str = Field(min_length=1, max_length=40)
    contact: Contact | None = None


class RosterTownship(_Frozen):
    code: str = Field(pattern=TOWNSHIP_CODE)
    name: str = Field(min_length=1, max_length=40)
    contact: Contact | None = None
    villages: tuple[RosterVillage, ...] = ()


class Roster(_Frozen):
    """A campaign's townships and their villages, with where the office had them from."""

    campaign: str
    source: str = Field(min_length=1, max_length=200)  # 名册来源：which office's list, of what date
    townships: tuple[RosterTownship, ...] = Field(min_length=1)


def roster_file(campaign_id: str) -> Path:
    """Where a campaign's roster is kept (the id is a registered campaign's, checked by the caller): JSON, which a
    province's 70 000 villages read from in milliseconds (YAML's Python reader takes seconds)."""
    return paths.campaign_home() / "rosters" / f"{campaign_id}.json"


def read_roster(campaign_id: str) -> Roster | None:
    """The roster loaded for the campaign, or None. It was checked when it was loaded; read once per version of
    the file (a request, a gate's poll and a DAG parse each load the campaign)."""
    file = roster_file(campaign_id)
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    try:
        return _parsed(file, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as exc:  # a file edited by hand or cut short: left out, never a crash
        log.warning(
            "战役 %s 的名册文件 %s 无法读取，未使用（%s）；请重新载入名册", campaign_id, file, type(exc).__name__
        )
        return None


@functools.lru_cache(maxsize=8)
def _parsed(file: Path, mtime_ns: int, size: int) -> Roster:
    return Roster.model_validate_json(file.read_bytes())


def roster_json(roster: Roster) -> str:
    return roster.model_dump_json(exclude_none=True, indent=1)


def roster_problems(calendar: Calendar, roster: Roster) -> list[str]:
    """Why the roster does not fit the campaign (each a sentence that says what to change); empty when it does."""
    problems: list[str] = []
    if roster.campaign != calendar.id:
        problems.append(f"名册写的是战役 {roster.campaign}，不是 {calendar.id}")
    seen: dict[str, str] = {}
    town_plan = calendar.units.level == "village"
    if town_plan and len(roster.townships) != 1:
        problems.append(f"{calendar.name}是乡镇的方案：名册应只有本乡镇一个（现有 {len(roster.townships)} 个）")
    for township in roster.townships:
        county = township.code[:6]
        if town_plan:
            if county != calendar.office.code:
                problems.append(
                    f"乡镇 {township.code} {township.name}：代码前 6 位应为本办所在县区 {calendar.office.code}"
                )
        elif _county_parent(calendar, county) is None:
            problems.append(
                f"乡镇 {township.code} {township.name}：前 6 位 {county} 不是本战役 {calendar.year} 年的县区"
                "（或无县区的市）；请核对统计用区划代码"
            )
        for code, name in [(township.code, township.name)] + [(v.code, v.name) for v in township.villages]:
            if code in seen:
                problems.append(f"代码 {code} 重复：{seen[code]}、{name}")
            seen[code] = name
        for village in township.villages:
            if village.code[:9] != township.code:
                problems.append(
                    f"村 {village.code} {village.name}：代码前 9 位应为所属乡镇 {township.code} {township.name}"
                )
    if town_plan and not any(township.villages for township in roster.townships):
        problems.append(f"{calendar.name}的单位是村：名册中至少要有一个村")
    return problems


def _county_parent(calendar: Calendar, county: str) -> str | None:
    """The unit a township with this 6-digit prefix sits under: the county, or a city that has no counties."""
    node = calendar.tree.get(county)
    if node is None:
        return None
    if node.level == "county" or (node.level == "city" and not calendar.tree.children(node.code)):
        return node.code
    return None


def apply_roster(calendar: Calendar, roster: Roster) -> Calendar:
    """The calendar with the roster's townships and villages in its tree (a town plan's villages as its units).
    The roster must fit (``roster_problems``); the calendar itself is not changed."""
    applied = calendar.model_copy()
    nodes = list(calendar.tree)
    if calendar.units.level == "village":
        office = calendar.office.code
        villages = [village for township in roster.townships for village in township.villages]
        applied._unit_list = tuple(Unit(code=village.code, name=village.name) for village in villages)
        nodes = [nodes[0]] + [Node(village.code, village.name, "village", office) for village in villages]
    else:
        applied._unit_list = calendar.unit_list
        for township in roster.townships:
            parent = _county_parent(calendar, township.code[:6])
            nodes.append(Node(township.code, township.name, "township", parent))
            nodes += [Node(village.code, village.name, "village", township.code) for village in township.villages]
    applied._tree = Tree(nodes)
    return applied


def with_roster(calendar: Calendar) -> Calendar:
    """The calendar with its campaign's roster applied, if one is loaded and still fits (a calendar changed since
    the roster was loaded may no longer have its counties: then the roster is left out, with a warning)."""
    roster = read_roster(calendar.id)
    if roster is None:
        return calendar
    problems = roster_problems(calendar, roster)
    if problems:
        log.warning("战役 %s 的名册与日历不符，未使用：%s", calendar.id, "；".join(problems[:3]))
        return calendar
    return apply_roster(calendar, roster)


def shapes_the_dags(calendar: Calendar) -> bool:
    """Whether the roster changes what the campaign's DAGs hold: a town plan's villages are its gates' units, and
    so are townships or villages where a milestone is theirs. A province's 70 000 villages under milestones of
    cities and counties change no gate, so its DAG files are parsed without reading them."""
    return calendar.units.level == "village" or any(
        calendar.level_of(item) in ("township", "village") for item in calendar.milestones
    )
