"""The reminders timetable: a run at the policy's hour (09:00 Beijing time) on each Chinese working day of the
campaign, plus its due days and closing days even when they fall on a weekend or a holiday.

Working days come from chinesecalendar (official holidays and adjusted working days). Registered by
plugins/campaign_plugin.py; the scheduler calls it, so it reads no store and no calendar file.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from include.calendar.instants import TIMEZONE
from include.calendar.workdays import is_working_day


class WorkingDayTimetable(Timetable):
    """Daily at ``send_at`` local on working days from ``first`` to ``last`` (dates), and on ``extra_days``."""

    periodic = True
    run_ordering = ("logical_date",)

    def __init__(
        self, first: dt.date, last: dt.date, send_at: str = "09:00", extra_days: tuple[dt.date, ...] = ()
    ) -> None:
        self.first, self.last, self.send_at = first, last, send_at
        self.extra_days = tuple(sorted(set(extra_days)))
        self.description = f"中国工作日 {send_at}（北京时间），截止日和关闭日即使节假日也运行；{first} 至 {last}"

    @property
    def summary(self) -> str:
        return f"工作日 {self.send_at}"

    def serialize(self) -> dict[str, Any]:
        return {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "send_at": self.send_at,
            "extra_days": [day.isoformat() for day in self.extra_days],
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(
            dt.date.fromisoformat(data["first"]),
            dt.date.fromisoformat(data["last"]),
            data.get("send_at", "09:00"),
            tuple(dt.date.fromisoformat(day) for day in data.get("extra_days", ())),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkingDayTimetable):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(tuple(self.serialize().items()).__repr__())

    def runs_on(self, day: dt.date) -> bool:
        return self.first <= day <= self.last and (day in self.extra_days or is_working_day(day))

    def instant(self, day: dt.date) -> pendulum.DateTime:
        hour, minute = (int(part) for part in self.send_at.split(":"))
        return pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=TIMEZONE).in_timezone("UTC")

    def next_day(self, after: dt.date) -> dt.date | None:
        """The first day after ``after`` that has a run, or None past the last."""
        day = max(after + dt.timedelta(days=1), self.first)
        while day <= self.last:
            if self.runs_on(day):
                return day
            day += dt.timedelta(days=1)
        return None

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval(run_after, run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            after = pendulum.instance(last_automated_data_interval.start).in_timezone(TIMEZONE).date()
        else:
            after = self.first - dt.timedelta(days=1)
        if restriction.earliest is not None:
            earliest = pendulum.instance(restriction.earliest).in_timezone(TIMEZONE)
            if self.instant(earliest.date()) < earliest:
                after = max(after, earliest.date())
            else:
                after = max(after, earliest.date() - dt.timedelta(days=1))
        if not restriction.catchup:  # no reminders for days gone by: from today on
            today = pendulum.now(TIMEZONE)
            if self.instant(today.date()) < today:
                after = max(after, today.date())
            else:
                after = max(after, today.date() - dt.timedelta(days=1))
        day = self.next_day(after)
        if day is None:
            return None
        run = self.instant(day)
        if restriction.latest is not None and run > restriction.latest:
            return None
        return DagRunInfo.interval(start=run, end=run)
