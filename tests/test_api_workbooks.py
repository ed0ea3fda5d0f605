"""Workbook uploads and template downloads through the HTTP API: the same door as `campaign ingest`.

Seed 000: entry is "11月11日至11月30日"; 济南市's window opens with its completion report.
"""

from __future__ import annotations

import io

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from include.calendar.instants import parse_instant
from include.door.tokens import issue_token
from include.forms import records
from include.forms.template import MARKER_SHEET
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry
from include.web.app import create_app
from tests.test_api import Clock

JINAN, QINGDAO = "370100", "370200"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def world(tmp_path, run_cli):
    code, _, err = run_cli(
        "synth", "--campaign", "2020-shandong", "--households", "20", "--seed", "3", "--out", tmp_path / "synth",
        "--units", JINAN,
    )  # fmt: skip
    assert code == 0, err
    url = upgrade()
    engine = make_engine(url)
    at = parse_instant("2020-11-01T00:00+08:00")
    tokens = {unit: issue_token(engine, unit, at)[1] for unit in (JINAN, QINGDAO, "province")}
    clock = Clock("2020-11-20T10:00+08:00")
    client = TestClient(create_app(clock=clock, database_url=url))
    workbook = (tmp_path / "synth" / f"2020-shandong-2020-1-{JINAN}.xlsx").read_bytes()
    yield client, tokens, workbook
    engine.dispose()


def upload(client, token, content, unit=JINAN, name="济南市附件1.xlsx"):
    return client.post(
        "/api/workbooks",
        headers={"Authorization": f"Bearer {token}"},
        data={"campaign": "2020-shandong", "unit": unit},
        files={"file": (name, content, XLSX)},
    )


def open_window(client, token):
    response = client.post(
        "/api/reports",
        headers={"Authorization": f"Bearer {token}"},
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
    )
    assert response.status_code == 201, response.text


def test_upload_before_the_window_opens_is_409_and_stores_nothing(world):
    client, tokens, workbook = world
    response = upload(client, tokens[JINAN], workbook)
    assert response.status_code == 409
    assert response.json()["error"] == "window_closed"
    assert "录入窗口" in response.json()["message"]
    assert records.current_version("2020-shandong", "2020-1", JINAN) is None


def test_unit_uploads_its_workbook_and_the_same_file_again_changes_nothing(world):
    client, tokens, workbook = world
    open_window(client, tokens[JINAN])
    response = upload(client, tokens[JINAN], workbook)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["file"], body["form"], body["unit"], body["status"]) == ("济南市附件1.xlsx", "2020-1", JINAN, "stored")
    assert body["accepted_by_sheet"]["户"] == 20
    again = upload(client, tokens[JINAN], workbook)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"


def test_another_units_token_cannot_upload(world):
    client, tokens, workbook = world
    open_window(client, tokens[JINAN])
    response = upload(client, tokens[QINGDAO], workbook)
    assert response.status_code == 403
    assert records.current_version("2020-shandong", "2020-1", JINAN) is None


def test_a_refused_workbook_is_422_with_its_message(world):
    client, tokens, workbook = world
    open_window(client, tokens[JINAN])
    wb = openpyxl.load_workbook(io.BytesIO(workbook))
    wb["户"]["AB3"] = "=1+1"
    buffer = io.BytesIO()
    wb.save(buffer)
    response = upload(client, tokens["province"], buffer.getvalue())
    assert response.status_code == 422
    assert response.json()["error"] == "formula"
    assert "AB3 单元格含有公式" in response.json()["message"]


def test_over_the_size_limit_is_413(world, monkeypatch):
    client, tokens, workbook = world
    open_window(client, tokens[JINAN])
    monkeypatch.setenv("CAMPAIGN_MAX_UPLOAD_BYTES", "5000")
    response = upload(client, tokens[JINAN], workbook)
    assert response.status_code == 413
    assert "上传上限" in response.json()["message"]


def test_template_download(world):
    client, tokens, _ = world
    response = client.get(
        "/api/campaigns/2020-shandong/forms/2020-1/template", headers={"Authorization": f"Bearer {tokens[JINAN]}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    assert wb["家庭成员"]["E1"].value == "A4 居民身份证(残疾人证)号码"
    assert wb[MARKER_SHEET]["B1"].value == "2020-1"
    missing = client.get(
        "/api/campaigns/2020-shandong/forms/2017-2/template", headers={"Authorization": f"Bearer {tokens[JINAN]}"}
    )
    assert missing.status_code == 404


def test_a_county_uploads_its_own_workbook_in_its_citys_window(world, tmp_path, run_cli):
    """Seed 000: "县、乡扶贫部门完成全部数据录入". 历下区 uploads its own households with its own token, in 济南市's
    entry window; 济南市's token may upload for it (on behalf); 青岛市's may not, nor may 历下区's for 市中区."""
    client, tokens, _ = world
    code, _, err = run_cli("synth", "--campaign", "2020-shandong", "--households", "12", "--seed", "4",
                           "--out", tmp_path / "lixia", "--units", "370102")  # fmt: skip
    assert code == 0, err
    own = (tmp_path / "lixia" / "2020-shandong-2020-1-370102.xlsx").read_bytes()
    engine = make_engine(upgrade())
    lixia = issue_token(engine, "370102", parse_instant("2020-11-01T00:00+08:00"))[1]
    engine.dispose()
    assert upload(client, lixia, own, unit="370102").status_code == 409, "the window opens with 济南市's report"
    open_window(client, tokens[JINAN])
    response = upload(client, lixia, own, unit="370102", name="历下区附件1.xlsx")
    assert response.status_code == 201, response.text
    assert response.json()["unit"] == "370102" and response.json()["households"] == 12
    assert records.current_version("2020-shandong", "2020-1", "370102") is not None
    assert upload(client, tokens[JINAN], own, unit="370102").status_code in (200, 201)  # on behalf: the same bytes
    engine = make_engine(upgrade())
    with session_scope(engine) as session:
        entries = session.execute(
            select(AuditEntry.actor, AuditEntry.on_behalf).where(
                AuditEntry.action == "ingest", AuditEntry.unit == "370102"
            )
        ).all()
    engine.dispose()
    assert [behalf for _, behalf in entries] == [False, True], "济南市's upload for 历下区 is audited as on behalf"
    assert upload(client, tokens[QINGDAO], own, unit="370102").status_code == 403  # not 青岛市's county
    assert upload(client, lixia, own, unit="370103").status_code == 403  # 市中区 is not 历下区's
