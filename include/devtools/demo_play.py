"""The demo's units at play (``make start``): the cities and counties of the compressed demo campaign report and
declare through the HTTP API as ``campaign simulate`` plays them (on time, late, never, one on behalf, one with
another's token), three cities upload synthetic workbooks with defects once their entry window is open (the
validation runs the campaign DAG triggers turn them into problem lists), answer their lists as clerks would (one
on time, one late, one half: seed 000's "各市根据问题清单…开展实地核查"), and the reminders each due instant
implies go through the outbox (to Slack where ``SLACK_BOT_TOKEN`` is set, else ``reminders/sink.jsonl``).

Without it a newcomer watches every gate of the demo turn red. The supervisor (include/devtools/local_airflow.py
``serve``) runs it in a thread beside Airflow's components; ``CAMPAIGN_DEMO_PLAY=0`` turns it off. What it did
goes to ``$CAMPAIGN_HOME/logs/demo-play.log``.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pendulum
from sqlalchemy.engine import Engine

from include.calendar import Calendar, read_calendar
from include.calendar.instants import local_text
from include.devtools.play import make_play
from include.door.tokens import issue_token
from include.store.db import make_engine, upgrade

UPLOADERS = 3  # cities that upload a synthetic workbook
ANSWERS = ("all", "late", "half")  # how each uploader answers its problem list (a gate on data)
ANSWER_TRIES = 6  # 5 s apart, while the list is not written yet and the due instant is not near
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    what: str  # report | workbook | answer | remind
    unit: str = ""
    milestone: str = ""
    token_of: str = ""
    file: Path | None = None
    how: str = ""  # for an answer: all | late | half


def steps_of(calendar: Calendar, workbooks: dict[str, Path]) -> list[Step]:
    """The play in time order: every report and declaration, each uploader's workbook a moment after the reports
    that open its window, and the reminders two seconds after each due instant."""
    play = make_play(calendar)
    steps = [Step(item.at, "report", item.unit, item.milestone, item.token_of) for item in play.attempts]
    steps += [Step(at, "report", unit, milestone, unit) for at, unit, milestone in own_declarations(calendar)]
    window = next(iter(calendar.entry_windows), None)
    for unit, file in workbooks.items():
        opened = [
            item.at
            for item in play.attempts
            if item.unit == unit and item.expect_http == 201 and window and item.milestone in window.requires
        ]
        if window is not None and opened and max(opened) + dt.timedelta(seconds=2) < window.closes:
            steps.append(Step(max(opened) + dt.timedelta(seconds=2), "workbook", unit, token_of=unit, file=file))
    steps += answer_steps(calendar, list(workbooks))
    for milestone in calendar.milestones:
        steps.append(Step(milestone.due + dt.timedelta(seconds=2), "remind", milestone=milestone.id))
    return sorted(steps, key=lambda step: step.at)


def answer_steps(calendar: Calendar, uploaders: list[str]) -> list[Step]:
    """Each uploader answers its list of a gate on data: the first all of it on time, the second all of it late, the
    third half of it (its gate stays red, and it is reminded)."""
    steps = []
    for milestone in (item for item in calendar.milestones if item.verified):
        phase = calendar.phase(milestone.phase)
        door = calendar.door_closes(milestone)
        for unit, how in zip(uploaders, ANSWERS, strict=False):
            late = milestone.due + (door - milestone.due) * 0.1
            at = late if how == "late" else phase.starts + (milestone.due - phase.starts) * 0.5
            steps.append(Step(at, "answer", unit, milestone.id, unit, how=how))
    return steps


def answered(content: bytes, how: str) -> bytes:
    """A problem list (.xlsx) as a clerk fills it: 属实，已整改 and a note for each open problem (every other one for
    ``half``), nothing else touched."""
    import io

    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(content))
    n = 0
    for sheet in workbook.worksheets[1:]:  # the summary first, then the problems
        header = [cell.value for cell in sheet[1]]
        if "核查结果" not in header:
            continue
        result, note, state = (header.index(name) + 1 for name in ("核查结果", "说明", "状态"))
        for row in range(2, sheet.max_row + 1):
            if sheet.cell(row=row, column=state).value == "已整改" or sheet.cell(row=row, column=result).value:
                continue
            if how != "half" or n % 2 == 0:
                sheet.cell(row=row, column=result, value="属实，已整改")
                sheet.cell(row=row, column=note, value="演示：已入户核实，并在系统中更正")
            n += 1
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def own_declarations(calendar: Calendar) -> list[tuple[dt.datetime, str, str]]:
    """What the simulation leaves out, having no gate to check it against: the top-level units' declarations of
    the milestones they owe without a report (seed 000's "9月30日前，市、县、乡逐级进行部署培训"), each halfway
    through its phase, by every unit but the one that never reports."""
    never = make_play(calendar).roles["never"]
    found = []
    for milestone in calendar.milestones:
        if milestone.report is not None or milestone.verified or calendar.level_of(milestone) != calendar.units.level:
            continue  # a gate on data is done by answering the list (``answer`` steps), never declared
        phase = calendar.phase(milestone.phase)
        at = phase.starts + (milestone.due - phase.starts) * 0.5
        found += [(at, unit, milestone.id) for unit in calendar.owers(milestone) if unit != never]
    return found


def play_demo(
    calendar_file: Path,
    api: str,
    database_url: str,
    stop: threading.Event,
    log: Callable[[str], None],
    workdir: Path,
) -> dict[str, int]:
    """Play the demo campaign against the campaign API at ``api`` (``…/campaign`` under Airflow) until it is over
    or ``stop`` is set; returns what it did, by outcome."""
    from include.devtools.synth import synthesize

    calendar = read_calendar(calendar_file)
    if calendar.ends <= pendulum.now("UTC"):
        log(f"演示战役 {calendar.id} 已于 {local_text(calendar.ends, end=True)} 结束，不再演示报送")
        return {}
    engine = make_engine(upgrade(database_url))
    now = pendulum.now("UTC")
    tokens = {  # scoped to the demo campaign, expiring with it
        node.code: issue_token(engine, node.code, now, campaign_id=calendar.id, expires_at=calendar.ends)[1]
        for node in calendar.tree
        if node.parent is not None
    }
    uploaders = calendar.unit_codes[:UPLOADERS]
    synthesize(calendar, workdir, households=30 * UPLOADERS, defect_rate=0.15, seed=7, units=uploaders)
    workbooks = {unit: next(workdir.glob(f"*-{unit}.xlsx")) for unit in uploaders}
    done: dict[str, int] = {}
    log(f"演示：{len(tokens)} 个单位开始报送（{calendar.id}，{local_text(calendar.starts)} 开始）")
    with httpx.Client(base_url=api, timeout=30) as client:
        for step in steps_of(calendar, workbooks):
            if stop.wait(max(0.0, (step.at - pendulum.now("UTC")).total_seconds())):
                break
            try:
                outcome = _do(client, engine, calendar, tokens, step)
            except httpx.HTTPError as error:  # the api-server restarting: the next step tries again
                outcome = f"未送达（{error!r}）"
            done[outcome.split("（")[0]] = done.get(outcome.split("（")[0], 0) + 1
            log(f"{local_text(step.at)} {calendar.name_of(step.unit) if step.unit else ''} {step.milestone} {outcome}")
    engine.dispose()
    log(f"演示报送结束：{done}")
    return done


def _do(client: httpx.Client, engine: Engine, calendar: Calendar, tokens: dict[str, str], step: Step) -> str:
    if step.what == "remind":
        from include.reminders import delivery, outbox, senders
        from include.reminders.policy import reminders_due

        due = [
            item for item in reminders_due(engine, calendar, pendulum.now("UTC")) if item.milestone == step.milestone
        ]
        outbox.enqueue(engine, due)
        sender = senders.sender_from_env()
        result = delivery.deliver(engine, sender, campaign=calendar.id, **sender.pace)
        return f"提醒 {len(due)} 条（发送 {result.sent}）"
    headers = {"Authorization": f"Bearer {tokens[step.token_of]}"}
    if step.what == "workbook" and step.file is not None:
        with step.file.open("rb") as handle:
            response = client.post(
                "/api/workbooks",
                headers=headers,
                data={"campaign": calendar.id, "unit": step.unit},
                files={"file": (step.file.name, handle, XLSX)},
            )
        return f"上传工作簿 HTTP {response.status_code}"
    milestone = next(item for item in calendar.milestones if item.id == step.milestone)
    if step.what == "answer" and milestone.verified:
        for _ in range(ANSWER_TRIES):  # the validation the campaign DAG triggered may still be writing the lists
            listed = client.get(
                f"/api/campaigns/{calendar.id}/units/{step.unit}/problem-list",
                headers=headers,
                params={"stage": milestone.verified},
            )
            if listed.status_code != 404 or pendulum.now("UTC") + dt.timedelta(seconds=5) >= milestone.due:
                break
            time.sleep(5)
        if listed.status_code != 200:
            return f"下载问题清单 HTTP {listed.status_code}"
        response = client.post(
            "/api/problem-results",
            headers=headers,
            data={"campaign": calendar.id, "unit": step.unit},
            files={"file": ("核查结果.xlsx", answered(listed.content, step.how), XLSX)},
        )
        return f"上传核查结果 HTTP {response.status_code}"
    report = {"file": (f"{step.milestone}.pdf", f"{step.unit}/{step.milestone}".encode(), "application/pdf")}
    response = client.post(
        "/api/reports",
        headers=headers,
        data={"campaign": calendar.id, "unit": step.unit, "milestone": step.milestone},
        files=report if milestone.report else None,  # a declaration carries no file
    )
    behalf = f"（由{calendar.name_of(step.token_of)}代报）" if step.token_of != step.unit else ""
    return f"报送 HTTP {response.status_code}{behalf}"
