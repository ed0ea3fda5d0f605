"""The HTTP API (FastAPI app of the plugin), with its tokens, on a real SQLite store.

The app's clock is fixed at seed 000's instants: "11月30日24时前" and "12月31日24时关闭信息系统。"
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from include.calendar.instants import parse_instant
from include.door.tokens import issue_token, revoke_tokens
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry, Report
from include.web.app import create_app
from tests.conftest import Clock

JINAN, QINGDAO = "370100", "370200"


@pytest.fixture
def world(tmp_path):
    url = upgrade(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}")
    engine = make_engine(url)
    at = parse_instant("2020-11-01T00:00+08:00")
    tokens = {unit: issue_token(engine, unit, at)[1] for unit in (JINAN, QINGDAO, "province")}
    clock = Clock("2020-11-20T10:00+08:00")
    client = TestClient(create_app(clock=clock, database_url=url))
    yield client, tokens, clock, engine
    engine.dispose()


def post(client, token, unit, milestone="completion_report", content=b"report", campaign="2020-shandong"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/api/reports",
        headers=headers,
        data={"campaign": campaign, "unit": unit, "milestone": milestone},
        files={"file": ("工作报告.pdf", content, "application/pdf")},
    )


def audit_actions(engine):
    with session_scope(engine) as session:
        return [(row.action, row.unit, row.on_behalf) for row in session.scalars(select(AuditEntry))]


def test_unit_submits_its_own_report(world):
    client, tokens, _, _ = world
    response = post(client, tokens[JINAN], JINAN)
    assert response.status_code == 201
    body = response.json()
    assert (body["outcome"], body["version"], body["on_behalf"]) == ("on_time", 1, False)
    assert body["received_at"] == "2020-11-20T10:00:00+08:00"
    assert body["windows_opened"] == ["entry"]
    again = post(client, tokens[JINAN], JINAN)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"


def test_another_units_token_is_refused_403_and_audited(world):
    client, tokens, _, engine = world
    response = post(client, tokens[QINGDAO], JINAN)
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "此凭证只能为单位 370200 及其下级单位报送，不能代济南市报送" in body["message"]
    assert ("refused", JINAN, True) in audit_actions(engine)  # an attempt to act for another unit
    with session_scope(engine) as session:
        assert session.scalars(select(Report)).first() is None


def test_missing_unknown_and_revoked_tokens_are_refused_401(world):
    client, tokens, _, engine = world
    assert post(client, None, JINAN).status_code == 401
    unknown = post(client, "cmp_not-a-token", JINAN)
    assert unknown.status_code == 401 and "令牌无效、已过期、已吊销" in unknown.json()["message"]
    revoke_tokens(engine, parse_instant("2020-11-20T09:00+08:00"), unit=JINAN)
    assert post(client, tokens[JINAN], JINAN).status_code == 401


def test_province_token_submits_on_behalf(world):
    client, tokens, _, engine = world
    response = post(client, tokens["province"], QINGDAO)
    assert response.status_code == 201 and response.json()["on_behalf"] is True
    assert ("accepted", QINGDAO, True) in audit_actions(engine)


def test_late_then_refused_at_the_exact_closing_instant(world):
    client, tokens, clock, engine = world
    clock.now = parse_instant("2020-12-31T23:59:59.999+08:00")
    late = post(client, tokens[JINAN], JINAN)
    assert late.status_code == 201 and late.json()["outcome"] == "late"
    clock.now = parse_instant("2021-01-01T00:00:00+08:00")
    refused = post(client, tokens[QINGDAO], QINGDAO)
    assert refused.status_code == 409
    assert refused.json()["error"] == "closed"
    assert "截止报送（信息系统已关闭），本次报送未被接受，未作任何更改" in refused.json()["message"]
    with session_scope(engine) as session:
        assert [row.unit for row in session.scalars(select(Report))] == [JINAN]


def test_status_reads_respect_the_token(world):
    client, tokens, _, _ = world
    post(client, tokens[JINAN], JINAN)
    everyone = client.get(
        "/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {tokens['province']}"}
    )
    assert everyone.status_code == 200 and len(everyone.json()["units"]) == 16 + 136  # the cities and their counties
    own = client.get("/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {tokens[QINGDAO]}"})
    units = own.json()["units"]
    assert units[0]["unit"] == QINGDAO and len(units) == 1 + 10  # 青岛市 and its 10 districts and cities
    assert {unit["parent"] for unit in units[1:]} == {QINGDAO}
    jinan = client.get(
        f"/api/campaigns/2020-shandong/units/{JINAN}/status", headers={"Authorization": f"Bearer {tokens[JINAN]}"}
    )
    assert next(item for item in jinan.json()["milestones"] if item["id"] == "completion_report")["state"] == "on_time"
    assert jinan.json()["entry_window"]["state"] == "open"
    other = client.get(
        f"/api/campaigns/2020-shandong/units/{JINAN}/status", headers={"Authorization": f"Bearer {tokens[QINGDAO]}"}
    )
    assert other.status_code == 403 and other.json()["message"] == "此令牌只能查看单位 370200 及其下级单位的状态。"
    missing = client.get("/api/campaigns/2019-nowhere/status", headers={"Authorization": f"Bearer {tokens[JINAN]}"})
    assert missing.status_code == 404 and "没有战役“2019-nowhere”" in missing.json()["message"]


LIXIA, SHIZHONG, LAOSHAN = "370102", "370103", "370212"  # 济南市's 历下区 and 市中区, 青岛市's 崂山区


def test_a_countys_token_reads_and_acts_for_that_county_only(world):
    """Issue 15: "A county's token acts for that county only; a city's token sees its counties and may act for them
    (recorded as on behalf)". Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作"."""
    client, _, _, engine = world
    lixia = issue_token(engine, LIXIA, parse_instant("2020-11-01T00:00+08:00"))[1]

    def get(path: str, token: str):
        return client.get(f"/api/campaigns/2020-shandong{path}", headers={"Authorization": f"Bearer {token}"})

    own = get("/status", lixia).json()["units"]
    assert [unit["unit"] for unit in own] == [LIXIA]
    assert get(f"/units/{LIXIA}/status", lixia).status_code == 200
    for other in (SHIZHONG, LAOSHAN, JINAN):  # its city's other county, another city's county, its own city
        refused = get(f"/units/{other}/status", lixia)
        assert refused.status_code == 403 and "只能查看单位 370102 及其下级单位" in refused.json()["message"]
    declared = client.post(
        "/api/reports",
        headers={"Authorization": f"Bearer {lixia}"},
        data={"campaign": "2020-shandong", "unit": LIXIA, "milestone": "entry_done"},
    )  # a declaration carries no file
    assert declared.status_code == 201 and declared.json()["on_behalf"] is False
    refused = client.post(
        "/api/reports",
        headers={"Authorization": f"Bearer {lixia}"},
        data={"campaign": "2020-shandong", "unit": SHIZHONG, "milestone": "entry_done"},
    )
    assert refused.status_code == 403 and "不能代市中区报送" in refused.json()["message"]


def test_a_citys_token_sees_exactly_its_counties_and_declares_for_them_on_behalf(world, run_cli):
    client, tokens, _, engine = world
    code, out, _ = run_cli("units", "--campaign", "2020-shandong", "--under", JINAN, "--level", "county", "--json")
    counties = {unit["code"] for unit in json.loads(out)}
    assert code == 0 and len(counties) == 12
    seen = client.get("/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {tokens[JINAN]}"})
    units = seen.json()["units"]
    assert {unit["unit"] for unit in units} == counties | {JINAN}
    rates = [rate for rate in seen.json()["rates"] if rate["milestone"] == "entry_done"]
    assert [rate["office"] for rate in rates] == [JINAN]  # no rate of the province or of another city
    response = client.post(
        "/api/reports",
        headers={"Authorization": f"Bearer {tokens[JINAN]}"},
        data={"campaign": "2020-shandong", "unit": SHIZHONG, "milestone": "entry_done"},
    )
    assert response.status_code == 201 and response.json()["on_behalf"] is True
    with session_scope(engine) as session:
        report = session.scalars(select(Report).where(Report.unit == SHIZHONG)).one()
        assert (report.kind, report.on_behalf, report.file_name) == ("declaration", True, None)
    assert ("accepted", SHIZHONG, True) in audit_actions(engine)
    assert (
        client.get(
            f"/api/campaigns/2020-shandong/units/{LAOSHAN}/status", headers={"Authorization": f"Bearer {tokens[JINAN]}"}
        ).status_code
        == 403
    )
    refused = post(client, tokens[JINAN], LAOSHAN, milestone="entry_done")
    assert refused.status_code == 403


def test_a_token_for_another_campaigns_office_code_gets_nothing(world):
    """2023-zibo-jixia's office is 370305, a county code (临淄区): a unit token for that code, issued without a
    campaign, is no key to the street's villages."""
    client, _, _, engine = world
    token = issue_token(engine, "370305", parse_instant("2020-11-01T00:00+08:00"))[1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/campaigns/2023-zibo-jixia/status", headers=headers).status_code == 403
    assert client.get("/api/campaigns/2023-zibo-jixia/units/JX01/status", headers=headers).status_code == 403
    refused = post(client, token, "JX01", milestone="entry_done", campaign="2023-zibo-jixia")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    page = client.get("/progress/2023-zibo-jixia", headers=headers)
    assert page.status_code == 403 and "不是本战役的单位" in page.text


def test_a_unit_that_owes_nothing_is_404_not_500(world):
    client, tokens, _, _ = world
    headers = {"Authorization": f"Bearer {tokens['province']}"}
    response = client.get("/api/campaigns/2017-shanxi/units/140105/status", headers=headers)  # 太原市小店区
    assert response.status_code == 404 and response.json()["error"] == "nothing_owed"
