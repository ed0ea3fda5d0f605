"""`campaign calendar compress`: shifted and scaled, every instant keeping its relative place."""

from __future__ import annotations

import json

import pytest

from include.calendar import read_calendar
from include.calendar.instants import parse_duration, parse_instant
from include.paths import CONFIG_CAMPAIGNS


@pytest.mark.parametrize("plan", ["2020-shandong", "2020-chongqing-longju", "2017-shanxi", "2023-zibo-jixia"])
def test_compressed_calendar_keeps_relative_places(tmp_path, run_cli, plan):
    out = tmp_path / "short.yaml"
    code, _, err = run_cli(
        "calendar", "compress", plan, "--start", "2030-01-01T08:00:00+08:00", "--span", "6m", "--out", out
    )
    assert code == 0, err
    original = read_calendar(CONFIG_CAMPAIGNS / f"{plan}.yaml")
    short = read_calendar(out)

    assert short.id == f"{plan}-compressed"
    assert short.starts == parse_instant("2030-01-01T08:00:00+08:00")
    assert (short.ends - short.starts).total_seconds() == pytest.approx(360, abs=1e-3)
    total = (original.ends - original.starts).total_seconds()
    before = dict(original.instants())
    after = dict(short.instants())
    assert before.keys() == after.keys()
    for key, instant in before.items():
        share = (instant - original.starts).total_seconds() / total
        assert (after[key] - short.starts).total_seconds() == pytest.approx(share * 360, abs=1e-3), key
    # The data's income period is not part of the schedule and is kept.
    assert short.income_period == original.income_period
    assert short.unit_list == original.unit_list


def test_shandong_entry_window_in_a_six_minute_demo(tmp_path, run_cli):
    """Seed 000 runs 2020-09-24 to 2021-01-11 (109 days); entry 11-11..12-01 is day 48 to day 68."""
    out = tmp_path / "demo.yaml"
    run_cli(
        "calendar",
        "compress",
        "2020-shandong",
        "--start",
        "2030-01-01T00:00:00+08:00",
        "--span",
        "109m",
        "--id",
        "minute-per-day",
        "--out",
        out,
    )
    code, text, _ = run_cli("calendar", "show", out, "--json")
    assert code == 0
    data = json.loads(text)
    assert data["campaign"] == "minute-per-day"
    entry = next(phase for phase in data["phases"] if phase["id"] == "entry")
    assert entry["starts"] == "2030-01-01T00:48:00+08:00"
    assert entry["ends"] == "2030-01-01T01:08:00+08:00"
    assert data["system_close"] == "2030-01-01T01:39:00+08:00"


def test_compress_refuses_bad_span_and_naive_start(tmp_path, run_cli):
    out = tmp_path / "x.yaml"
    code, _, err = run_cli(
        "calendar", "compress", "2020-shandong", "--start", "2030-01-01T00:00:00", "--span", "6m", "--out", out
    )
    assert code == 2 and "缺少时区偏移" in err
    code, _, err = run_cli(
        "calendar", "compress", "2020-shandong", "--start", "2030-01-01T00:00:00+08:00", "--span", "soon", "--out", out
    )
    assert code == 2 and "无法识别的时长“soon”" in err
    assert not out.exists()


def test_durations():
    assert parse_duration("6m").total_seconds() == 360
    assert parse_duration("PT6M").total_seconds() == 360
    assert parse_duration("2h").total_seconds() == 7200
    assert parse_duration("90s").total_seconds() == 90


def test_demo_is_written_under_the_campaign_home(tmp_path, run_cli):
    code, _, _ = run_cli("demo", "--at", "2030-05-01T10:00:00+08:00", "--delay", "60s", "--span", "2m")
    assert code == 0
    file = tmp_path / "home" / "campaigns" / "demo-2020-shandong.yaml"
    demo = read_calendar(file)
    assert demo.starts == parse_instant("2030-05-01T10:01:00+08:00")
    assert demo.ends == parse_instant("2030-05-01T10:03:00+08:00")
    assert demo.compressed_from.id == "2020-shandong"
