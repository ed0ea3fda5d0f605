"""The records store under races: a validation run while its unit re-uploads, old versions, the audit row.

The world is 2020-shandong's 济南市 (370100) and its 附件1 (seed 000): its entry window opens with its
completion report ("11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办"); the uploads are
`campaign synth` workbooks, ingested in that window.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from include import paths
from include.calendar import read_calendar
from include.calendar.instants import parse_instant
from include.door.ingest import ingest as ingest_file
from include.forms import records
from include.forms.spec import get_form
from include.store.db import database_url, make_engine, session_scope, upgrade
from include.store.models import AuditEntry

CAMPAIGN = "2020-shandong"
UNIT = "370100"
FORM = "2020-1"
REPORT_AT = "2020-11-12T10:00+08:00"
AT = "2020-11-20T10:00+08:00"


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory) -> dict[int, Path]:
    """Two different synthetic workbooks of 济南市 (other seeds, other households)."""
    from include.cli.main import main

    made = {}
    for seed in (11, 12):
        out = tmp_path_factory.mktemp(f"synth-{seed}")
        assert main(["synth", "--campaign", CAMPAIGN, "--households", "30", "--defect-rate", "0.3",
                     "--seed", str(seed), "--out", str(out), "--units", UNIT]) == 0  # fmt: skip
        made[seed] = out / f"{CAMPAIGN}-{FORM}-{UNIT}.xlsx"
    return made


@pytest.fixture
def world(run_cli):
    """The unit's window open; the campaign store and calendar to ingest with."""
    code, _, err = run_cli("report", "submit", "--campaign", CAMPAIGN, "--unit", UNIT,
                           "--milestone", "completion_report", "--at", REPORT_AT)  # fmt: skip
    assert code == 0, err
    engine = make_engine(upgrade(database_url()))
    yield engine, read_calendar(next(f for f in paths.calendar_files() if f.stem == CAMPAIGN))
    engine.dispose()


def upload(world, path: Path):
    engine, calendar = world
    return ingest_file(engine, calendar, path, UNIT, parse_instant(AT), actor="test")


def households() -> int:
    return records.scan(CAMPAIGN, FORM, "households").collect().height


def trimmed(source: Path, target: Path, drop: int) -> Path:
    """``source`` without its last ``drop`` households: another upload of the same unit."""
    wb = openpyxl.load_workbook(source)
    sheet = wb["户"]
    sheet.delete_rows(sheet.max_row - drop + 1, drop)
    wb.save(target)
    return target


def ingest_rows() -> list[str]:
    engine = make_engine(database_url())
    try:
        with session_scope(engine) as session:
            return list(session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "ingest")))
    finally:
        engine.dispose()


# -- 1. a validation run pins the versions it reads ---------------------------------------------------


def test_a_validation_run_reads_the_version_it_started_with_while_the_unit_re_uploads(world, workbooks, monkeypatch):
    from include.rules import engine as rules

    calendar = world[1]
    at = parse_instant(AT)
    upload(world, workbooks[11])
    first = rules.run_rules(calendar, at)
    assert not first.is_empty(), "the synthetic data has problems"

    original = records.sheet_files
    uploaded = []

    def reupload_once(*args, **kwargs):
        found = original(*args, **kwargs)
        if args[1] == FORM and not uploaded:  # the run has looked up its first sheet of the unit's form
            uploaded.append(None)  # once: the upload reads the records too (its day's figures)
            uploaded[0] = upload(world, workbooks[12])
        return found

    monkeypatch.setattr(records, "sheet_files", reupload_once)
    during = rules.run_rules(calendar, at)
    monkeypatch.setattr(records, "sheet_files", original)
    assert uploaded and uploaded[0].status == "stored", "the unit re-uploaded in the middle of the run"
    assert during.equals(first), "the run reads the version in force when it started, every sheet of it"

    fresh = rules.run_rules(calendar, at)
    assert not fresh.equals(first), "a run after the re-upload sees the new version"
    key = get_form(FORM).household_key
    entered = set(records.scan(CAMPAIGN, FORM, "members").collect()[key])
    assert set(fresh["household"].drop_nulls()) <= entered


def test_a_pin_keeps_reading_its_files_after_a_re_upload(world, workbooks):
    first = upload(world, workbooks[11])
    pinned = records.pin(CAMPAIGN, FORM)
    assert pinned == {UNIT: first.version}
    before = {
        sheet: records.scan(CAMPAIGN, FORM, sheet, pinned=pinned).collect() for sheet in ("households", "members")
    }
    second = upload(world, workbooks[12])
    assert records.current_version(CAMPAIGN, FORM, UNIT) == second.version != first.version
    for sheet, frame in before.items():
        files = records.sheet_files(CAMPAIGN, FORM, sheet, pinned=pinned)
        assert files and all(f.is_file() and f.parent.name == first.version for f in files)
        assert records.scan(CAMPAIGN, FORM, sheet, pinned=pinned).collect().equals(frame)
    assert records.pin(CAMPAIGN, FORM) == {UNIT: second.version}
    assert records.pin(CAMPAIGN, FORM, units=["370200"]) == {}


# -- 2. old versions: the newest N kept, older ones removed after the grace period ----------------------


def test_old_versions_are_removed_only_past_the_grace_period_and_beyond_the_newest_n(
    world, workbooks, tmp_path, monkeypatch
):
    monkeypatch.setenv("CAMPAIGN_RECORDS_KEEP_VERSIONS", "2")
    monkeypatch.setenv("CAMPAIGN_RECORDS_GRACE_SECONDS", "3600")
    folder = records.unit_dir(CAMPAIGN, FORM, UNIT)
    files = [trimmed(workbooks[11], tmp_path / f"u{n}.xlsx", n) for n in range(1, 6)]
    versions = [upload(world, files[n]).version for n in range(3)]
    assert all((folder / v).is_dir() for v in versions), "superseded within the grace period: all kept"
    crashed = folder / ".staging-crashed"
    crashed.mkdir()
    (crashed / "households.parquet").write_bytes(b"half")

    later = time.time() + 2 * 3600
    monkeypatch.setattr(records, "_now", lambda: later)
    recent = folder / ".staging-recent"  # a writer at work now
    recent.mkdir()
    os.utime(recent, (later, later))
    versions += [upload(world, files[n]).version for n in (3, 4)]

    assert records.current_version(CAMPAIGN, FORM, UNIT) == versions[4]
    assert households() == 30 - 5
    kept = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    # the newest two (v5 in force, v4); v3 superseded just now (by v4), within the grace period;
    # v1 and v2 superseded two hours ago and older than the newest two: removed
    assert kept == sorted(versions[2:])
    assert not crashed.exists(), "a crashed writer's staging folder past the grace period is removed"
    assert recent.exists(), "a writer's staging folder within the grace period is not"


# -- 3. the records and their audit row become visible together -----------------------------------------


def test_a_database_failure_at_the_audit_row_leaves_the_previous_upload_in_force(world, workbooks, monkeypatch):
    first = upload(world, workbooks[11])
    count, audited = households(), ingest_rows()

    def unreachable(*_args, **_kwargs):
        raise OperationalError("INSERT INTO audit_entries", {}, Exception("unable to open database file"))

    with monkeypatch.context() as patch, pytest.raises(OperationalError):
        patch.setattr("include.door.ingest.audit", unreachable)
        upload(world, workbooks[12])
    assert records.current_version(CAMPAIGN, FORM, UNIT) == first.version, "nothing new is in force"
    assert records.pin(CAMPAIGN, FORM) == {UNIT: first.version}
    assert households() == count
    assert ingest_rows() == audited
    again = upload(world, workbooks[12])  # once the store is back, the same upload goes through
    assert again.status == "stored" and records.current_version(CAMPAIGN, FORM, UNIT) == again.version


def test_a_failed_commit_after_the_pointer_swap_puts_the_previous_version_back(world, workbooks):
    first = upload(world, workbooks[11])
    count, audited = households(), ingest_rows()
    seen = []

    def audited_upload(session, _context):
        if any(isinstance(item, AuditEntry) and item.action == "ingest" for item in session.new):
            session.info["ingest_audit"] = True

    def commit_fails(session):
        if not session.info.get("ingest_audit") and not any(isinstance(item, AuditEntry) for item in session.new):
            return  # another transaction of the upload (the window check)
        seen.append(records.current_version(CAMPAIGN, FORM, UNIT))
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(Session, "after_flush", audited_upload)
    event.listen(Session, "before_commit", commit_fails)
    try:
        with pytest.raises(OperationalError):
            upload(world, workbooks[12])
    finally:
        event.remove(Session, "before_commit", commit_fails)
        event.remove(Session, "after_flush", audited_upload)
    assert seen and seen[0] != first.version, "the pointer was swapped inside the open transaction"
    assert records.current_version(CAMPAIGN, FORM, UNIT) == first.version, "and put back when the commit failed"
    assert households() == count
    assert ingest_rows() == audited


def test_the_same_bytes_again_change_nothing_and_are_audited(world, workbooks):
    first = upload(world, workbooks[11])
    folder = records.unit_dir(CAMPAIGN, FORM, UNIT)
    meta = json.loads((folder / first.version / records.META).read_text(encoding="utf-8"))
    again = upload(world, workbooks[11])
    assert again.status == "unchanged" and again.version == first.version
    assert records.current_version(CAMPAIGN, FORM, UNIT) == first.version
    assert records.current_meta(CAMPAIGN, FORM, UNIT) == meta
    rows = ingest_rows()
    assert len(rows) == 2 and "已保存" in rows[0] and "与在用数据相同" in rows[1]


def test_replace_still_makes_a_version_current_in_one_step(tmp_path):
    table = pl.DataFrame({"unit": [UNIT], "x": [1]})
    stored = records.replace(CAMPAIGN, "registry", UNIT, "v-test", {"counties": table}, {"n": 1})
    assert stored.changed and records.current_version(CAMPAIGN, "registry", UNIT) == "v-test"
    assert not records.replace(CAMPAIGN, "registry", UNIT, "v-test", {"counties": table}, {"n": 1}).changed
    assert records.scan(CAMPAIGN, "registry", "counties").collect()["x"].to_list() == [1]
    shutil.rmtree(records.records_root())
