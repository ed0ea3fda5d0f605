"""The campaign's HTTP API (no ``from __future__ import annotations``: FastAPI reads the local
annotations at definition time), mounted on Airflow's api-server under /campaign by the plugin.

It is not behind Airflow's login: every request carries a token (include/door/tokens.py) as
``Authorization: Bearer …``, or, for the pages, a session cookie that a progress link's ``?token=`` is
exchanged for on the first visit. What a request may do follows the token's kind and scope:
a ``read`` token reads, a ``submit`` token submits for its unit, the office's token acts for all units.

Hardening (README "Security"): a campaign id is looked up in the calendar registry, never used as a path;
upload routes check the token before a byte of the body is read and stream it into a bounded file
(include/web/upload.py); blocking work runs in the thread pool; every request value is checked for length and
pattern before use; replies never carry server paths, stack traces or a calendar's internals, and every
message that may echo a value is masked (include/masking.py). The clock is a parameter of the app.
"""

import contextlib
import datetime as dt
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from html import escape
from typing import Annotated, Any
from urllib.parse import quote, unquote_plus, urlencode

import pendulum
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.requests import ClientDisconnect

from include.calendar import Calendar, CalendarError
from include.calendar.registry import CAMPAIGN_ID, UnknownCampaign, calendar_index, load_campaign
from include.door.status import campaign_status
from include.door.submissions import Actor, ReportRefused, max_report_bytes, submit_report
from include.door.tokens import Credential, check_configuration, session_value, verify_session, verify_token
from include.masking import redact, short_masked
from include.paths import is_local_run
from include.store.db import make_engine
from include.web.upload import UploadRefused, receive

Clock = Callable[[], dt.datetime]
log = logging.getLogger(__name__)

SESSION_COOKIE = "campaign_session"
# Every value a request names, checked before it is used anywhere (a lookup, a message, the audit log).
FIELD_PATTERNS = {
    "campaign": CAMPAIGN_ID,
    "unit": re.compile(r"[A-Za-z0-9_-]{1,32}"),
    "milestone": re.compile(r"[a-z][a-z0-9_]{0,63}"),
    "form_id": re.compile(r"[a-z0-9][a-z0-9_-]{0,31}"),
}
FIELD_NAMES = {"campaign": "战役编号", "unit": "单位代码", "milestone": "节点编号", "form_id": "表编号"}


def _real_clock() -> dt.datetime:
    return pendulum.now("UTC")


def _error(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail={"error": reason, "message": message}, headers=headers)


def checked(name: str, value: str | None) -> str:
    """A request value that has the length and pattern of its kind, or a 422 that echoes a masked prefix only."""
    if value is None or value == "":
        raise _error(422, "missing_field", f"缺少字段“{name}”（{FIELD_NAMES[name]}）。")
    if FIELD_PATTERNS[name].fullmatch(value) is None:
        raise _error(422, "invalid_field", f"{FIELD_NAMES[name]}“{short_masked(value)}”格式不对，请核对后重新提交。")
    return value


UNAUTHORIZED = (
    "缺少令牌，或令牌无效、已过期、已吊销。请在请求头 Authorization: Bearer <令牌> 中提供本单位有效令牌，"
    "如已遗失或过期请联系省级办公室重新签发。"
)
ASK_FOR_LINK_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>需要令牌</title></head><body>'
    "<p>查看进度需要令牌：请打开省级办公室发给本单位的链接（带 ?token=…），或联系省级办公室签发。"
    "链接已过期或已吊销时，请联系省级办公室重新签发。</p></body></html>"
)


LINK_CAN_SUBMIT_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>令牌不能用于链接</title></head><body>'
    "<p>这个令牌可以报送数据，不能放在网址里（网址会留在浏览历史和日志中）。请使用省级办公室签发的只读链接"
    "（campaign tokens issue --kind read）；如报送令牌已随链接转发，请联系省级办公室吊销并重新签发。</p></body></html>"
)


class _TokenFreeAccessLog(logging.Filter):
    """The server's access log never keeps a link's token: ``token=…`` in a logged address is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_token(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _without_token(logged: str) -> str:
    """A logged address with the value of every ``token`` parameter masked, however its name was encoded."""
    if "?" not in logged:
        return logged
    path, _, query = logged.partition("?")
    pairs = [
        (unquote_plus(name), "***" if unquote_plus(name).strip().lower() == "token" else unquote_plus(value))
        for name, _, value in (item.partition("=") for item in query.split("&"))
    ]
    return f"{path}?{urlencode(pairs, safe='*')}"


class _SecurityHeaders:
    """Pure ASGI middleware: no page or reply is cached, sent as a referrer, or sniffed as another type."""

    HEADERS = (
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"SAMEORIGIN"),
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in self.HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, with_headers)


def _engine(request: Request) -> Engine:
    state = request.app.state
    with state.lock:
        if state.engine is None:  # created on first use, never at import or parse time
            state.engine = make_engine(state.database_url)
        return state.engine


def _now(request: Request) -> dt.datetime:
    return request.app.state.clock()


def credential(request: Request, authorization: Annotated[str | None, Header()] = None) -> Credential:
    """The token of ``Authorization: Bearer …`` (checked in the thread pool, before any body is read)."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    found = verify_token(_engine(request), token, _now(request)) if token else None
    if found is None:
        raise _error(401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    return found


def submitter(who: Annotated[Credential, Depends(credential)]) -> Credential:
    if not who.can_submit:
        raise _error(403, "read_only", "此令牌只能查看进度和状态，不能报送或上传。请使用本单位的报送令牌。")
    return who


Auth = Annotated[Credential, Depends(credential)]
Submitter = Annotated[Credential, Depends(submitter)]


def calendar_for(campaign: str, who: Credential) -> Calendar:
    """The campaign's calendar from the registry, if the credential covers it."""
    checked("campaign", campaign)
    if not who.covers(campaign):
        raise _error(403, "out_of_scope", "此令牌只适用于另一项战役，不能用于本战役。请使用本战役的令牌。")
    try:
        return load_campaign(campaign)
    except UnknownCampaign:
        raise _error(404, "unknown_campaign", f"没有战役“{campaign}”。请核对战役编号。") from None
    except CalendarError as exc:
        log.error("战役 %s 的日历有误：%s", campaign, exc)  # the details go to the server's log, not the reply
        raise _error(500, "invalid_calendar", "该战役的日历配置有误，暂时无法办理。请联系运维人员。") from None


def _unit_of(calendar: Calendar, unit: str) -> None:
    if unit not in {u.code for u in calendar.unit_list}:
        raise _error(404, "unknown_unit", f"战役 {calendar.id} 没有单位“{unit}”。请核对单位代码。")


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
                    _engine(request),
                    calendar,
                    unit=unit,
                    milestone_id=milestone,
                    at=_now(request),
                    actor=Actor(name=who.actor, unit=None if who.is_province else who.unit),
                    file_name=received.file_name,
                    file=received.file_path,
                )
            )
        except ReportRefused as refused:
            retry = {"Retry-After": "5"} if refused.http_status == 503 else None
            raise _error(refused.http_status, refused.reason, refused.message, retry) from None
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
        raise _error(404, "unknown_form", f"{calendar.name}不使用表“{form_id}”（可用：{'、'.join(calendar.forms)}）。")
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


class _UploadsInFlight:
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
                raise _error(
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
            raise _error(422, "missing_file", "缺少要上传的工作簿（表单字段 file）。")
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
    _unit_of(calendar, unit)
    if not who.is_province and who.unit != unit:
        raise _error(403, "forbidden", f"此令牌属于单位 {who.unit}，不能替单位 {unit} 上传。")
    # The memory budget: a slot is taken only now, with the whole file on disk and the request checked.
    slots: threading.BoundedSemaphore = request.app.state.ingest_slots
    if not slots.acquire(blocking=False):
        raise _error(
            503,
            "busy",
            "服务器正在处理其他单位的工作簿，本次上传未被接收，未作任何更改。请 1 分钟后重试。",
            {"Retry-After": "60"},
        )
    try:
        result = ingest(_engine(request), calendar, path, unit, _now(request), actor=who.actor, replace_confirm=confirm)
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
        slots.release()
    return JSONResponse(result.as_json(), status_code=201 if result.status == "stored" else 200)


@router.get("/api/campaigns/{campaign}/status")
def all_status(request: Request, campaign: str, who: Auth) -> dict[str, Any]:
    """Every unit's status (province token), or the caller's own unit only (unit token)."""
    status = campaign_status(_engine(request), calendar_for(campaign, who), _now(request))
    if not who.is_province:
        status["units"] = [item for item in status["units"] if item["unit"] == who.unit]
    return status


@router.get("/api/campaigns/{campaign}/units/{unit}/status")
def unit_status(request: Request, campaign: str, unit: str, who: Auth) -> dict[str, Any]:
    """One unit's status; a unit's token may read its own only."""
    calendar = calendar_for(campaign, who)
    checked("unit", unit)
    if not who.is_province and who.unit != unit:
        raise _error(403, "forbidden", f"此令牌只能查看单位 {who.unit} 的状态。")
    _unit_of(calendar, unit)
    status = campaign_status(_engine(request), calendar, _now(request))
    found = next(item for item in status["units"] if item["unit"] == unit)
    return {"campaign": status["campaign"], "at": status["at"], **found}


pages = APIRouter()


def _page_reader(request: Request, authorization: str | None) -> Credential | None:
    """Who reads a page: the session cookie (from a link's token), or an Authorization header."""
    given = (authorization or "").removeprefix("Bearer ").strip()
    if given:
        return verify_token(_engine(request), given, _now(request))
    cookie = request.cookies.get(SESSION_COOKIE)
    return verify_session(_engine(request), cookie, _now(request)) if cookie else None


def _exchange(request: Request, token: str) -> Response:
    """A link's token for a session cookie (HttpOnly, SameSite=Strict), and the same page without the token in
    its address, so that it leaves no trace in the history, the bookmarks or a referrer."""
    who = verify_token(_engine(request), token, _now(request))
    if who is None:
        return HTMLResponse(ASK_FOR_LINK_PAGE, status_code=401)
    if who.kind != "read":  # a token that can submit must never sit in an address, a history or a log
        return HTMLResponse(LINK_CAN_SUBMIT_PAGE, status_code=403)
    value, seconds = session_value(who, _now(request))
    url = request.url.remove_query_params("token")
    response = RedirectResponse(url.path + (f"?{url.query}" if url.query else ""), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=request.scope.get("root_path") or "/",
    )
    return response


def _reader_or_page(request: Request, token: str | None, authorization: str | None) -> Credential | Response:
    if token is not None:
        return _exchange(request, token)
    who = _page_reader(request, authorization)
    return who if who is not None else HTMLResponse(ASK_FOR_LINK_PAGE, status_code=401)


def _page_context(
    request: Request, campaign: str, token: str | None, authorization: str | None
) -> tuple[Credential, Calendar] | Response:
    """The reader and the campaign of a page, or the page that says why not (a link to exchange, 401, 404)."""
    who = _reader_or_page(request, token, authorization)
    if isinstance(who, Response):
        return who
    try:
        return who, calendar_for(campaign, who)
    except HTTPException as exc:
        return HTMLResponse(f"<p>{escape(exc.detail['message'])}</p>", status_code=exc.status_code)


@pages.get("/progress/", response_class=HTMLResponse)
def progress_index(
    request: Request, token: str | None = None, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The campaigns the reader's token covers, each a link to its progress page (the UI's menu opens this)."""
    who = _reader_or_page(request, token, authorization)
    if isinstance(who, Response):
        return who
    ids = [campaign for campaign in calendar_index() if who.covers(campaign)]
    links = "".join(f'<li><a href="{escape(campaign)}">{escape(campaign)}</a></li>' for campaign in ids)
    return HTMLResponse(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>战役进度</title></head>'
        f"<body><h1>战役进度</h1><ul>{links or '<li>此令牌不适用于任何战役</li>'}</ul></body></html>"
    )


@pages.get("/progress/{campaign}", response_class=HTMLResponse)
def progress_page(
    request: Request, campaign: str, token: str | None = None, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The unit × milestone matrix and the completion chart: every unit for the province, one's own for a unit."""
    from include.progress.report import progress_report
    from include.web.progress_page import progress_html

    context = _page_context(request, campaign, token, authorization)
    if isinstance(context, Response):
        return context
    who, calendar = context
    report = progress_report(_engine(request), calendar, _now(request))
    if not who.is_province:
        report["units"] = [unit for unit in report["units"] if unit["unit"] == who.unit]
    return HTMLResponse(progress_html(report, whole=who.is_province))


@pages.get("/progress/{campaign}/units/{unit}", response_class=HTMLResponse)
def unit_page(
    request: Request,
    campaign: str,
    unit: str,
    token: str | None = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    from include.progress.report import progress_report
    from include.web.progress_page import unit_html

    context = _page_context(request, campaign, token, authorization)
    if isinstance(context, Response):
        return context
    who, calendar = context
    if not who.is_province and who.unit != unit:
        return HTMLResponse(f"<p>此令牌只能查看单位 {escape(who.unit)} 的进度。</p>", status_code=403)
    report = progress_report(_engine(request), calendar, _now(request))
    found = [item for item in report["units"] if item["unit"] == unit]
    if not found:
        return HTMLResponse(f"<p>战役 {escape(campaign)} 没有单位“{escape(short_masked(unit))}”。</p>", status_code=404)
    return HTMLResponse(unit_html(report, found[0]))


# An early refusal of a request whose body may still be coming: the connection is closed after the answer, so a
# client that keeps sending (slowly) holds nothing.
CLOSE_AFTER = {400, 401, 403, 408, 411, 413, 415, 422, 429}


def _closing(status: int, headers: dict[str, str] | None) -> dict[str, str] | None:
    return {**(headers or {}), "Connection": "close"} if status in CLOSE_AFTER else headers


async def _chinese_errors(_request: Request, exc: HTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, dict) else {"error": "error", "message": str(exc.detail)}
    detail = {**detail, "message": redact(str(detail.get("message", "")))}
    return JSONResponse(detail, status_code=exc.status_code, headers=_closing(exc.status_code, exc.headers))


async def _upload_refused(_request: Request, exc: UploadRefused) -> JSONResponse:
    return JSONResponse(
        {"error": exc.reason, "message": exc.message}, status_code=exc.status, headers=_closing(exc.status, None)
    )


async def _client_gone(_request: Request, _exc: ClientDisconnect) -> Response:
    """The client went away mid-body: nothing was kept (include/web/upload.py), nothing to log as an error."""
    log.info("客户端在上传过程中断开，未作任何更改")
    return Response(status_code=400, headers={"Connection": "close"})


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422 would echo the values sent; this one names the fields only."""
    names = sorted({str(error.get("loc", ("", "?"))[-1]) for error in exc.errors()})
    message = f"请求参数不符合要求：{'、'.join(short_masked(name, 16) for name in names)}。请核对后重新提交。"
    return JSONResponse({"error": "invalid_request", "message": message}, status_code=422)


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The campaign store cannot be reached or is busy (a database restart, a network cut, a lock): nothing
    was kept, so the sender can simply try again. Any other database error is an internal error."""
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError) and not getattr(exc, "connection_invalidated", False):
        return await _internal_error(_request, exc)
    message = "战役数据库暂时无法连接，本次请求未被处理，未作任何更改。请稍后重试（约 30 秒后）。"
    return JSONResponse(
        {"error": "store_unavailable", "message": message}, status_code=503, headers={"Retry-After": "30"}
    )


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    """No stack trace, path or value in the reply; the server's log has the details."""
    log.error("内部错误：%s", redact(repr(exc))[:500])
    return JSONResponse(
        {"error": "internal", "message": "服务器内部错误，本次请求未完成。请稍后重试；如反复出现，请联系运维人员。"},
        status_code=500,
    )


def create_app(clock: Clock = _real_clock, database_url: str | None = None) -> FastAPI:
    from sqlalchemy.exc import DBAPIError

    check_configuration()  # outside a local run, no token key is a start-up error, not a public default
    local = is_local_run()  # the interactive API docs only on a local run; a deployment publishes none
    app = FastAPI(
        title="扶贫对象动态管理战役 API",
        description="单位报送与进度查询（需令牌）",
        version="1",
        docs_url="/docs" if local else None,
        redoc_url=None,
        openapi_url="/openapi.json" if local else None,
    )
    app.state.clock = clock
    app.state.database_url = database_url
    app.state.engine = None
    app.state.lock = threading.Lock()
    app.state.ingest_slots = threading.BoundedSemaphore(max_concurrent_ingests())
    app.state.uploads = _UploadsInFlight()
    app.include_router(router)
    app.include_router(pages)
    app.add_exception_handler(HTTPException, _chinese_errors)
    app.add_exception_handler(UploadRefused, _upload_refused)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(DBAPIError, _store_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(_SecurityHeaders)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(item, _TokenFreeAccessLog) for item in access.filters):
        access.addFilter(_TokenFreeAccessLog())
    return app
