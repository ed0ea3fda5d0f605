"""One DAG per campaign calendar.

Phases are task groups; inside each, a task at the phase's start, one at each milestone's due
instant, one at each entry window's opening and closing, and one at the phase's end; the system
closing is a task of its own. Every task finishes at its instant (see `CalendarInstantSensor`).
Gates on units' reports go into the milestone's place (`milestone_tasks`). At the start of each
validation stage (analysis, verification, completion) the phase triggers the validation DAG for all
units (`validation_trigger`).

This module is imported at DAG-parse time: it reads calendar files and builds objects, nothing
else (no database, no network, no clock).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TaskGroup

from include.calendar import Calendar, CalendarError, read_calendar
from include.calendar.instants import local_iso, local_text
from include.calendar.model import EntryWindow, Milestone, Phase
from include.calendar.registry import check_id_matches_file
from include.calendar.render import calendar_markdown
from include.calendar.roster import shapes_the_dags, with_roster
from include.calendar.tree import LEVEL_WORDS
from include.orchestration.gates import GATE_LABEL, ProvinceApproval, ReportGate, poll_seconds, province_approvers
from include.orchestration.instant_sensor import CalendarInstantSensor
from include.orchestration.timetable import CampaignTimetable
from include.orchestration.validation_dag import ALL_UNITS
from include.orchestration.validation_dag import DAG_ID as VALIDATION_DAG_ID
from include.orchestration.validation_trigger import TriggerDagRun
from include.rules.stages import STAGES

log = logging.getLogger(__name__)
DEFAULT_ARGS = {"retries": 2, "retry_delay": dt.timedelta(seconds=30)}
# A gate's retries re-read the store at once: they cover a worker lost mid-check and what is left of Airflow 3.3's
# race between a fast trigger and the deferral's own executor event (include/orchestration/gates.py SETTLE_SECONDS).
# A gate whose door has closed without the report fails without a retry.
GATE_RETRY = {"retries": 2, "retry_delay": dt.timedelta(seconds=5)}


def _instant_task(
    calendar: Calendar, task_id: str, key: str, kind: str, due: dt.datetime, label: str
) -> CalendarInstantSensor:
    when = local_text(due, end=kind not in ("phase_start", "window_open"))
    return CalendarInstantSensor(
        task_id=task_id,
        task_display_name=f"{label}（{when}）",
        campaign_id=calendar.id,
        key=key,
        kind=kind,
        due=due,
        label=label,
        doc_md=f"{label}：{when}（北京时间）。",
    )


def gate_units(calendar: Calendar, milestone: Milestone) -> tuple[list[str], dict[str, list[str]] | None]:
    """Whom a milestone's gate is mapped over: the reporting units (the calendar's level); or, for a milestone
    the units below owe (seed 000: "县、乡扶贫部门完成全部数据录入"), each top-level unit with its own that owe it."""
    if milestone.verified:  # a gate on data: every unit that gets the stage's problem list
        return calendar.owers(milestone), None
    if calendar.level_of(milestone) == calendar.units.level or milestone.by == "office":
        return calendar.reporters_of(milestone), None
    owers = set(calendar.owers(milestone))
    below = {  # a city without counties owes it itself
        code: [node.code for node in calendar.tree.subtree(code)[1:] if node.code in owers]
        or ([code] if code in owers else [])
        for code in calendar.unit_codes
    }
    below = {code: units for code, units in below.items() if units}
    return list(below), below


def milestone_tasks(calendar: Calendar, milestone: Milestone) -> tuple[CalendarInstantSensor, list[Any]]:
    """The milestone's due instant, and one gate per reporting unit (mapped, named after the unit); where the units
    below owe it, one per top-level unit that waits for all of its own (a city's counties)."""
    due = _instant_task(
        calendar,
        f"due_{milestone.id}",
        f"milestones.{milestone.id}.due",
        "milestone_due",
        milestone.due,
        f"截止：{milestone.name}",
    )
    units, below = gate_units(calendar, milestone)
    if not units:
        return due, []
    word = LEVEL_WORDS[calendar.level_of(milestone)]
    names = calendar.unit_names
    if below is not None:
        names = names | {code: calendar.name_of(code) for codes in below.values() for code in codes}
    doc = (
        f"各单位报送“{milestone.name}”：绿色为已报送（标注按时或逾期），紫色为等待中，红色为截至关闭仍未报送。"
        if below is None
        else f"各{word}完成“{milestone.name}”：每个单位一格，其下{word}全部报告完成后为绿色（标注完成数和逾期数），"
        f"紫色为等待中，红色为截至关闭仍有{word}未完成。"
    )
    if milestone.verified:
        doc = (
            f"各单位核查问题清单（“{milestone.name}”）：问题清单的每个问题都填写核查结果后为绿色（标注已核查数、"
            "按时或逾期），紫色为等待中，红色为截至关闭仍有问题未核查。"
        )
    verb = "核查" if milestone.verified else "报送" if below is None else f"{word}完成"
    gate = ReportGate.partial(
        task_id=f"gate_{milestone.id}",
        task_display_name=f"{verb}：{milestone.name}（截止 {local_text(milestone.due, end=True)}）",
        verified=milestone.verified,
        campaign_id=calendar.id,
        milestone=milestone.id,
        unit_names=names,
        due=milestone.due,
        gives_up_at=calendar.door_closes(milestone),
        poll=poll_seconds(calendar.ends - calendar.starts),
        below=below,
        word=word,
        map_index_template=GATE_LABEL,
        **GATE_RETRY,
        doc_md=doc,
    ).expand(unit=units)
    return due, [gate]


def approval_tasks(calendar: Calendar, window: EntryWindow) -> list[Any]:
    """Where the province opens the window: one HITL approval per unit, after its application."""
    application = calendar.application_of(window)
    if application is None:
        return []
    return [
        ProvinceApproval.partial(
            task_id=f"approve_{window.id}",
            task_display_name=f"省级审批：开通{window.name}",
            campaign_id=calendar.id,
            window=window.id,
            application=application.id,
            unit_names=calendar.unit_names,
            gives_up_at=window.closes,
            poll=poll_seconds(calendar.ends - calendar.starts),
            subject="批准开通数据录入功能？",
            assigned_users=province_approvers(),
            map_index_template=GATE_LABEL,
            **GATE_RETRY,
        ).expand(unit=calendar.reporters_of(application))
    ]


def validation_run_id(campaign_id: str, stage: str, campaign_run_id: str) -> str:
    """The run id of the validation run that a campaign run triggers at a stage's start."""
    return f"{campaign_id}__{stage}__{campaign_run_id}"


def validation_conf(calendar: Calendar, phase: Phase) -> dict[str, str]:
    """What the campaign asks the validation DAG at the phase's start: all units, as of that instant."""
    return {"campaign": calendar.id, "unit": ALL_UNITS, "stage": phase.id.value, "at": local_iso(phase.starts)}


def validation_trigger(calendar: Calendar, phase: Phase) -> Any:
    """Trigger the validation DAG for all units at the phase's start; a leaf, so it never holds up a deadline.

    The run id comes from the campaign run's id and the stage, so a retry or a cleared campaign run finds the
    validation run already there and skips instead of triggering a second one.
    """
    stage = phase.id.value
    return TriggerDagRun(
        task_id="trigger_validation",
        task_display_name=f"触发数据校验：{phase.name}",
        trigger_dag_id=VALIDATION_DAG_ID,
        trigger_run_id=validation_run_id(calendar.id, stage, "{{ run_id }}"),
        conf=validation_conf(calendar, phase),
        doc_md=(
            f"“{phase.name}”开始时（{local_text(phase.starts)}，北京时间）触发“数据校验与问题清单”，"
            f"对全部单位按 `{stage}` 阶段运行校验规则。同一战役运行只触发一次；"
            "触发失败不影响本战役的其他任务（本次运行最终标为失败，请手动触发校验）。"
        ),
    )


def build_dag(calendar: Calendar) -> DAG:
    """The campaign DAG of one calendar."""
    with DAG(
        dag_id=calendar.id,
        dag_display_name=calendar.name,
        description=f"{calendar.name}（{local_text(calendar.starts)} 至 {local_text(calendar.ends, end=True)}）",
        schedule=CampaignTimetable(calendar.starts, calendar.ends, calendar.id),
        start_date=calendar.starts,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=64,
        default_args=DEFAULT_ARGS,
        doc_md=calendar_markdown(calendar),
        tags=["campaign", str(calendar.year), calendar.units.level],
    ) as dag:
        # Each phase's start follows the previous one's, so that the grid lists phases in order.
        phase_starts: list[tuple[dt.datetime, CalendarInstantSensor]] = []
        for phase in calendar.phases_in_order():
            with TaskGroup(group_id=phase.id.value, group_display_name=phase.name, tooltip=phase.quote):
                opens = _instant_task(
                    calendar,
                    "starts",
                    f"phases.{phase.id.value}.starts",
                    "phase_start",
                    phase.starts,
                    f"开始：{phase.name}",
                )
                closes = _instant_task(
                    calendar, "ends", f"phases.{phase.id.value}.ends", "phase_end", phase.ends, f"结束：{phase.name}"
                )
                inner, gates = [], []
                for item in calendar.milestones:
                    if item.phase == phase.id:
                        due, unit_gates = milestone_tasks(calendar, item)
                        inner.append(due)
                        gates += unit_gates
                for window in calendar.entry_windows:
                    if window.phase != phase.id:
                        continue
                    window_opens = _instant_task(
                        calendar,
                        f"window_{window.id}_opens",
                        f"entry_windows.{window.id}.opens",
                        "window_open",
                        window.opens,
                        f"开放录入：{window.name}",
                    )
                    window_closes = _instant_task(
                        calendar,
                        f"window_{window.id}_closes",
                        f"entry_windows.{window.id}.closes",
                        "window_close",
                        window.closes,
                        f"关闭录入：{window.name}",
                    )
                    window_opens >> window_closes
                    inner += [window_opens, window_closes]
                    gates += approval_tasks(calendar, window)
                opens >> (inner or closes)
                if inner:
                    inner >> closes
                if gates:
                    opens >> gates
                if phase.id.value in STAGES:
                    opens >> validation_trigger(calendar, phase)
            if phase_starts:
                phase_starts[-1][1] >> opens
            phase_starts.append((phase.starts, opens))
        system_close = _instant_task(
            calendar, "system_close", "system_close.at", "system_close", calendar.system_close.at, "关闭信息系统"
        )
        before_close = [opens for starts, opens in phase_starts if starts <= calendar.system_close.at]
        if before_close:
            before_close[-1] >> system_close
    return dag


def _refuse(problems: str) -> None:
    raise ValueError(f"日历文件有误，不能运行：\n{problems}")


def build_error_dag(file: Path, error: CalendarError) -> DAG:
    """A DAG that shows an invalid calendar's problems in the UI (and fails if triggered).

    One bad file must not hide the valid campaigns, as an import error of the whole DAG file would.
    """
    from airflow.providers.standard.operators.python import PythonOperator

    lines = "\n".join(f"- `{problem.path}`：{problem.reason}" for problem in error.problems)
    with DAG(
        dag_id=f"calendar-error-{re.sub(r'[^A-Za-z0-9_.-]', '_', file.stem)}",
        dag_display_name=f"日历文件有误：{file.name}",
        schedule=None,
        doc_md=f"# 日历文件有误：`{file}`\n\n修正后此项自动消失，战役 DAG 随之出现。\n\n{lines}\n",
        tags=["calendar-error"],
    ) as dag:
        PythonOperator(task_id="calendar_invalid", python_callable=_refuse, op_args=[str(error)])
    return dag


def build_all(files: list[Path]) -> dict[str, DAG]:
    """DAGs by dag_id: a campaign DAG and a reminders DAG for every valid calendar file (a compressed one,
    minutes long, has no working days to remind on), an error DAG for each invalid one."""
    from include.orchestration.reminders_dag import build_reminders_dag

    dags: dict[str, DAG] = {}
    for file in files:
        try:
            calendar = read_calendar(file)
            check_id_matches_file(calendar, file)  # a file named otherwise never stands in for a campaign
            if shapes_the_dags(calendar):
                calendar = with_roster(calendar)  # a town's villages from its roster, where the office loaded one
        except CalendarError as exc:
            log.error("%s", exc)
            dag = build_error_dag(file, exc)
        else:
            dag = build_dag(calendar)
            if calendar.compressed_from is None:
                reminders = build_reminders_dag(calendar)
                dags[reminders.dag_id] = reminders
        dags[dag.dag_id] = dag
    return dags
