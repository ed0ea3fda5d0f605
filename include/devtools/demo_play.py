"""The demo's units at play (``make start``): the cities and counties of the compressed demo campaign report and
declare through the HTTP API as ``campaign simulate`` plays them (on time, late, never, one on behalf, one with
another's token), three cities upload synthetic workbooks with defects once their entry window is open (the
validation runs the campaign DAG triggers turn them into problem lists), and the reminders each due instant
implies go through the outbox (to Slack where ``SLACK_BOT_TOKEN`` is set, else ``reminders/sink.jsonl``).

Without it a newcomer watches every gate of the demo turn red. The supervisor (include/devtools/local_airflow.py
``serve``) runs it in a thread beside Airflow's components; ``CAMPAIGN_DEMO_PLAY=0`` turns it off. What it did
goes to ``$CAMPAIGN_HOME/logs/demo-play.log``.
"""

from __future__ import annotations

import datetime as dt
import threading
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


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    what: str  # report | workbook | remind
    unit: str = ""
    milestone: str = ""
    token_of: str = ""
    file: Path | None = None


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
    for milestone in calendar.milestones:
        steps.append(Step(milestone.due + dt.timedelta(seconds=2), "remind", milestone=milestone.id))
    return sorted(steps, key=lambda step: step.at)


def own_declarations(calendar: Calendar) -> list[tuple[dt.datetime, str, str]]:
    """What the simulation leaves out, having no gate to check it against: the top-level units' declarations of
    the milestones they owe without a report (seed 000's "9月30日前，市、县、乡逐级进行部署培训"), each halfway
    through its phase, by every unit but the one that never reports."""
    never = make_play(calendar).roles["never"]
    found = []
    for milestone in calendar.milestones:
        if milestone.report is not None or calendar.level_of(milestone) != calendar.units.level:
            continue
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
                files={
                    "file": (
                        step.file.name,
                        handle,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    )
                },
            )
        return f"上传工作簿 HTTP {response.status_code}"
    milestone = next(item for item in calendar.milestones if item.id == step.milestone)
    report = {"file": (f"{step.milestone}.pdf", f"{step.unit}/{step.milestone}".encode(), "application/pdf")}
    response = client.post(
        "/api/reports",
        headers=headers,
        data={"campaign": calendar.id, "unit": step.unit, "milestone": step.milestone},
        files=report if milestone.report else None,  # a declaration carries no file
    )
    behalf = f"（由{calendar.name_of(step.token_of)}代报）" if step.token_of != step.unit else ""
    return f"报送 HTTP {response.status_code}{behalf}"
