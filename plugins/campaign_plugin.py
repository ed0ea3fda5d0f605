"""Airflow extension points of the campaign project: the timetables, and the HTTP API under /campaign
(built at its first request: include/web/mount.py)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include import reminder_timetable as moved_reminder_timetable
from include import timetable as moved_timetable
from include.orchestration.reminder_timetable import WorkingDayTimetable
from include.orchestration.timetable import CampaignTimetable
from include.web.mount import CampaignApp
from include.web.ui_timezone import BeijingTimeByDefault


class CampaignPlugin(AirflowPlugin):
    name = "campaign"
    # The old paths too, until no DAG serialized before the move is left (include/timetable.py).
    timetables = [  # noqa: RUF012 - AirflowPlugin's declared interface
        CampaignTimetable,
        WorkingDayTimetable,
        moved_timetable.CampaignTimetable,
        moved_reminder_timetable.WorkingDayTimetable,
    ]
    fastapi_apps = [{"app": CampaignApp(), "url_prefix": "/campaign", "name": "扶贫战役 API"}]  # noqa: RUF012
    # Airflow's UI in Beijing time unless its user picked another zone (include/web/ui_timezone.py).
    fastapi_root_middlewares = [  # noqa: RUF012
        {"middleware": BeijingTimeByDefault, "args": [], "kwargs": {}, "name": "界面默认北京时间"}
    ]
    # The progress pages, served by the app above, in the UI's menu (opened inside the UI at /plugin/campaign-progress).
    external_views = [  # noqa: RUF012
        {"name": "战役进度", "href": "/campaign/progress/", "destination": "nav", "url_route": "campaign-progress"}
    ]
