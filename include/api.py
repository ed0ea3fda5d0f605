"""The campaign's HTTP API (no ``from __future__ import annotations``: FastAPI reads the local
annotations at definition time), mounted on Airflow's api-server under /campaign by the plugin.

It is not behind Airflow's login: every request carries a unit's (or the province's) token as
``Authorization: Bearer …``. A unit's token acts for that unit only; the province's for all.
The clock is a parameter of the app (tests pass a fixed one); the api-server uses the real clock.
"""

import datetime as dt
import io
import shutil
import tempfile
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import pendulum
from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from include import paths
from include.calendar import Calendar, CalendarError, read_calendar
from include.status import campaign_status
from include.store.db import make_engine
from include.submissions import Actor, Refused, submit_report
from include.tokens import Credential, verify_token

Clock = Callable[[], dt.datetime]


def _real_clock() -> dt.datetime:
    return pendulum.now("UTC")


def _error(status: int, reason: str, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail={"error": reason, "message": message})


def _uploads_dir() -> Path:
    folder = paths.campaign_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


ASK_FOR_LINK_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>需要令牌</title></head><body>'
    "<p>查看进度需要令牌：请打开省级办公室发给本单位的链接（带 ?token=…），或联系省级办公室签发。</p></body></html>"
)


def create_app(clock: Clock = _real_clock, database_url: str | None = None) -> FastAPI:
    app = FastAPI(title="扶贫对象动态管理战役 API", description="单位报送与进度查询（需令牌）", version="1")
    state: dict[str, Any] = {}

    def engine():  # noqa: ANN202 - created on first use, never at import or parse time
        if "engine" not in state:
            state["engine"] = make_engine(database_url)
        return state["engine"]

    def calendar_of(campaign: str) -> Calendar:
        file = paths.calendar_file(campaign)
        if file is None:
            raise _error(404, "unknown_campaign", f"没有战役“{campaign}”。请核对战役编号。")
        try:
            return read_calendar(file)
        except CalendarError as exc:
            raise _error(500, "invalid_calendar", f"战役日历有误，请联系运维人员：{exc}") from None

    def credential(authorization: Annotated[str | None, Header()] = None) -> Credential:
        token = (authorization or "").removeprefix("Bearer ").strip()
        found = verify_token(engine(), token) if token else None
        if found is None:
            raise _error(
                401,
                "unauthorized",
                "缺少令牌，或令牌无效、已吊销。请在请求头 Authorization: Bearer <令牌> 中提供本单位有效令牌，"
                "如已遗失请联系省级办公室重新签发。",
            )
        return found

    Auth = Annotated[Credential, Depends(credential)]

    @app.post("/api/reports", status_code=201)
    async def submit(
        who: Auth,
        campaign: Annotated[str, Form()],
        unit: Annotated[str, Form()],
        milestone: Annotated[str, Form()],
        file: Annotated[UploadFile | None, File()] = None,
    ) -> JSONResponse:
        """Submit a report (multipart form: campaign, unit, milestone, optional file)."""
        calendar = calendar_of(campaign)
        content = await file.read() if file is not None else None
        actor = Actor(name=who.actor, unit=None if who.is_province else who.unit)
        try:
            result = submit_report(
                engine(),
                calendar,
                unit=unit,
                milestone_id=milestone,
                at=clock(),
                actor=actor,
                file_name=file.filename if file is not None else None,
                content=content,
            )
        except Refused as refused:
            raise _error(refused.http_status, refused.reason, refused.message) from None
        body = result.as_json()
        return JSONResponse(body, status_code=200 if result.outcome == "duplicate" else 201)

    @app.get("/api/campaigns/{campaign}/forms/{form_id}/template")
    def template(campaign: str, form_id: str, _who: Auth) -> Response:
        """The bulk template of one of the campaign's forms (.xlsx)."""
        from include.forms.spec import get_form
        from include.forms.template import build_template

        calendar = calendar_of(campaign)
        if form_id not in calendar.forms:
            raise _error(
                404, "unknown_form", f"{calendar.name}不使用表“{form_id}”（可用：{'、'.join(calendar.forms)}）。"
            )
        form = get_form(form_id)
        buffer = io.BytesIO()
        build_template(form, campaign_id=calendar.id, campaign_name=calendar.name).save(buffer)
        name = quote(f"{form.id} {form.name}.xlsx")
        return Response(
            buffer.getvalue(),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
        )

    @app.post("/api/workbooks", status_code=201)
    def upload_workbook(
        who: Auth,
        campaign: Annotated[str, Form()],
        unit: Annotated[str, Form()],
        file: Annotated[UploadFile, File()],
    ) -> JSONResponse:
        """Upload a unit's filled-in workbook (multipart: campaign, unit, file); same checks as ``campaign ingest``.

        201 stored, 200 the same file was already in force, 409 the entry window is not open,
        413 over the size limit, 422 refused as a whole (the body says why, with the row problems).
        """
        from include.forms.workbook import Refused as WorkbookRefused
        from include.forms.workbook import max_upload_bytes
        from include.ingest import WindowClosed, ingest

        calendar = calendar_of(campaign)
        if unit not in {u.code for u in calendar.unit_list}:
            raise _error(404, "unknown_unit", f"战役 {campaign} 没有单位“{unit}”。")
        if not who.is_province and who.unit != unit:
            raise _error(403, "forbidden", f"此令牌属于单位 {who.unit}，不能替单位 {unit} 上传。")
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=_uploads_dir()))
        path = folder / (Path(file.filename or "").name or "upload.xlsx")
        try:
            limit = max_upload_bytes()
            size = 0
            with path.open("wb") as out:
                while chunk := file.file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise _error(
                            413,
                            "too_large",
                            f"文件超过上传上限 {limit // 1024 // 1024} MB。请按乡镇或村拆分后分别上传。",
                        )
                    out.write(chunk)
            try:
                result = ingest(engine(), calendar, path, unit, clock(), actor=who.actor)
            except WindowClosed as closed:
                raise _error(409, "window_closed", closed.message) from None
            except WorkbookRefused as refused:
                status = 413 if refused.reason == "too_large" else 422
                detail = {
                    "error": refused.reason,
                    "message": refused.message,
                    "rejected_rows": [error.as_json() for error in refused.errors],
                }
                raise HTTPException(status_code=status, detail=detail) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return JSONResponse(result.as_json(), status_code=201 if result.status == "stored" else 200)

    @app.get("/api/campaigns/{campaign}/status")
    def all_status(campaign: str, who: Auth) -> dict[str, Any]:
        """Every unit's status (province token), or the caller's own unit only (unit token)."""
        status = campaign_status(engine(), calendar_of(campaign), clock())
        if not who.is_province:
            status["units"] = [item for item in status["units"] if item["unit"] == who.unit]
        return status

    @app.get("/api/campaigns/{campaign}/units/{unit}/status")
    def unit_status(campaign: str, unit: str, who: Auth) -> dict[str, Any]:
        """One unit's status; a unit's token may read its own only."""
        if not who.is_province and who.unit != unit:
            raise _error(403, "forbidden", f"此令牌只能查看单位 {who.unit} 的状态。")
        status = campaign_status(engine(), calendar_of(campaign), clock())
        found = [item for item in status["units"] if item["unit"] == unit]
        if not found:
            raise _error(404, "unknown_unit", f"战役 {campaign} 没有单位“{unit}”。")
        return {"campaign": status["campaign"], "at": status["at"], **found[0]}

    def page_reader(token: str | None, authorization: str | None) -> Credential | None:
        """Who reads a page: the token in ``?token=`` (a link a unit can open) or the Authorization header."""
        given = (token or (authorization or "").removeprefix("Bearer ")).strip()
        return verify_token(engine(), given) if given else None

    def progress_of(campaign: str) -> dict[str, Any]:
        from include.progress import progress_report

        return progress_report(engine(), calendar_of(campaign), clock())

    @app.get("/progress/", response_class=HTMLResponse)
    def progress_index(token: str | None = None) -> HTMLResponse:
        """The campaigns, each a link to its progress page (the Airflow UI's menu entry opens this)."""
        query = f"?token={quote(token)}" if token else ""
        links = "".join(
            f'<li><a href="{escape(file.stem)}{query}">{escape(file.stem)}</a></li>' for file in paths.calendar_files()
        )
        return HTMLResponse(
            f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>战役进度</title></head>'
            f"<body><h1>战役进度</h1><ul>{links}</ul><p>打开链接需要本单位或省级的令牌（?token=…）。</p></body></html>"
        )

    @app.get("/progress/{campaign}", response_class=HTMLResponse)
    def progress_page(
        campaign: str, token: str | None = None, authorization: Annotated[str | None, Header()] = None
    ) -> HTMLResponse:
        """The unit × milestone matrix and the completion chart: every unit for the province, one's own for a unit."""
        from include.progress_page import progress_html

        who = page_reader(token, authorization)
        if who is None:
            return HTMLResponse(ASK_FOR_LINK_PAGE, status_code=401)
        report = progress_of(campaign)
        if not who.is_province:
            report["units"] = [unit for unit in report["units"] if unit["unit"] == who.unit]
        query = f"?token={quote(token)}" if token else ""
        return HTMLResponse(progress_html(report, token_query=query, whole=who.is_province))

    @app.get("/progress/{campaign}/units/{unit}", response_class=HTMLResponse)
    def unit_page(
        campaign: str, unit: str, token: str | None = None, authorization: Annotated[str | None, Header()] = None
    ) -> HTMLResponse:
        from include.progress_page import unit_html

        who = page_reader(token, authorization)
        if who is None:
            return HTMLResponse(ASK_FOR_LINK_PAGE, status_code=401)
        if not who.is_province and who.unit != unit:
            return HTMLResponse(f"<p>此令牌只能查看单位 {escape(who.unit)} 的进度。</p>", status_code=403)
        report = progress_of(campaign)
        found = [item for item in report["units"] if item["unit"] == unit]
        if not found:
            return HTMLResponse(f"<p>战役 {escape(campaign)} 没有单位“{escape(unit)}”。</p>", status_code=404)
        return HTMLResponse(unit_html(report, found[0]))

    @app.exception_handler(HTTPException)
    async def _chinese_errors(_request: object, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {"error": "error", "message": str(exc.detail)}
        return JSONResponse(detail, status_code=exc.status_code)

    from sqlalchemy.exc import DBAPIError, OperationalError

    @app.exception_handler(DBAPIError)
    async def _store_unavailable(_request: object, exc: DBAPIError) -> JSONResponse:
        """The campaign store cannot be reached or is busy (a database restart, a network cut, a lock): nothing
        was kept, so the sender can simply try again. Any other database error is still a 500."""
        if not isinstance(exc, OperationalError) and not exc.connection_invalidated:
            raise exc
        message = "战役数据库暂时无法连接，本次请求未被处理，未作任何更改。请稍后重试（约 30 秒后）。"
        return JSONResponse(
            {"error": "store_unavailable", "message": message}, status_code=503, headers={"Retry-After": "30"}
        )

    return app
