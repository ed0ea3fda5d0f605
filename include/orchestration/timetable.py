"""The campaign timetable: exactly one run per campaign, at its start.

The run's data interval is the whole campaign. A calendar moved to a later start (a demo made
anew) gets one run for its new dates. A campaign whose end has passed when the scheduler
first looks at it is shown, not run (unless someone triggers it); one already under way runs at
once, its past instants passing immediately. Registered by plugins/campaign_plugin.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from include.calendar.instants import local_text


class CampaignTimetable(Timetable):
    """One run at ``starts`` covering [starts, ends)."""

    periodic = False
    run_ordering = ("logical_date",)

    def __init__(self, starts: dt.datetime, ends: dt.datetime, campaign_id: str = "") -> None:
        self.starts = pendulum.instance(starts).in_timezone("UTC")
        self.ends = pendulum.instance(ends).in_timezone("UTC")
        self.campaign_id = campaign_id
        self.description = (
            f"战役 {campaign_id}：{local_text(self.starts)} 开始，{local_text(self.ends, end=True)} 结束（仅运行一次）"
        )

    @property
    def summary(self) -> str:
        return f"战役 {local_text(self.starts)} 至 {local_text(self.ends, end=True)}"

    def serialize(self) -> dict[str, Any]:
        return {"starts": self.starts.isoformat(), "ends": self.ends.isoformat(), "campaign_id": self.campaign_id}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(pendulum.parse(data["starts"]), pendulum.parse(data["ends"]), data.get("campaign_id", ""))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CampaignTimetable):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.starts, self.ends, self.campaign_id))

    def infer_manual_data_interval(self, *, run_after: dt.datetime) -> DataInterval:
        return DataInterval(self.starts, self.ends)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None and last_automated_data_interval.start >= self.starts:
            return None
        if restriction.latest is not None and self.starts > restriction.latest:
            return None
        if not restriction.catchup and self.ends <= pendulum.now("UTC"):
            return None
        return DagRunInfo(run_after=self.starts, data_interval=DataInterval(self.starts, self.ends))
