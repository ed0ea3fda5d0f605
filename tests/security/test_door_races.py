"""Races at the door (finding 5): two app instances on one store, and PostgreSQL where the race is its own.

Seed 002 (Shanxi 2017) opens a city's entry window only once its 数据录入申请书 is in and the province approves.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.door.submissions import Actor, submit_report
from include.door.windows import record_approval
from include.store.db import make_engine, session_scope, upgrade
from include.store.models import AuditEntry, Report, WindowState

from .conftest import JINAN, Door

TAIYUAN = "140100"
SHANXI = load_campaign("2017-shanxi")


def test_the_same_report_sent_at_once_by_two_app_instances_keeps_its_file(door, tmp_path):
    """Two api-server workers (two apps on one store) and the command line take the same file at the same moment,
    eight times over (each worker takes at most two uploads of one token at once)."""
    other = Door(door.url)
    calendar = load_campaign("2020-shandong")
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def send(client) -> None:
        barrier.wait()
        response = client.post(
            "/api/reports",
            headers=door.auth(),
            data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
            files={"file": ("工作报告.pdf", b"the same bytes", "application/pdf")},
        )
        answers.append(response.status_code)

    def cli() -> None:
        barrier.wait()
        done = submit_report(
            door.engine, calendar, unit=JINAN, milestone_id="completion_report", at=door.clock(),
            actor=Actor("cli:clerk"), file_name="工作报告.pdf", content=b"the same bytes",
        )  # fmt: skip
        answers.append(200 if done.outcome == "duplicate" else 201)

    clients = [door.client, other.client] * 2
    threads = [threading.Thread(target=send, args=(client,)) for client in clients]
    threads += [threading.Thread(target=cli) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [200] * 7 + [201]
    with session_scope(door.engine) as session:
        rows = list(session.scalars(select(Report)))
    assert [row.version for row in rows] == [1]
    assert all(Path(row.file_path).read_bytes() == b"the same bytes" for row in rows)
    leftovers = [path.name for path in Path(rows[0].file_path).parent.iterdir() if path.name.endswith(".part")]
    assert leftovers == []
    other.engine.dispose()


def _postgres_url() -> str:
    url = os.environ.get("CAMPAIGN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CAMPAIGN_TEST_POSTGRES_URL is not set (scripts/test sets it when PostgreSQL answers)")
    return url


@pytest.fixture
def postgres():
    url = _postgres_url()
    engine = make_engine(upgrade(url))
    with engine.begin() as connection:
        for table in ("reports", "approvals", "window_states", "audit_log"):
            connection.execute(text(f"DELETE FROM {table} WHERE campaign_id = :c"), {"c": SHANXI.id})
    yield engine
    engine.dispose()


@pytest.mark.integration
def test_an_application_and_its_approval_committing_together_open_the_window_on_postgresql(postgres):
    """Write skew: each transaction looks for the other's row before either has committed. The commits are held
    at a barrier so that they land together; a window left shut here stays shut for good."""
    barrier = threading.Barrier(2, timeout=3)

    def hold(session: Session) -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass  # the other transaction waits on the unit's lock: it cannot reach its commit before ours

    at = parse_instant("2017-11-10T10:00+08:00")
    submit_report(postgres, SHANXI, unit=TAIYUAN, milestone_id="completion_report", at=at, actor=Actor("test", TAIYUAN))
    event.listen(Session, "before_commit", hold)
    errors: list[BaseException] = []

    def application() -> None:
        try:
            submit_report(
                postgres, SHANXI, unit=TAIYUAN, milestone_id="entry_application", at=at, actor=Actor("test", TAIYUAN)
            )
        except BaseException as exc:
            errors.append(exc)

    def approval() -> None:
        try:
            record_approval(postgres, SHANXI, "entry", TAIYUAN, approved=True, by="airflow:省扶贫办张处长", at=at)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=application), threading.Thread(target=approval)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(Session, "before_commit", hold)
    assert errors == []
    with session_scope(postgres) as session:
        opened = session.scalars(
            select(WindowState.unit).where(WindowState.campaign_id == SHANXI.id, WindowState.window == "entry")
        ).all()
    assert opened == [TAIYUAN]


def test_sending_the_application_again_repairs_a_window_left_shut(tmp_path):
    engine = make_engine(upgrade(f"sqlite:///{tmp_path / 'store.db'}"))
    at = parse_instant("2017-11-10T10:00+08:00")
    for milestone in ("completion_report", "entry_application"):
        submit_report(engine, SHANXI, unit=TAIYUAN, milestone_id=milestone, at=at, actor=Actor("test", TAIYUAN))
    record_approval(engine, SHANXI, "entry", TAIYUAN, approved=True, by="airflow:省扶贫办", at=at)
    with session_scope(engine) as session:  # as a lost race would have left it
        session.query(WindowState).delete()
    again = submit_report(
        engine, SHANXI, unit=TAIYUAN, milestone_id="entry_application", at=at, actor=Actor("test", TAIYUAN)
    )
    assert again.outcome == "duplicate" and again.windows_opened == ("entry",)
    engine.dispose()


def test_a_later_decision_replaces_a_wrong_rejection_and_both_are_audited(tmp_path):
    engine = make_engine(upgrade(f"sqlite:///{tmp_path / 'store.db'}"))
    at = parse_instant("2017-11-10T10:00+08:00")
    for milestone in ("completion_report", "entry_application"):
        submit_report(engine, SHANXI, unit=TAIYUAN, milestone_id=milestone, at=at, actor=Actor("test", TAIYUAN))
    assert record_approval(engine, SHANXI, "entry", TAIYUAN, approved=False, by="airflow:李科员", at=at) is False
    later = parse_instant("2017-11-10T15:00+08:00")
    assert record_approval(engine, SHANXI, "entry", TAIYUAN, approved=True, by="airflow:张处长", at=later) is True
    with session_scope(engine) as session:
        details = [row.detail for row in session.scalars(select(AuditEntry).where(AuditEntry.unit == TAIYUAN))]
    assert any(detail.startswith("省级审批：驳回开通") for detail in details)
    assert any("改为批准开通" in detail and "取代此前的已驳回（李科员）" in detail for detail in details)
    engine.dispose()


def test_ten_different_reports_of_one_unit_at_once_each_get_an_answer_and_leave_no_stray_file(door):
    """On SQLite (a local run) the writers take turns: each report is kept as a version, or answered 503 with
    nothing kept; never a 500, never a file no version points to."""
    barrier = threading.Barrier(10)
    answers: list[int] = []

    def send(n: int) -> None:
        barrier.wait()
        response = door.client.post(
            "/api/reports",
            headers=door.auth(),
            data={"campaign": "2020-shandong", "unit": JINAN, "milestone": "completion_report"},
            files={"file": (f"第{n}版.pdf", f"version {n}".encode(), "application/pdf")},
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(set(answers)) <= [201, 503] and len(answers) == 10
    with session_scope(door.engine) as session:
        rows = list(session.scalars(select(Report)))
        busy = session.scalars(select(AuditEntry).where(AuditEntry.detail.like("[busy]%"))).all()
    assert len(rows) == answers.count(201) and len(busy) == answers.count(503)
    kept = {Path(row.file_path).name for row in rows}
    on_disk = {path.name for path in Path(rows[0].file_path).parent.iterdir()}
    assert on_disk == kept


def test_the_cli_puts_a_wrong_rejection_right(run_cli):
    """Seed 002: "以市为单位提交《数据录入申请书》…申请开放数据录入"; a city rejected by mistake is approved later."""
    for milestone in ("completion_report", "entry_application"):
        code, _, err = run_cli(
            "report", "submit", "--campaign", "2017-shanxi", "--unit", TAIYUAN, "--milestone", milestone,
            "--at", "2017-11-10T10:00+08:00",
        )  # fmt: skip
        assert code == 0, err
    code, _, err = run_cli(
        "approve", "--campaign", "2017-shanxi", "--unit", TAIYUAN, "--reject", "--by", "李科员",
        "--at", "2017-11-10T11:00+08:00",
    )  # fmt: skip
    assert code != 0 and "驳回须写明原因" in err  # a unit is never rejected without being told why
    code, out, _ = run_cli(
        "approve", "--campaign", "2017-shanxi", "--unit", TAIYUAN, "--reject", "--by", "李科员",
        "--reason", "申请书未加盖公章", "--at", "2017-11-10T11:00+08:00",
    )  # fmt: skip
    assert code == 0 and "驳回太原市" in out and "申请书未加盖公章" in out and "已开放" not in out
    code, out, _ = run_cli("status", "--campaign", "2017-shanxi", "--at", "2017-11-10T12:00+08:00", "--json")
    rejected = next(unit for unit in __import__("json").loads(out)["units"] if unit["unit"] == TAIYUAN)
    assert rejected["entry_window"]["approval"] == {
        "state": "rejected", "by": "李科员", "at": "2017-11-10T11:00:00+08:00", "reason": "申请书未加盖公章",
    }  # fmt: skip
    code, out, _ = run_cli(
        "approve", "--campaign", "2017-shanxi", "--unit", TAIYUAN, "--approve", "--by", "张处长",
        "--at", "2017-11-10T15:00+08:00",
    )  # fmt: skip
    assert code == 0 and "批准太原市" in out and "录入窗口已开放" in out
    code, out, _ = run_cli("status", "--campaign", "2017-shanxi", "--at", "2017-11-10T16:00+08:00", "--json")
    taiyuan = next(unit for unit in __import__("json").loads(out)["units"] if unit["unit"] == TAIYUAN)
    assert taiyuan["entry_window"]["state"] == "open"


def test_the_same_bytes_under_two_names_at_once_leave_no_stray_file(door):
    """Two clerks send the same report under their own file names at the same moment, five times over: one
    version, and on disk exactly the files that versions point to."""
    calendar = load_campaign("2020-shandong")
    for round_ in range(5):
        barrier = threading.Barrier(2)

        def send(name: str, content: bytes = f"round {round_}".encode(), barrier=barrier) -> None:
            barrier.wait()
            submit_report(
                door.engine, calendar, unit=JINAN, milestone_id="completion_report", at=door.clock(),
                actor=Actor("cli:clerk"), file_name=name, content=content,
            )  # fmt: skip

        threads = [threading.Thread(target=send, args=(name,)) for name in ("工作报告.pdf", "报告（终稿）.pdf")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    with session_scope(door.engine) as session:
        rows = list(session.scalars(select(Report)))
    assert len(rows) == 5
    folder = Path(rows[0].file_path).parent
    assert sorted(path.name for path in folder.iterdir()) == sorted(Path(row.file_path).name for row in rows)
