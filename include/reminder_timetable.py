"""Moved to ``include.orchestration.reminder_timetable`` (2026-12). Kept so that a DAG serialized before the move,
whose timetable is recorded as ``include.reminder_timetable.WorkingDayTimetable``, is still read by the scheduler
until it is parsed anew: the plugin registers this subclass under the old path."""

from include.orchestration import reminder_timetable


class WorkingDayTimetable(reminder_timetable.WorkingDayTimetable):
    """The reminders timetable under its old path; behaves exactly as the new one."""
