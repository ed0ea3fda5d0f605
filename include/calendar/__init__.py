"""Campaign calendars: the model, loading and checking, compression, rendering."""

from include.calendar.load import CalendarError, Problem, read_calendar
from include.calendar.model import Calendar

__all__ = ["Calendar", "CalendarError", "Problem", "read_calendar"]
