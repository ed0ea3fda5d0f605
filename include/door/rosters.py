"""Loading an office's roster of townships and villages: its Excel template, reading it, and keeping it.

The office fills the template (``campaign roster template``: one row per village, its township on every row;
a township with no village yet on a row of its own) or writes the YAML form of ``include/calendar/roster.py``
and loads it (``campaign roster load``). Every problem is reported with its row, and a roster with any problem
is refused whole: the roster in use, if any, stays. A town plan's roster replaces its placeholder villages, so
it is refused once any of those placeholders has reported or uploaded: their reports would belong to nobody.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlalchemy import Engine, select

from include.calendar import Calendar
from include.calendar.roster import Roster, roster_file, roster_json, roster_problems, with_roster
from include.forms import records
from include.forms.xlsx import list_template, save_atomically
from include.masking import short_masked
from include.paths import write_atomically
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import Report, WorkloadHousehold

SHEET = "乡镇村名册"
COLUMNS = ("乡镇代码（9位）", "乡镇名称", "村代码（12位）", "村名称", "联系人", "联系电话", "电子邮箱")
MAX_ROWS = 200_000  # a province has some 70 000 villages
_TOWNSHIP, _VILLAGE = re.compile(r"\d{9}"), re.compile(r"\d{12}")


class RosterRefused(Exception):
    """A roster that cannot be loaded; ``problems`` says every reason, each with its row where it has one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Loaded:
    roster: Roster
    townships: int
    villages: int
    replaced: bool  # a roster was in use before

    def as_json(self) -> dict[str, object]:
        return {
            "campaign": self.roster.campaign,
            "source": self.roster.source,
            "townships": self.townships,
            "villages": self.villages,
            "replaced": self.replaced,
        }


def write_template(calendar: Calendar, out: Path) -> None:
    """The Excel template: the columns, codes as text, and what to fill in on a second sheet."""
    town_plan = calendar.units.level == "village"
    where = f"本办所在县区 {calendar.office.code}" if town_plan else "所属县区（或无县区的市）的 6 位代码"
    lines = [
        f"{calendar.name}：乡镇、村名册",
        "每个村填一行，所属乡镇的代码和名称每行都填；尚未列村的乡镇单独一行，村代码、村名称留空。",
        f"乡镇代码：统计用区划代码 9 位，前 6 位为{where}。",
        "村代码：12 位，前 9 位为所属乡镇代码。代码请填为文本（本模板已设为文本格式）。",
        "联系人、联系电话、电子邮箱可不填；同一行的联系人属于该行的村（无村的行属于乡镇）。",
        "载入：campaign roster load 文件 --campaign " + calendar.id + " --source 名册来源",
        "有任何问题的名册整体不载入，原名册保持不变；问题逐行列出。",
    ]
    if town_plan:
        lines.append("本方案的单位是村：载入后，名册中的村替换日历中的占位村名单（须在任何占位单位报送之前载入）。")
    wb = list_template(SHEET, COLUMNS, [18, 18, 18, 18, 18, 18, 26], lines)
    save_atomically(wb, out)


def _text(value: object) -> str | None:
    """A cell as text: a code typed as a number (500101108001, 5.00101108001E+11) as its digits."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def read_xlsx(path: Path, campaign: str, source: str) -> Roster:
    """The roster in a filled template; ``RosterRefused`` with every row's problem."""
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # the file's fault, whatever the reader raised
        raise RosterRefused(
            ["文件不是 Excel 保存的 .xlsx 工作簿，无法读取；请用 campaign roster template 的模板"]
        ) from None
    if SHEET not in wb.sheetnames:
        raise RosterRefused([f"工作簿中没有「{SHEET}」表；请用 campaign roster template 的模板填写"])
    ws = wb[SHEET]
    problems: list[str] = []
    townships: dict[str, dict] = {}
    for number, row in enumerate(ws.iter_rows(min_row=1, max_col=len(COLUMNS), values_only=True), start=1):
        cells = [_text(value) for value in row] + [None] * (len(COLUMNS) - len(row))
        if number == 1:
            if tuple(cells[: len(COLUMNS)]) != COLUMNS:
                problems.append(f"第 1 行应为表头：{'、'.join(COLUMNS)}")
            continue
        if number > MAX_ROWS:
            problems.append(f"超过 {MAX_ROWS} 行；请分县区载入")
            break
        if not any(cells):
            continue
        township, township_name, village, village_name, person, phone, email = cells[: len(COLUMNS)]
        contact = {k: v for k, v in (("name", person), ("phone", phone), ("email", email)) if v}
        here = f"第 {number} 行"
        if not township or not _TOWNSHIP.fullmatch(township):
            problems.append(f"{here}：乡镇代码「{short_masked(township or '', 9)}」应为 9 位数字")
            continue
        wrong = _cell_problems(township_name, village_name, person, phone, email)
        if wrong:
            problems += [f"{here}：{problem}" for problem in wrong]
            continue
        if not township_name:
            problems.append(f"{here}：乡镇名称未填写")
            continue
        entry = townships.setdefault(township, {"code": township, "name": township_name, "villages": [], "row": number})
        if entry["name"] != township_name:
            problems.append(
                f"{here}：乡镇 {township} 的名称「{township_name}」与第 {entry['row']} 行的「{entry['name']}」不同"
            )
        if village is None and village_name is None:
            if contact:
                entry["contact"] = contact
            continue
        if not village or not _VILLAGE.fullmatch(village):
            problems.append(f"{here}：村代码「{short_masked(village or '', 9)}」应为 12 位数字")
            continue
        if not village_name:
            problems.append(f"{here}：村名称未填写")
            continue
        entry["villages"].append({"code": village, "name": village_name, **({"contact": contact} if contact else {})})
    wb.close()
    if problems:
        raise RosterRefused(problems)
    if not townships:
        raise RosterRefused(["名册中没有任何乡镇：请从第 2 行起逐行填写"])
    raw = {"campaign": campaign, "source": source, "townships": [_without_row(entry) for entry in townships.values()]}
    return _validated(raw)


def _cell_problems(*cells: str | None) -> list[str]:
    """What the model would refuse in a row's names and contact, said with the column (so every problem of the
    Excel path has its row)."""
    township_name, village_name, person, phone, email = cells
    found = [f"{column}过长（最多 40 个字）" for column, name in (("乡镇名称", township_name), ("村名称", village_name))
             if name and len(name) > 40]  # fmt: skip
    if person and len(person) > 20:
        found.append("联系人过长（最多 20 个字）")
    if phone and not re.fullmatch(r"[0-9+\-() ]{5,20}", phone):
        found.append("联系电话应为 5–20 位数字（可含 - 和括号）")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        found.append("电子邮箱格式不对")
    return found


def _without_row(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if key != "row"}


def read_yaml(path: Path) -> Roster:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RosterRefused([f"名册文件无法读取：{type(exc).__name__}"]) from None
    return _validated(raw)


def _validated(raw: object) -> Roster:
    try:
        return Roster.model_validate(raw)
    except ValidationError as exc:
        raise RosterRefused([_problem(error) for error in exc.errors()]) from None


def _problem(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(顶层)"
    words = {
        "missing": "缺少必填字段",
        "extra_forbidden": "未知字段",
        "string_type": '应为文本（代码请加引号，如 "500101108"）',
        "model_type": "应为映射（键: 值）",
        "dict_type": "应为映射（键: 值）",
        "tuple_type": "应为列表",
        "string_pattern_mismatch": f"格式不符：「{short_masked(str(error.get('input')), 20)}」",
        "too_short": "不能为空",
        "string_too_short": "不能为空",
        "string_too_long": "过长",
    }
    return f"{where}：{words.get(error['type'], error['msg'])}"


def _dropped_in_use(engine: Engine, calendar: Calendar, roster: Roster) -> list[str]:
    """The units of the town plan in use (its placeholders, or the villages of the roster in use) that have reported,
    uploaded or got a workload under a code the new roster would drop."""
    kept = {village.code for township in roster.townships for village in township.villages}
    dropped = [unit for unit in with_roster(calendar).unit_codes if unit not in kept]
    with session_scope(engine) as session:
        reported = set(session.scalars(select(Report.unit).where(Report.campaign_id == calendar.id)).all())
        reported |= set(  # a workload loaded for it counts too
            session.scalars(select(WorkloadHousehold.unit).where(WorkloadHousehold.campaign_id == calendar.id)).all()
        )
    uploaded = {unit for unit in dropped for form in calendar.forms if records.current_version(calendar.id, form, unit)}
    return [unit for unit in dropped if unit in reported or unit in uploaded]


def load_roster(engine: Engine, calendar: Calendar, roster: Roster, at: dt.datetime, actor: str) -> Loaded:
    """Check the roster against the campaign and keep it (atomically, audited); ``RosterRefused`` if it does not
    fit. ``calendar`` is the campaign's calendar as shipped, without a roster."""
    problems = roster_problems(calendar, roster)
    if calendar.units.level == "village":
        in_use = _dropped_in_use(engine, calendar, roster)
        if in_use:
            problems.append(
                f"{'、'.join(in_use[:5])} 等 {len(in_use)} 个单位已有报送、上传的数据或工作台账，新名册中没有它们："
                "载入后这些数据将不属于任何单位。请在新名册中保留这些村；如确需更换，请联系运维人员迁移数据"
            )
    if problems:
        raise RosterRefused(problems)
    file = roster_file(calendar.id)
    replaced = file.exists()
    write_atomically(file, roster_json(roster))
    townships = len(roster.townships)
    villages = sum(len(township.villages) for township in roster.townships)
    again = "，替换原名册" if replaced else ""
    with session_scope(engine) as session:
        audit(
            session,
            at=at,
            action="roster_load",
            actor=actor,
            detail=f"载入名册（{roster.source}）：{townships} 个乡镇、{villages} 个村{again}"[:1000],
            campaign_id=calendar.id,
            unit=None,
        )
    return Loaded(roster, townships, villages, replaced)
