"""Airflow's UI shows Beijing time unless its user chose another zone (issue 17: the Required Actions page
showed the approval requests in UTC). Airflow 3 keeps the UI's zone in the browser's localStorage; the api-server's
root middleware sets it on the UI's pages where none was chosen."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.testclient import TestClient

from include.web.ui_timezone import KEY, SCRIPT, ZONE, BeijingTimeByDefault

PAGE = (
    '<!doctype html><html><head><base href="/" /><title>Airflow</title></head><body><div id="root"></div></body></html>'
)


def served() -> TestClient:
    app = FastAPI()

    @app.get("/dags/{dag_id}/required_actions")
    def page(dag_id: str) -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/api/v2/dags")
    def api() -> JSONResponse:
        return JSONResponse({"dags": []})

    @app.get("/campaign/progress/")
    def ours() -> HTMLResponse:
        return HTMLResponse(PAGE)

    app.add_middleware(BeijingTimeByDefault)
    return TestClient(app)


def test_the_uis_pages_choose_beijing_time_where_the_user_chose_none():
    client = served()
    page = client.get("/dags/sim-2017-shanxi/required_actions")
    assert page.status_code == 200
    assert page.text.count(SCRIPT.decode()) == 1 and page.text.index(SCRIPT.decode()) < page.text.index("</head>")
    assert int(page.headers["content-length"]) == len(page.content)
    script = SCRIPT.decode()
    assert f"if(!localStorage.getItem({json.dumps(KEY)}))" in script  # a user's own choice stands
    assert json.dumps(json.dumps(ZONE)) in script  # stored as the UI stores it: JSON


def test_apis_and_the_campaigns_own_pages_are_left_as_they_are():
    client = served()
    assert client.get("/api/v2/dags").json() == {"dags": []}
    assert client.get("/campaign/progress/").text == PAGE


def test_airflows_ui_keeps_its_zone_under_that_key_as_json():
    # The key and the format are the UI's own (its useLocalStorage("timezone")): read in the UI that ships with
    # the Airflow installed here, so that an upgrade that renames them fails this test.
    spec = importlib.util.find_spec("airflow")
    bundle = "".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in (Path(spec.origin).parent / "ui" / "dist" / "assets").glob("index-*.js")
    )
    assert f"=`{KEY}`," in bundle or f'="{KEY}",' in bundle
    assert "Intl.DateTimeFormat().resolvedOptions()" in bundle  # without a choice: the browser's zone
    assert "JSON.parse" in bundle and "window.localStorage.getItem" in bundle
