"""A task that finishes at one instant of the calendar and records that the campaign passed it.

It defers to the triggerer until the instant (no worker slot is held for weeks) and, once the
instant has passed, writes it to the campaign store. Rerunning it records nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync


class CalendarInstantSensor(DateTimeSensorAsync):
    """Wait for ``due`` (an aware instant), then record ``key`` of ``campaign_id`` in the store."""

    ui_color = "#e8f1fb"

    def __init__(self, *, campaign_id: str, key: str, kind: str, due: dt.datetime, label: str, **kwargs: Any) -> None:
        self.due_at = pendulum.instance(due).in_timezone("UTC")  # ours: the sensor's own _moment is private
        super().__init__(target_time=self.due_at.isoformat(), **kwargs)
        self.campaign_id = campaign_id
        self.instant_key = key
        self.kind = kind
        self.instant_label = label

    def execute(self, context: Any) -> None:
        if pendulum.now("UTC") >= self.due_at:
            self.execute_complete(context)
            return
        super().execute(context)

    def _act(self, engine: Any, calendar: Any) -> None:
        """What the campaign does at this instant besides recording it: open or close entry windows."""
        from include.door.windows import close_windows, open_ready_windows

        if self.kind not in ("window_open", "window_close"):
            return
        window_id = self.instant_key.split(".")[1]
        act = open_ready_windows if self.kind == "window_open" else close_windows
        units = act(engine, calendar, window_id, self.due_at, "campaign-dag")
        self.log.info("%s：%d 个单位（%s）", self.instant_label, len(units), "、".join(units) or "无")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        from include.calendar.instants import local_text
        from include.calendar.registry import load_campaign
        from include.store.db import make_engine
        from include.store.events import record_event

        calendar = load_campaign(self.campaign_id)
        engine = make_engine()
        try:
            self._act(engine, calendar)
            recorded = record_event(
                engine,
                calendar,
                key=self.instant_key,
                kind=self.kind,
                due_at=self.due_at,
                recorded_at=pendulum.now("UTC"),
                run_id=context["run_id"] if context else None,
            )
        finally:
            engine.dispose()
        note = "已记录" if recorded else "此前已记录，未重复写入"
        self.log.info("%s（%s）：%s", self.instant_label, local_text(self.due_at), note)
