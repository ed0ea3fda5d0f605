"""Attacks on the door, replayed against the real app (findings 1, 2, 3 and 6 of the security issue).

The 24:00 closing of seed 000 ("12月31日24时关闭信息系统。") must hold whatever a request names.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from include.calendar.instants import parse_instant
from include.door.tokens import issue_token, verify_token
from include.paths import CONFIG_CAMPAIGNS, campaign_home
from include.store.db import session_scope
from include.store.models import AuditEntry, Report, Token
from include.web.app import create_app

from .conftest import JINAN, QINGDAO, serving

AFTER_CLOSE = "2021-02-01T10:00+08:00"  # a month after the system closed at 2020-12-31 24:00


def reports(engine) -> list[tuple[str, str, bool]]:
    with session_scope(engine) as session:
        return [(row.campaign_id, row.unit, row.late) for row in session.scalars(select(Report))]


def plant_calendar(door) -> dict:
    """A unit plants a calendar through the report door: seed 000's, with the system closing a year later."""
    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    planted = text.replace("2020-12-31T24:00+08:00", "2021-12-31T24:00+08:00")
    response = door.client.post(
        "/api/reports",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
        files={"file": ("planted.yaml", planted.encode(), "application/x-yaml")},
    )
    assert response.status_code == 201, response.text
    return response.json()


def guesses(reply: dict) -> list[str]:
    """Where the planted file is, as an attacker reads it from the reply, by every path trick."""
    home = campaign_home()
    sha = reply["file_sha256"]
    folder = f"reports/2020-shandong/{JINAN}/completion_report"
    stems = [f"v1-{sha[:12]}-planted", f"{sha[:16]}-planted"]
    found = [path.stem for path in (home / folder).glob("*planted*")]
    names = [*stems, *found]
    return [
        *(f"../{folder}/{name}" for name in names),
        *(str(home / folder / name) for name in names),
        *(f"..%2F{folder.replace('/', '%2F')}%2F{name}" for name in names),
    ]


def test_a_planted_calendar_named_as_the_campaign_is_never_read(door):
    reply = plant_calendar(door)
    door.clock.now = parse_instant(AFTER_CLOSE)
    for guess in guesses(reply):
        response = door.client.post(
            "/api/reports",
            headers=door.auth(QINGDAO),
            data={"campaign": guess, "unit": QINGDAO, "milestone": "completion_report"},
        )
        assert response.status_code in (404, 422), (guess, response.text)
        body = response.text
        assert str(campaign_home()) not in body and "reports/" not in body and "Traceback" not in body
        status = door.client.get(f"/api/campaigns/{guess}/status", headers=door.auth("province"))
        assert status.status_code in (404, 422), guess
    assert reports(door.engine) == [("2020-shandong", JINAN, False)]  # only the planting report itself
    # The real campaign's door is closed a month after 24:00 whatever was planted.
    real = door.client.post(
        "/api/reports",
        headers=door.auth(QINGDAO),
        data={"campaign": "2020-shandong", "unit": QINGDAO, "milestone": "completion_report"},
    )
    assert real.status_code == 409 and real.json()["error"] == "closed"


def test_a_calendar_file_whose_id_is_not_its_name_is_not_the_campaign(door):
    folder = campaign_home() / "campaigns"
    folder.mkdir(parents=True, exist_ok=True)
    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    (folder / "shandong-copy.yaml").write_text(text.replace("2020-12-31T24:00", "2021-12-31T24:00"), encoding="utf-8")
    door.clock.now = parse_instant(AFTER_CLOSE)
    response = door.client.post(
        "/api/reports",
        headers=door.auth(),
        data={"campaign": "shandong-copy", "unit": JINAN, "milestone": "completion_report"},
    )
    assert response.status_code == 500 and response.json()["error"] == "invalid_calendar"
    assert reports(door.engine) == []


def test_an_invalid_calendar_is_a_plain_500_without_its_problems_or_paths(door):
    folder = campaign_home() / "campaigns"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken-2020.yaml").write_text("id: broken-2020\nphases: [1, 2\n", encoding="utf-8")
    response = door.client.get("/api/campaigns/broken-2020/status", headers=door.auth("province"))
    assert response.status_code == 500
    assert response.json() == {
        "error": "invalid_calendar",
        "message": "该战役的日历配置有误，暂时无法办理。请联系运维人员。",
    }


@pytest.mark.parametrize("length", [65, 300, 10_000])
def test_over_long_ids_are_422_not_500_and_not_echoed(door, length):
    response = door.client.post(
        "/api/reports",
        headers=door.auth(),
        data={"campaign": "a" * length, "unit": JINAN, "milestone": "completion_report"},
    )
    assert response.status_code == 422 and len(response.text) < 400
    status = door.client.get(f"/api/campaigns/{'a' * length}/status", headers=door.auth())
    assert status.status_code in (404, 422) and len(status.text) < 400


@pytest.mark.integration
def test_uploads_need_a_token_before_the_body_is_read(served):
    """300 MB announced without a token: the answer 401 comes before the client has sent 1 MB."""
    _door, port = served
    boundary = "campaignboundary"
    head = (
        f"POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    ).encode()
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'.encode()
        + b"\0" * (64 * 1024)
    )
    status, sent = _send_until_answered(port, head, part, 1024 * 1024)
    assert status == 401, status
    assert sent <= 1024 * 1024
    assert not any((campaign_home() / "uploads").glob("*/*")) if (campaign_home() / "uploads").exists() else True


@pytest.mark.integration
def test_an_announced_body_over_the_limit_is_413_before_it_is_read(served):
    door, port = served
    head = (
        "POST /api/workbooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Authorization: Bearer {door.tokens[JINAN]}\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n"
    ).encode()
    status, sent = _send_until_answered(port, head, b"--b\r\n" + b"\0" * 65536, 1024 * 1024)
    assert status == 413 and sent <= 1024 * 1024


@pytest.mark.integration
def test_a_streamed_body_is_cut_off_at_the_limit_and_nothing_is_kept(served, monkeypatch):
    """Chunked, without a Content-Length: the bytes are counted as they come; past the limit, 413 and no file."""
    door, port = served
    monkeypatch.setenv("CAMPAIGN_MAX_REPORT_BYTES", str(1024 * 1024))
    boundary = "b0undary"
    head = (
        "POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nAuthorization: Bearer {door.tokens[JINAN]}\r\n\r\n"
    ).encode()
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("campaign", "2020-shandong"), ("unit", JINAN), ("milestone", "completion_report"))
    )
    start = (
        fields.encode()
        + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'.encode()
    )

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    body = chunk(start) + b"".join(chunk(b"x" * 65536) for _ in range(40))  # 2.5 MB
    status, _ = _send_until_answered(port, head, body, len(body))
    assert status == 413
    kept = [path for path in (campaign_home() / "uploads").rglob("*") if path.is_file()]
    assert kept == [] and reports(door.engine) == []


def _send_until_answered(port: int, head: bytes, body: bytes, most: int) -> tuple[int | None, int]:
    """Send the head, then the body in 16 KB pieces while no answer has come; the status and the bytes sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    sock.sendall(head)
    sent, answer = 0, b""
    sock.setblocking(False)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline and b"\r\n" not in answer:
            try:
                answer += sock.recv(4096)
                continue
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            if sent < min(most, len(body)):
                try:
                    sent += sock.send(body[sent : sent + 16 * 1024])
                except (BlockingIOError, ConnectionError):
                    time.sleep(0.01)
            else:
                time.sleep(0.01)
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return (int(match.group(1)) if match else None), sent


def test_a_read_token_reads_but_cannot_submit_or_upload(door):
    read = {"Authorization": f"Bearer {door.read_token}"}
    response = door.client.post(
        "/api/reports",
        headers=read,
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
    )
    assert response.status_code == 403 and response.json()["error"] == "read_only"
    upload = door.client.post(
        "/api/workbooks",
        headers=read,
        data={"campaign": "2020-shandong", "unit": JINAN},
        files={"file": ("a.xlsx", b"x")},
    )
    assert upload.status_code == 403
    status = door.client.get(f"/api/campaigns/2020-shandong/units/{JINAN}/status", headers=read)
    assert status.status_code == 200
    assert reports(door.engine) == []


def test_tokens_expire_and_are_scoped_to_their_campaign(door):
    at = parse_instant("2020-11-01T00:00+08:00")
    _, short = issue_token(door.engine, JINAN, at, expires_at=parse_instant("2020-11-15T00:00+08:00"))
    expired = door.client.get("/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {short}"})
    assert expired.status_code == 401 and "已过期" in expired.json()["message"]
    _, shanxi = issue_token(door.engine, "140100", at, campaign_id="2017-shanxi")
    other = door.client.get("/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {shanxi}"})
    assert other.status_code == 403 and other.json()["error"] == "out_of_scope"
    own = door.client.get("/api/campaigns/2017-shanxi/status", headers={"Authorization": f"Bearer {shanxi}"})
    assert own.status_code == 200


def test_a_progress_link_is_exchanged_for_a_session_cookie_and_leaves_the_address(door):
    first = door.client.get(f"/progress/2020-shandong?token={door.read_token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/progress/2020-shandong"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and door.read_token not in cookie
    page = door.client.get("/progress/2020-shandong")
    assert page.status_code == 200 and "济南市" in page.text and door.read_token not in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    door.client.cookies.clear()
    assert door.client.get("/progress/2020-shandong").status_code == 401
    forged = door.client.get("/progress/2020-shandong", cookies={"campaign_session": "1.99999999999.deadbeef"})
    assert forged.status_code == 401


def test_a_page_session_survives_airflows_own_authorization_header(door):
    """Airflow's api-server, in a local run (simple auth manager, every visitor an admin), adds its own
    ``Authorization: Bearer <its JWT>`` to every request it serves, ours included (SimpleAllAdminMiddleware):
    `make start`'s pages then answered every link with 401. A bearer that is not one of our tokens is not ours
    to read; the page goes by the session cookie."""
    first = door.client.get(f"/progress/2020-shandong?token={door.read_token}", follow_redirects=False)
    assert first.status_code == 303
    airflow_jwt = "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"
    page = door.client.get("/progress/2020-shandong", headers={"Authorization": f"Bearer {airflow_jwt}"})
    assert page.status_code == 200 and "济南市" in page.text
    api = door.client.get("/api/campaigns/2020-shandong/status", headers={"Authorization": f"Bearer {airflow_jwt}"})
    assert api.status_code == 401  # the API takes our tokens only; a page session is no key to it


def test_the_campaign_list_needs_a_token_and_the_api_docs_are_off_outside_a_local_run(door, monkeypatch):
    assert door.client.get("/progress/").status_code == 401
    monkeypatch.delenv("CAMPAIGN_LOCAL_RUN")
    monkeypatch.setenv("CAMPAIGN_TOKEN_PEPPER", "a-production-pepper-of-enough-length-0123456789")
    from fastapi.testclient import TestClient

    production = TestClient(create_app(clock=door.clock, database_url=door.url))
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert production.get(path).status_code == 404, path


def test_a_missing_pepper_stops_start_up_outside_a_local_run(monkeypatch, run_cli):
    from include.door.keys import TokenConfigError

    monkeypatch.delenv("CAMPAIGN_LOCAL_RUN")
    monkeypatch.delenv("CAMPAIGN_TOKEN_PEPPER", raising=False)
    with pytest.raises(TokenConfigError, match="CAMPAIGN_TOKEN_PEPPER"):
        create_app()


def test_the_mounted_app_checks_the_key_when_loaded_and_builds_itself_at_the_first_request(door, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from include.door.keys import TokenConfigError
    from include.web.mount import CampaignApp

    monkeypatch.delenv("CAMPAIGN_LOCAL_RUN")
    monkeypatch.delenv("CAMPAIGN_TOKEN_PEPPER", raising=False)
    with pytest.raises(TokenConfigError, match="CAMPAIGN_TOKEN_PEPPER"):
        CampaignApp()  # as the plugin is loaded, before any request
    monkeypatch.setenv("CAMPAIGN_LOCAL_RUN", "1")  # the door's tokens were hashed with the local key
    mounted = CampaignApp(build=lambda: create_app(clock=door.clock, database_url=door.url))
    server = FastAPI()
    server.mount("/campaign", mounted)  # as Airflow's api-server mounts a plugin's app
    assert not mounted.built
    client = TestClient(server)
    assert client.get("/campaign/progress/").status_code == 401  # the real app's answer: no token
    assert mounted.built
    listed = client.get("/campaign/api/campaigns/2020-shandong/status", headers=door.auth())
    assert listed.status_code == 200, listed.text


def test_two_peppers_during_a_rotation_and_tokens_rehashed(door, monkeypatch):
    monkeypatch.setenv("CAMPAIGN_TOKEN_PEPPER", "old-pepper-0123456789abcdef")
    at = parse_instant("2020-11-01T00:00+08:00")
    token_id, plain = issue_token(door.engine, JINAN, at)
    monkeypatch.setenv("CAMPAIGN_TOKEN_PEPPER", "new-pepper-0123456789abcdef")
    assert verify_token(door.engine, plain, at) is None  # the new key alone does not know it
    monkeypatch.setenv("CAMPAIGN_TOKEN_PEPPER_PREVIOUS", "old-pepper-0123456789abcdef")
    assert verify_token(door.engine, plain, at).token_id == token_id
    monkeypatch.delenv("CAMPAIGN_TOKEN_PEPPER_PREVIOUS")
    assert verify_token(door.engine, plain, at).token_id == token_id  # re-hashed with the new key on use
    with session_scope(door.engine) as session:
        assert session.get(Token, token_id).kind == "submit"


@pytest.mark.parametrize("name", ["..", ".", "a\x00b.pdf", "x" * 300 + ".pdf"])
def test_file_names_that_cannot_be_files_are_422(door, name):
    boundary = "nameboundary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in (("campaign", "2020-shandong"), ("unit", JINAN), ("milestone", "completion_report"))
    ).encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\nreport\r\n'.encode()
    body += f"--{boundary}--\r\n".encode()
    response = door.client.post(
        "/api/reports",
        headers={**door.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert response.status_code == 422 and response.json()["error"] == "bad_file_name"
    assert reports(door.engine) == []


def test_ten_thousand_characters_in_unit_or_milestone_are_422_on_every_store(door):
    for field in ("unit", "milestone"):
        data = {"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report", field: "9" * 10_000}
        response = door.client.post("/api/reports", headers=door.auth("province"), data=data)
        assert response.status_code == 422 and len(response.text) < 400, field
    with session_scope(door.engine) as session:
        assert all(len(row.detail) <= 1000 for row in session.scalars(select(AuditEntry)))


def test_the_cli_takes_a_long_unit_without_a_database_error(run_cli, tmp_path: Path):
    code, _, err = run_cli(
        "report", "submit", "--campaign", "2020-shandong", "--unit", "9" * 10_000,
        "--milestone", "completion_report", "--at", "2020-11-20T10:00+08:00",
    )  # fmt: skip
    assert code == 2 and "没有单位" in err and len(err) < 400


@pytest.mark.airflow
def test_a_calendar_file_named_otherwise_never_replaces_a_campaign_dag(tmp_path, monkeypatch):
    """A copy of 2020-shandong with the closing a year later, saved as another name: its DAG would have replaced the
    real campaign's (same dag_id); it is an error DAG instead, and the real campaign's closing stands."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    home = tmp_path / "elsewhere"
    (home / "campaigns").mkdir(parents=True)
    text = (CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8")
    (home / "campaigns" / "zz-later.yaml").write_text(text.replace("2020-12-31T24:00", "2021-12-31T24:00"), "utf-8")
    monkeypatch.setenv("CAMPAIGN_HOME", str(home))
    bag = DagBag(str(ROOT / "dags"))
    assert "calendar-error-zz-later" in bag.dag_ids
    assert "编号“2020-shandong”与文件名“zz-later”不一致" in bag.dags["calendar-error-zz-later"].doc_md
    close = bag.dags["2020-shandong"].get_task("system_close")
    assert str(close.target_time) == "2020-12-31T16:00:00+00:00"  # 12月31日24时, Beijing time


def test_the_cli_names_campaigns_by_id_not_by_path(run_cli, tmp_path):
    planted = tmp_path / "planted.yaml"
    planted.write_text((CONFIG_CAMPAIGNS / "2020-shandong.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = run_cli(
        "report", "submit", "--campaign", str(planted), "--unit", JINAN, "--milestone", "completion_report",
        "--at", AFTER_CLOSE,
    )  # fmt: skip
    assert code == 2 and "找不到日历" in err


@pytest.mark.integration
def test_a_server_reads_at_most_its_number_of_workbooks_at_once(door, monkeypatch):
    """One workbook is being read (the only slot); the next is told to come back, with nothing kept. A slow body
    holds no slot: the slot is taken only once the file is on disk and the request checked."""
    monkeypatch.setenv("CAMPAIGN_MAX_CONCURRENT_INGESTS", "1")
    app = create_app(clock=door.clock, database_url=door.url)
    reading, release = threading.Event(), threading.Event()

    def slow_ingest(*args, **kwargs):
        reading.set()
        release.wait(20)
        raise RuntimeError("held")

    monkeypatch.setattr("include.door.ingest.ingest", slow_ingest)
    for unit in (JINAN, QINGDAO):
        door.client.post(
            "/api/reports",
            headers=door.auth(unit),
            data={"campaign": "2020-shandong", "unit": unit, "milestone": "completion_report"},
        )
    with serving(app) as port:

        def upload(unit: str) -> httpx.Response:
            return httpx.post(
                f"http://127.0.0.1:{port}/api/workbooks",
                headers=door.auth(unit),
                data={"campaign": "2020-shandong", "unit": unit},
                files={"file": (f"{unit}附件1.xlsx", b"PK", "application/octet-stream")},
                timeout=30,
            )

        first = threading.Thread(target=upload, args=(JINAN,))
        first.start()
        assert reading.wait(10)
        second = upload(QINGDAO)
        release.set()
        first.join(30)
    assert second.status_code == 503 and second.headers["retry-after"] == "60"
    assert "请 1 分钟后重试" in second.json()["message"]
    assert not [path for path in (campaign_home() / "uploads").rglob("*") if path.is_file()]


def test_a_workbook_past_the_memory_budget_is_refused_unread(door, monkeypatch, tmp_path):
    """A workbook within the 100 MB upload limit whose sheets unpack past what the memory budget allows."""
    import zipfile

    monkeypatch.setenv("CAMPAIGN_UPLOAD_MEMORY_BYTES", str(5 * 1024 * 1024))  # 1 MB unpacked at 4.9x
    bomb = tmp_path / "济南市附件1.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        noise = random.Random(2020).randbytes(1_500_000).hex()  # compresses 2:1, no ratio alarm
        archive.writestr("xl/worksheets/sheet1.xml", f"<sheetData><row><c><v>{noise}</v></c></row></sheetData>")
    assert bomb.stat().st_size < 2 * 1024 * 1024  # far inside the 100 MB upload limit
    door.client.post(
        "/api/reports",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
    )
    response = door.client.post(
        "/api/workbooks",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN},
        files={"file": (bomb.name, bomb.read_bytes(), "application/octet-stream")},
    )
    assert response.status_code == 422 and response.json()["error"] == "zip_bomb"
    assert "内存预算" in response.json()["message"]


def test_a_token_that_can_submit_is_not_taken_from_an_address(door):
    """A link is forwarded and logged: only a read token may ride in one; a submit or office token is refused."""
    for unit in (JINAN, "province"):
        page = door.client.get(f"/progress/2020-shandong?token={door.tokens[unit]}", follow_redirects=False)
        assert page.status_code == 403 and "只读链接" in page.text and "set-cookie" not in page.headers


@pytest.mark.integration
def test_the_access_log_keeps_no_token(served, caplog):
    door, port = served
    with caplog.at_level("INFO", logger="uvicorn.access"):
        for name in ("token", "%74oken", "tok%65n", "TOKEN"):
            httpx.get(f"http://127.0.0.1:{port}/progress/2020-shandong?{name}={door.read_token}", timeout=10)
    logged = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert logged and all(door.read_token not in line for line in logged)


def test_a_body_cut_off_before_its_end_is_not_a_report(door):
    boundary = "cutboundary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in (("campaign", "2020-shandong"), ("unit", JINAN), ("milestone", "completion_report"))
    ).encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.pdf"\r\n\r\nhalf a rep'.encode()
    response = door.client.post(
        "/api/reports",
        headers={**door.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert response.status_code == 400 and response.json()["error"] == "incomplete"
    assert reports(door.engine) == []


@pytest.mark.parametrize(
    "cookie", ["1.9999999999.é", "1.2.3.4", "x" * 5000, "99999999999999999999.9999999999.00"], ids=str.__len__
)
def test_odd_session_cookies_are_401_not_500(door, cookie):
    header = {"cookie": f"campaign_session={cookie}".encode()}  # as sent, bytes that are not ASCII included
    assert door.client.get("/progress/2020-shandong", headers=header).status_code == 401
    assert door.client.get("/progress/", headers=header).status_code == 401


def test_an_over_long_boundary_is_refused_not_500(door):
    boundary = "b" * 300
    response = door.client.post(
        "/api/reports",
        headers={**door.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=f"--{boundary}\r\n".encode(),
    )
    assert 400 <= response.status_code < 500


@pytest.mark.integration
def test_a_slow_body_is_cut_off(served, monkeypatch):
    """Slowloris: the headers, then nothing. The server answers 408 instead of waiting for ever."""
    monkeypatch.setattr("include.web.upload.IDLE_SECONDS", 1.0)
    door, port = served
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            "POST /api/workbooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Authorization: Bearer {door.tokens[JINAN]}\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
        ).encode()
    )
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.integration
def test_one_token_holds_at_most_four_uploads_at_once(served):
    door, port = served
    slow = []
    for _ in range(4):  # a unit's token: four slow bodies at once, no fifth
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            (
                "POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                f"Authorization: Bearer {door.tokens[JINAN]}\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
            ).encode()
        )
        slow.append(sock)
    time.sleep(0.5)
    third = httpx.post(
        f"http://127.0.0.1:{port}/api/reports",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
        timeout=10,
    )
    other = httpx.post(
        f"http://127.0.0.1:{port}/api/reports",
        headers=door.auth(QINGDAO),
        data={"campaign": "2020-shandong", "unit": QINGDAO, "milestone": "completion_report"},
        timeout=10,
    )
    for sock in slow:
        sock.close()
    assert third.status_code == 429 and other.status_code == 201


def _template(tmp_path: Path) -> Path:
    from include.calendar.registry import load_campaign
    from include.forms.spec import get_form
    from include.forms.template import build_template

    path = tmp_path / "济南市附件1.xlsx"
    build_template(
        get_form("2020-1"), campaign_id="2020-shandong", campaign_name=load_campaign("2020-shandong").name
    ).save(path)
    return path


def _rewritten(source: Path, target: Path, change) -> Path:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info.filename))
            if data is not None:
                new.writestr(info.filename, data)
        for extra in change("", None) or []:
            new.writestr(*extra)
    return target


def _upload(door, path: Path):
    door.client.post(
        "/api/reports",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
    )
    return door.client.post(
        "/api/workbooks",
        headers=door.auth(),
        data={"campaign": "2020-shandong", "unit": JINAN},
        files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
    )


def test_a_workbook_of_many_empty_parts_is_refused_before_its_directory_is_read(door, tmp_path):
    """The template plus thousands of empty parts: no unpacked size to speak of, but a directory that costs memory
    and minutes to read (a million parts took 2.4 GB and 44 s)."""
    many = [(f"xl/empty/{n}.bin", b"") for n in range(1500)]
    bomb = _rewritten(_template(tmp_path), tmp_path / "济南市附件1-多.xlsx", lambda name, data: data if name else many)
    response = _upload(door, bomb)
    assert response.status_code == 422 and response.json()["error"] == "zip_bomb"
    assert "组成部分过多" in response.json()["message"]


@pytest.mark.parametrize("part", ["xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"])
def test_a_workbook_whose_parts_are_not_xml_is_refused_and_audited_not_500(door, tmp_path, part):
    broken = _rewritten(
        _template(tmp_path), tmp_path / "济南市附件1-坏.xlsx", lambda name, data: b"<not xml" if name == part else data
    )
    response = _upload(door, broken)
    assert response.status_code == 422, response.text
    with session_scope(door.engine) as session:
        actions = [row.action for row in session.scalars(select(AuditEntry))]
    assert "ingest_refused" in actions


def test_an_archive_two_readers_would_see_differently_is_refused(door, tmp_path):
    """A zip64 end record carrying the true directory after a classic one that lies: Python's zipfile (the checks)
    and the cell reader would read different archives. A workbook never needs zip64, nor two parts of one name."""
    import struct
    import zipfile

    source = _template(tmp_path)
    padded = tmp_path / "济南市附件1-z64.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(padded, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        for n in range(1200):
            new.writestr(zipfile.ZipInfo(f"p/{n:x}"), b"")
    data = padded.read_bytes()
    end = data.rfind(b"PK\x05\x06")
    sig, _, _, _, total, size, offset, _ = struct.unpack("<IHHHHIIH", data[end : end + 22])
    record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, total, total, size, offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, end, 1)
    lying = struct.pack("<IHHHHIIH", sig, 0, 0, 5, 5, 1000, offset, 0)
    padded.write_bytes(data[:end] + record + locator + lying)
    response = _upload(door, padded)
    assert response.status_code == 422 and response.json()["error"] in ("bad_zip", "zip_bomb"), response.text

    twice = tmp_path / "济南市附件1-重名.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(twice, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info, old.read(info))
        with pytest.warns(UserWarning):
            new.writestr("xl/workbook.xml", old.read("xl/workbook.xml"))
    response = _upload(door, twice)
    assert response.status_code == 422 and "重名" in response.json()["message"]


@pytest.mark.integration
def test_an_early_refusal_closes_the_connection_of_a_body_still_coming(served):
    """No token, a body trickling in: the 401 is sent and the connection closed, so the client holds nothing."""
    _door, port = served
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 1000000\r\n\r\n--b\r\n"
    )
    answer = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        piece = sock.recv(4096)
        if not piece:
            break
        answer += piece
    sock.close()
    assert answer.startswith(b"HTTP/1.1 401") and b"connection: close" in answer.lower()
    assert time.monotonic() < deadline, "the server kept the connection open"
