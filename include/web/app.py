"""The campaign's web app, mounted on Airflow's api-server under /campaign by the plugin: the JSON API
(include/web/api.py) and the pages (include/web/pages.py), with the error handlers and headers they share.

It is not behind Airflow's login: every request carries a token (include/door/tokens.py) as
``Authorization: Bearer …``, or, for the pages, a session cookie that a progress link's ``?token=`` is
exchanged for on the first visit. What a request may do follows the token's kind and scope:
a ``read`` token reads, a ``submit`` token submits for its unit, the office's token acts for all units.

Hardening (README "Security"): a campaign id is looked up in the calendar registry, never used as a path;
every request value is checked for length and pattern before use; replies never carry server paths, stack
traces or a calendar's internals, and every message that may echo a value is masked (include/masking.py).
The clock is a parameter of the app.
"""

import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from include.door.keys import check_configuration
from include.masking import redact, short_masked
from include.paths import is_local_run
from include.web.api import UploadsInFlight, max_concurrent_ingests, router
from include.web.deps import Clock, real_clock
from include.web.pages import pages
from include.web.upload import UploadRefused

log = logging.getLogger(__name__)


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


def create_app(clock: Clock = real_clock, database_url: str | None = None) -> FastAPI:
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
    app.state.uploads = UploadsInFlight()
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
