"""A unit's workload (工作台账) and its trajectory: what it must do this year, how far it has got, day by day.

The workload is the list of households a unit must visit and update, which the office loads per county (a city
without counties, 东莞市, has its own; a town plan's villages theirs): ``campaign workload template`` and
``campaign workload load``. Its keys are the forms' household key (the head's ID number on the 2020 forms, the
household number on 2023's). A household the unit entered is one in its accepted uploads: a city's upload
counts for the county of each household's address. Entered on the list is the unit's progress against its
workload; households entered that are not on it are counted as new (seed 004's new identifications).

Seed 004 asks for "每天统计…数量变化情况": after every upload and every workload load, each unit's figures are
kept for that day (the day's last figure wins). From that trajectory ``project`` gives the pace of the last
days and the day the unit will finish at that pace, and by how many days that misses its deadline.

Where a unit has no workload, nothing is shown as a share: counts and reporting rates only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from openpyxl import load_workbook
from sqlalchemy import Engine, delete, func, select

from include.calendar import Calendar
from include.calendar.instants import last_day, local_day
from include.calendar.tree import short_names
from include.forms import records
from include.forms.spec import get_form
from include.forms.xlsx import list_template, save_atomically
from include.masking import mask_id, short_masked
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import DailyEntry, WorkloadHousehold

SHEET = "工作台账"
COLUMNS = ("单位代码", "户编号或户主证件号码", "户主姓名（核对用，不保存）")
MAX_ROWS = 1_000_000
PACE_DAYS = 7  # the pace is that of the last seven days (or of the days since the first figure, if fewer)
_KEY = re.compile(r"[0-9A-Za-z\-]{4,64}")


class WorkloadRefused(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


def workload_units(calendar: Calendar) -> list[str]:
    """The units that can have a workload: counties, cities without counties, a town plan's villages."""
    tree = calendar.tree
    own = "village" if calendar.units.level == "village" else "county"  # a province's roster villages: their county's
    return [
        node.code
        for node in tree
        if node.level == own
        or (node.level == "city" and not any(child.level == "county" for child in tree.children(node.code)))
    ]


def _household_forms(calendar: Calendar) -> list[str]:
    return [
        form_id
        for form_id in calendar.forms
        if get_form(form_id).household_key and any(sheet.id == "households" for sheet in get_form(form_id).sheets)
    ]


def write_template(calendar: Calendar, out: Path) -> None:
    keys = "、".join(
        sorted(
            {get_form(form_id).field(get_form(form_id).household_key).label for form_id in _household_forms(calendar)}
        )
    )
    lines = [
        f"{calendar.name}：工作台账（本年度须入户核实、更新的户）",
        "每户一行。单位代码：县区 6 位代码（无县区的市填市代码；乡镇方案填村代码）。",
        f"户编号或户主证件号码：与采集表的户键一致（{keys}），请设为文本格式。",
        "户主姓名仅供填表人核对，载入时不保存。",
        "同一单位再次载入时，以新台账替换该单位原有台账；文件中没有的单位不变。",
        "载入：campaign workload load 文件 --campaign " + calendar.id,
    ]
    wb = list_template(SHEET, COLUMNS, [28, 28, 28], lines)
    save_atomically(wb, out)


def read_workload_xlsx(path: Path, calendar: Calendar) -> dict[str, list[str]]:
    """Household keys per unit from a filled template; ``WorkloadRefused`` naming every row's problem."""
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # the file's fault, whatever the reader raised
        raise WorkloadRefused(
            ["文件不是 Excel 保存的 .xlsx 工作簿，无法读取；请用 campaign workload template 的模板"]
        ) from None
    if SHEET not in wb.sheetnames:
        raise WorkloadRefused([f"工作簿中没有「{SHEET}」表；请用 campaign workload template 的模板填写"])
    allowed = set(workload_units(calendar))
    pattern, shape = _key_pattern(calendar)
    problems: list[str] = []
    by_unit: dict[str, list[str]] = {}
    seen: dict[str, tuple[int, str]] = {}
    for number, row in enumerate(wb[SHEET].iter_rows(min_row=1, max_col=2, values_only=True), start=1):
        if number == 1:
            continue
        if number > MAX_ROWS:
            problems.append(f"超过 {MAX_ROWS} 行；请分县区载入")
            break
        raw_key = ([*row, None, None])[1]
        unit, key = (_text(value) for value in [*row, None, None][:2])
        if unit is None and key is None:
            continue
        here = f"第 {number} 行"
        if unit not in allowed:
            problems.append(
                f"{here}：单位代码「{short_masked(unit or '', 6)}」不是本战役的县区（或无县区的市、乡镇方案的村）"
            )
            continue
        if isinstance(raw_key, float) and abs(raw_key) >= 1e15:  # Excel keeps 15 digits of a number
            problems.append(
                f"{here}：户编号或户主证件号码被 Excel 存成了数字，后几位已经丢失；请把该列设为文本后重新填写"
            )
            continue
        key = (key or "").upper()
        if not pattern.fullmatch(key):
            problems.append(f"{here}：户编号或户主证件号码「{mask_id(key)}」{shape}")
            continue
        if key in seen:
            row_before, unit_before = seen[key]
            where = "" if unit_before == unit else f"（在 {calendar.name_of(unit_before)}）"
            problems.append(
                f"{here}：与第 {row_before} 行{where}是同一户（{mask_id(key)}），一户只能在一个单位的台账中"
            )
            continue
        seen[key] = (number, unit)
        by_unit.setdefault(unit, []).append(key)
    wb.close()
    if problems:
        raise WorkloadRefused(problems[:200] + ([f"……共 {len(problems)} 个问题"] if len(problems) > 200 else []))
    if not by_unit:
        raise WorkloadRefused(["台账中没有任何户：请从第 2 行起逐行填写"])
    return by_unit


def _key_pattern(calendar: Calendar) -> tuple[re.Pattern[str], str]:
    """What a household key looks like: an ID number where every household form of the campaign keys by it."""
    types = {get_form(form_id).field(get_form(form_id).household_key).type for form_id in _household_forms(calendar)}
    if types == {"id_number"}:
        return re.compile(r"[0-9]{17}[0-9X](?:[0-9]{2})?"), "应为18位证件号码（末位可为X），残疾人证为20位"
    return _KEY, "应为 4–64 位数字或字母"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def load_workload(
    engine: Engine, calendar: Calendar, by_unit: dict[str, list[str]], at: dt.datetime, actor: str, source: str
) -> dict[str, int]:
    """Replace each listed unit's workload by its households in one transaction, audited; then the day's figures
    of every unit are kept anew, so that its trajectory counts against the list from today on."""
    with session_scope(engine) as session:
        for unit, keys in by_unit.items():
            session.execute(
                delete(WorkloadHousehold).where(
                    WorkloadHousehold.campaign_id == calendar.id, WorkloadHousehold.unit == unit
                )
            )
            session.add_all(
                WorkloadHousehold(campaign_id=calendar.id, unit=unit, household=key, loaded_at=at) for key in keys
            )
            audit(
                session,
                at=at,
                action="workload_load",
                actor=actor,
                detail=f"载入工作台账（{source}）：{len(keys)} 户"[:1000],
                campaign_id=calendar.id,
                unit=unit,
            )
    record_day(engine, calendar, at)
    return {unit: len(keys) for unit, keys in by_unit.items()}


def workload_sizes(engine: Engine, calendar: Calendar) -> dict[str, int]:
    """Households on each unit's workload, summed up the tree (a city: its counties'), for units that have one."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(WorkloadHousehold.unit, func.count())
            .where(WorkloadHousehold.campaign_id == calendar.id)
            .group_by(WorkloadHousehold.unit)
        ).all()
    return _rolled_up(calendar, {unit: int(n) for unit, n in rows})


def _rolled_up(calendar: Calendar, own: dict[str, int]) -> dict[str, int]:
    total = dict(own)
    for unit, n in own.items():
        for ancestor in calendar.tree.ancestors(unit):
            if ancestor.code != calendar.office.code:
                total[ancestor.code] = total.get(ancestor.code, 0) + n
    return total


def entered_keys(calendar: Calendar) -> dict[str, set[str]]:
    """Per workload unit (county, city without counties, village), the household keys in the accepted uploads in
    force: a county's own, and its city's households by the county their address names (the city's where it
    names none of them)."""
    tree = calendar.tree
    found: dict[str, set[str]] = {}
    for form_id in _household_forms(calendar):
        form = get_form(form_id)
        pinned = {unit: v for unit, v in records.pin(calendar.id, form.id).items() if calendar.may_upload(unit)}
        codes = sorted(pinned)
        frame = records.scan(calendar.id, form.id, "households", codes, pinned=pinned)
        if frame is None:
            continue
        has_county = "address_county" in frame.collect_schema().names()
        columns = [pl.col("unit"), pl.col(form.household_key).cast(pl.String).str.to_uppercase().alias("key")]
        county = pl.col("address_county").cast(pl.String).str.replace_all(r"\s", "")  # as the address check reads it
        columns.append(county if has_county else pl.lit(None, pl.String))
        table = frame.select(*columns[:2], columns[2].alias("county")).collect()
        county_of = {
            unit: {
                short: child.code
                for child in tree.children(unit)
                if child.level == "county"
                for short in short_names(child.name)
            }
            for unit in codes
        }
        for unit, key, county in table.iter_rows():
            owner = county_of.get(unit, {}).get(county or "", unit)
            found.setdefault(owner, set()).add(key)
    return found


@dataclass(frozen=True)
class Entered:
    households: int  # in the unit's accepted uploads (its counties' for a city)
    on_list: int | None  # of them on its workload; None where it has none


def entered_now(engine: Engine, calendar: Calendar) -> dict[str, Entered]:
    """Every unit's entered households now, and how many are on its workload, rolled up the tree."""
    keys = entered_keys(calendar)
    with session_scope(engine) as session:
        listed = session.execute(
            select(WorkloadHousehold.unit, WorkloadHousehold.household).where(
                WorkloadHousehold.campaign_id == calendar.id
            )
        ).all()
    workload: dict[str, set[str]] = {}
    for unit, key in listed:
        workload.setdefault(unit, set()).add(key)
    households = _rolled_up(calendar, {unit: len(found) for unit, found in keys.items()})
    on_list = _rolled_up(calendar, {unit: len(keys.get(unit, set()) & found) for unit, found in workload.items()})
    return {unit: Entered(households.get(unit, 0), on_list.get(unit)) for unit in set(households) | set(on_list)}


def record_day(engine: Engine, calendar: Calendar, at: dt.datetime, units: Iterable[str] | None = None) -> None:
    """Keep the day's figures of every unit (or of ``units``): the day's last figure replaces an earlier one."""
    figures = entered_now(engine, calendar)
    wanted = set(units) if units is not None else set(figures)
    day = local_day(at)
    with session_scope(engine) as session:
        session.execute(
            delete(DailyEntry).where(
                DailyEntry.campaign_id == calendar.id, DailyEntry.day == day, DailyEntry.unit.in_(sorted(wanted))
            )
        )
        session.add_all(
            DailyEntry(
                campaign_id=calendar.id,
                unit=unit,
                day=day,
                households=figures[unit].households,
                on_list=figures[unit].on_list,
                recorded_at=at,
            )
            for unit in sorted(wanted)
            if unit in figures
        )


def trajectories(engine: Engine, calendar: Calendar) -> dict[str, list[tuple[dt.date, int, int | None]]]:
    """Every unit's daily figures, by day: (day, households entered, of them on its workload)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(DailyEntry.unit, DailyEntry.day, DailyEntry.households, DailyEntry.on_list)
            .where(DailyEntry.campaign_id == calendar.id)
            .order_by(DailyEntry.unit, DailyEntry.day)
        ).all()
    found: dict[str, list[tuple[dt.date, int, int | None]]] = {}
    for unit, day, households, on_list in rows:
        found.setdefault(unit, []).append((day, households, on_list))
    return found


@dataclass(frozen=True)
class Projection:
    """Where a unit's pace takes it: ``state`` is done, on_track, behind (will finish ``days_late`` days after its
    deadline), stalled (nothing entered in the pace's ``days``, work left), early (fewer than ``MIN_DAYS`` days of
    entry so far: no verdict yet) or no_data (no figure yet)."""

    workload: int
    done: int
    pace: float | None  # households of the list a day, over the last ``days`` days
    finish: dt.date | None
    deadline: dt.date
    days_late: int | None
    state: str
    days: int = 0  # the days the pace is of

    def as_json(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "done": self.done,
            "rate": round(self.done / self.workload, 4) if self.workload else None,
            "pace": round(self.pace, 2) if self.pace is not None else None,
            "days": self.days,
            "finish": self.finish.isoformat() if self.finish else None,
            "deadline": self.deadline.isoformat(),
            "days_late": self.days_late,
            "state": self.state,
        }


MIN_DAYS = 3  # no verdict on a pace of fewer days of entry


def project(
    points: list[tuple[dt.date, int]], workload: int, deadline: dt.date, start: dt.date, today: dt.date
) -> Projection:
    """The unit's finish at its pace. Figures are the end of their day's; nothing is entered before the entry's
    first day ``start``, so the eve of it counts as none. The pace is of the last ``PACE_DAYS`` days up to
    ``today`` (of the days since the eve, where fewer): households of the list entered then, a day."""
    points = sorted((day, n) for day, n in points if day <= today)
    done = points[-1][1] if points else 0
    if done >= workload:
        return Projection(workload, done, None, points[-1][0] if points else None, deadline, None, "done")
    eve = start - dt.timedelta(days=1)
    since = max(today - dt.timedelta(days=PACE_DAYS), eve)
    base_day, base = since, next((n for day, n in reversed(points) if day <= since), 0)
    days = (today - base_day).days
    if not points:
        return Projection(workload, 0, None, None, deadline, None, "no_data", days)
    pace = (done - base) / days if days > 0 else None
    if (today - eve).days < MIN_DAYS:
        return Projection(workload, done, pace, None, deadline, None, "early", days)
    if not pace or pace <= 0:
        return Projection(workload, done, pace, None, deadline, None, "stalled", days)
    finish = today + dt.timedelta(days=math.ceil((workload - done) / pace))
    late = (finish - deadline).days
    if late > 0:
        return Projection(workload, done, pace, finish, deadline, late, "behind", days)
    return Projection(workload, done, pace, finish, deadline, None, "on_track", days)


def entry_span(calendar: Calendar, unit: str) -> tuple[dt.date, dt.date, str | None]:
    """The entry's first day, the unit's last day for it, and the milestone that sets it: the latest entry
    milestone the unit owes (seed 000: the counties' "11月30日24时前…完成全部数据录入"), or for an office the
    latest its units with workloads owe; else the entry phase's end and no milestone."""
    phase = calendar.phase("entry")
    tree = calendar.tree
    entry = [item for item in calendar.milestones if item.phase == "entry"]
    own = [item for item in entry if unit in calendar.owers(item)]
    workers = set(workload_units(calendar))
    owed = own or [
        item for item in entry if any(code in workers and tree.within(code, unit) for code in calendar.owers(item))
    ]
    start = local_day(phase.starts) if phase else local_day(calendar.starts)
    if owed:  # the last one; of two due together, the declaration that entry is done, not a report
        last = max(owed, key=lambda item: (item.due, item.report is None))
        return start, last_day(last.due), last.id
    return start, last_day(phase.ends if phase else calendar.system_close.at), None


def projections(engine: Engine, calendar: Calendar, at: dt.datetime) -> dict[str, Projection]:
    """Each unit with a workload (a city: its counties' together): its projection at ``at``'s day."""
    sizes = workload_sizes(engine, calendar)
    paths = trajectories(engine, calendar)
    today = local_day(at)
    found = {}
    for unit, size in sizes.items():
        if not size:
            continue
        points = [(day, on_list) for day, _, on_list in paths.get(unit, []) if on_list is not None]
        start, deadline, _ = entry_span(calendar, unit)
        found[unit] = project(points, size, deadline, start, today)
    return found
