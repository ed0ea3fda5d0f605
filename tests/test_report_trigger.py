"""``ReportTrigger`` as Airflow's triggerer uses it: serialized into the metadata DB, rebuilt from its class
path and keyword arguments, then run until it yields its one event (as Airflow tests its own triggers)."""

from __future__ import annotations

import asyncio
import importlib
import threading

import pendulum
import pytest

from include.calendar.registry import load_campaign
from include.door.submissions import Actor, submit_report
from include.orchestration.gates import ReportTrigger
from include.store.db import make_engine, upgrade

pytestmark = pytest.mark.airflow

CAMPAIGN, JINAN, MILESTONE = "2020-shandong", "370100", "completion_report"
ON_TIME = pendulum.parse("2020-11-12T10:00:00+08:00")  # seed 000: 济南市 sends its report before 11-15


def trigger(url: str, gives_up_in: float, poll: float = 0.1) -> ReportTrigger:
    gives_up_at = pendulum.now("UTC").add(seconds=gives_up_in).isoformat()
    return ReportTrigger(url, CAMPAIGN, JINAN, MILESTONE, gives_up_at, poll)


def rebuilt(original: ReportTrigger) -> ReportTrigger:
    """What the triggerer does with a row of its table: import the class path, call it with the kwargs."""
    path, kwargs = original.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


def first_event(running: ReportTrigger, timeout: float = 20) -> dict:
    async def first() -> dict:
        async for event in running.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


def send_report(url: str) -> None:
    engine = make_engine(url)
    submit_report(
        engine, load_campaign(CAMPAIGN), unit=JINAN, milestone_id=MILESTONE, at=ON_TIME, actor=Actor(name="济南市")
    )
    engine.dispose()


def test_a_serialized_trigger_is_rebuilt_as_it_was():
    original = trigger("sqlite:////tmp/store.db", 60)
    path, kwargs = original.serialize()
    assert path == "include.orchestration.gates.ReportTrigger"  # its own module (the old path: test_moved_paths.py)
    assert rebuilt(original).serialize() == (path, kwargs)


def test_a_report_in_the_store_fires_with_the_time_it_came_in():
    url = upgrade()
    send_report(url)
    assert first_event(rebuilt(trigger(url, 60))) == {"received_at": ON_TIME.in_tz("UTC").isoformat()}


def test_a_report_that_comes_in_while_it_waits_fires_it():
    url = upgrade()
    later = threading.Timer(0.5, send_report, args=(url,))
    later.start()
    try:
        assert first_event(rebuilt(trigger(url, 30))) == {"received_at": ON_TIME.in_tz("UTC").isoformat()}
    finally:
        later.join()


def test_no_report_by_the_time_the_door_closes_fires_empty():
    url = upgrade()
    assert first_event(rebuilt(trigger(url, 0.3))) == {"received_at": None}


def test_a_trigger_over_a_citys_counties_fires_when_all_are_in_or_at_the_closing_with_those_that_are():
    """Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入": 济南市's gate waits for 历下区 and 市中区 here."""
    url = upgrade()
    counties = ["370102", "370103"]
    gives_up_at = pendulum.now("UTC").add(seconds=0.5).isoformat()
    waiting = ReportTrigger(url, CAMPAIGN, JINAN, "entry_done", gives_up_at, 0.1, units=counties)
    assert rebuilt(waiting).serialize() == waiting.serialize() and waiting.serialize()[1]["units"] == counties
    engine = make_engine(url)
    declare = {"milestone_id": "entry_done", "at": ON_TIME, "actor": Actor(name="济南市", unit=JINAN)}
    submit_report(engine, load_campaign(CAMPAIGN), unit="370102", **declare)
    assert first_event(rebuilt(waiting)) == {"received": {"370102": ON_TIME.in_tz("UTC").isoformat()}}
    submit_report(engine, load_campaign(CAMPAIGN), unit="370103", **declare)  # on behalf of its county
    engine.dispose()
    later = pendulum.now("UTC").add(seconds=60).isoformat()
    every = ReportTrigger(url, CAMPAIGN, JINAN, "entry_done", later, 0.1, units=counties)
    assert first_event(rebuilt(every)) == {"received": dict.fromkeys(counties, ON_TIME.in_tz("UTC").isoformat())}
