"""Airflow extension points of the campaign project: the timetable, and the HTTP API under /campaign."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.api import create_app
from include.timetable import CampaignTimetable


class CampaignPlugin(AirflowPlugin):
    name = "campaign"
    timetables = [CampaignTimetable]  # noqa: RUF012 - AirflowPlugin's declared interface
    fastapi_apps = [{"app": create_app(), "url_prefix": "/campaign", "name": "扶贫战役 API"}]  # noqa: RUF012
