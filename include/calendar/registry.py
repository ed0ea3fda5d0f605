"""The registry of campaign calendars by id: the only way from a campaign id to its calendar.

A calendar is a file ``<id>.yaml`` directly in ``config/campaigns/`` (shipped) or in the campaign home's
``campaigns/`` (compressed copies made at run time), whose name matches the one id pattern and whose
``id`` equals its name. An id that comes with a request is looked up in the listing of those two folders;
it never becomes part of a path, so ``../reports/…``, an absolute path or an encoded one finds nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from include import paths
from include.calendar.load import CalendarError, Problem, read_calendar
from include.calendar.model import Calendar
from include.calendar.roster import with_roster

CAMPAIGN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""A campaign id: lower-case letters, digits and hyphens, at most 64 characters (the store's column)."""


class UnknownCampaign(LookupError):
    """No calendar has this id (or the value is no campaign id at all)."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__(campaign_id)
        self.campaign_id = campaign_id


def is_campaign_id(value: object) -> bool:
    return isinstance(value, str) and CAMPAIGN_ID.fullmatch(value) is not None


def calendar_index() -> dict[str, Path]:
    """Every registered calendar file by id; a shipped calendar wins over a run-time file of the same id."""
    index: dict[str, Path] = {}
    for folder in paths.calendar_dirs():
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix == ".yaml" and is_campaign_id(stem) and entry.is_file(follow_symlinks=False):
                index.setdefault(stem, Path(entry.path))
    return index


def calendar_path(campaign_id: str) -> Path | None:
    """The file of the calendar with this id, or None; the id is looked up, never joined onto a folder."""
    if not is_campaign_id(campaign_id):
        return None
    return calendar_index().get(campaign_id)


def check_id_matches_file(calendar: Calendar, file: Path) -> None:
    """A calendar's ``id`` must be its file's name, so that an id names one file and one file one id."""
    if calendar.id != file.stem:
        raise CalendarError(file, [Problem("id", f"编号“{calendar.id}”与文件名“{file.stem}”不一致")])


def load_campaign(campaign_id: str, *, roster: bool = True) -> Calendar:
    """The calendar of a campaign by id, with the roster of its townships and villages where one is loaded (not
    with ``roster=False``: the calendar as shipped); `UnknownCampaign` if there is none, `CalendarError` if it is
    invalid."""
    file = calendar_path(campaign_id)
    if file is None:
        raise UnknownCampaign(campaign_id)
    calendar = read_calendar(file)
    check_id_matches_file(calendar, file)
    return with_roster(calendar) if roster else calendar
