"""What every route of the campaign's HTTP API and pages depends on: the store and the clock of the app,
the token of a request (typed dependencies ``Auth`` and ``Submitter``), a request value checked before use, the
campaign a credential covers, and the refusal every route raises (a Chinese message that says what to do)."""

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Annotated

import pendulum
from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import Engine

from include.calendar import Calendar, CalendarError
from include.calendar.registry import CAMPAIGN_ID, UnknownCampaign, load_campaign
from include.door.tokens import Credential, ours, verify_token
from include.masking import short_masked
from include.store.db import make_engine

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


def real_clock() -> dt.datetime:
    return pendulum.now("UTC")


def refusal(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail={"error": reason, "message": message}, headers=headers)


def checked(name: str, value: str | None) -> str:
    """A request value that has the length and pattern of its kind, or a 422 that echoes a masked prefix only."""
    if value is None or value == "":
        raise refusal(422, "missing_field", f"缺少字段“{name}”（{FIELD_NAMES[name]}）。")
    if FIELD_PATTERNS[name].fullmatch(value) is None:
        raise refusal(422, "invalid_field", f"{FIELD_NAMES[name]}“{short_masked(value)}”格式不对，请核对后重新提交。")
    return value


UNAUTHORIZED = (
    "缺少令牌，或令牌无效、已过期、已吊销。请在请求头 Authorization: Bearer <令牌> 中提供本单位有效令牌，"
    "如已遗失或过期请联系省级办公室重新签发。"
)


def engine_of(request: Request) -> Engine:
    state = request.app.state
    with state.lock:
        if state.engine is None:  # created on first use, never at import or parse time
            state.engine = make_engine(state.database_url)
        return state.engine


def now_of(request: Request) -> dt.datetime:
    return request.app.state.clock()


def credential(request: Request, authorization: Annotated[str | None, Header()] = None) -> Credential:
    """The token of ``Authorization: Bearer …`` (checked in the thread pool, before any body is read)."""
    token = ours(authorization)
    found = verify_token(engine_of(request), token, now_of(request)) if token else None
    if found is None:
        raise refusal(401, "unauthorized", UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    return found


def submitter(who: Annotated[Credential, Depends(credential)]) -> Credential:
    if not who.can_submit:
        raise refusal(403, "read_only", "此令牌只能查看进度和状态，不能报送或上传。请使用本单位的报送令牌。")
    return who


Auth = Annotated[Credential, Depends(credential)]


Submitter = Annotated[Credential, Depends(submitter)]


def calendar_for(campaign: str, who: Credential) -> Calendar:
    """The campaign's calendar from the registry, if the credential covers it."""
    checked("campaign", campaign)
    if not who.covers(campaign):
        raise refusal(403, "out_of_scope", "此令牌只适用于另一项战役，不能用于本战役。请使用本战役的令牌。")
    try:
        return load_campaign(campaign)
    except UnknownCampaign:
        raise refusal(404, "unknown_campaign", f"没有战役“{campaign}”。请核对战役编号。") from None
    except CalendarError as exc:
        log.error("战役 %s 的日历有误：%s", campaign, exc)  # the details go to the server's log, not the reply
        raise refusal(500, "invalid_calendar", "该战役的日历配置有误，暂时无法办理。请联系运维人员。") from None


def unit_of(calendar: Calendar, unit: str) -> None:
    if unit not in calendar.tree or unit == calendar.office.code:
        raise refusal(404, "unknown_unit", f"战役 {calendar.id} 没有单位“{unit}”。请核对单位代码。")
