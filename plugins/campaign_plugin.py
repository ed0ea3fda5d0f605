"""Airflow extension points of the campaign project: the timetables, and the HTTP API under /campaign."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.api import create_app
from include.reminder_timetable import WorkingDayTimetable
from include.timetable import CampaignTimetable


class CampaignPlugin(AirflowPlugin):
    name = "campaign"
    timetables = [CampaignTimetable, WorkingDayTimetable]  # noqa: RUF012 - AirflowPlugin's declared interface
    fastapi_apps = [{"app": create_app(), "url_prefix": "/campaign", "name": "扶贫战役 API"}]  # noqa: RUF012
    # The progress pages, served by the app above, in the UI's menu (opened inside the UI at /plugin/campaign-progress).
    external_views = [  # noqa: RUF012
        {"name": "战役进度", "href": "/campaign/progress/", "destination": "nav", "url_route": "campaign-progress"}
    ]
