"""Gates on units' reports, one mapped task instance per unit, named after the unit.

A gate finishes when the unit's report for its milestone is in the campaign store: green and labelled
"按时" or "逾期" in the grid. Until then it is deferred (purple), polling the store from the triggerer,
so no worker slot is held. When the door of the milestone closes without a report, the gate fails
(red) as "未报送". The province's approval of an entry window is a human-in-the-loop task per unit
that first waits for the unit's application, then asks the province.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

GATE_LABEL = "{{ gate_label | default(task.unit_names[task.unit]) }}"


@functools.cache
def _engine(database_url: str) -> Any:
    """One engine per store and process: a triggerer polls for many gates every few seconds."""
    from include.store.db import make_engine

    return make_engine(database_url)


def _received_at(database_url: str, campaign: str, unit: str, milestone: str, at: dt.datetime) -> dt.datetime | None:
    from include.door.submissions import first_received

    received = first_received(_engine(database_url), campaign, unit, milestone)
    return received if received is not None and received <= at else None


class ReportTrigger(BaseTrigger):
    """Fires when the unit's report is in the store, or when ``gives_up_at`` passes without one."""

    def __init__(
        self, database_url: str, campaign: str, unit: str, milestone: str, gives_up_at: str, poll_seconds: float
    ) -> None:
        super().__init__()
        self.database_url = database_url
        self.campaign = campaign
        self.unit = unit
        self.milestone = milestone
        self.gives_up_at = gives_up_at
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "database_url": self.database_url,
                "campaign": self.campaign,
                "unit": self.unit,
                "milestone": self.milestone,
                "gives_up_at": self.gives_up_at,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        gives_up_at = pendulum.parse(self.gives_up_at)
        while True:
            now = pendulum.now("UTC")
            received = await asyncio.to_thread(
                _received_at, self.database_url, self.campaign, self.unit, self.milestone, now
            )
            if received is not None:
                yield TriggerEvent({"received_at": received.isoformat()})
                return
            if now >= gives_up_at:
                yield TriggerEvent({"received_at": None})
                return
            await asyncio.sleep(min(self.poll_seconds, max(0.1, (gives_up_at - now).total_seconds())))


def poll_seconds(span: dt.timedelta) -> float:
    """How often a gate looks at the store: 1/2000 of the campaign, between 2 s and 5 min."""
    return min(300.0, max(2.0, span.total_seconds() / 2000))


class ReportGate(BaseOperator):
    """Waits for one unit's report for one milestone (map it over the units with ``unit``)."""

    ui_color = "#fff7e6"

    def __init__(
        self,
        *,
        campaign_id: str,
        milestone: str,
        unit: str,
        unit_names: dict[str, str],
        due: dt.datetime,
        gives_up_at: dt.datetime,
        poll: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.milestone = milestone
        self.unit = unit
        self.unit_names = unit_names
        self.due_at = pendulum.instance(due).in_timezone("UTC").isoformat()
        self.gives_up_at = pendulum.instance(gives_up_at).in_timezone("UTC").isoformat()
        self.poll = poll

    def execute(self, context: Any) -> str | None:
        from include.store.db import database_url

        url = database_url()
        now = pendulum.now("UTC")
        received = _received_at(url, self.campaign_id, self.unit, self.milestone, now)
        if received is not None or now >= pendulum.parse(self.gives_up_at):
            return self._finish(context, received)
        self.defer(
            trigger=ReportTrigger(url, self.campaign_id, self.unit, self.milestone, self.gives_up_at, self.poll),
            method_name="report_in",
        )
        return None

    def report_in(self, context: Any, event: dict[str, Any]) -> str:
        received = event.get("received_at")
        return self._finish(context, pendulum.parse(received) if received else None)

    def _finish(self, context: Any, received: dt.datetime | None) -> str:
        from include.calendar.instants import local_text

        name = self.unit_names[self.unit]
        due = pendulum.parse(self.due_at)
        if received is None:
            context["gate_label"] = f"{name} · 未报送"
            raise RuntimeError(
                f"{name}未在 {local_text(pendulum.parse(self.gives_up_at), end=True)} 前报送“{self.milestone}”"
                f"（截止 {local_text(due, end=True)}）"
            )
        late = received >= due
        context["gate_label"] = f"{name} · {'逾期' if late else '按时'}"
        self.log.info("%s：%s 收到，%s", name, local_text(received), "逾期" if late else "按时")
        return "late" if late else "on_time"


def province_approvers() -> list[dict[str, str]] | None:
    """The province officers who may answer an application, from ``CAMPAIGN_APPROVERS`` ("id:name,id:name", the id
    as the auth manager knows the user: the FAB auth manager's user id, shown by `airflow users list`). Airflow
    then lets only them answer; unset (a local run), anyone who may use the UI can."""
    listed = os.environ.get("CAMPAIGN_APPROVERS", "").strip()
    if not listed:
        return None
    approvers = []
    for item in listed.split(","):
        user_id, _, name = item.strip().partition(":")
        if user_id:
            approvers.append({"id": user_id.strip(), "name": (name or user_id).strip()})
    return approvers or None


class ProvinceApproval(ApprovalOperator):
    """The province approves one unit's application to open an entry window (HITL, per unit).

    It first waits (deferred) for the unit's application report, then asks in the Airflow UI
    ("Required Actions") or by Airflow's HITL API. The decision is written to the campaign store,
    which opens the unit's window when everything else it needs is in.
    """

    def __init__(
        self,
        *,
        campaign_id: str,
        window: str,
        application: str,
        unit: str,
        unit_names: dict[str, str],
        gives_up_at: dt.datetime,
        poll: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.campaign_id = campaign_id
        self.window = window
        self.application = application
        self.unit = unit
        self.unit_names = unit_names
        self.gives_up_at = pendulum.instance(gives_up_at).in_timezone("UTC").isoformat()
        self.poll = poll

    def execute(self, context: Any) -> Any:
        from include.store.db import database_url

        url = database_url()
        if _received_at(url, self.campaign_id, self.unit, self.application, pendulum.now("UTC")) is None:
            self.defer(
                trigger=ReportTrigger(url, self.campaign_id, self.unit, self.application, self.gives_up_at, self.poll),
                method_name="application_in",
            )
        return self.ask(context)

    def application_in(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("received_at") is None:
            context["gate_label"] = f"{self.unit_names[self.unit]} · 未申请"
            raise RuntimeError(f"{self.unit_names[self.unit]}未提交数据录入申请书，录入窗口未开通")
        return self.ask(context)

    def ask(self, context: Any) -> Any:
        name = self.unit_names[self.unit]
        self.subject = f"批准{name}开通数据录入功能？"
        self.body = f"{name}已提交《数据录入申请书》。批准后其录入窗口立即开放，至窗口关闭时间为止。"
        # A plain timedelta: Airflow's task messages cannot carry pendulum's Interval.
        remaining = (pendulum.parse(self.gives_up_at) - pendulum.now("UTC")).total_seconds()
        self.response_timeout = dt.timedelta(seconds=max(1.0, remaining))
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from include.calendar.registry import load_campaign
        from include.door.windows import record_approval
        from include.store.db import make_engine

        chosen = (event.get("chosen_options") or [None])[0]
        approved = chosen == self.APPROVE
        responded_at = event.get("responded_at") or pendulum.now("UTC")
        if isinstance(responded_at, str):
            responded_at = pendulum.parse(responded_at)
        calendar = load_campaign(self.campaign_id)
        engine = make_engine()
        try:
            record_approval(
                engine,
                calendar,
                self.window,
                self.unit,
                approved=approved,
                by=f"airflow:{event.get('responded_by_user') or 'unknown'}",
                at=pendulum.instance(responded_at),
            )
        finally:
            engine.dispose()
        context["gate_label"] = f"{self.unit_names[self.unit]} · {'已批准' if approved else '已驳回'}"
        return super().execute_complete(context, event)
