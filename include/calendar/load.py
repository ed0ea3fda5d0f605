"""Read a calendar file into a `Calendar`, or say in Chinese what is wrong with it and where.

Reading has two steps: the structure (pydantic, every error with its field path) and the meaning
(phases, milestones, windows and deadlines that must fit inside each other).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from include.calendar.instants import local_text
from include.calendar.model import PHASE_ORDER, UNTIL_SOURCES, Calendar, Unit
from include.calendar.regions import region
from include.calendar.tree import LEVEL_WORDS, LEVELS, Node, Tree, cities_at_year_end, county_nodes


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a calendar file."""

    path: str
    reason: str

    def line(self, file: str | os.PathLike[str]) -> str:
        return f"{file}: {self.path}: {self.reason}"


class CalendarError(Exception):
    """A calendar file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, file: str | os.PathLike[str], problems: list[Problem]) -> None:
        self.file = str(file)
        self.problems = problems
        super().__init__("\n".join(problem.line(file) for problem in problems))


class _PlainLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: 2.2 ms, not 20, a calendar
    """The safe loader (libyaml's where PyYAML has it) keeping dates and times as text, so that the calendar reads
    them itself."""


_PlainLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_calendar(file: str | os.PathLike[str]) -> Calendar:
    """Load and check a calendar file; raise `CalendarError` listing every problem."""
    path = Path(file)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainLoader)  # noqa: S506
    except FileNotFoundError:
        raise CalendarError(file, [Problem("(文件)", "文件不存在")]) from None
    except IsADirectoryError:
        raise CalendarError(file, [Problem("(文件)", "这是一个目录，不是日历文件")]) from None
    except UnicodeDecodeError:
        raise CalendarError(file, [Problem("(文件)", "文件不是 UTF-8 编码的文本")]) from None
    except OSError as exc:
        raise CalendarError(file, [Problem("(文件)", f"无法读取：{exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行" if mark else "(文件)"
        raise CalendarError(file, [Problem(where, f"YAML 格式错误：{getattr(exc, 'problem', exc)}")]) from None
    return calendar_from_dict(raw, file)


def calendar_from_dict(raw: Any, file: str | os.PathLike[str] = "<calendar>") -> Calendar:
    if not isinstance(raw, dict):
        raise CalendarError(file, [Problem("(文件)", "日历文件的顶层应为映射（键: 值）")])
    raw, bounded = _bound_by_until(raw)
    if bounded:
        raise CalendarError(file, bounded)
    try:
        calendar = Calendar.model_validate(raw)
    except ValidationError as exc:
        raise CalendarError(file, [_structure_problem(error) for error in exc.errors()]) from None
    units, problems = _resolve_units(calendar)
    calendar._unit_list = tuple(units)
    calendar._tree = _tree(calendar)
    problems += check_calendar(calendar)
    if problems:
        raise CalendarError(file, problems)
    return calendar


# Where a seed dates nothing of its own, a phase's end or a milestone's due is ``until: <id>``: the instant of
# another item the seed does date (a window's closing, a phase's end, a milestone's or a parent deadline's due,
# ``system_close``), so that the file states no date the seed does not.
_BOUND_FIELD = {"phases": "ends", "milestones": "due"}


def _bound_by_until(raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The calendar with the instant every ``until`` names written in (an ``until`` chain is followed); the
    problems: a reference that names nothing or a loop, or a date written beside an ``until`` that differs."""
    sections = {section: raw.get(section) for section, _, _ in UNTIL_SOURCES}
    if not any(
        isinstance(item, dict) and item.get("until")
        for section in _BOUND_FIELD
        if isinstance(sections[section], list)
        for item in sections[section]
    ):
        return raw, []
    raw = {
        **raw,
        **{
            s: [dict(i) if isinstance(i, dict) else i for i in sections[s]]
            for s in _BOUND_FIELD
            if isinstance(sections[s], list)
        },
    }
    pending = [
        (f"{section}[{index}]", item, _BOUND_FIELD[section])
        for section in _BOUND_FIELD
        if isinstance(raw.get(section), list)
        for index, item in enumerate(raw[section])
        if isinstance(item, dict) and item.get("until")
    ]
    problems: list[Problem] = []
    written: dict[str, Any] = {}  # the instants given: of items with no until, then of those resolved
    if isinstance(raw.get("system_close"), dict):
        written["system_close"] = raw["system_close"].get("at")
    for section, key, _ in UNTIL_SOURCES:
        for item in raw.get(section) or []:
            if isinstance(item, dict) and item.get("id") is not None and not item.get("until"):
                written.setdefault(str(item["id"]), item.get(key))
    while pending:
        resolved = [entry for entry in pending if str(entry[1]["until"]) in written]
        for path, item, key in resolved:
            bound = written[str(item["until"])]
            if item.get(key) is not None and str(item[key]) != str(bound):
                reason = f"已写 until: {item['until']}，不应再写另一个时间（{item[key]}）"
                problems.append(Problem(f"{path}.{key}", reason))
            item[key] = bound
            written.setdefault(str(item.get("id")), bound)
        if not resolved:
            named = "引用了不存在或没有日期的阶段、里程碑、录入窗口或上级截止时间"
            problems += [Problem(f"{path}.until", f"{named}“{item['until']}”") for path, item, _ in pending]
            break
        pending = [entry for entry in pending if entry not in resolved]
    return raw, problems


# The union and validator tags pydantic puts into an error's location; they are not field names.
_PYDANTIC_TAG = re.compile(
    r"^(function-[a-z-]+\[.*\]|literal\[.*\]|tuple\[.*\]|list\[.*\]|is-instance\[.*\]|str|int|float)$"
)


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PYDANTIC_TAG.match(str(part)):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "(顶层)"


_TYPE_NAMES = {
    "string_type": "文本",
    "int_type": "整数",
    "int_parsing": "整数",
    "float_type": "数字",
    "float_parsing": "数字",
    "bool_type": "是/否",
    "list_type": "列表",
    "tuple_type": "列表",
    "dict_type": "映射",
    "model_type": "映射",
    "model_attributes_type": "映射",
}


def _structure_problem(error: dict[str, Any]) -> Problem:
    kind = error["type"]
    where = _path(error["loc"])
    if kind == "missing":
        return Problem(where, "缺少必填字段")
    if kind == "extra_forbidden":
        return Problem(where, "未知字段")
    if kind == "value_error":
        return Problem(where, str(error["ctx"]["error"]))
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        return Problem(where, f"取值“{error.get('input')}”无效，应为 {expected}")
    if kind == "string_pattern_mismatch":
        return Problem(where, f"取值“{error.get('input')}”格式不符（{error['ctx']['pattern']}）")
    if kind in _TYPE_NAMES:
        return Problem(where, f"类型错误：应为{_TYPE_NAMES[kind]}，实际为“{error.get('input')}”")
    return Problem(where, f"取值无效：{error['msg']}")


def _resolve_units(calendar: Calendar) -> tuple[list[Unit], list[Problem]]:
    spec = calendar.units
    problems: list[Problem] = []
    units: list[Unit] = []
    derived = 0
    if spec.derive_from:
        if region(spec.derive_from, calendar.year) is None:
            problems.append(Problem("units.derive_from", f"区划代码 {spec.derive_from} 在 {calendar.year} 年不存在"))
        else:
            found = cities_at_year_end(spec.derive_from, calendar.year)
            units = [Unit(code=item.code, name=item.name) for item in found]
            derived = len(units)
    units += [unit.model_copy(update={"placeholder": unit.placeholder or spec.placeholder}) for unit in spec.listed]
    if not units and not problems:
        problems.append(Problem("units", "没有任何单位：应给出 derive_from（省级区划代码）或 list（村名单）"))
    seen: set[str] = set()
    for index, unit in enumerate(units):
        if unit.code in seen:
            where = f"units.list[{index - derived}].code" if index >= derived else "units.derive_from"
            problems.append(Problem(where, f"单位代码 {unit.code} 重复"))
        seen.add(unit.code)
    return units, problems


def _tree(calendar: Calendar) -> Tree:
    """The office at the root, its units below it and, under a province's cities, their counties (GB/T 2260)."""
    office = calendar.office
    nodes = [Node(office.code, office.name, calendar.office_level, None)]
    for unit in calendar.unit_list:
        nodes.append(Node(unit.code, unit.name, calendar.units.level, office.code))
        if calendar.units.level == "city" and re.fullmatch(r"\d{6}", unit.code):
            nodes += county_nodes(unit.code, calendar.year)
    return Tree(nodes)


def check_calendar(calendar: Calendar) -> list[Problem]:
    """The rules of meaning: everything must fit inside its phase, its parent and the closing."""
    problems: list[Problem] = []
    deadlines = {item.id: ("上级截止时间", item.name, item.due) for item in calendar.parent_deadlines}
    deadlines |= {item.id: ("里程碑", item.name, item.due) for item in calendar.milestones}
    deadlines["system_close"] = ("系统关闭时间", "信息系统关闭", calendar.system_close.at)
    unit_codes = set(calendar.unit_codes)

    def within(path: str, ref: str | None, instant: Any) -> None:
        if ref is None:
            return
        if ref not in deadlines:
            problems.append(Problem(f"{path}.within", f"引用了不存在的上级截止时间或里程碑“{ref}”"))
            return
        kind, name, parent_due = deadlines[ref]
        if instant > parent_due:
            problems.append(
                Problem(
                    path,
                    f"截止时间 {local_text(instant, end=True)} 晚于{kind}“{name}”的 {local_text(parent_due, end=True)}",
                )
            )

    def ordered(path: str, first: Any, last: Any, words: tuple[str, str] = ("开始", "结束")) -> None:
        if last <= first:
            problems.append(
                Problem(path, f"{words[1]}时间 {local_text(last, end=True)} 不晚于{words[0]}时间 {local_text(first)}")
            )

    def unique(section: str, ids: list[str]) -> None:
        for index, item_id in enumerate(ids):
            if item_id in ids[:index]:
                problems.append(Problem(f"{section}[{index}].id", f"编号“{item_id}”重复"))

    unique("phases", [phase.id.value for phase in calendar.phases])
    unique("milestones", [item.id for item in calendar.milestones])
    unique("entry_windows", [item.id for item in calendar.entry_windows])
    unique("parent_deadlines", [item.id for item in calendar.parent_deadlines])

    for index, phase in enumerate(calendar.phases):
        path = f"phases[{index}]"
        ordered(f"{path}.ends", phase.starts, phase.ends)
        within(f"{path}.ends", phase.within, phase.ends)

    phases = {phase.id.value: phase for phase in calendar.phases}
    milestone_ids = {item.id for item in calendar.milestones}
    for index, item in enumerate(calendar.milestones):
        path = f"milestones[{index}]"
        phase = phases.get(item.phase)
        if phase is None:
            problems.append(Problem(f"{path}.phase", _unknown_phase(item.phase, phases)))
        elif not phase.starts <= item.due <= phase.ends:
            problems.append(
                Problem(
                    f"{path}.due",
                    f"截止时间 {local_text(item.due, end=True)} 不在所属阶段“{phase.name}”"
                    f"（{local_text(phase.starts)} 至 {local_text(phase.ends, end=True)}）之内",
                )
            )
        if item.reporters != "all":
            for position, code in enumerate(item.reporters):
                if code not in unit_codes:
                    problems.append(Problem(f"{path}.reporters[{position}]", f"未知单位“{code}”"))
        if item.reporters and item.report is None:
            problems.append(Problem(f"{path}.report", "有报送单位的里程碑必须写明报送材料类型"))
        if item.level is not None:
            problems += _level_problems(calendar, f"{path}.level", item.level)
        if item.verified and (item.by == "office" or calendar.level_of(item) != calendar.units.level):
            problems.append(
                Problem(f"{path}.verified", "按核查结果完成的里程碑应由收到问题清单的单位承担（本日历的单位一级）")
            )
        within(f"{path}.due", item.within, item.due)

    for index, window in enumerate(calendar.entry_windows):
        path = f"entry_windows[{index}]"
        ordered(f"{path}.closes", window.opens, window.closes, ("开放", "关闭"))
        phase = phases.get(window.phase)
        if phase is None:
            problems.append(Problem(f"{path}.phase", _unknown_phase(window.phase, phases)))
        elif window.opens < phase.starts or window.closes > phase.ends:
            problems.append(Problem(path, f"录入窗口超出所属阶段“{phase.name}”的起止时间"))
        if window.closes > calendar.system_close.at:
            closes, system = local_text(window.closes, end=True), local_text(calendar.system_close.at, end=True)
            problems.append(Problem(f"{path}.closes", f"关闭时间 {closes} 晚于系统关闭时间 {system}"))
        for position, ref in enumerate(window.requires):
            if ref not in milestone_ids:
                problems.append(Problem(f"{path}.requires[{position}]", f"引用了不存在的里程碑“{ref}”"))
        within(f"{path}.closes", window.within, window.closes)

    within("system_close.at", calendar.system_close.within, calendar.system_close.at)
    if calendar.phases and calendar.system_close.at <= min(phase.starts for phase in calendar.phases):
        problems.append(Problem("system_close.at", "系统关闭时间不晚于第一个阶段的开始时间"))

    if calendar.forms:
        from include.forms.spec import all_forms

        known_forms = all_forms()
        for position, form_id in enumerate(calendar.forms):
            if form_id not in known_forms:
                problems.append(Problem(f"forms[{position}]", f"未知表“{form_id}”（已有：{'、'.join(known_forms)}）"))

    if calendar.income_period is not None:
        ordered("income_period.ends", calendar.income_period.starts, calendar.income_period.ends)
    return problems


def _level_problems(calendar: Calendar, path: str, level: str) -> list[Problem]:
    """A milestone's level must lie below the office: a province's cities, counties …; a town's villages."""
    office = calendar.office_level
    if LEVELS.index(level) <= LEVELS.index(office):
        return [Problem(path, f"“{LEVEL_WORDS[level]}”不在本办（{LEVEL_WORDS[office]}级）之下：里程碑应由下级单位承担")]
    return []


def _unknown_phase(phase_id: str, phases: dict[str, Any]) -> str:
    known = "、".join(p for p in (item.value for item in PHASE_ORDER) if p in phases)
    return f"未知阶段“{phase_id}”（本日历的阶段：{known}）"
