"""Problem lists that come back: a unit's 核查结果 per problem, uploaded in the list it was given.

Seed 000: "各市根据问题清单以及自查发现的问题，组织县、乡扶贫部门开展实地核查，对查实的问题进行整改。" Each list
(include/rules/problem_list.py) ends every problem's row with 核查结果 (属实，已整改 / 属实，待整改 / 不属实 /
无法核实) and 说明, the only cells not protected, and is marked with its campaign, unit and stage. The unit
(a county for its own households, or its city for all of the list) uploads it back; every row is checked
against the problems stored for that unit and stage, and the upload is taken whole or refused whole:

- a number (问题编号) that is not one of the list's problems, or a row whose issued cells differ from the list
  (a protected cell edited, or a list generated before the latest run), is refused with its row;
- a county may answer only the problems of its own households; a fixed problem needs no answer;
- 不属实 and 无法核实 need a 说明 (the office reviews a 不属实).

Results are added to ``problem_results`` (the latest of a problem counts) and audited, with who and whether
on behalf of a county.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from include.calendar import Calendar
from include.calendar.instants import local_text
from include.calendar.tree import LEVEL_WORDS
from include.errors import Refused
from include.forms.template import MARKER_PREFIX
from include.forms.xlsx import writable
from include.masking import redact
from include.rules.problem_list import HEADERS, ISSUED, KIND, RESULT_TEXT, STAGE_TEXT, STATUS_TEXT, issued_values
from include.rules.problems import CLOSED, FollowUp, stored_problems
from include.rules.stages import STAGES
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import ProblemResult

RESULT_CODES = {text: code for code, text in RESULT_TEXT.items()}
NEEDS_NOTE = ("not_a_problem", "unverifiable")
MAX_ROWS = 200_000


class ResultsRefused(Refused):
    """The list is refused as a whole: ``rows`` are the row problems ("工作表「历下区」第 5 行：…")."""

    def __init__(self, reason: str, message: str, rows: list[str] | None = None) -> None:
        super().__init__(reason, message)
        self.rows = [redact(row) for row in rows or []]


@dataclass(frozen=True)
class Answer:
    problem: str
    rule: str
    household: str
    result: str  # fixed, pending, not_a_problem, unverifiable
    note: str | None
    sheet: str
    row: int


@dataclass(frozen=True)
class Submitted:
    campaign: str
    unit: str
    stage: str
    answers: int
    by_result: dict[str, int]
    answered: int  # the unit's problems (not fixed) of that stage with a result now
    total: int

    def as_json(self) -> dict[str, object]:
        return {
            "campaign": self.campaign,
            "unit": self.unit,
            "stage": self.stage,
            "answers": self.answers,
            "by_result": self.by_result,
            "answered": self.answered,
            "total": self.total,
        }


def _marker(wb: object) -> dict[str, str]:
    found = {}
    for name, defined in getattr(wb, "defined_names", {}).items():
        if name.startswith(MARKER_PREFIX):
            found[name.removeprefix(MARKER_PREFIX)] = str(defined.attr_text or "").strip().strip('"')
    return found


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def answering(calendar: Calendar, unit: str, acting: str | None) -> str | None:
    """Whose problems of ``unit``'s list a credential of unit ``acting`` (None: the province's) may see and answer:
    every one (None) for the unit or one above it, its own households' (the county's name) for a county below it;
    ``ResultsRefused`` ("no_list", "forbidden") otherwise. Lists go per unit of the calendar (a city)."""
    if unit not in calendar.unit_names:
        listed = LEVEL_WORDS.get(calendar.units.level, calendar.units.level)
        raise ResultsRefused("no_list", f"{calendar.name_of(unit)}没有自己的问题清单：清单按{listed}下发。")
    if calendar.may_act(acting, unit):
        return None
    if acting is not None and calendar.reporting_unit(acting) == unit:
        return calendar.name_of(acting)
    raise ResultsRefused("forbidden", f"单位 {acting} 不能查看或填写{calendar.name_of(unit)}的问题清单。")


def read_answers(path: Path, calendar: Calendar, unit: str, acting: str | None) -> tuple[str, list[Answer]]:
    """The list's stage and its answers, every row checked (``ResultsRefused`` with each row's problem).

    ``acting`` is the uploader's unit (None for the province): the list's unit or one above it may answer
    every problem; a county below the list's unit only those of its own households.
    """
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # the file's fault, whatever the reader raised
        raise ResultsRefused(
            "not_xlsx", "文件不是 Excel 保存的 .xlsx 工作簿，无法读取；请在下发的问题清单上填写核查结果后上传。"
        ) from None
    marker = _marker(wb)
    if marker.get("kind") != KIND:
        raise ResultsRefused(
            "not_a_problem_list",
            "这不是本系统下发的问题清单（缺少清单标识）。请下载本单位的问题清单，在“核查结果”“说明”两列填写后上传。",
        )
    if marker.get("campaign") != calendar.id or marker.get("unit") != unit:
        raise ResultsRefused(
            "wrong_list",
            f"这是「{marker.get('campaign') or '?'}」单位 {marker.get('unit') or '?'} 的问题清单，"
            f"不是{calendar.name}{calendar.name_of(unit)}的。请上传本单位的清单。",
        )
    stage = marker.get("stage", "")
    if stage not in STAGES:
        raise ResultsRefused("wrong_list", "清单标识中的阶段无法识别；请重新下载本单位的问题清单。")
    stored = stored_problems(calendar.id, stage, unit)
    if stored is None:
        raise ResultsRefused(
            "no_list", f"{calendar.name_of(unit)}尚无“{STAGE_TEXT.get(stage, stage)}”阶段的问题清单，无结果可收。"
        )
    issued = {str(row["problem"]): row for row in stored.iter_rows(named=True)}
    own_county = answering(calendar, unit, acting)  # a county answers for its own households only
    answers: list[Answer] = []
    problems: list[str] = []
    for ws in wb.worksheets[1:]:
        rows = ws.iter_rows(values_only=True)
        header = tuple(_text(value) for value in next(rows, ()))[: len(HEADERS)]
        if header != HEADERS:
            problems.append(f"工作表「{ws.title}」：第 1 行应为表头 {'、'.join(HEADERS)}（列不可增删或调换）")
            continue
        for number, row in enumerate(rows, start=2):
            if number > MAX_ROWS:
                problems.append(f"工作表「{ws.title}」：超过 {MAX_ROWS} 行")
                break
            cells = [_text(value) for value in row] + [None] * (len(HEADERS) - len(row))
            if not any(cells):
                continue
            here = f"工作表「{ws.title}」第 {number} 行"
            number_text, result_text, note = cells[0], cells[len(ISSUED)], cells[len(ISSUED) + 1]
            problem = issued.get(number_text or "")
            if problem is None:
                problems.append(
                    f"{here}：问题编号「{writable(number_text or '')}」不是本清单的问题"
                    "（编号被改动，或清单已重新生成：请下载最新清单）"
                )
                continue
            expected = [None if value is None else writable(str(value)) for value in issued_values(problem)]
            changed = [ISSUED[i] for i, (got, want) in enumerate(zip(cells, expected, strict=False)) if got != want]
            if changed:
                problems.append(
                    f"{here}：「{'、'.join(changed)}」与下发的清单不一致（受保护的单元格被改动）；请在下发的清单上只填"
                    "“核查结果”和“说明”"
                )
                continue
            if result_text is None:
                if note is not None:
                    problems.append(f"{here}：填了说明但未选核查结果；请从下拉框中选择")
                continue
            result = RESULT_CODES.get(result_text)
            if result is None:
                problems.append(
                    f"{here}：核查结果「{writable(result_text)}」不是可选项（{'、'.join(RESULT_TEXT.values())}）"
                )
                continue
            if problem["status"] in CLOSED:
                problems.append(f"{here}：这个问题{STATUS_TEXT[problem['status']]}，不需填写核查结果")
                continue
            if result in NEEDS_NOTE and note is None:
                problems.append(f"{here}：核查结果为“{result_text}”的，请在“说明”中写明情况")
                continue
            county = problem.get("county")
            if own_county is not None and county != own_county:
                problems.append(
                    f"{here}：这个问题属于{county or '未注明区县的户'}，不是{own_county}的问题，不能代为填写"
                )
                continue
            answers.append(
                Answer(
                    str(problem["problem"]),
                    str(problem["rule"]),
                    str(problem["household"]),
                    result,
                    note,
                    ws.title,
                    number,
                )
            )
    if problems:
        raise ResultsRefused(
            "rows", f"核查结果有 {len(problems)} 处问题，整份清单未被接收，未作任何更改。请改正后重新上传。", problems
        )
    if not answers:
        raise ResultsRefused("empty", "清单中没有填写任何核查结果；请在“核查结果”列选择后上传。")
    return stage, answers


def submit_results(
    engine: Engine,
    calendar: Calendar,
    unit: str,
    path: Path,
    at: dt.datetime,
    *,
    actor: str,
    acting: str | None,
) -> Submitted:
    """Check the list (``read_answers``) and add its answers, audited; nothing is stored if any row is refused."""
    stage, answers = read_answers(path, calendar, unit, acting)
    on_behalf = acting is not None and acting != unit
    with session_scope(engine) as session:
        for answer in answers:
            session.add(
                ProblemResult(
                    campaign_id=calendar.id, unit=unit, problem=answer.problem, stage=stage, rule=answer.rule,
                    household=answer.household, result=answer.result, note=answer.note, submitted_by=actor,
                    on_behalf=on_behalf, at=at,
                )
            )  # fmt: skip
        counts: dict[str, int] = {}
        for answer in answers:
            counts[answer.result] = counts.get(answer.result, 0) + 1
        listed = "、".join(f"{RESULT_TEXT[code]} {n}" for code, n in sorted(counts.items()))
        listed = f"{len(answers)} 条（{listed}）"
        detail = f"{calendar.name_of(unit)}提交“{STAGE_TEXT.get(stage, stage)}”问题清单的核查结果 {listed}"
        audit(
            session, at=at, action="problem_results", actor=actor, campaign_id=calendar.id, unit=unit,
            on_behalf=on_behalf, detail=detail,
        )  # fmt: skip
    answered, total = verification_counts(engine, calendar, unit, stage)
    return Submitted(calendar.id, unit, stage, len(answers), counts, answered, total)


def latest_results(engine: Engine, campaign: str, unit: str) -> dict[str, ProblemResult]:
    """The latest result of each problem of the unit's lists."""
    with session_scope(engine) as session:
        rows = session.scalars(
            select(ProblemResult)
            .where(ProblemResult.campaign_id == campaign, ProblemResult.unit == unit)
            .order_by(ProblemResult.at, ProblemResult.id)
        ).all()
        session.expunge_all()
    return {row.problem: row for row in rows}


def verification_counts(engine: Engine, calendar: Calendar, unit: str, stage: str) -> tuple[int, int]:
    """How many of the unit's problems of the stage (not closed) have a result, and how many there are; a 不属实
    the office rejected is to be answered again."""
    stored = stored_problems(calendar.id, stage, unit)
    if stored is None:
        return 0, 0
    open_ids = set(stored.filter(~pl.col("status").is_in(CLOSED))["problem"].to_list())
    given = {problem for problem, row in latest_results(engine, calendar.id, unit).items() if row.review != "rejected"}
    return len(open_ids & given), len(open_ids)


def follow_up(engine: Engine, campaign: str, unit: str) -> FollowUp:
    """Each problem's latest result and the office's review of it, for the next run's status."""
    return {problem: (row.result, row.review) for problem, row in latest_results(engine, campaign, unit).items()}


class ReviewRefused(Refused):
    pass


def review_result(
    engine: Engine,
    calendar: Calendar,
    unit: str,
    problem: str,
    *,
    accept: bool,
    reason: str | None,
    by: str,
    at: dt.datetime,
) -> ProblemResult:
    """The office accepts or rejects a unit's 不属实 (a rejection with its reason), audited. Accepted, later runs
    do not raise the problem again; rejected, it is to be verified and answered again."""
    if not accept and not (reason or "").strip():
        raise ReviewRefused("reason_required", "驳回“不属实”必须写明原因（--reason），以便单位重新核查。")
    with session_scope(engine) as session:
        row = session.scalars(
            select(ProblemResult)
            .where(
                ProblemResult.campaign_id == calendar.id, ProblemResult.unit == unit, ProblemResult.problem == problem
            )
            .order_by(ProblemResult.at.desc(), ProblemResult.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise ReviewRefused("no_result", f"{calendar.name_of(unit)}尚未对问题 {problem} 提交核查结果。")
        if row.result != "not_a_problem":
            raise ReviewRefused(
                "not_a_problem_only", f"问题 {problem} 的核查结果是“{RESULT_TEXT[row.result]}”，只有“不属实”需要审核。"
            )
        row.review, row.review_reason, row.reviewed_by, row.reviewed_at = (
            "accepted" if accept else "rejected", (reason or "").strip() or None, by, at,
        )  # fmt: skip
        verdict = "认可" if accept else f"驳回（原因：{row.review_reason}）"
        detail = (
            f"审核{calendar.name_of(unit)}问题 {problem}（{row.rule}）的“不属实”：{verdict}；说明：{row.note or '无'}"
        )
        audit(
            session, at=at, action="result_review", actor=by, campaign_id=calendar.id, unit=unit, detail=detail
        )  # fmt: skip
        session.flush()
        session.expunge(row)
    return row


def results_for_list(engine: Engine, campaign: str, unit: str) -> dict[str, tuple[str, str | None]]:
    """The results a unit already gave, to fill its next list with (problem → result, note)."""
    return {problem: (row.result, row.note) for problem, row in latest_results(engine, campaign, unit).items()}


def describe(submitted: Submitted, calendar: Calendar, at: dt.datetime) -> str:
    """The receipt a clerk reads."""
    listed = "、".join(f"{RESULT_TEXT[code]} {n} 条" for code, n in sorted(submitted.by_result.items()))
    return (
        f"{calendar.name_of(submitted.unit)}的核查结果已接收（{local_text(at)}）：{submitted.answers} 条（{listed}）；"
        f"“{STAGE_TEXT.get(submitted.stage, submitted.stage)}”清单已核查 {submitted.answered}/{submitted.total}"
    )
