"""Instants and durations as the seed documents write them.

All plans are in Asia/Shanghai. Instants are stored in UTC and shown in local time with their
+08:00 offset. "X月Y日24时" is written ``YYYY-MM-DDT24:00+08:00`` (ISO 8601 end of day) and means
the next day at 00:00:00 local, exclusive.
"""

from __future__ import annotations

import datetime as dt
import re

import pendulum

TIMEZONE = "Asia/Shanghai"
LOCAL_TZ = pendulum.timezone(TIMEZONE)

_INSTANT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])$")


class TimeFormatError(ValueError):
    """An instant or duration that cannot be read; the message is for users (Chinese)."""


def parse_instant(text: str) -> pendulum.DateTime:
    """Read an ISO-8601 instant that must carry its offset; ``T24:00`` is the end of that day."""
    match = _INSTANT.match(str(text).strip())
    if not match:
        raise TimeFormatError(f"无法识别的时间“{text}”，应为 ISO-8601 格式，如 2020-11-30T24:00:00+08:00")
    if match["offset"] is None:
        raise TimeFormatError(f"时间“{text}”缺少时区偏移（如 +08:00），不能使用不带时区的时间")
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    fraction = match["fraction"] or ""
    end_of_day = hour == 24
    if end_of_day:
        if minute or second or fraction.strip(".0"):
            raise TimeFormatError(f"时间“{text}”无效：24 时只能写作 24:00:00")
        hour = 0
    offset = "+00:00" if match["offset"] == "Z" else match["offset"]
    rebuilt = f"{match['date']}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    try:
        parsed = dt.datetime.fromisoformat(rebuilt)
    except ValueError as exc:
        raise TimeFormatError(f"时间“{text}”无效：{exc}") from exc
    instant = pendulum.instance(parsed)
    if end_of_day:
        instant = instant.add(days=1)
    return instant.in_timezone("UTC")


def local_iso(instant: dt.datetime) -> str:
    """The instant in Asia/Shanghai as ISO-8601 with its +08:00 offset."""
    return pendulum.instance(instant).in_timezone(LOCAL_TZ).isoformat()


def local_text(instant: dt.datetime, *, end: bool = False) -> str:
    """A short local rendering for people; an end (``end=True``) at midnight reads ``2020-11-30 24:00``."""
    local = pendulum.instance(instant).in_timezone(LOCAL_TZ)
    if end and (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return f"{local.subtract(days=1).format('YYYY-MM-DD')} 24:00"
    return local.format("YYYY-MM-DD HH:mm" if local.second == local.microsecond == 0 else "YYYY-MM-DD HH:mm:ss")


def parse_duration(text: str) -> dt.timedelta:
    """Read a span such as ``6m``, ``2h``, ``90s``, ``3d`` or an ISO-8601 duration (``PT6M``)."""
    raw = str(text).strip()
    match = _DURATION.match(raw)
    if match:
        seconds = float(match["amount"]) * _DURATION_UNITS[match["unit"]]
    else:
        try:
            parsed = pendulum.parse(raw)
        except (ValueError, pendulum.parsing.exceptions.ParserError) as exc:
            raise TimeFormatError(f"无法识别的时长“{text}”，应如 6m、2h、3d 或 PT6M") from exc
        if not isinstance(parsed, pendulum.Duration):
            raise TimeFormatError(f"无法识别的时长“{text}”，应如 6m、2h、3d 或 PT6M")
        seconds = parsed.total_seconds()
    span = dt.timedelta(seconds=seconds)
    if span <= dt.timedelta(0):
        raise TimeFormatError(f"时长“{text}”必须大于零")
    return span


def local_day(instant: dt.datetime) -> dt.date:
    """The Beijing-time day of an instant."""
    return pendulum.instance(instant).in_timezone(TIMEZONE).date()


def last_day(instant: dt.datetime) -> dt.date:
    """The day a deadline falls on: "11月30日24时" (12-01 00:00) is 30 November."""
    return local_day(instant - dt.timedelta(microseconds=1))
