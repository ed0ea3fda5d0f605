"""The reminders timetable: 09:00 Beijing time on Chinese working days, and on due and closing days anyway.

2020's National Day holiday ran 10-01 to 10-08, with Sunday 09-27 and Saturday 10-10 worked instead
(chinesecalendar). Seed 000's cities verify "12月11日至20日": the due day 12-20 is a Sunday.
"""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflow.timetables.base import TimeRestriction

from include.calendar.registry import load_campaign
from include.orchestration.reminder_timetable import WorkingDayTimetable
from include.orchestration.reminders_dag import build_reminders_dag, special_days

pytestmark = pytest.mark.airflow

SHANDONG = load_campaign("2020-shandong")


def run_days(timetable: WorkingDayTimetable, earliest: dt.datetime, until: dt.date) -> list[dt.date]:
    days, last = [], None
    restriction = TimeRestriction(earliest=earliest, latest=None, catchup=True)
    while True:
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            return days
        local = pendulum.instance(info.run_after).in_timezone("Asia/Shanghai")
        assert (local.hour, local.minute) == (9, 0)
        if local.date() > until:
            return days
        days.append(local.date())
        last = info.data_interval


def test_working_days_with_national_day_and_its_adjusted_working_days():
    timetable = build_reminders_dag(SHANDONG).timetable
    days = run_days(timetable, pendulum.datetime(2020, 9, 24, tz="Asia/Shanghai"), dt.date(2020, 10, 12))
    assert days == [
        dt.date(2020, 9, 24), dt.date(2020, 9, 25), dt.date(2020, 9, 27), dt.date(2020, 9, 28), dt.date(2020, 9, 29),
        dt.date(2020, 9, 30), dt.date(2020, 10, 9), dt.date(2020, 10, 10), dt.date(2020, 10, 12),
    ]  # fmt: skip


def test_due_days_and_closing_days_run_on_weekends_and_holidays():
    assert dt.date(2020, 12, 20) in special_days(SHANDONG)  # verification_done, a Sunday
    assert dt.date(2020, 12, 31) in special_days(SHANDONG)  # "12月31日24时关闭信息系统"
    assert dt.date(2020, 12, 10) not in special_days(SHANDONG)  # the office's problem lists: by: office
    timetable = build_reminders_dag(SHANDONG).timetable
    days = run_days(timetable, pendulum.datetime(2020, 12, 18, tz="Asia/Shanghai"), dt.date(2020, 12, 21))
    assert days == [dt.date(2020, 12, 18), dt.date(2020, 12, 20), dt.date(2020, 12, 21)]


def test_the_last_run_is_on_the_campaigns_last_day_and_none_after():
    timetable = build_reminders_dag(SHANDONG).timetable
    days = run_days(timetable, pendulum.datetime(2021, 1, 6, tz="Asia/Shanghai"), dt.date(2021, 12, 31))
    assert days == [dt.date(2021, 1, 6), dt.date(2021, 1, 7), dt.date(2021, 1, 8), dt.date(2021, 1, 10)]
    # 01-09 and 01-10 are a weekend; 01-10 is the summary's due day ("2021年1月1日至10日")


def test_a_past_campaign_without_catchup_schedules_nothing():
    timetable = build_reminders_dag(SHANDONG).timetable
    restriction = TimeRestriction(earliest=SHANDONG.starts, latest=None, catchup=False)
    assert timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None


def test_the_timetable_survives_serialization():
    timetable = build_reminders_dag(SHANDONG).timetable
    again = WorkingDayTimetable.deserialize(timetable.serialize())
    assert again == timetable and again.extra_days == timetable.extra_days
    assert "中国工作日 09:00" in again.description
