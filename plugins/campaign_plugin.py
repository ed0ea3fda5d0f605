"""Airflow extension points of the campaign project (timetables; the API and pages come later)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.timetable import CampaignTimetable


class CampaignPlugin(AirflowPlugin):
    name = "campaign"
    timetables = [CampaignTimetable]  # noqa: RUF012 - AirflowPlugin's declared interface
