"""Paths that Airflow has already stored keep working after include/ was split into packages (2026-12).

A deferred gate's row in the trigger table names its trigger's class path, and a serialized DAG names its
timetable's: both were written under the old flat layout by a running campaign, and the scheduler and the
triggerer must still read them until the DAGs are parsed anew.
"""

from __future__ import annotations

import importlib

import pendulum
import pytest
from airflow.serialization.decoders import decode_timetable
from airflow.serialization.encoders import encode_timetable

from include.orchestration.gates import ReportTrigger
from include.orchestration.reminder_timetable import WorkingDayTimetable
from include.orchestration.timetable import CampaignTimetable

pytestmark = pytest.mark.airflow

STARTS, ENDS = pendulum.parse("2020-09-15T00:00:00+08:00"), pendulum.parse("2021-01-01T00:00:00+08:00")


def test_a_trigger_stored_under_the_old_path_is_rebuilt_and_stored_anew_under_the_new_one():
    old = importlib.import_module("include.gates").ReportTrigger  # as the triggerer imports a row's class path
    assert old is ReportTrigger
    rebuilt = old("sqlite://", "2020-shandong", "370100", "completion_report", ENDS.isoformat(), 5.0)
    assert rebuilt.serialize()[0] == "include.orchestration.gates.ReportTrigger"


@pytest.mark.parametrize(
    ("old_path", "new", "data"),
    [
        (
            "include.timetable.CampaignTimetable",
            CampaignTimetable,
            {"starts": STARTS.isoformat(), "ends": ENDS.isoformat(), "campaign_id": "2020-shandong"},
        ),
        (
            "include.reminder_timetable.WorkingDayTimetable",
            WorkingDayTimetable,
            {"first": "2020-09-15", "last": "2020-12-31", "send_at": "09:00", "extra_days": ["2020-10-01"]},
        ),
    ],
)
def test_a_dag_serialized_under_the_old_timetable_path_is_read(old_path: str, new: type, data: dict):
    timetable = decode_timetable({"__type": old_path, "__var": data})
    assert isinstance(timetable, new)
    assert timetable == new.deserialize(data)
    fresh = encode_timetable(new.deserialize(data))
    assert fresh["__type"] == f"{new.__module__}.{new.__qualname__}"
    assert decode_timetable(fresh) == timetable
