"""The pages a clerk opens in a browser: the campaigns a link covers, the progress of the units, one
unit's drill-down. A link's ``?token=`` is exchanged for a session cookie on the first visit. The HTML is in
templates/ (include/web/progress_page.py renders it)."""

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from include.calendar import Calendar
from include.calendar.registry import calendar_index
from include.door.tokens import Credential, ours, session_value, verify_session, verify_token
from include.masking import short_masked
from include.web.deps import SESSION_COOKIE, calendar_for, engine_of, now_of
from include.web.progress_page import index_html, message_html, progress_html, unit_html

ASK_FOR_LINK = (
    "查看进度需要令牌：请打开省级办公室发给本单位的链接（带 ?token=…），或联系省级办公室签发。"
    "链接已过期或已吊销时，请联系省级办公室重新签发。"
)
LINK_CAN_SUBMIT = (
    "这个令牌可以报送数据，不能放在网址里（网址会留在浏览历史和日志中）。请使用省级办公室签发的只读链接"
    "（campaign tokens issue --kind read）；如报送令牌已随链接转发，请联系省级办公室吊销并重新签发。"
)


def message_page(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(message_html(title, text), status_code=status)


def ask_for_link() -> HTMLResponse:
    return message_page("需要令牌", ASK_FOR_LINK, 401)


pages = APIRouter()


def _page_reader(request: Request, authorization: str | None) -> Credential | None:
    """Who reads a page: the session cookie (from a link's token), or an Authorization header."""
    given = ours(authorization)
    if given:
        return verify_token(engine_of(request), given, now_of(request))
    cookie = request.cookies.get(SESSION_COOKIE)
    return verify_session(engine_of(request), cookie, now_of(request)) if cookie else None


def _exchange(request: Request, token: str) -> Response:
    """A link's token for a session cookie (HttpOnly, SameSite=Strict), and the same page without the token in
    its address, so that it leaves no trace in the history, the bookmarks or a referrer."""
    who = verify_token(engine_of(request), token, now_of(request))
    if who is None:
        return ask_for_link()
    if who.kind != "read":  # a token that can submit must never sit in an address, a history or a log
        return message_page("令牌不能用于链接", LINK_CAN_SUBMIT, 403)
    value, seconds = session_value(who, now_of(request))
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
    return who if who is not None else ask_for_link()


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
        return message_page("无法查看", exc.detail["message"], exc.status_code)


@pages.get("/progress/", response_class=HTMLResponse)
def progress_index(
    request: Request, token: str | None = None, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The campaigns the reader's token covers, each a link to its progress page (the UI's menu opens this)."""
    who = _reader_or_page(request, token, authorization)
    if isinstance(who, Response):
        return who
    ids = [campaign for campaign in calendar_index() if who.covers(campaign)]
    return HTMLResponse(index_html(ids))


@pages.get("/progress/{campaign}", response_class=HTMLResponse)
def progress_page(
    request: Request, campaign: str, token: str | None = None, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The unit × milestone matrix and the completion chart: every unit for the province; a unit's own subtree
    (a city and its counties) for a unit's token."""
    from include.progress.report import progress_report

    context = _page_context(request, campaign, token, authorization)
    if isinstance(context, Response):
        return context
    who, calendar = context
    under = who.acting
    if under is not None and not calendar.may_act(under, under):
        return message_page("无法查看", f"单位 {who.unit} 不是本战役的单位，此链接不能查看本战役的进度。", 403)
    report = progress_report(engine_of(request), calendar, now_of(request), under=under)
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

    context = _page_context(request, campaign, token, authorization)
    if isinstance(context, Response):
        return context
    who, calendar = context
    tree = calendar.tree
    if not calendar.may_act(who.acting, unit):
        return message_page("无法查看", f"此令牌只能查看单位 {who.unit} 及其下级单位的进度。", 403)
    if unit not in tree or unit == calendar.office.code:
        return message_page("无法查看", f"战役 {campaign} 没有单位“{short_masked(unit)}”。", 404)
    report = progress_report(engine_of(request), calendar, now_of(request), under=unit)
    found = [row for level in report["levels"] for row in level["units"] if row["unit"] == unit]
    if not found:
        return message_page("无法查看", f"{calendar.name_of(unit)}在本战役中没有应完成的事项。", 404)
    return HTMLResponse(unit_html(report, found[0]))
