"""Problems from elsewhere: the lists the national and the provincial offices issue, in the same loop.

Seed 000: "国务院扶贫办和省扶贫开发办同时开展数据分析"; seed 004: "数据质量报告和问题清单". Such a list comes as an
Excel workbook, one problem per row: the head's ID number (户主身份证号码, or 户主证件号码), optionally the person's
(问题人员身份证号码), the kind of problem (问题类型) and what is wrong (问题描述). ``import_list`` keys each row to
the unit whose records hold the household, else to the unit above the county its ID number was issued in
(GB/T 2260: the first six digits), and stores the list; every run of the rules then adds its problems to the
units' own (``imported_problems``), so that they get numbers, go out in the lists, come back with results and
are reviewed as any. A row that names no household the campaign can place is reported back, not dropped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from openpyxl import load_workbook

from include import paths
from include.calendar import Calendar
from include.calendar.instants import local_iso
from include.errors import Refused
from include.forms import records
from include.forms.spec import get_form
from include.masking import mask_id
from include.rules.engine import PROBLEM_SCHEMA

SOURCES = {"national": "国务院扶贫办", "province": "省扶贫开发办"}
TITLES = {"national": "国务院扶贫办下发的问题", "province": "省扶贫开发办下发的问题"}
HEAD = ("户主身份证号码", "户主证件号码", "户主居民身份证号码")
PERSON = ("问题人员身份证号码", "成员身份证号码", "人员身份证号码")
KIND = ("问题类型", "问题分类", "规则")
TEXT = ("问题描述", "问题说明", "问题")
MAX_ROWS = 500_000
ID = re.compile(r"\d{17}[\dX]")


class ImportRefused(Refused):
    pass


@dataclass(frozen=True)
class Imported:
    source: str
    label: str
    rows: int
    placed: int
    by_unit: dict[str, int]
    unplaced: list[str]  # "第 12 行：…", masked

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "label": self.label,
            "rows": self.rows,
            "placed": self.placed,
            "by_unit": self.by_unit,
            "unplaced": self.unplaced,
        }


def folder(campaign: str) -> Path:
    return paths.campaign_home() / "validation" / campaign / "imported"


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(name) for name in names if name in header), None)


def _text(value: object) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _number(value: object) -> str | None:
    """An ID number as written, its check character X in capitals."""
    text = _text(value)
    return text.upper() if text else None


def household_units(calendar: Calendar) -> dict[str, str]:
    """Every stored household key of the campaign's household forms → the unit whose records hold it."""
    found: dict[str, str] = {}
    for form_id in calendar.forms:
        form = get_form(form_id)
        if not form.household_key or not any(sheet.id == "households" for sheet in form.sheets):
            continue
        frame = records.scan(calendar.id, form_id, "households")
        if frame is None:
            continue
        for unit, key in frame.select("unit", form.household_key).collect().iter_rows():
            if key is not None:
                found.setdefault(str(key), str(unit))
    return found


def _by_region(calendar: Calendar, number: str) -> str | None:
    """The campaign's unit a county code (the ID's first six digits) belongs to, if the tree has that county."""
    code = number[:6]
    if code not in calendar.tree:
        return None
    return calendar.reporting_unit(code) or (code if code in calendar.unit_names else None)


def import_list(calendar: Calendar, path: Path, *, source: str, label: str, at: dt.datetime) -> Imported:
    """Read an issued problem list and store what it places; ``ImportRefused`` when the file cannot be one."""
    if source not in SOURCES:
        raise ImportRefused("source", f"来源应为：{'、'.join(f'{k}（{v}）' for k, v in SOURCES.items())}")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # the file's fault, whatever the reader raised
        raise ImportRefused("not_xlsx", "文件不是 Excel 保存的 .xlsx 工作簿，无法读取。") from None
    ws = wb.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header = [str(value).strip() if value is not None else "" for value in next(rows, ())]
    head, person, kind, text = (_column(header, names) for names in (HEAD, PERSON, KIND, TEXT))
    if head is None or text is None:
        raise ImportRefused(
            "columns",
            f"第一张工作表的第 1 行应有列“{HEAD[0]}”和“{TEXT[0]}”（可选“{PERSON[0]}”“{KIND[0]}”），"
            f"现为：{'、'.join(h for h in header if h) or '空'}",
        )
    places = household_units(calendar)
    problems, unplaced = [], []
    for number, row in enumerate(rows, start=2):
        if number > MAX_ROWS:
            raise ImportRefused("too_many", f"超过 {MAX_ROWS} 行；请分批导入")
        cells = list(row) + [None] * (len(header) - len(row))
        household = _number(cells[head])
        if household is None and not any(cells):
            continue
        if household is None or not ID.fullmatch(household):
            unplaced.append(f"第 {number} 行：户主身份证号码“{mask_id(household or '')}”不是 18 位身份证号码")
            continue
        unit = places.get(household) or _by_region(calendar, household)
        if unit is None:
            unplaced.append(
                f"第 {number} 行：户主 {mask_id(household)} 不在本工作任何单位的数据中，其证件所在县也不属本工作"
            )
            continue
        what = _text(cells[kind]) if kind is not None else None
        problems.append(
            {
                "unit": unit,
                "household": household,
                "person": _number(cells[person]) if person is not None else None,
                "fields": [what or "问题"],
                "rule": source,
                "severity": "error",
                "message": f"【{label}{('：' + what) if what else ''}】{_text(cells[text]) or ''}",
            }
        )
    frame = pl.DataFrame(problems, schema=PROBLEM_SCHEMA) if problems else pl.DataFrame(schema=PROBLEM_SCHEMA)
    digest = hashlib.sha256(json.dumps(frame.to_dicts(), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]
    target = folder(calendar.id) / f"{source}-{digest}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    with paths.atomic_path(target) as staging:
        frame.write_parquet(staging)
    meta = {"source": source, "label": label, "file": path.name, "at": local_iso(at), "rows": frame.height}
    paths.write_atomically(target.with_suffix(".json"), json.dumps(meta, ensure_ascii=False, indent=1))
    by_unit = dict(frame.group_by("unit").len().sort("unit").iter_rows()) if problems else {}
    return Imported(source, label, len(problems) + len(unplaced), len(problems), by_unit, unplaced)


def imported_problems(campaign: str) -> pl.DataFrame:
    """Every imported list's problems, as the rules' problems are (PROBLEM_SCHEMA)."""
    files = sorted(folder(campaign).glob("*.parquet")) if folder(campaign).is_dir() else []
    if not files:
        return pl.DataFrame(schema=PROBLEM_SCHEMA)
    return pl.concat([pl.read_parquet(file) for file in files], how="vertical_relaxed").unique(keep="first")
