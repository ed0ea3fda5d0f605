"""Chinese working days: weekends, the official holidays and the adjusted working days (调休).

From the chinesecalendar package, which carries the State Council's published arrangements year by year.
A day outside its years is refused with a message rather than guessed.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar


class UnknownYear(ValueError):
    """The holiday arrangements of that year are not in the installed chinesecalendar."""


def is_working_day(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as error:
        raise UnknownYear(f"{day.year}年的法定节假日安排不在 chinesecalendar 中，请升级该包") from error


def working_days_between(after: dt.date, until: dt.date) -> int:
    """The working days d with after < d <= until (negative when until comes first)."""
    if until < after:
        return -working_days_between(until, after)
    return sum(1 for n in range(1, (until - after).days + 1) if is_working_day(after + dt.timedelta(days=n)))
