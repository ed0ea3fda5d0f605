"""The campaign timetable: one run at the campaign's start; a finished campaign is shown, not run."""

from __future__ import annotations

import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from include.calendar import read_calendar
from include.calendar.compress import compress
from include.calendar.instants import parse_duration, parse_instant
from include.orchestration.timetable import CampaignTimetable
from include.paths import CONFIG_CAMPAIGNS

pytestmark = pytest.mark.airflow


def shandong() -> CampaignTimetable:
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    return CampaignTimetable(calendar.starts, calendar.ends, calendar.id)


def test_exactly_one_run_at_the_start_covering_the_campaign():
    timetable = shandong()
    restriction = TimeRestriction(earliest=timetable.starts, latest=None, catchup=True)
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    # "9月24日，省扶贫开发办在济南举办全省培训动员会议" … "2021年1月1日至10日" the summary.
    assert first.run_after == parse_instant("2020-09-24T00:00+08:00")
    assert first.data_interval == DataInterval(
        parse_instant("2020-09-24T00:00+08:00"), parse_instant("2021-01-10T24:00+08:00")
    )
    second = timetable.next_dagrun_info(last_automated_data_interval=first.data_interval, restriction=restriction)
    assert second is None


def test_a_finished_campaign_is_not_run_without_catchup():
    timetable = shandong()
    restriction = TimeRestriction(earliest=timetable.starts, latest=None, catchup=False)
    assert timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction) is None


def test_a_future_campaign_runs_at_its_start_without_catchup():
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    future = compress(calendar, parse_instant("2099-09-24T00:00+08:00"), parse_duration("6m"))
    timetable = CampaignTimetable(future.starts, future.ends, future.id)
    restriction = TimeRestriction(earliest=future.starts, latest=None, catchup=False)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info.run_after == parse_instant("2099-09-24T00:00+08:00")


def test_a_calendar_moved_later_gets_one_run_for_its_new_dates():
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    first = compress(calendar, parse_instant("2099-09-24T00:00+08:00"), parse_duration("6m"))
    again = compress(calendar, parse_instant("2099-09-25T00:00+08:00"), parse_duration("6m"))
    timetable = CampaignTimetable(again.starts, again.ends, again.id)
    restriction = TimeRestriction(earliest=again.starts, latest=None, catchup=False)
    done = DataInterval(first.starts, first.ends)
    info = timetable.next_dagrun_info(last_automated_data_interval=done, restriction=restriction)
    assert info.run_after == parse_instant("2099-09-25T00:00+08:00")
    assert timetable.next_dagrun_info(last_automated_data_interval=info.data_interval, restriction=restriction) is None


def test_manual_trigger_covers_the_whole_campaign():
    timetable = shandong()
    interval = timetable.infer_manual_data_interval(run_after=parse_instant("2026-11-22T10:00+08:00"))
    assert interval == DataInterval(timetable.starts, timetable.ends)


def test_serialization_round_trip_and_summary():
    timetable = shandong()
    again = CampaignTimetable.deserialize(timetable.serialize())
    assert again == timetable
    assert again.summary == "战役 2020-09-24 00:00 至 2021-01-10 24:00"
    assert not again.periodic
