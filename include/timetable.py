"""Moved to ``include.orchestration.timetable`` (2026-12). Kept so that a DAG serialized before the move, whose
timetable is recorded as ``include.timetable.CampaignTimetable``, is still read by the scheduler until it is parsed
anew: the plugin registers this subclass under the old path (Airflow finds a timetable by its class's module)."""

from include.orchestration import timetable


class CampaignTimetable(timetable.CampaignTimetable):
    """The campaign timetable under its old path; behaves exactly as the new one."""
