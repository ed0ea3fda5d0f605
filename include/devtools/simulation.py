"""`campaign simulate`: a whole compressed campaign on a real Airflow, with every unit played through
the HTTP API, and a verdict against what was played.

The play (fixed by a seed): most units report on time, some late; one never reports; one tries
after the door has closed (HTTP 409); one tries with another unit's token (HTTP 403) before
reporting with its own. After the run ends, the store's status, the gates in the Airflow grid and
the HTTP answers must all agree with the play, and the campaign must have triggered the validation DAG once
per validation stage. The validation DAG is paused there: its runs wait queued, so that sixteen problem lists
per stage do not compete with the play's timing on a small machine.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pendulum

from include.calendar import Calendar, read_calendar, registry
from include.calendar.compress import compress, to_yaml
from include.calendar.instants import local_text
from include.calendar.tree import LEVEL_WORDS
from include.devtools.components import Components
from include.devtools.local_airflow import AirflowApi, airflow_env, free_port, local_airflow, signed_in_users, wait_for
from include.devtools.play import Attempt, Play, make_play
from include.door.status import STATE_WORDS, WINDOW_WORDS, campaign_status
from include.door.tokens import PROVINCE, issue_token
from include.door.windows import APPROVAL_WORDS
from include.orchestration.instant_sensor import CalendarInstantSensor
from include.store.db import make_engine, upgrade

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from include.devtools.cluster import Cluster


# The outcome's fields that differ from one run of the same play to the next (where it ran, how it bore the load);
# the others are what two runs must agree on.
RUN_SPECIFIC = ("home", "load", "problems")
OFFICER = "张处长"  # the province's officer, a user of Airflow's simple auth manager on a simulated run
REJECTION = "申请书未加盖公章，请盖章后重新提交"


@dataclass
class Stage:
    """Where a simulation plays: its temporary home, Airflow's environment (and cluster), the compressed calendar,
    the store and a token per unit."""

    home: Path
    env: dict[str, str]
    cluster: Cluster | None
    calendar: Calendar
    engine: Engine
    tokens: dict[str, str]
    password: str  # the officer's, for Airflow's login

    def api(self, base: str) -> AirflowApi:
        """Airflow's REST API as the province's officer, signed in."""
        return wait_for(lambda: AirflowApi.login(base, OFFICER, self.password), 60, "登录 Airflow", self.log)

    @property
    def log(self) -> Path:
        return (self.home / "logs" if self.cluster is None else self.cluster.home) / "scheduler.log"

    def launcher(self) -> contextlib.AbstractContextManager[Components]:
        """Airflow started: its four components under the watchdog (LocalExecutor, SQLite), or the cluster."""
        return local_airflow(self.env, self.home / "logs") if self.cluster is None else _cluster_base(self.cluster)


def simulate(
    calendar_id: str,
    span: dt.timedelta,
    *,
    seed: int = 2020,
    startup: float = 100.0,
    executor: str = "local",
    workers: int = 2,
    drills: tuple[str, ...] = (),
    outcome_file: Path | None = None,
    limits: dict[str, str] | None = None,
    out: Callable[[str], None] = print,
) -> bool:
    """Run the play on a real Airflow; print the final status table and the verdict; True if it passed.

    ``executor`` "local": ``airflow standalone`` on SQLite. "celery": the cluster of ``include.devtools.cluster``
    (PostgreSQL, Redis, ``workers`` Celery workers); after the campaign the validation runs it triggered are
    let through and must succeed with their tasks spread over the workers. ``drills``: "restart-scheduler"
    (celery only) kills the scheduler in the middle of the campaign and starts it again; "kill-triggerer" kills
    the triggerer there and leaves it to the watchdog to start again.
    ``outcome_file``: the outcome (states, gates, the run's state, the stages validated, and the load: task-start
    latencies, retries, API errors, lock errors, restarts) as JSON, to compare two runs of the same play.
    ``limits``: Airflow's limits of a local run instead of ``LOCAL_LIMITS`` (``{}``: Airflow's defaults).
    """
    stage = _set_stage(calendar_id, span, startup, executor, workers, limits)
    calendar, cluster, names = stage.calendar, stage.cluster, stage.calendar.unit_names
    play = make_play(calendar, seed)
    _announce(stage, play, workers, out)
    problems: list[str] = []
    with stage.launcher() as airflow:
        api = stage.api(airflow.base)
        if "restart-scheduler" in drills and cluster is not None:
            threading.Thread(target=_restart_scheduler, args=(cluster, calendar, out), daemon=True).start()
        if "kill-triggerer" in drills:
            threading.Thread(target=_kill_triggerer, args=(airflow, calendar, out), daemon=True).start()
        officer = Officer(api, calendar, play)
        officer.start()
        sent, timings, paused = _play_all(api, stage, play)
        problems += sent
        slowest = max((answer for _, answer in timings.values()), default=0.0)
        out(f"报送已全部发出（应答最慢 {slowest:.1f} 秒），等待战役在 {local_text(calendar.ends, end=True)} 结束……")
        run, instances, triggered = _await_run(api, calendar, stage.log)
        problems += officer.stop()
        problems += _check_validation(calendar, run["dag_run_id"], triggered, paused, out)
        if cluster is not None and not drills:
            problems += _let_validation_run(api, calendar, cluster, out)
        if airflow.restarts:
            out(f"看护进程重启了：{'、'.join(airflow.restarts)}")
        if "kill-triggerer" in drills and "triggerer" not in airflow.restarts:
            problems.append("演练杀掉的 triggerer 没有被看护进程重启")
        restarts = list(airflow.restarts)

    status = campaign_status(stage.engine, calendar, pendulum.now("UTC"))
    problems += _check(calendar, play, status, instances, run["state"], names, timings)
    problems += _check_approvals(stage.engine, calendar, play, status, instances)
    problems += _check_once(stage.engine, calendar, names)
    _print_table(calendar, play, status, out)
    if outcome_file is not None:
        outcome = _outcome(status, instances, run["state"], triggered, calendar)
        outcome |= {
            "home": str(stage.home),
            "load": _load(instances, calendar, Path(stage.env["AIRFLOW_HOME"]), stage.log.parent, restarts),
            "approval_tasks": {
                ti["rendered_map_index"]: ti["state"] for ti in instances if ".approve_" in ti["task_id"]
            },
            "problems": problems,
        }
        outcome_file.write_text(json.dumps(outcome, ensure_ascii=False, indent=1), encoding="utf-8")
    stage.engine.dispose()
    if cluster is not None:
        cluster.drop_databases()
    approvals = f"、{len(play.approvals)} 项省级审批" if play.approvals else ""
    verdict = (
        f"通过（{len(play.expected)} 项报送状态{approvals}、{len(instances)} 个任务与模拟一致）"
        if not problems
        else "未通过"
    )
    out(f"模拟结果：{verdict}")
    for problem in problems:
        out(f"  - {problem}")
    return not problems


def _set_stage(
    calendar_id: str,
    span: dt.timedelta,
    startup: float,
    executor: str,
    workers: int,
    limits: dict[str, str] | None = None,
) -> Stage:
    """A temporary home with Airflow's environment (or a cluster's), the calendar compressed to start in
    ``startup`` seconds, a fresh store made for the run, and a token per unit and for the province."""
    source_file = registry.calendar_path(calendar_id)
    if source_file is None:
        raise FileNotFoundError(f"找不到日历“{calendar_id}”")
    home = Path(tempfile.mkdtemp(prefix="campaign-simulate-"))
    env = airflow_env(home, free_port(), limits)
    password = signed_in_users(env, {OFFICER: "admin"})[OFFICER]
    env["CAMPAIGN_APPROVERS"] = f"{OFFICER}:{OFFICER}"  # only the officer may answer (include/orchestration/gates.py)
    cluster = None
    if executor == "celery":
        from include.devtools.cluster import prepare

        cluster = prepare(home / "cluster", env, workers)
        atexit.register(cluster.drop_databases)  # also when the run fails half-way
        env = cluster.env
    start = pendulum.now("UTC").add(seconds=startup).replace(microsecond=0)
    calendar = compress(read_calendar(source_file), start, span, f"sim-{calendar_id}")
    calendar_path = Path(env["CAMPAIGN_HOME"]) / "campaigns" / f"{calendar.id}.yaml"
    calendar_path.parent.mkdir(parents=True)
    calendar_path.write_text(to_yaml(calendar), encoding="utf-8")
    # The run's own store, made here on purpose (a new store: nothing to migrate but its creation).
    engine = make_engine(
        upgrade(env.get("CAMPAIGN_DB_URL") or f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}")
    )
    now = pendulum.now("UTC")
    tokens = {node.code: issue_token(engine, node.code, now)[1] for node in calendar.tree if node.parent is not None}
    tokens[PROVINCE] = issue_token(engine, PROVINCE, now)[1]
    return Stage(home, env, cluster, calendar, engine, tokens, password)


def _announce(stage: Stage, play: Play, workers: int, out: Callable[[str], None]) -> None:
    calendar, names = stage.calendar, stage.calendar.unit_names
    out(
        f"模拟战役 {calendar.id}：{local_text(calendar.starts)} 至 {local_text(calendar.ends, end=True)}（北京时间），"
        f"{len(calendar.unit_list)} 个单位，{len(play.attempts)} 次报送；临时目录 {stage.home}"
    )
    out(
        f"角色：从不报送 {names[play.roles['never']]}，关闭后报送 {names[play.roles['after_closing']]}，"
        f"冒用令牌 {names[play.roles['cross_token']]}→{names[play.roles['victim']]}"
    )
    if play.gates:
        below = {unit for unit, _ in play.expected if unit not in names}
        out(
            f"下级单位：{len(below)} 个{LEVEL_WORDS[calendar.tree.get(min(below)).level]}报告完成"
            f"{'、'.join(sorted({m for _, m in play.gates}))}；{names[play.roles['late_county_city']]}有一个逾期，"
            f"{names[play.roles['on_behalf']]}由市代报，{names[play.roles['never']]}的从不报告"
        )
    if play.answers:
        by_answer = {answer: names[unit] for unit, answer in play.answers.items() if answer != "approve"}
        out(
            f"省级审批（{OFFICER}，经 Airflow 的 HITL 接口）：批准 {list(play.answers.values()).count('approve')} 个，"
            f"驳回 {by_answer['reject']}，不予答复（超时）{by_answer['timeout']}"
        )
    if stage.cluster is not None:
        out(
            f"执行器：CeleryExecutor，{workers} 个 worker；PostgreSQL（元数据库与战役库）、Redis；"
            f"日志 {stage.cluster.home}"
        )


Timings = dict[tuple[str, str], tuple[float, float]]  # (unit, milestone) -> (sent after plan, answer) in seconds


def _play_all(api: AirflowApi, stage: Stage, play: Play) -> tuple[list[str], Timings, bool]:
    """Every attempt at its instant, each in a thread of its own; the problems, the timings, and whether the
    validation DAG was paused before its first run."""
    timings: Timings = {}
    paused = False
    with ThreadPoolExecutor(max_workers=len(play.attempts)) as pool:
        played = []
        for attempt in play.attempts:
            paused = paused or _pause_validation(api, until=attempt.at)
            played.append(pool.submit(_play_one, api.base, stage, attempt, timings))
        problems = [problem for future in played if (problem := future.result())]
    return problems, timings, paused


def _play_one(base: str, stage: Stage, attempt: Attempt, timings: Timings) -> str | None:
    """One unit's attempt at its instant; units act independently, so a slow answer delays no other."""
    time.sleep(max(0.0, (attempt.at - pendulum.now("UTC")).total_seconds()))
    sent = pendulum.now("UTC")
    response = httpx.post(
        f"{base}/campaign/api/reports",
        headers={"Authorization": f"Bearer {stage.tokens[attempt.token_of]}"},
        data={"campaign": stage.calendar.id, "unit": attempt.unit, "milestone": attempt.milestone},
        files={"file": (f"{attempt.milestone}.pdf", f"{attempt.unit}/{attempt.milestone}".encode(), "application/pdf")},
        timeout=120,  # the api-server's own; a burst of 300 reports on 2 busy cores has taken 43 s to answer
    )
    if attempt.token_of == attempt.unit:
        answered = pendulum.now("UTC")
        timings[(attempt.unit, attempt.milestone)] = (
            (sent - attempt.at).total_seconds(),
            (answered - sent).total_seconds(),
        )
    if response.status_code == attempt.expect_http:
        return None
    return (
        f"{stage.calendar.name_of(attempt.unit)} {attempt.milestone}：HTTP {response.status_code}，"
        f"应为 {attempt.expect_http}（{response.text[:200]}）"
    )


class Officer:
    """The province's officer at Airflow's Required Actions, through its HITL API: each application as it comes
    in is approved, or rejected with a reason, or left unanswered (it times out when the window closes).

    The officer reads a request for ``READS`` seconds before answering, as a person does. An answer within a
    second or two of the request meets a race in Airflow 3.3.2's scheduler: the exit of the task process that
    parked the task in awaiting_input is reported after the answer has queued the task again, and the scheduler
    takes the task for killed externally and retries it (process_executor_events excuses a resumed task only
    while it is still "scheduled"). The retry asks again, and the answer to the first request is not recorded
    unless the resumed task got as far as recording it. So a request asked a second time is a problem of the
    verdict.
    """

    READS = 10.0

    def __init__(self, api: AirflowApi, calendar: Calendar, play: Play) -> None:
        self.api, self.calendar, self.play = api, calendar, play
        window = next((item for item in calendar.entry_windows if item.approval), None)
        application = calendar.application_of(window) if window is not None else None
        self.applicants = calendar.reporters_of(application) if application is not None else []  # by map index
        self.answered: dict[str, int] = {}  # unit -> the HTTP status of the last answer
        self.asked: Counter = Counter()  # unit -> requests answered
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._answer_all, daemon=True, name="officer")

    def start(self) -> None:
        if self.play.answers:
            self._thread.start()

    def stop(self) -> list[str]:
        """Stop answering; the problems seen: an answer refused, an application never asked about."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        names = self.calendar.unit_names
        for unit, answer in self.play.answers.items():
            if answer != "timeout" and self.answered.get(unit) != 200:
                self.problems.append(
                    f"省级审批：{names[unit]}的申请未能答复（{self.answered.get(unit, '从未被询问')}）"
                )
            if self.asked[unit] > 1:
                self.problems.append(f"省级审批：{names[unit]}的申请答复后又被询问（共答复 {self.asked[unit]} 次）")
        return self.problems

    def _answer_all(self) -> None:
        while not self._stop.wait(1.0):
            try:
                waiting = self.api.get(
                    f"/api/v2/dags/{self.calendar.id}/dagRuns/~/hitlDetails", response_received=False, limit=100
                )["hitl_details"]
            except httpx.HTTPError:
                continue  # a busy moment: asked again in a second
            for detail in waiting:
                self._answer(detail)

    def _answer(self, detail: dict) -> None:
        ti = detail["task_instance"]
        unit = self.applicants[ti["map_index"]]
        answer = self.play.answers.get(unit)
        if answer in (None, "timeout"):
            return
        if (pendulum.now("UTC") - pendulum.parse(detail["created_at"])).total_seconds() < self.READS:
            return
        body = {
            "chosen_options": ["Approve" if answer == "approve" else "Reject"],
            "params_input": {"reason": REJECTION if answer == "reject" else None},
        }
        path = f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/{ti['map_index']}"
        try:
            response = self.api.patch(f"{path}/hitlDetails", body)
        except httpx.HTTPError as exc:
            self.answered[unit] = 0
            self.problems.append(f"省级审批：答复{self.calendar.unit_names[unit]}时出错（{exc!r}）")
            return
        self.answered[unit] = response.status_code
        self.asked[unit] += 1
        if response.status_code != 200:
            self.problems.append(
                f"省级审批：答复{self.calendar.unit_names[unit]}得到 HTTP {response.status_code}"
                f"（{response.text[:200]}）"
            )


def _await_run(api: AirflowApi, calendar: Calendar, log: Path) -> tuple[dict, list[dict], list[dict]]:
    """The campaign's run once it has finished, its task instances, and the validation runs it triggered."""

    def finished_run() -> dict | None:
        runs = api.get(f"/api/v2/dags/{calendar.id}/dagRuns")["dag_runs"]
        return next((run for run in runs if run["state"] in ("success", "failed")), None)

    budget = (calendar.ends - pendulum.now("UTC")).total_seconds() + 300
    run = wait_for(finished_run, budget, "战役运行结束", log)
    instances = api.get_all(f"/api/v2/dags/{calendar.id}/dagRuns/{run['dag_run_id']}/taskInstances", "task_instances")
    triggered = api.get("/api/v2/dags/validation/dagRuns", limit=100)["dag_runs"]
    return run, instances, triggered


@contextlib.contextmanager
def _cluster_base(cluster: Cluster) -> Iterator[Components]:
    from include.devtools.cluster import running

    with running(cluster, keep_databases=True) as started:  # the store is read after the run
        yield started


def _restart_scheduler(cluster: Cluster, calendar: Calendar, out: Callable[[str], None]) -> None:
    """Fault drill: the scheduler dies (SIGKILL) 3 s before the analysis phase starts, where the entry window
    closes, the completion reports fall due and the validation is triggered, and comes back 15 s later."""
    import signal

    analysis = next(phase for phase in calendar.phases_in_order() if phase.id.value == "analysis")
    time.sleep(max(0.0, (analysis.starts - pendulum.now("UTC")).total_seconds() - 3))
    cluster.stop("scheduler", signal.SIGKILL)
    cluster.start_later("scheduler", 15)
    out(f"演练：{local_text(pendulum.now('UTC'))} 杀掉 scheduler（分析阶段开始前 3 秒），15 秒后重启")


def _kill_triggerer(airflow: Components, calendar: Calendar, out: Callable[[str], None]) -> None:
    """Fault drill: the triggerer dies (SIGKILL) 3 s before the first entry window closes (where gates give up and
    the approvals not answered time out), or before the analysis phase; nobody starts it again but the watchdog."""
    import os
    import signal

    at = min(
        [window.closes for window in calendar.entry_windows]
        or [phase.starts for phase in calendar.phases_in_order() if phase.id.value == "analysis"]
    )
    time.sleep(max(0.0, (at - pendulum.now("UTC")).total_seconds() - 3))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(airflow.processes["triggerer"].pid, signal.SIGKILL)
    out(f"演练：{local_text(pendulum.now('UTC'))} 杀掉 triggerer（{local_text(at)} 前 3 秒），由看护进程重启")


def _instants(calendar: Calendar) -> dict[str, dt.datetime]:
    """The campaign DAG's instant tasks (a phase's start, a due instant, a window's opening or closing, the
    system's closing) and the instant each waits for."""
    from include.orchestration.dag_factory import build_dag

    return {task.task_id: task.due_at for task in build_dag(calendar).tasks if isinstance(task, CalendarInstantSensor)}


def _load(instances: list[dict], calendar: Calendar, airflow_home: Path, logs: Path, restarts: list[str]) -> dict:
    """How the run bore its load: how late each instant task finished after its instant (seconds: what the load
    costs a window's closing or a phase's start), the tasks that needed a retry, the scheduler's "state changed
    externally" verdicts, the api-server's 5xx answers, the tasks' API timeouts, the "database is locked" errors
    in every log, and the components the watchdog restarted."""
    instants = _instants(calendar)
    lateness = sorted(
        (pendulum.parse(ti["end_date"]) - instants[ti["task_id"]]).total_seconds()
        for ti in instances
        if ti["task_id"] in instants and ti.get("end_date")
    )
    texts = {file.stem: file.read_text(errors="replace") for file in logs.glob("*.log")}
    task_logs = [file.read_text(errors="replace") for file in (airflow_home / "logs").rglob("*.log")]
    return {
        "instant_lateness": lateness,
        "retried": sum(1 for ti in instances if (ti.get("try_number") or 0) > 1),
        "state_mismatch": texts.get("scheduler", "").count("but the task instance's state attribute is"),
        "api_errors": texts.get("api-server", "").count("status_code=5"),
        "api_timeouts": sum(text.count("ReadTimeout") for text in [*texts.values(), *task_logs]),
        "locked": sum(text.count("database is locked") for text in [*texts.values(), *task_logs]),
        "restarts": restarts,
    }


def _let_validation_run(api: AirflowApi, calendar: Calendar, cluster: Cluster, out: Callable[[str], None]) -> list[str]:
    """Unpause the validation DAG: the runs the campaign triggered must each succeed, a problem list per unit,
    with the units' tasks spread over the workers."""
    api.patch("/api/v2/dags/validation", {"is_paused": False}).raise_for_status()

    def finished() -> list[dict] | None:
        runs = api.get("/api/v2/dags/validation/dagRuns", limit=100)["dag_runs"]
        ours = [run for run in runs if run["dag_run_id"].startswith(f"{calendar.id}__")]
        return ours if ours and all(run["state"] in ("success", "failed") for run in ours) else None

    runs = wait_for(finished, 900, "数据校验运行结束", cluster.home / "scheduler.log")
    problems = [f"数据校验 {run['dag_run_id']}：{run['state']}" for run in runs if run["state"] != "success"]
    where: Counter = Counter()
    lists = 0
    for run in runs:
        tasks = {
            "task_instances": api.get_all(
                f"/api/v2/dags/validation/dagRuns/{run['dag_run_id']}/taskInstances", "task_instances"
            )
        }
        mapped = [ti for ti in tasks["task_instances"] if ti["map_index"] >= 0]
        lists += len(mapped)
        where.update(ti["hostname"] for ti in mapped)
        if len(mapped) != len(calendar.unit_list):
            problems.append(
                f"数据校验 {run['conf'].get('stage')}：{len(mapped)} 个问题清单任务，应为 {len(calendar.unit_list)} 个"
            )
    spread = "，".join(f"{host} {n} 个" for host, n in sorted(where.items()))
    out(f"数据校验 {len(runs)} 次运行，{lists} 个问题清单任务：{spread}")
    workers = {f"worker-{n}" for n in range(1, cluster.workers + 1)}
    if set(where) != workers:
        problems.append(f"问题清单任务在 {sorted(where)} 上运行，应分布于 {sorted(workers)}")
    return problems


def _check_once(engine: Engine, calendar: Calendar, names: dict[str, str]) -> list[str]:
    """No deadline action twice: each window opened and closed at most once per unit (the audit's text names the
    window), every window that opened closed by the end, each report accepted at most once."""
    from sqlalchemy import func, select

    from include.store.db import session_scope
    from include.store.models import AuditEntry, WindowState

    once = ("window_opened", "window_closed", "accepted", "late")
    with session_scope(engine) as session:
        query = (
            select(AuditEntry.action, AuditEntry.unit, AuditEntry.milestone, AuditEntry.detail, func.count())
            .where(AuditEntry.campaign_id == calendar.id, AuditEntry.action.in_(once))
            .group_by(AuditEntry.action, AuditEntry.unit, AuditEntry.milestone, AuditEntry.detail)
            .having(func.count() > 1)
        )
        twice = [
            f"{names.get(unit, unit)} {action} {milestone or detail}：{n} 次，应至多 1 次"
            for action, unit, milestone, detail, n in session.execute(query)
        ]
        still_open = session.execute(
            select(WindowState.unit, WindowState.window).where(
                WindowState.campaign_id == calendar.id, WindowState.closed_at.is_(None)
            )
        ).all()
    return twice + [f"{names.get(unit, unit)} 的窗口 {window} 开放后未在截止时关闭" for unit, window in still_open]


def _outcome(status: dict, instances: list[dict], run_state: str, triggered: list[dict], calendar: Calendar) -> dict:
    """What two runs of the same play must agree on, whatever their executor and instants."""
    units, ours = status["units"], f"{calendar.id}__"
    plain = Counter(f"{ti['task_id']}:{ti['state']}" for ti in instances if ti["map_index"] < 0)
    return {
        "states": {f"{unit['unit']}/{item['id']}": item["state"] for unit in units for item in unit["milestones"]},
        "windows": {unit["unit"]: bool(unit["entry_window"] and unit["entry_window"]["opened_at"]) for unit in units},
        "gates": {
            f"{ti['task_id']}[{ti['rendered_map_index']}]": ti["state"]
            for ti in instances
            if ti["map_index"] >= 0 and ".gate_" in ti["task_id"]
        },
        "tasks": dict(sorted(plain.items())),
        "run": run_state,
        "validated": sorted(run["conf"].get("stage") for run in triggered if run["dag_run_id"].startswith(ours)),
    }


def _pause_validation(api: AirflowApi, until: dt.datetime) -> bool:
    """Pause the validation DAG as soon as it is parsed (trying until ``until``): the runs the campaign triggers
    then wait queued instead of loading a small machine (three stages seconds apart, a task per unit each)
    while the play's timing is judged."""
    while True:
        try:
            response = api.patch("/api/v2/dags/validation", {"is_paused": True})
            if response.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if pendulum.now("UTC") >= until:
            return False
        time.sleep(min(2.0, max(0.0, (until - pendulum.now("UTC")).total_seconds())))


def _check_validation(
    calendar: Calendar, campaign_run_id: str, runs: list[dict], paused: bool, out: Callable[[str], None]
) -> list[str]:
    """The campaign run triggered the validation DAG once per validation stage, for all units, at the stage's start."""
    from include.orchestration.dag_factory import validation_conf, validation_run_id
    from include.rules.stages import STAGES

    expected = {
        validation_run_id(calendar.id, phase.id.value, campaign_run_id): validation_conf(calendar, phase)
        for phase in calendar.phases_in_order()
        if phase.id.value in STAGES
    }
    ours = [run for run in runs if run["dag_run_id"].startswith(f"{calendar.id}__")]
    actual = {run["dag_run_id"]: run["conf"] for run in ours}
    states = "、".join(f"{run['conf'].get('stage')} {run['state']}" for run in ours) or "无"
    out(f"触发数据校验 {len(ours)} 次（{states}）" + ("；校验 DAG 已暂停，运行排队等待" if paused else ""))
    if actual != expected:
        return [f"数据校验触发 {sorted(actual)}，应为 {sorted(expected)}（参数 {actual}，应为 {expected}）"]
    return []


def _check(
    calendar: Calendar,
    play: Play,
    status: dict,
    instances: list[dict],
    run_state: str,
    names: dict[str, str],
    timings: dict[tuple[str, str], tuple[float, float]],
) -> list[str]:
    problems = []
    actual = {(unit["unit"], item["id"]): item["state"] for unit in status["units"] for item in unit["milestones"]}
    planned = {(item.unit, item.milestone): item.at for item in play.attempts if item.token_of == item.unit}
    due = {item.id: item.due for item in calendar.milestones}
    for key, state in play.expected.items():
        if actual.get(key) != state:
            timing = ""
            if key in timings:
                late_by, answer = timings[key]
                ahead = (due[key[1]] - planned[key]).total_seconds()
                timing = f"（计划在截止前 {ahead:.1f} 秒报送，实际晚发 {late_by:.1f} 秒，应答用时 {answer:.1f} 秒）"
            problems.append(f"{calendar.name_of(key[0])} {key[1]}：状态 {actual.get(key)}，应为 {state}{timing}")
    by_name = {name: code for code, name in names.items()}
    words = {"on_time": ("success", "按时"), "late": ("success", "逾期"), "missing": ("failed", "未报送")}
    gates = [ti for ti in instances if ti["map_index"] >= 0 and ".gate_" in ti["task_id"]]
    for ti in gates:
        name, _, label = (ti["rendered_map_index"] or "").partition(" · ")
        key = (by_name.get(name), ti["task_id"].split(".gate_")[1])
        want = play.gates.get(key) or (words[play.expected[key]] if key in play.expected else None)
        if want != (ti["state"], label):
            problems.append(f"闸门 {ti['task_id']}[{ti['rendered_map_index']}]：{ti['state']}，应为 {want}")
    want_gates = len({key for key in play.expected if key[0] in names} | set(play.gates))  # one gate a unit each
    if len(gates) != want_gates:
        problems.append(f"闸门 {len(gates)} 个，应为 {want_gates} 个")
    instants = _instants(calendar)
    for ti in instances:
        if ti["task_id"] in instants:
            if ti["state"] != "success" or pendulum.parse(ti["end_date"]) < instants[ti["task_id"]]:
                problems.append(f"时点任务 {ti['task_id']}：{ti['state']}，结束于 {ti['end_date']}")
    want_run = "failed" if "missing" in play.expected.values() else "success"
    if run_state != want_run:
        problems.append(f"战役运行状态 {run_state}，应为 {want_run}")
    never = next(unit for unit in status["units"] if unit["unit"] == play.roles["never"])
    if never["entry_window"] and never["entry_window"]["opened_at"] is not None:
        problems.append(f"{never['name']}从未报送，录入窗口却曾开放")
    return problems


APPROVAL_TASK = {  # the outcome -> the approval task's state and label in the grid
    "approved": ("success", "已批准"),
    "rejected": ("success", "已驳回"),
    "timed_out": ("failed", "超时未审批"),
    "not_applied": ("failed", "未申请"),
}


APPROVAL_AUDIT = {  # the outcome -> its audit action and the words its entry begins with
    "approved": ("approved", "省级审批：批准"),
    "rejected": ("rejected", "省级审批：驳回"),
    "timed_out": ("approval_timed_out", "省级审批：超时未审批"),
}


def _check_approvals(engine: Engine, calendar: Calendar, play: Play, status: dict, instances: list[dict]) -> list[str]:
    """Every approval task, every record and every window as the officer's play says: the task's state and
    label, the store's outcome with the officer's name and reason, the audit's words, and each window opened
    exactly where everything it needs was in and approved, and closed at the calendar's instant."""
    if not play.approvals:
        return []
    from sqlalchemy import select

    from include.store.db import session_scope
    from include.store.models import AuditEntry, WindowState

    names, by_name = calendar.unit_names, {name: code for code, name in calendar.unit_names.items()}
    problems = []
    tasks = [ti for ti in instances if ti["map_index"] >= 0 and ".approve_" in ti["task_id"]]
    if len(tasks) != len(play.approvals):
        problems.append(f"审批任务 {len(tasks)} 个，应为 {len(play.approvals)} 个")
    for ti in tasks:
        name, _, label = (ti["rendered_map_index"] or "").partition(" · ")
        want = APPROVAL_TASK.get(play.approvals.get(by_name.get(name)))
        if (ti["state"], label) != want:
            problems.append(f"审批任务 {ti['task_id']}[{ti['rendered_map_index']}]：{ti['state']}，应为 {want}")
    units = {unit["unit"]: unit for unit in status["units"]}
    window = next(item for item in calendar.entry_windows if item.approval)
    with session_scope(engine) as session:
        closed = {
            row.unit: row.closed_at
            for row in session.scalars(select(WindowState).where(WindowState.campaign_id == calendar.id))
        }
        audit = {
            (row.unit, row.action): row.detail
            for row in session.scalars(select(AuditEntry).where(AuditEntry.campaign_id == calendar.id))
        }
    for unit, outcome in play.approvals.items():
        answer = units[unit]["entry_window"]["approval"]
        want_by = OFFICER if outcome in ("approved", "rejected") else None
        want_reason = REJECTION if outcome == "rejected" else None
        if (answer["state"], answer["by"], answer["reason"]) != (outcome, want_by, want_reason):
            problems.append(f"{names[unit]}的审批记录 {answer}，应为 {outcome}（审批人 {want_by}，原因 {want_reason}）")
        if outcome in APPROVAL_AUDIT:
            action, words = APPROVAL_AUDIT[outcome]
            detail = audit.get((unit, action), "")
            if not detail.startswith(words) or (want_by is not None and want_by not in detail):
                problems.append(f"{names[unit]}的审计记录“{detail}”，应以“{words}”开头并写明审批人")
        needs = all(play.expected.get((unit, milestone)) != "missing" for milestone in window.requires)
        should_open = needs and outcome == "approved"
        opened = units[unit]["entry_window"]["opened_at"] is not None
        if opened != should_open:
            problems.append(
                f"{names[unit]}的录入窗口{'曾开放' if opened else '从未开放'}，应{'开放' if should_open else '不开放'}"
            )
        if opened and closed.get(unit) != window.closes:
            problems.append(
                f"{names[unit]}的录入窗口关闭于 {closed.get(unit)}，应于 {local_text(window.closes, end=True)}"
            )
    return problems


def _print_table(calendar: Calendar, play: Play, status: dict, out: Callable[[str], None]) -> None:
    """The units the play submits for (the calendar's top level), by the milestones it plays."""
    played = {milestone for _, milestone in play.expected}
    units = [unit for unit in status["units"] if unit["level"] == calendar.units.level]
    columns = [item["id"] for item in units[0]["milestones"] if item["id"] in played] if units else []
    out("单位".ljust(10) + "".join(column.ljust(22) for column in columns) + "录入窗口")
    for unit in units:
        cells = []
        for item in (item for item in unit["milestones"] if item["id"] in played):
            word = STATE_WORDS[item["state"]]
            if play.expected.get((unit["unit"], item["id"])) != item["state"]:
                word += "≠预期"
            cells.append(word.ljust(20))
        window = unit["entry_window"]
        opened = "曾开放" if window and window["opened_at"] else "未开放"
        approval = f"　省级审批：{APPROVAL_WORDS[window['approval']['state']]}" if window.get("approval") else ""
        out(unit["name"].ljust(8, "　") + "".join(cells) + f"{WINDOW_WORDS[window['state']]}（{opened}）{approval}")
