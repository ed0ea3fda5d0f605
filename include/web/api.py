"""The JSON API: a unit's report, its workbook, a form's template, the status of the units, a unit's problem list
and its 核查结果 (no
``from __future__ import annotations`` here or in any module of routes: FastAPI reads the annotations at
definition time).

Upload routes check the token before a byte of the body is read and stream it into a bounded file
(include/web/upload.py); blocking work runs in the thread pool.
"""

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from include.door.status import campaign_status
from include.door.submissions import Actor, ReportRefused, max_report_bytes, submit_report
from include.door.tokens import Credential
from include.web.deps import Auth, Submitter, calendar_for, checked, engine_of, now_of, refusal, unit_of
from include.web.upload import receive

router = APIRouter()


@router.post("/api/reports", status_code=201)
async def submit(request: Request, who: Submitter) -> JSONResponse:
    """Submit a report (multipart form: campaign, unit, milestone, optional file)."""
    with request.app.state.uploads.hold(who):
        received = await receive(
            request, fields=("campaign", "unit", "milestone"), file_field="file", limit=max_report_bytes()
        )
    try:
        campaign, unit, milestone = (
            checked(name, received.fields.get(name)) for name in ("campaign", "unit", "milestone")
        )
        calendar = await run_in_threadpool(calendar_for, campaign, who)
        try:
            result = await run_in_threadpool(
                lambda: submit_report(
                    engine_of(request),
                    calendar,
                    unit=unit,
                    milestone_id=milestone,
                    at=now_of(request),
                    actor=Actor(name=who.actor, unit=who.acting),
                    file_name=received.file_name,
                    file=received.file_path,
                )
            )
        except ReportRefused as refused:
            retry = {"Retry-After": "5"} if refused.http_status == 503 else None
            raise refusal(refused.http_status, refused.reason, refused.message, retry) from None
    finally:
        received.discard()
    return JSONResponse(result.as_json(), status_code=200 if result.outcome == "duplicate" else 201)


@router.get("/api/campaigns/{campaign}/forms/{form_id}/template")
def template(campaign: str, form_id: str, who: Auth) -> Response:
    """The bulk template of one of the campaign's forms (.xlsx)."""
    from include.forms.spec import get_form
    from include.forms.template import build_template

    calendar = calendar_for(campaign, who)
    checked("form_id", form_id)
    if form_id not in calendar.forms:
        raise refusal(404, "unknown_form", f"{calendar.name}不使用表“{form_id}”（可用：{'、'.join(calendar.forms)}）。")
    form = get_form(form_id)
    buffer = io.BytesIO()
    build_template(form, campaign_id=calendar.id, campaign_name=calendar.name).save(buffer)
    name = quote(f"{form.id} {form.name}.xlsx")
    return Response(
        buffer.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


def max_concurrent_ingests() -> int:
    return max(1, int(os.environ.get("CAMPAIGN_MAX_CONCURRENT_INGESTS", "2")))


UPLOADS_PER_TOKEN = 4  # a unit's; the office's token, which sends for every unit, takes OFFICE_UPLOADS


OFFICE_UPLOADS = 16


class UploadsInFlight:
    """Uploads being received per token: one token sends at most ``UPLOADS_PER_TOKEN`` at once, so that a unit
    cannot hold the server's connections and files with slow bodies (429 beyond)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[int, int] = {}

    @contextlib.contextmanager
    def hold(self, who: Credential) -> Iterator[None]:
        most = OFFICE_UPLOADS if who.kind == "office" else UPLOADS_PER_TOKEN
        with self.lock:
            if self.counts.get(who.token_id, 0) >= most:
                raise refusal(
                    429,
                    "too_many_uploads",
                    f"此令牌已有 {most} 个上传正在进行。请等其完成后再上传。",
                    {"Retry-After": "30"},
                )
            self.counts[who.token_id] = self.counts.get(who.token_id, 0) + 1
        try:
            yield
        finally:
            with self.lock:
                self.counts[who.token_id] -= 1


@router.post("/api/workbooks", status_code=201)
async def upload_workbook(request: Request, who: Submitter) -> JSONResponse:
    """Upload a unit's filled-in workbook (multipart: campaign, unit, file, and ``replace_confirm`` = 1 to
    confirm far fewer households than the data in force); same checks as ``campaign ingest``.

    201 stored, 200 the same file was already in force, 409 the entry window is not open,
    413 over the size limit, 422 refused as a whole (the body says why, with the row problems),
    503 while this server already reads as many workbooks as its memory budget allows.
    """
    from include.forms.workbook import max_upload_bytes

    with request.app.state.uploads.hold(who):
        received = await receive(
            request, fields=("campaign", "unit", "replace_confirm"), file_field="file", limit=max_upload_bytes()
        )
    try:
        if received.file_path is None:
            raise refusal(422, "missing_file", "缺少要上传的工作簿（表单字段 file）。")
        campaign, unit = (checked(name, received.fields.get(name)) for name in ("campaign", "unit"))
        confirm = received.fields.get("replace_confirm", "").strip().lower() in ("1", "true", "yes", "on", "是")
        return await run_in_threadpool(_ingest, request, who, campaign, unit, received.file_path, confirm)
    finally:
        received.discard()


def _ingest(
    request: Request, who: Credential, campaign: str, unit: str, path: os.PathLike, confirm: bool = False
) -> JSONResponse:
    from include.door.ingest import WindowClosed, ingest
    from include.forms.workbook import WorkbookRefused

    calendar = calendar_for(campaign, who)
    unit_of(calendar, unit)
    if not calendar.may_act(who.acting, unit):
        raise refusal(403, "forbidden", f"此令牌属于单位 {who.unit}，不能替单位 {unit} 上传。")
    if not calendar.may_upload(unit):  # a township or village of a roster enters through its county
        county = next((node for node in calendar.tree.ancestors(unit) if calendar.may_upload(node.code)), None)
        through = f"{county.name}（{county.code}）" if county else "所属县区或市"
        raise refusal(
            422,
            "upload_by_parent",
            f"{calendar.name_of(unit)}的工作簿请由{through}上传：数据按县区录入，按市汇总、校验和生成问题清单。",
        )
    # The memory budget: a slot is taken only now, with the whole file on disk and the request checked.
    slots: threading.BoundedSemaphore = request.app.state.ingest_slots
    if not slots.acquire(blocking=False):
        raise refusal(
            503,
            "busy",
            "服务器正在处理其他单位的工作簿，本次上传未被接收，未作任何更改。请 1 分钟后重试。",
            {"Retry-After": "60"},
        )
    try:
        result = ingest(
            engine_of(request),
            calendar,
            path,
            unit,
            now_of(request),
            actor=who.actor,
            replace_confirm=confirm,
            on_behalf=who.unit != unit,
        )
    except WindowClosed as closed:
        raise refusal(409, "window_closed", closed.message) from None
    except WorkbookRefused as refused:
        status = 413 if refused.reason == "too_large" else 422
        detail = {
            "error": refused.reason,
            "message": refused.message,
            "rejected_rows": [error.as_json() for error in refused.errors],
        }
        raise HTTPException(status_code=status, detail=detail) from None
    finally:
        slots.release()
    return JSONResponse(result.as_json(), status_code=201 if result.status == "stored" else 200)


@router.get("/api/campaigns/{campaign}/status")
def all_status(request: Request, campaign: str, who: Auth) -> dict[str, Any]:
    """Every unit's status (province token), or the caller's unit and the units below it (a unit's token)."""
    calendar = calendar_for(campaign, who)
    under = who.acting
    if under is not None and not calendar.may_act(under, under):
        raise refusal(403, "forbidden", f"单位 {who.unit} 不是战役 {campaign} 的单位，此令牌不能查看其状态。")
    return campaign_status(engine_of(request), calendar, now_of(request), under=under)


@router.get("/api/campaigns/{campaign}/units/{unit}/status")
def unit_status(request: Request, campaign: str, unit: str, who: Auth) -> dict[str, Any]:
    """One unit's status; a unit's token may read its own and those of the units below it."""
    calendar = calendar_for(campaign, who)
    checked("unit", unit)
    if not calendar.may_act(who.acting, unit):
        raise refusal(403, "forbidden", f"此令牌只能查看单位 {who.unit} 及其下级单位的状态。")
    unit_of(calendar, unit)
    status = campaign_status(engine_of(request), calendar, now_of(request), under=unit)
    found = next((item for item in status["units"] if item["unit"] == unit), None)
    if found is None:
        raise refusal(404, "nothing_owed", f"{calendar.name_of(unit)}在战役 {campaign} 中没有应完成的事项。")
    return {"campaign": status["campaign"], "at": status["at"], **found}


def _lister(calendar: Any, who: Credential, unit: str) -> str | None:
    """Whose problems of the unit's list the token may see and answer (``include/rules/results.answering``)."""
    from include.rules.results import ResultsRefused, answering

    checked("unit", unit)
    unit_of(calendar, unit)
    try:
        return answering(calendar, unit, who.acting)
    except ResultsRefused as refused:
        raise refusal(404 if refused.reason == "no_list" else 403, refused.reason, refused.message) from None


@router.get("/api/campaigns/{campaign}/units/{unit}/problem-list")
def problem_list(request: Request, campaign: str, unit: str, who: Auth, stage: str = "analysis") -> Response:
    """The unit's latest problem list of ``stage`` (.xlsx), with the results it already gave; a county's token gets
    its own households' problems only. Fill 核查结果 and 说明, and send it back to ``POST /api/problem-results``."""
    import tempfile
    from pathlib import Path

    from include.rules.problem_list import write_problem_list
    from include.rules.problems import stored_problems, stored_rule_runs
    from include.rules.results import results_for_list
    from include.rules.stages import STAGES, problem_list_name

    calendar = calendar_for(campaign, who)
    county = _lister(calendar, who, unit)
    if stage not in STAGES:
        raise refusal(422, "invalid_field", f"阶段应为：{'、'.join(STAGES)}。")
    stored = stored_problems(calendar.id, stage, unit)
    if stored is None:
        raise refusal(404, "no_list", f"{calendar.name_of(unit)}尚无这一阶段的问题清单（校验尚未运行）。")
    if county is not None:
        import polars as pl

        stored = stored.filter(pl.col("county") == county)
    name = problem_list_name(calendar.id, stage, unit)
    with tempfile.TemporaryDirectory() as folder:
        path = write_problem_list(
            stored, Path(folder) / name, unit_name=calendar.name_of(unit), campaign_name=calendar.name, stage=stage,
            rules=stored_rule_runs(calendar.id, stage, unit), campaign_id=calendar.id, unit=unit,
            results=results_for_list(engine_of(request), calendar.id, unit),
        )  # fmt: skip
        content = path.read_bytes()
    return Response(
        content,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"},
    )


@router.post("/api/problem-results", status_code=201)
async def upload_results(request: Request, who: Submitter) -> JSONResponse:
    """A problem list with its 核查结果 filled in (multipart: campaign, unit, file), taken whole or refused whole:
    201 with the receipt, 422 with every row's problem, 403 for a list that is not the token's to answer."""
    from include.forms.workbook import max_upload_bytes
    from include.progress.verification import declare_if_verified
    from include.rules.results import ResultsRefused, submit_results

    with request.app.state.uploads.hold(who):
        received = await receive(request, fields=("campaign", "unit"), file_field="file", limit=max_upload_bytes())
    try:
        if received.file_path is None:
            raise refusal(422, "missing_file", "缺少要上传的问题清单（表单字段 file）。")
        campaign, unit = (checked(name, received.fields.get(name)) for name in ("campaign", "unit"))
        calendar = await run_in_threadpool(calendar_for, campaign, who)
        _lister(calendar, who, unit)
        try:
            submitted = await run_in_threadpool(
                submit_results, engine_of(request), calendar, unit, received.file_path, now_of(request),
                actor=who.actor, acting=who.acting,
            )  # fmt: skip
        except ResultsRefused as refused:
            detail = {"error": refused.reason, "message": refused.message, "rejected_rows": refused.rows}
            raise HTTPException(status_code=422, detail=detail) from None
        done = await run_in_threadpool(declare_if_verified, engine_of(request), calendar, unit, now_of(request))
    finally:
        received.discard()
    return JSONResponse({**submitted.as_json(), "completed": [item.milestone for item in done]}, status_code=201)
