"""Gates on units' reports, one mapped task instance per unit, named after the unit.

A gate finishes when the unit's report for its milestone is in the campaign store: green and labelled
"按时" or "逾期" in the grid. Until then it is deferred (purple), polling the store from the triggerer,
so no worker slot is held. When the door of the milestone closes without a report, the gate fails
(red) as "未报送". For a milestone the units below owe (seed 000: the counties' data entry), each unit's
gate waits for all of its own (a city's counties) and its label counts them ("济南市 · 12/12 县区已完成 ·
逾期 1"); it fails when the door closes with some missing ("济南市 · 10/12 县区已完成 · 未完成 2").
The province's approval of an entry window is a human-in-the-loop task per unit that first waits for the
unit's application, then asks the province.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.calendar.instants import local_text

GATE_LABEL = "{{ gate_label | default(task.unit_names[task.unit]) }}"
# A trigger fires no sooner than this after it starts. Airflow 3.3.2's scheduler may process the exit of the task
# process that deferred after a fast trigger has already put the task back to run; it then takes the resumed task
# for killed externally and runs it twice ("not in a state where it could be marked as running", a try-number
# mismatch). A report is judged by the time it was received, never by when the gate finishes, so waiting costs
# nothing but seconds.
SETTLE_SECONDS = 10.0


@functools.cache
def _engine(database_url: str) -> Any:
    """One engine per store and process: a triggerer polls for many gates every few seconds."""
    from include.store.db import make_engine

    return make_engine(database_url)


def _received_by(
    database_url: str, campaign: str, units: list[str], milestone: str, at: dt.datetime
) -> dict[str, dt.datetime]:
    from include.door.submissions import first_received_by

    found = first_received_by(_engine(database_url), campaign, units, milestone)
    return {unit: received for unit, received in found.items() if received <= at}


def _received_at(database_url: str, campaign: str, unit: str, milestone: str, at: dt.datetime) -> dt.datetime | None:
    from include.door.submissions import first_received

    received = first_received(_engine(database_url), campaign, unit, milestone)
    return received if received is not None and received <= at else None


class ReportTrigger(BaseTrigger):
    """Fires when the unit's report is in the store, or when ``gives_up_at`` passes without one; given ``units``
    (a city's counties), when all of theirs are in, or at ``gives_up_at`` with those that are."""

    def __init__(
        self,
        database_url: str,
        campaign: str,
        unit: str,
        milestone: str,
        gives_up_at: str,
        poll_seconds: float,
        units: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.database_url = database_url
        self.campaign = campaign
        self.unit = unit
        self.milestone = milestone
        self.gives_up_at = gives_up_at
        self.poll_seconds = poll_seconds
        self.units = units

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
                **({"units": self.units} if self.units is not None else {}),
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        async for event in self._events():
            await asyncio.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - started)))
            yield event
            return

    async def _events(self) -> AsyncIterator[TriggerEvent]:
        gives_up_at = pendulum.parse(self.gives_up_at)
        while True:
            now = pendulum.now("UTC")
            if self.units is not None:
                found = await asyncio.to_thread(
                    _received_by, self.database_url, self.campaign, self.units, self.milestone, now
                )
                if len(found) == len(self.units) or now >= gives_up_at:
                    yield TriggerEvent({"received": {unit: at.isoformat() for unit, at in found.items()}})
                    return
                await asyncio.sleep(min(self.poll_seconds, max(0.1, (gives_up_at - now).total_seconds())))
                continue
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
    """Waits for one unit's report for one milestone (map it over the units with ``unit``); given ``below`` (each
    unit's units that owe the milestone, with their names in ``unit_names`` and their level's word in ``word``),
    for all of the unit's own."""

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
        below: dict[str, list[str]] | None = None,
        word: str = "",
        verified: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.verified = verified  # a gate on data: the stage whose list the unit verifies
        self.campaign_id = campaign_id
        self.milestone = milestone
        self.unit = unit
        self.unit_names = unit_names
        self.below = below
        self.word = word
        self.due_at = pendulum.instance(due).in_timezone("UTC").isoformat()
        self.gives_up_at = pendulum.instance(gives_up_at).in_timezone("UTC").isoformat()
        self.poll = poll

    def execute(self, context: Any) -> str | None:
        from include.store.db import database_url

        url = database_url()
        now = pendulum.now("UTC")
        if self.below is not None:
            units = self.below[self.unit]
            found = _received_by(url, self.campaign_id, units, self.milestone, now)
            if len(found) == len(units) or now >= pendulum.parse(self.gives_up_at):
                return self._finish_below(context, found)
            self.defer(
                trigger=ReportTrigger(
                    url, self.campaign_id, self.unit, self.milestone, self.gives_up_at, self.poll, units=units
                ),
                method_name="report_in",
            )
            return None
        received = _received_at(url, self.campaign_id, self.unit, self.milestone, now)
        if received is not None or now >= pendulum.parse(self.gives_up_at):
            return self._finish(context, received)
        self.defer(
            trigger=ReportTrigger(url, self.campaign_id, self.unit, self.milestone, self.gives_up_at, self.poll),
            method_name="report_in",
        )
        return None

    def report_in(self, context: Any, event: dict[str, Any]) -> str:
        if "received" in event:
            return self._finish_below(context, {unit: pendulum.parse(at) for unit, at in event["received"].items()})
        received = event.get("received_at")
        return self._finish(context, pendulum.parse(received) if received else None)

    def _verified(self) -> str:
        """ " · 已核查 212/240" for a gate on data (the unit's answered problems of its list), else ""."""
        if not self.verified:
            return ""
        from include.calendar.registry import load_campaign
        from include.rules.results import verification_counts
        from include.store.db import database_url

        answered, total = verification_counts(
            _engine(database_url()), load_campaign(self.campaign_id), self.unit, self.verified
        )
        return f" · 已核查 {answered}/{total}"

    def _finish(self, context: Any, received: dt.datetime | None) -> str:
        name, counted = self.unit_names[self.unit], self._verified()
        due = pendulum.parse(self.due_at)
        if received is None:
            from airflow.sdk.exceptions import AirflowFailException

            context["gate_label"] = f"{name}{counted} · {'未完成' if self.verified else '未报送'}"
            closes, until = local_text(pendulum.parse(self.gives_up_at), end=True), local_text(due, end=True)
            raise AirflowFailException(  # the door has closed: a retry would find the same
                f"{name}的问题清单未在 {closes} 前核查完毕（{counted.removeprefix(' · ')}，截止 {until}）"
                if self.verified
                else f"{name}未在 {closes} 前报送“{self.milestone}”（截止 {until}）"
            )
        late = received >= due
        context["gate_label"] = f"{name}{counted} · {'逾期' if late else '按时'}"
        self.log.info("%s：%s 收到，%s", name, local_text(received), "逾期" if late else "按时")
        return "late" if late else "on_time"

    def _finish_below(self, context: Any, received: dict[str, dt.datetime]) -> str:
        name, units = self.unit_names[self.unit], self.below[self.unit] if self.below else []
        due = pendulum.parse(self.due_at)
        late = sum(at >= due for at in received.values())
        label = f"{name} · {len(received)}/{len(units)} {self.word}已完成" + (f" · 逾期 {late}" if late else "")
        missing = [unit for unit in units if unit not in received]
        if missing:
            context["gate_label"] = f"{label} · 未完成 {len(missing)}"
            listed = "、".join(self.unit_names.get(unit, unit) for unit in missing)
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{name}有 {len(missing)} 个{self.word}未在 {local_text(pendulum.parse(self.gives_up_at), end=True)} "
                f"前完成“{self.milestone}”（截止 {local_text(due, end=True)}）：{listed}"
            )
        context["gate_label"] = label
        self.log.info("%s：%s", name, label)
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


REASON = "reason"  # the HITL form's field for a rejection's reason


def _responder(user: Any) -> tuple[str, str | None]:
    """The identity and the name of who answered, as Airflow hands them over (a mapping of id and name)."""
    if isinstance(user, dict):
        user_id, name = user.get("id"), user.get("name")
    else:
        user_id, name = getattr(user, "id", None), getattr(user, "name", None)
    if user_id is None and name is None:
        return "airflow:unknown", None
    return f"airflow:{user_id if user_id is not None else name}", (str(name) if name is not None else None)


class ProvinceApproval(ApprovalOperator):
    """The province approves one unit's application to open an entry window (HITL, per unit).

    It first waits (deferred) for the unit's application report, then asks in the Airflow UI
    ("Required Actions") or by Airflow's HITL API, until the window closes. Three outcomes, three records in the
    campaign store (include/door/windows.py): approved (the window opens when everything else it needs is in),
    rejected with the officer's reason (the form's ``reason`` field, told to the unit), and timed out (超时未审批:
    nobody answered before the window closed; the task fails, and is never asked again). A retry after the window
    has closed or after a decision asks nobody.
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
        from airflow.sdk import Param

        kwargs.setdefault(
            "params",
            {
                REASON: Param(
                    None,
                    type=["null", "string"],
                    title="驳回原因",
                    description="驳回时填写：原因会告知该单位，并记入审计日志。批准时不必填写。",
                    maxLength=500,
                )
            },
        )
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
        now = pendulum.now("UTC")
        if self._answered(context):
            return None
        if _received_at(url, self.campaign_id, self.unit, self.application, now) is None:
            if now >= pendulum.parse(self.gives_up_at):
                self._not_applied(context)
            self.defer(
                trigger=ReportTrigger(url, self.campaign_id, self.unit, self.application, self.gives_up_at, self.poll),
                method_name="application_in",
            )
        return self.ask(context)

    def application_in(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("received_at") is None:
            self._not_applied(context)
        return self.ask(context)

    def _not_applied(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        context["gate_label"] = f"{self.unit_names[self.unit]} · 未申请"
        raise AirflowFailException(f"{self.unit_names[self.unit]}未提交数据录入申请书，录入窗口未开通")

    def _answered(self, context: Any) -> bool:
        """Whether the province's answer is in the store already: a retry then asks nobody. A decision is the
        task's success, as when it came in; a timeout stays a failure."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.door.windows import APPROVAL_WORDS

        view = self._recorded(pendulum.now("UTC"))
        if view is None:
            return False
        name = self.unit_names[self.unit]
        context["gate_label"] = f"{name} · {APPROVAL_WORDS[view.state]}"
        if view.state == "timed_out":
            raise AirflowFailException(f"{name}的录入申请超时未审批（已记录），不再重新审批")
        self.log.info("%s：省级此前已%s（%s），不再重新询问", name, APPROVAL_WORDS[view.state], view.by)
        return True

    def _recorded(self, at: dt.datetime) -> Any:
        from include.calendar.registry import load_campaign
        from include.door.windows import approval_view
        from include.store.db import database_url, session_scope

        calendar = load_campaign(self.campaign_id)
        with session_scope(_engine(database_url())) as session:
            view = approval_view(session, calendar, calendar.window(self.window), self.unit, at)
        return view if view.state in ("approved", "rejected", "timed_out") else None

    def ask(self, context: Any) -> Any:
        name = self.unit_names[self.unit]
        closes = pendulum.parse(self.gives_up_at)
        remaining = (closes - pendulum.now("UTC")).total_seconds()
        if remaining <= 0:
            self._timed_out(context)
        until = local_text(closes, end=True)
        self.subject = f"批准{name}开通数据录入功能？"
        self.body = (
            f"{name}已提交《数据录入申请书》。批准后其录入窗口立即开放，至 {until}（北京时间）关闭。\n\n"
            f"驳回时请在“驳回原因”中写明原因，该单位会收到。{until} 前无人审批即记为“超时未审批”。"
        )
        # A plain timedelta: Airflow's task messages cannot carry pendulum's Interval.
        self.response_timeout = dt.timedelta(seconds=remaining)
        return super().execute(context)

    def _timed_out(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from include.calendar.registry import load_campaign
        from include.door.windows import record_timeout
        from include.store.db import database_url

        name = self.unit_names[self.unit]
        calendar = load_campaign(self.campaign_id)
        record_timeout(_engine(database_url()), calendar, self.window, self.unit, pendulum.now("UTC"))
        context["gate_label"] = f"{name} · 超时未审批"
        raise AirflowFailException(
            f"{name}的录入申请在 {local_text(pendulum.parse(self.gives_up_at), end=True)} 前无人审批（超时未审批）"
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from include.calendar.registry import load_campaign
        from include.door.windows import record_approval
        from include.store.db import database_url

        if event.get("error_type") == "timeout":
            self._timed_out(context)
        if "error" in event:
            return super().execute_complete(context, event)  # raises Airflow's own error
        chosen = (event.get("chosen_options") or [None])[0]
        approved = chosen == self.APPROVE
        responded_at = event.get("responded_at") or pendulum.now("UTC")
        if isinstance(responded_at, str):
            responded_at = pendulum.parse(responded_at)
        by, name = _responder(event.get("responded_by_user"))
        reason = (event.get("params_input") or {}).get(REASON)
        record_approval(
            _engine(database_url()),
            load_campaign(self.campaign_id),
            self.window,
            self.unit,
            approved=approved,
            by=by,
            name=name,
            reason=reason if isinstance(reason, str) else None,
            at=pendulum.instance(responded_at),
        )
        context["gate_label"] = f"{self.unit_names[self.unit]} · {'已批准' if approved else '已驳回'}"
        return super().execute_complete(context, event)
