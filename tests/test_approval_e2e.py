"""Shanxi 2017 on a real Airflow: the province approves each city's entry in Airflow's HITL API.

Seed 002: "在完成信息采集工作后，以市为单位提交《数据录入申请书》（附件1），申请开放数据录入（包括脱贫标注等）功能。"
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pendulum
import pytest

from include.calendar import read_calendar
from include.local_airflow import airflow_env, free_port, get_json, standalone, wait_for
from include.status import campaign_status
from include.store.db import make_engine, upgrade
from include.submissions import Actor, submit_report

TAIYUAN, DATONG, LVLIANG = "140100", "140200", "141100"


@pytest.mark.airflow_e2e
def test_province_approves_cities_through_airflow_hitl(tmp_path):
    env = airflow_env(tmp_path, free_port())
    start = pendulum.now("UTC").add(seconds=100).replace(microsecond=0)
    out = Path(env["CAMPAIGN_HOME"]) / "campaigns" / "hitl-shanxi.yaml"
    subprocess.run(
        [
            "campaign",
            "calendar",
            "compress",
            "2017-shanxi",
            "--start",
            start.isoformat(),
            "--span",
            "3m",
            "--id",
            "hitl-shanxi",
            "--out",
            str(out),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    calendar = read_calendar(out)
    engine = make_engine(upgrade(f"sqlite:///{Path(env['CAMPAIGN_HOME']) / 'campaign.db'}"))
    window = calendar.entry_windows[0]
    # Every city but 吕梁 reports and applies soon after the entry window's opening.
    for milestone, offset in (("completion_report", 2), ("entry_application", 4)):
        for unit in calendar.unit_list[:-1]:
            submit_report(
                engine,
                calendar,
                unit=unit.code,
                milestone_id=milestone,
                at=window.opens.add(seconds=offset),
                actor=Actor("test"),
            )

    with standalone(env, tmp_path / "standalone.log") as base:
        api = f"{base}/api/v2/dags/hitl-shanxi"
        run = wait_for(
            lambda: (get_json(f"{api}/dagRuns")["dag_runs"] or [None])[0], 300, "the run", tmp_path / "standalone.log"
        )
        run_api = f"{api}/dagRuns/{run['dag_run_id']}"

        def asked():
            details = get_json(f"{run_api}/hitlDetails", limit=100)["hitl_details"]
            return details if len(details) == 10 else None

        details = wait_for(asked, 400, "ten approval requests (吕梁 never applied)", tmp_path / "standalone.log")
        assert {detail["subject"] for detail in details} >= {
            "批准太原市开通数据录入功能？",
            "批准大同市开通数据录入功能？",
        }
        for detail in details:
            ti = detail["task_instance"]
            choice = "Reject" if detail["subject"] == "批准大同市开通数据录入功能？" else "Approve"
            response = httpx.patch(
                f"{run_api}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails",
                json={"chosen_options": [choice], "params_input": {}},
                timeout=10,
            )
            assert response.status_code == 200, response.text

        def decided():
            status = campaign_status(engine, calendar, pendulum.now("UTC"))
            states = {unit["unit"]: unit["entry_window"]["state"] for unit in status["units"]}
            return states if sum(state == "open" for state in states.values()) == 9 else None

        states = wait_for(decided, 180, "the nine approved cities' windows to open")
        assert states[DATONG] == "not_open"  # rejected
        assert states[LVLIANG] == "not_open"  # never applied
        assert sorted(code for code, state in states.items() if state == "open") == sorted(
            unit.code for unit in calendar.unit_list[:-1] if unit.code != DATONG
        )
        labels = {
            ti["rendered_map_index"]
            for ti in get_json(f"{run_api}/taskInstances", limit=500)["task_instances"]
            if ti["task_id"] == "entry.approve_entry"
        }
        assert {"太原市 · 已批准", "大同市 · 已驳回"} <= labels
    engine.dispose()
