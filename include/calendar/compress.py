"""Shift and scale a calendar so that a whole campaign runs in minutes (demos and tests).

Every phase, milestone, window, parent deadline and the system closing keep their relative place.
The income period and the status date describe the data, not the schedule: they are kept as is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import yaml

from include.calendar.load import calendar_from_dict
from include.calendar.model import Calendar

_SCHEDULE_FIELDS = ("phases", "milestones", "entry_windows", "parent_deadlines", "system_close")
_INSTANT_KEYS = {"starts", "ends", "due", "opens", "closes", "at"}


def compress(calendar: Calendar, start: dt.datetime, span: dt.timedelta, new_id: str | None = None) -> Calendar:
    """The same calendar starting at ``start`` and lasting ``span`` from first to last instant."""
    origin = calendar.starts
    ratio = span / (calendar.ends - origin)
    begin = pendulum.instance(start)

    def move(instant: dt.datetime) -> dt.datetime:
        return begin + (instant - origin) * ratio

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: move(value) if key in _INSTANT_KEYS else walk(value) for key, value in node.items()}
        if isinstance(node, list | tuple):
            return [walk(item) for item in node]
        return node

    raw = calendar.model_dump(mode="python", by_alias=True, exclude_none=True)
    for field in _SCHEDULE_FIELDS:
        if field in raw:
            raw[field] = walk(raw[field])
    raw["id"] = new_id or f"{calendar.id}-compressed"
    raw["name"] = f"{calendar.name}（压缩演示）"
    raw["compressed_from"] = {"id": calendar.id, "start": begin, "span_seconds": span.total_seconds()}
    return calendar_from_dict(raw, f"<{raw['id']}>")


def to_yaml(calendar: Calendar) -> str:
    """The calendar as a file that `read_calendar` reads back to an equal calendar."""
    data = calendar.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
